//! The in-memory index the client protocol reads: published releases of every distribution
//! with their compatibility, metadata and files, and every license. The vendor API refreshes
//! one distribution (or one license) after each change, so the check path runs no SQL. Changes
//! made elsewhere (other instances, the CLI) arrive through `catalog_sync`; the catalog's
//! generation says up to which change it reflects the database.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};
use vypusk_protocol::{Version, VersionScheme};

use crate::domain::LicenseKey;
use crate::domain::licensing::{FeatureGrant, LicenseView};
use crate::domain::matching::CompatEntry;
use crate::entities::{
    compatibility, distribution, file, license, license_feature, release, release_metadata,
};

pub const STATUS_DRAFT: &str = "draft";
pub const STATUS_PUBLISHED: &str = "published";
pub const STATUS_YANKED: &str = "yanked";

#[derive(Debug)]
pub struct Distribution {
    pub id: i32,
    pub code: String,
    pub name: String,
    pub description: String,
    pub developer: String,
    pub label: String,
    pub promo_link: String,
    /// `(lic_product_id, lic_feature_id)`; `None` = free.
    pub gate: Option<(i64, i64)>,
    pub published: bool,
    pub hide_unlicensed: bool,
    pub scheme: VersionScheme,
    /// Published releases only, newest first.
    pub releases: Vec<Arc<Release>>,
}

#[derive(Debug)]
pub struct Release {
    pub id: i32,
    pub version: Version,
    pub published_at: DateTime<Utc>,
    pub prerelease: bool,
    pub changelog: String,
    pub compatibility: Vec<CompatEntry>,
    pub metadata: BTreeMap<String, String>,
    /// Main file first.
    pub files: Vec<File>,
}

impl Release {
    pub fn main_file(&self) -> Option<&File> {
        self.files.first()
    }
    pub fn file(&self, id: i32) -> Option<&File> {
        self.files.iter().find(|f| f.id == id)
    }
}

#[derive(Debug, Clone)]
pub struct File {
    pub id: i32,
    pub name: String,
    pub size: u64,
    pub md5: String,
    pub sha256: String,
}

#[derive(Default)]
struct Snapshot {
    by_id: HashMap<i32, Arc<Distribution>>,
    id_by_code: HashMap<String, i32>,
}

#[derive(Default)]
struct LicenseMaps {
    by_key: HashMap<String, Arc<LicenseView>>,
    /// sha256(key) hex → key, for `getModuleFile/{TYPE}/{version}/{hash}`.
    key_by_sha256: HashMap<String, String>,
}

/// Entries of the index, see [`Catalog::sizes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogSizes {
    pub distributions: usize,
    pub releases: usize,
    pub licenses: usize,
}

/// Cheap to clone; all clones see the same index.
#[derive(Clone, Default)]
pub struct Catalog {
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
    licenses: Arc<RwLock<LicenseMaps>>,
    /// Serializes refreshes so two writers never publish a stale snapshot over a newer one.
    refresh: Arc<tokio::sync::Mutex<()>>,
    /// The database's catalog generation this index reflects (see `catalog_sync`).
    generation: Arc<AtomicU64>,
}

impl Catalog {
    pub async fn load(db: &DatabaseConnection) -> Result<Catalog, DbErr> {
        let catalog = Catalog::default();
        // Read before loading: a change committed meanwhile is applied again by the next
        // catch-up, never missed.
        let generation = crate::catalog_sync::current_generation(db).await?;
        catalog.reload_all(db).await?;
        catalog.set_generation(generation);
        Ok(catalog)
    }

    /// The catalog generation (count of recorded changes) this index has caught up with.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn set_generation(&self, generation: u64) {
        self.generation.store(generation, Ordering::Release);
    }

    /// Moves the generation forward only, so a slow catch-up never moves it back.
    pub(crate) fn advance_generation(&self, generation: u64) {
        self.generation.fetch_max(generation, Ordering::AcqRel);
    }

    pub fn distribution(&self, code: &str) -> Option<Arc<Distribution>> {
        let snap = self.current();
        let id = snap.id_by_code.get(code)?;
        snap.by_id.get(id).cloned()
    }

    pub fn distribution_by_id(&self, id: i32) -> Option<Arc<Distribution>> {
        self.current().by_id.get(&id).cloned()
    }

    pub fn license(&self, key: &str) -> Option<Arc<LicenseView>> {
        self.licenses
            .read()
            .expect("license index lock poisoned")
            .by_key
            .get(key)
            .cloned()
    }

    pub fn license_by_sha256(&self, hash: &str) -> Option<Arc<LicenseView>> {
        let maps = self.licenses.read().expect("license index lock poisoned");
        let key = maps.key_by_sha256.get(hash)?;
        maps.by_key.get(key).cloned()
    }

    /// How much the index holds, for `/metrics` (issue 8, item 4). Counts published releases
    /// of every distribution.
    pub fn sizes(&self) -> CatalogSizes {
        let snap = self.current();
        CatalogSizes {
            distributions: snap.by_id.len(),
            releases: snap.by_id.values().map(|d| d.releases.len()).sum(),
            licenses: self
                .licenses
                .read()
                .expect("license index lock poisoned")
                .by_key
                .len(),
        }
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot.read().expect("catalog lock poisoned").clone()
    }

    pub async fn reload_all(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let _guard = self.refresh.lock().await;
        let dists = distribution::Entity::find().all(db).await?;
        let mut snap = Snapshot::default();
        let schemes = dists.iter().map(|d| (d.id, scheme_of(d))).collect();
        let all = load_releases(db, None, &schemes).await?;
        let mut grouped: HashMap<i32, Vec<Arc<Release>>> = HashMap::new();
        for (dist_id, rel) in all {
            grouped.entry(dist_id).or_default().push(rel);
        }
        for d in dists {
            let releases = grouped.remove(&d.id).unwrap_or_default();
            let dist = Arc::new(build_distribution(d, releases));
            snap.id_by_code.insert(dist.code.clone(), dist.id);
            snap.by_id.insert(dist.id, dist);
        }
        *self.snapshot.write().expect("catalog lock poisoned") = Arc::new(snap);
        self.load_licenses(db).await
    }

    /// Re-reads every license (after a bulk import), leaving the catalog as it is.
    pub async fn reload_licenses(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let _guard = self.refresh.lock().await;
        self.load_licenses(db).await
    }

    async fn load_licenses(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let licenses = license::Entity::find().all(db).await?;
        let features = license_feature::Entity::find().all(db).await?;
        let mut by_license: HashMap<i32, Vec<FeatureGrant>> = HashMap::new();
        for f in features {
            by_license.entry(f.license_id).or_default().push(grant(&f));
        }
        let mut maps = LicenseMaps::default();
        for l in licenses {
            let features = by_license.remove(&l.id).unwrap_or_default();
            insert_license(&mut maps, l, features);
        }
        *self.licenses.write().expect("license index lock poisoned") = maps;
        Ok(())
    }

    /// Re-reads one distribution (or drops it when it no longer exists).
    pub async fn refresh_distribution(
        &self,
        db: &DatabaseConnection,
        id: i32,
    ) -> Result<(), DbErr> {
        let _guard = self.refresh.lock().await;
        let row = distribution::Entity::find_by_id(id).one(db).await?;
        let mut snap = Snapshot {
            by_id: self.current().by_id.clone(),
            id_by_code: self.current().id_by_code.clone(),
        };
        if let Some(old) = snap.by_id.remove(&id) {
            snap.id_by_code.remove(&old.code);
        }
        if let Some(d) = row {
            let schemes = HashMap::from([(d.id, scheme_of(&d))]);
            let releases = load_releases(db, Some(id), &schemes)
                .await?
                .into_iter()
                .map(|(_, r)| r)
                .collect();
            let dist = Arc::new(build_distribution(d, releases));
            snap.id_by_code.insert(dist.code.clone(), dist.id);
            snap.by_id.insert(id, dist);
        }
        *self.snapshot.write().expect("catalog lock poisoned") = Arc::new(snap);
        Ok(())
    }

    /// Re-reads one license by key (or drops it when it no longer exists).
    pub async fn refresh_license(&self, db: &DatabaseConnection, key: &str) -> Result<(), DbErr> {
        let _guard = self.refresh.lock().await;
        let row = license::Entity::find()
            .filter(license::Column::Key.eq(key))
            .one(db)
            .await?;
        let features = match &row {
            Some(l) => license_feature::Entity::find()
                .filter(license_feature::Column::LicenseId.eq(l.id))
                .all(db)
                .await?
                .iter()
                .map(grant)
                .collect(),
            None => Vec::new(),
        };
        let mut maps = self.licenses.write().expect("license index lock poisoned");
        if maps.by_key.remove(key).is_some()
            && let Ok(k) = LicenseKey::parse(key)
        {
            maps.key_by_sha256.remove(&k.sha256_hex());
        }
        if let Some(l) = row {
            insert_license(&mut maps, l, features);
        }
        Ok(())
    }
}

fn grant(f: &license_feature::Model) -> FeatureGrant {
    FeatureGrant {
        product: f.product,
        feature: f.feature,
        active_until: f.active_until,
    }
}

fn insert_license(maps: &mut LicenseMaps, l: license::Model, features: Vec<FeatureGrant>) {
    if let Ok(k) = LicenseKey::parse(&l.key) {
        maps.key_by_sha256.insert(k.sha256_hex(), l.key.clone());
    }
    maps.by_key.insert(
        l.key.clone(),
        Arc::new(LicenseView {
            key: l.key,
            revoked: l.revoked,
            beta: l.beta,
            features,
        }),
    );
}

fn scheme_of(d: &distribution::Model) -> VersionScheme {
    d.version_scheme.parse().unwrap_or_default()
}

fn build_distribution(d: distribution::Model, mut releases: Vec<Arc<Release>>) -> Distribution {
    releases.sort_by(|a, b| b.version.cmp(&a.version));
    let scheme = scheme_of(&d);
    Distribution {
        id: d.id,
        gate: d.lic_product_id.zip(d.lic_feature_id),
        code: d.code,
        name: d.name,
        description: d.description,
        developer: d.developer,
        label: d.label,
        promo_link: d.promo_link,
        published: d.published,
        hide_unlicensed: d.hide_unlicensed,
        scheme,
        releases,
    }
}

/// Published releases (of one distribution, or of all) with their parts, as `(distribution_id, release)`.
async fn load_releases(
    db: &DatabaseConnection,
    distribution_id: Option<i32>,
    schemes: &HashMap<i32, VersionScheme>,
) -> Result<Vec<(i32, Arc<Release>)>, DbErr> {
    let mut query = release::Entity::find().filter(release::Column::Status.eq(STATUS_PUBLISHED));
    if let Some(id) = distribution_id {
        query = query.filter(release::Column::DistributionId.eq(id));
    }
    let rows = query.all(db).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
    let mut compat: HashMap<i32, Vec<compatibility::Model>> = HashMap::new();
    let mut meta: HashMap<i32, BTreeMap<String, String>> = HashMap::new();
    let mut files: HashMap<i32, Vec<file::Model>> = HashMap::new();
    // Chunks keep the IN lists within every backend's parameter limit.
    for chunk in ids.chunks(500) {
        for c in compatibility::Entity::find()
            .filter(compatibility::Column::ReleaseId.is_in(chunk.to_vec()))
            .order_by_asc(compatibility::Column::Position)
            .all(db)
            .await?
        {
            compat.entry(c.release_id).or_default().push(c);
        }
        for m in release_metadata::Entity::find()
            .filter(release_metadata::Column::ReleaseId.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            meta.entry(m.release_id).or_default().insert(m.key, m.value);
        }
        for f in file::Entity::find()
            .filter(file::Column::ReleaseId.is_in(chunk.to_vec()))
            .order_by_asc(file::Column::Id)
            .all(db)
            .await?
        {
            files.entry(f.release_id).or_default().push(f);
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let scheme = schemes.get(&r.distribution_id).copied().unwrap_or_default();
        let Ok(version) = Version::parse(scheme, &r.version) else {
            tracing::warn!(release = r.id, version = %r.version, "skipping release with unparsable version");
            continue;
        };
        let compatibility = compat
            .remove(&r.id)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| {
                let min = Version::parse_1c(&c.min_1c_version).ok()?;
                let max = match &c.max_1c_version {
                    Some(m) => Some(Version::parse_1c(m).ok()?),
                    None => None,
                };
                Some(CompatEntry::new(&c.conf, min, max))
            })
            .collect();
        let mut file_rows = files.remove(&r.id).unwrap_or_default();
        // Main file first; ties keep upload order.
        file_rows.sort_by_key(|f| !f.main);
        out.push((
            r.distribution_id,
            Arc::new(Release {
                id: r.id,
                version,
                published_at: r.published_at.unwrap_or(r.created_at),
                prerelease: r.prerelease,
                changelog: r.changelog,
                compatibility,
                metadata: meta.remove(&r.id).unwrap_or_default(),
                files: file_rows
                    .into_iter()
                    .map(|f| File {
                        id: f.id,
                        name: f.name,
                        size: f.size.max(0) as u64,
                        md5: f.md5,
                        sha256: f.sha256,
                    })
                    .collect(),
            }),
        ));
    }
    Ok(out)
}
