//! Reads the catalog's read model from the database in pages, building compact values as it
//! goes, so a load never holds every row of a large vendor at once (issue 9: the memory goal
//! for 500 × 40 × 2 releases and 100 000 licenses).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use vypusk_protocol::{Version, VersionScheme};

use super::STATUS_PUBLISHED;
use super::model::{Distribution, File, Release};
use crate::answer::{render_compatibility, render_distribution, render_file, render_release};
use crate::domain::licensing::{FeatureGrant, LicenseView};
use crate::domain::matching::{CompatEntry, fold};
use crate::entities::{
    compatibility, distribution, file, license, license_feature, release, release_metadata,
};

/// Distributions whose releases are read in one go.
const DISTRIBUTIONS_PER_PAGE: usize = 50;
/// Licenses read in one go.
const LICENSES_PER_PAGE: u64 = 5_000;
/// Keeps `IN (…)` lists within every backend's parameter limit.
const IDS_PER_QUERY: usize = 500;

static BUILDS: AtomicU64 = AtomicU64::new(1);

/// A number never handed out before in this process.
pub fn next_build() -> u64 {
    BUILDS.fetch_add(1, Ordering::Relaxed)
}

/// Compatibility lists shared by every release of one load that has an equal list (vendors
/// tend to give a whole series the same list: 20 000 releases may hold a few dozen distinct
/// lists), and configuration names shared by every entry.
#[derive(Default)]
struct Confs {
    names: HashMap<String, (Arc<str>, Arc<str>)>,
    /// Each list with its JSON (the module's `"compatibility"`), rendered once per list.
    lists: HashMap<Vec<CompatRow>, SharedList>,
}

/// A compatibility list and its rendered JSON array.
type SharedList = (Arc<[CompatEntry]>, Arc<str>);

/// One compatibility row as stored: conf, min, max.
type CompatRow = (String, String, Option<String>);

impl Confs {
    fn list(&mut self, rows: Vec<CompatRow>) -> SharedList {
        if let Some(shared) = self.lists.get(&rows) {
            return shared.clone();
        }
        let entries: Arc<[CompatEntry]> = rows
            .iter()
            .filter_map(|(conf, min, max)| {
                // Rows the API would not have accepted (edited by hand) are left out.
                let min = Version::parse_1c(min).ok()?;
                let max = match max {
                    Some(m) => Some(Version::parse_1c(m).ok()?),
                    None => None,
                };
                Some(self.entry(conf, min, max))
            })
            .collect();
        let shared = (entries.clone(), render_compatibility(&entries));
        self.lists.insert(rows, shared.clone());
        shared
    }

    fn entry(&mut self, conf: &str, min: Version, max: Option<Version>) -> CompatEntry {
        let (name, folded) = self
            .names
            .entry(conf.to_owned())
            .or_insert_with(|| (conf.into(), fold(conf).into()))
            .clone();
        CompatEntry::shared(name, folded, min, max)
    }
}

/// Every distribution (`only: None`) or one, with its published releases.
pub async fn distributions(
    db: &impl ConnectionTrait,
    only: Option<i32>,
) -> Result<Vec<Distribution>, DbErr> {
    let mut query = distribution::Entity::find().order_by_asc(distribution::Column::Id);
    if let Some(id) = only {
        query = query.filter(distribution::Column::Id.eq(id));
    }
    let rows = query.all(db).await?;
    let mut confs = Confs::default();
    let mut out = Vec::with_capacity(rows.len());
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let page: Vec<distribution::Model> = rows.by_ref().take(DISTRIBUTIONS_PER_PAGE).collect();
        let schemes: HashMap<i32, VersionScheme> =
            page.iter().map(|d| (d.id, scheme_of(d))).collect();
        let mut releases = releases(db, &schemes, &mut confs).await?;
        for d in page {
            let of_this = releases.remove(&d.id).unwrap_or_default();
            out.push(build_distribution(d, of_this));
        }
    }
    Ok(out)
}

fn scheme_of(d: &distribution::Model) -> VersionScheme {
    d.version_scheme.parse().unwrap_or_default()
}

fn build_distribution(d: distribution::Model, mut releases: Vec<Release>) -> Distribution {
    releases.sort_by(|a, b| b.version.cmp(&a.version));
    let gate = d.lic_product_id.zip(d.lic_feature_id);
    let json = render_distribution(
        &d.code,
        &d.name,
        &d.description,
        &d.developer,
        &d.label,
        &d.promo_link,
        gate,
        scheme_of(&d),
    );
    Distribution {
        id: d.id,
        build: next_build(),
        scheme: scheme_of(&d),
        gate,
        code: d.code.into(),
        name: d.name.into(),
        description: d.description.into(),
        developer: d.developer.into(),
        label: d.label.into(),
        promo_link: d.promo_link.into(),
        published: d.published,
        hide_unlicensed: d.hide_unlicensed,
        releases: releases.into(),
        json,
    }
}

/// Published releases of the distributions in `schemes`, by distribution id.
async fn releases(
    db: &impl ConnectionTrait,
    schemes: &HashMap<i32, VersionScheme>,
    confs: &mut Confs,
) -> Result<HashMap<i32, Vec<Release>>, DbErr> {
    let dist_ids: Vec<i32> = schemes.keys().copied().collect();
    let rows = release::Entity::find()
        .filter(release::Column::Status.eq(STATUS_PUBLISHED))
        .filter(release::Column::DistributionId.is_in(dist_ids))
        .all(db)
        .await?;
    let mut out: HashMap<i32, Vec<Release>> = HashMap::new();
    for chunk in rows.chunks(IDS_PER_QUERY) {
        let ids: Vec<i32> = chunk.iter().map(|r| r.id).collect();
        let mut compat: HashMap<i32, Vec<CompatRow>> = HashMap::new();
        for c in compatibility::Entity::find()
            .filter(compatibility::Column::ReleaseId.is_in(ids.clone()))
            .order_by_asc(compatibility::Column::Position)
            .all(db)
            .await?
        {
            compat.entry(c.release_id).or_default().push((
                c.conf,
                c.min_1c_version,
                c.max_1c_version,
            ));
        }
        let mut hashes: HashMap<i32, Box<str>> = HashMap::new();
        for m in release_metadata::Entity::find()
            .filter(release_metadata::Column::ReleaseId.is_in(ids.clone()))
            .filter(release_metadata::Column::Key.eq("extension_hash"))
            .all(db)
            .await?
        {
            hashes.insert(m.release_id, m.value.into());
        }
        let mut files: HashMap<i32, Vec<file::Model>> = HashMap::new();
        for f in file::Entity::find()
            .filter(file::Column::ReleaseId.is_in(ids))
            .order_by_asc(file::Column::Id)
            .all(db)
            .await?
        {
            files.entry(f.release_id).or_default().push(f);
        }
        for r in chunk {
            let scheme = schemes.get(&r.distribution_id).copied().unwrap_or_default();
            let Ok(version) = Version::parse(scheme, &r.version) else {
                tracing::warn!(release = r.id, version = %r.version, "skipping release with unparsable version");
                continue;
            };
            let mut file_rows = files.remove(&r.id).unwrap_or_default();
            // Main file first; ties keep upload order.
            file_rows.sort_by_key(|f| !f.main);
            let files: Box<[File]> = file_rows.into_iter().map(build_file).collect();
            let published_at = r.published_at.unwrap_or(r.created_at);
            let main_size = files.first().map_or(0, |f| f.size);
            let json = render_release(
                r.id,
                &version.to_string(),
                published_at,
                r.prerelease,
                &r.changelog,
                main_size,
            );
            let (compatibility, compatibility_json) =
                confs.list(compat.remove(&r.id).unwrap_or_default());
            out.entry(r.distribution_id).or_default().push(Release {
                id: r.id,
                version,
                published_at,
                prerelease: r.prerelease,
                compatibility,
                compatibility_json,
                extension_hash: hashes.remove(&r.id),
                files,
                json,
            });
        }
    }
    Ok(out)
}

fn build_file(f: file::Model) -> File {
    let mut md5 = [0u8; 16];
    let mut sha256 = [0u8; 32];
    if hex::decode_to_slice(&f.md5, &mut md5).is_err()
        || hex::decode_to_slice(&f.sha256, &mut sha256).is_err()
    {
        // The vendor API stores what it computed; a row edited by hand is served as recorded
        // digests of zero, which every client refuses rather than trusts.
        tracing::warn!(file = f.id, "file row with a malformed digest");
    }
    let size = f.size.max(0) as u64;
    File {
        id: f.id,
        json: render_file(&f.name, size, &md5, &sha256),
        size,
        md5,
        sha256,
    }
}

/// Every license (or those changed at or after `since`) with its features, handed to `each`
/// a page at a time.
pub async fn licenses(
    db: &impl ConnectionTrait,
    since: Option<DateTime<Utc>>,
    mut each: impl FnMut(Vec<LicenseView>),
) -> Result<(), DbErr> {
    let mut after = i32::MIN;
    loop {
        let mut query = license::Entity::find().filter(license::Column::Id.gt(after));
        if let Some(since) = since {
            query = query.filter(license::Column::UpdatedAt.gte(since));
        }
        let page = query
            .order_by_asc(license::Column::Id)
            .limit(LICENSES_PER_PAGE)
            .all(db)
            .await?;
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            return Ok(());
        };
        let (first, last) = (first.id, last.id);
        let mut features: HashMap<i32, Vec<FeatureGrant>> = HashMap::new();
        for f in license_feature::Entity::find()
            .filter(license_feature::Column::LicenseId.between(first, last))
            .all(db)
            .await?
        {
            features.entry(f.license_id).or_default().push(grant(&f));
        }
        each(
            page.into_iter()
                .map(|l| {
                    let f = features.remove(&l.id).unwrap_or_default();
                    view(l, f)
                })
                .collect(),
        );
        after = last;
    }
}

/// One license by key, if it exists.
pub async fn license(db: &impl ConnectionTrait, key: &str) -> Result<Option<LicenseView>, DbErr> {
    let Some(l) = license::Entity::find()
        .filter(license::Column::Key.eq(key))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let features = license_feature::Entity::find()
        .filter(license_feature::Column::LicenseId.eq(l.id))
        .all(db)
        .await?
        .iter()
        .map(grant)
        .collect();
    Ok(Some(view(l, features)))
}

fn grant(f: &license_feature::Model) -> FeatureGrant {
    FeatureGrant {
        product: f.product,
        feature: f.feature,
        active_until: f.active_until,
    }
}

fn view(l: license::Model, mut features: Vec<FeatureGrant>) -> LicenseView {
    features.shrink_to_fit();
    LicenseView {
        id: l.id,
        build: next_build(),
        key: l.key.into(),
        revoked: l.revoked,
        beta: l.beta,
        features,
    }
}
