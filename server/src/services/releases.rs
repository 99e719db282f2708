//! Releases and their files (SPEC §3, §5): the rules of the vendor API's release routes, the
//! transactions that apply them and the catalog refreshes that follow. Handlers in
//! `routes/api/releases.rs` extract, call a function here and render the answer.
//!
//! A release's status moves draft → published → yanked; [`transition`] is the one place that
//! says which moves are allowed and what a refused move answers.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use serde::Deserialize;
use vypusk_protocol::{FileName, Version, VersionScheme};
use vypusk_storage::{ExpectedDigests, StagedBlob, StorageError};

use super::distributions::find as find_distribution;
use crate::blobs;
use crate::catalog::{STATUS_DRAFT, STATUS_PUBLISHED, STATUS_YANKED};
use crate::catalog_sync::{self, Change};
use crate::entities::{compatibility, distribution, file, release, release_metadata};
use crate::error::{ApiError, quote};

use super::common::{self, Page};
use super::patch;
use crate::state::AppState;

// ---------------------------------------------------------------------------------------
// Status and its transitions

/// The status of a release (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[schema(as = ReleaseStatus, rename_all = "lowercase")]
pub enum Status {
    Draft,
    Published,
    Yanked,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Draft, Status::Published, Status::Yanked];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => STATUS_DRAFT,
            Status::Published => STATUS_PUBLISHED,
            Status::Yanked => STATUS_YANKED,
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The statuses a release may be in for a move to `to` to be allowed.
    pub fn sources(to: Status) -> Vec<Status> {
        Status::ALL
            .into_iter()
            .filter(|&from| transition(from, to).is_ok())
            .collect()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a status move is refused; [`Refused::message`] words it for release `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `from` equals `to`.
    Already(Status),
    /// Nothing leaves `yanked`, and nothing goes back to `draft`.
    NoWayBack { from: Status, to: Status },
    /// Only a published release can be yanked; a draft is deleted instead.
    DraftYank,
}

impl Refused {
    pub fn message(self, id: i32) -> String {
        match self {
            Refused::Already(s) => format!("release {id} is already {s}"),
            Refused::NoWayBack {
                from: Status::Yanked,
                to: Status::Published,
            } => format!("release {id} was yanked; a yanked release can never be published again"),
            Refused::NoWayBack { from, to } => format!(
                "release {id} is {from}; it can never become {to} again (draft → published → yanked)"
            ),
            Refused::DraftYank => format!(
                "release {id} is a draft; only published releases can be yanked (delete a draft instead)"
            ),
        }
    }
}

/// The one table of status moves: draft → published → yanked, nothing else.
///
/// | from \ to  | draft     | published | yanked    |
/// |------------|-----------|-----------|-----------|
/// | draft      | already   | **ok**    | DraftYank |
/// | published  | NoWayBack | already   | **ok**    |
/// | yanked     | NoWayBack | NoWayBack | already   |
pub fn transition(from: Status, to: Status) -> Result<Status, Refused> {
    use Status::*;
    match (from, to) {
        (Draft, Published) | (Published, Yanked) => Ok(to),
        _ if from == to => Err(Refused::Already(from)),
        (Draft, Yanked) => Err(Refused::DraftYank),
        _ => Err(Refused::NoWayBack { from, to }),
    }
}

// ---------------------------------------------------------------------------------------
// Guards

/// What the refusals about an empty compatibility list tell the vendor to do.
pub const COMPAT_FIX: &str = "add a compatibility entry, e.g. {\"conf\": \"*\", \"min_1c_version\": \"0\"} (any configuration), so clients can see it";

fn no_compat_to_publish(id: i32) -> ApiError {
    ApiError::conflict(format!(
        "release {id} has no compatibility entries, so no client would ever see it: {COMPAT_FIX}; then publish"
    ))
}

fn no_compat_while_published(id: i32) -> ApiError {
    ApiError::conflict(format!(
        "release {id} is published: its compatibility list cannot become empty, or no client would see it; keep at least one entry ({COMPAT_FIX}), or yank the release"
    ))
}

// ---------------------------------------------------------------------------------------
// Requests

/// One compatibility entry: a configuration (`*` for any) and its version range, `1c`
/// versions (four numbers; `0` is the lowest).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompatInput {
    #[schema(example = "УправлениеТорговлей")]
    pub conf: String,
    #[schema(example = "11.4.11.55")]
    pub min_1c_version: String,
    #[serde(default)]
    #[schema(example = "11.5.99.999")]
    pub max_1c_version: Option<String>,
}

/// Body of `POST /api/v1/distributions/{code}/releases`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRelease {
    /// In the distribution's version scheme; unique in it.
    #[schema(example = "4.0.4.12")]
    pub version: String,
    /// Markdown.
    #[serde(default)]
    #[schema(example = "* Исправлена печать счёта")]
    pub changelog: String,
    #[serde(default)]
    pub compatibility: Vec<CompatInput>,
    #[serde(default)]
    pub prerelease: bool,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// Body of `PUT`/`PATCH /api/v1/releases/{id}`: fields left out stay as they are; `null`
/// clears `changelog` (to ""), `compatibility` (to []) and `metadata` (to {}); `version` and
/// `prerelease` cannot be null.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseEdit {
    /// Only while draft.
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = String, required = false, example = "4.0.4.13")]
    pub version: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = bool, required = false)]
    pub prerelease: Option<Option<bool>>,
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = Option<String>, required = false, example = "* Исправлена печать счёта")]
    pub changelog: Option<Option<String>>,
    /// Replaces the whole list; a published release keeps at least one entry.
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = Option<Vec<CompatInput>>, required = false)]
    pub compatibility: Option<Option<Vec<CompatInput>>>,
    /// Replaces all metadata.
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = Option<BTreeMap<String, String>>, required = false)]
    pub metadata: Option<Option<BTreeMap<String, String>>>,
}

/// Body of `POST /api/v1/releases/{id}/yank`: may be empty, `{}` or `{"reason": "…"}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct YankRequest {
    /// Why, for the vendor's records.
    #[serde(default)]
    #[schema(example = "Ошибка в обмене с банком")]
    pub reason: Option<String>,
}

/// Filters of `GET /api/v1/distributions/{code}/releases`.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub status: Option<String>,
    pub version: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Validation

/// A validated compatibility entry: versions kept as typed, checked as `1c` versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compat {
    pub conf: String,
    pub min: String,
    pub max: Option<String>,
}

/// Checks every entry; errors name the entry and the field.
pub fn validate_compatibility(entries: &[CompatInput]) -> Result<Vec<Compat>, String> {
    if entries.len() > 1000 {
        return Err("compatibility: at most 1000 entries".into());
    }
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let conf = e.conf.trim();
        if conf.is_empty() {
            return Err(format!("compatibility[{i}].conf must not be empty"));
        }
        if conf.chars().count() > 255 {
            return Err(format!(
                "compatibility[{i}].conf is longer than 255 characters"
            ));
        }
        let min_text = e.min_1c_version.trim();
        let min = Version::parse_1c(min_text)
            .map_err(|err| format!("compatibility[{i}].min_1c_version: {err}"))?;
        let max = match e.max_1c_version.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                let max = Version::parse_1c(text)
                    .map_err(|err| format!("compatibility[{i}].max_1c_version: {err}"))?;
                if max < min {
                    return Err(format!(
                        "compatibility[{i}]: max_1c_version {text} is below min_1c_version {min_text}"
                    ));
                }
                Some(text.to_owned())
            }
        };
        out.push(Compat {
            conf: conf.to_owned(),
            min: min_text.to_owned(),
            max,
        });
    }
    Ok(out)
}

pub fn validate_metadata(metadata: &BTreeMap<String, String>) -> Result<(), String> {
    if metadata.len() > 1000 {
        return Err("metadata: at most 1000 keys".into());
    }
    for key in metadata.keys() {
        if key.trim().is_empty() || key.trim() != key {
            return Err(format!(
                "metadata key {key:?} must be non-empty without leading or trailing spaces"
            ));
        }
        if key.chars().count() > 255 {
            return Err(format!(
                "metadata key {key:?} is longer than 255 characters"
            ));
        }
    }
    Ok(())
}

fn parse_version(scheme: VersionScheme, text: &str) -> Result<Version, ApiError> {
    let text = text.trim();
    if text.len() > 128 {
        return Err(ApiError::bad_request(
            "version is longer than 128 characters",
        ));
    }
    Version::parse(scheme, text).map_err(|e| ApiError::bad_request(format!("version: {e}")))
}

fn scheme_of(d: &distribution::Model) -> VersionScheme {
    d.version_scheme.parse().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Reading

/// The child rows of one release.
#[derive(Default)]
pub struct Parts {
    pub compat: Vec<compatibility::Model>,
    pub meta: Vec<release_metadata::Model>,
    pub files: Vec<file::Model>,
}

/// A release with its distribution's code and its child rows.
pub struct ReleaseView {
    pub release: release::Model,
    pub distribution: String,
    pub parts: Parts,
}

/// The child rows of releases `ids`, by release id.
pub async fn load_parts<C: ConnectionTrait>(
    db: &C,
    ids: &[i32],
) -> Result<HashMap<i32, Parts>, ApiError> {
    let mut compat = common::children_of::<compatibility::Entity, _>(
        db,
        compatibility::Column::ReleaseId,
        ids,
        compatibility::Column::Position,
        |c| c.release_id,
    )
    .await?;
    let mut meta = common::children_of::<release_metadata::Entity, _>(
        db,
        release_metadata::Column::ReleaseId,
        ids,
        release_metadata::Column::Key,
        |m| m.release_id,
    )
    .await?;
    let mut files = common::children_of::<file::Entity, _>(
        db,
        file::Column::ReleaseId,
        ids,
        file::Column::Id,
        |f| f.release_id,
    )
    .await?;
    Ok(ids
        .iter()
        .map(|id| {
            let parts = Parts {
                compat: compat.remove(id).unwrap_or_default(),
                meta: meta.remove(id).unwrap_or_default(),
                files: files.remove(id).unwrap_or_default(),
            };
            (*id, parts)
        })
        .collect())
}

pub async fn find<C: ConnectionTrait>(db: &C, id: i32) -> Result<release::Model, ApiError> {
    release::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("release {id} not found")))
}

/// Release `id` read fresh, with everything an answer shows.
pub async fn get(db: &DatabaseConnection, id: i32) -> Result<ReleaseView, ApiError> {
    let r = find(db, id).await?;
    let dist = distribution::Entity::find_by_id(r.distribution_id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("release {id} not found")))?;
    let mut parts = load_parts(db, &[id]).await?;
    Ok(ReleaseView {
        release: r,
        distribution: dist.code,
        parts: parts.remove(&id).unwrap_or_default(),
    })
}

/// One page of the releases of distribution `code`, newest first unless `page.sort` says
/// otherwise, and the total.
pub async fn list(
    db: &DatabaseConnection,
    code: &str,
    filter: &ListFilter,
    page: &Page,
) -> Result<(Vec<ReleaseView>, u64), ApiError> {
    let dist = find_distribution(db, code).await?;
    let mut query = release::Entity::find().filter(release::Column::DistributionId.eq(dist.id));
    if let Some(status) = filter.status.as_deref() {
        let Some(status) = Status::parse(status) else {
            return Err(ApiError::bad_request(
                "status must be one of draft, published, yanked",
            ));
        };
        query = query.filter(release::Column::Status.eq(status.as_str()));
    }
    if let Some(version) = filter.version.as_deref() {
        let version = parse_version(scheme_of(&dist), version)?;
        query = query.filter(release::Column::VersionNorm.eq(version.normalized()));
    }
    let (rows, total) = common::paginate(
        db,
        query,
        page,
        &[
            ("id", release::Column::Id),
            ("created_at", release::Column::CreatedAt),
            ("published_at", release::Column::PublishedAt),
            ("status", release::Column::Status),
        ],
        (release::Column::Id, Order::Desc),
        (release::Column::Id, Order::Desc),
    )
    .await?;
    let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
    let mut parts = load_parts(db, &ids).await?;
    let views = rows
        .into_iter()
        .map(|r| ReleaseView {
            parts: parts.remove(&r.id).unwrap_or_default(),
            distribution: dist.code.clone(),
            release: r,
        })
        .collect();
    Ok((views, total))
}

// ---------------------------------------------------------------------------------------
// Writing

/// Inside `txn`, marks the release as being changed while it is a draft; this serializes
/// concurrent changes (the row stays locked until commit) and fails with 409 otherwise.
async fn lock_draft(txn: &DatabaseTransaction, id: i32, what: &str) -> Result<(), ApiError> {
    let res = release::Entity::update_many()
        .col_expr(release::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(release::Column::Id.eq(id))
        .filter(release::Column::Status.eq(STATUS_DRAFT))
        .exec(txn)
        .await?;
    if res.rows_affected > 0 {
        return Ok(());
    }
    let r = find(txn, id).await?;
    Err(ApiError::conflict(format!(
        "release {id} is {}: {what} only while it is a draft",
        r.status
    )))
}

async fn refresh(state: &AppState, distribution_id: i32) -> Result<(), ApiError> {
    state
        .catalog
        .refresh_distribution(&state.db, distribution_id)
        .await?;
    Ok(())
}

async fn write_compat_and_meta(
    txn: &DatabaseTransaction,
    id: i32,
    compat: Option<&[Compat]>,
    metadata: Option<&BTreeMap<String, String>>,
) -> Result<(), ApiError> {
    if let Some(compat) = compat {
        compatibility::Entity::delete_many()
            .filter(compatibility::Column::ReleaseId.eq(id))
            .exec(txn)
            .await?;
        let rows: Vec<compatibility::ActiveModel> = compat
            .iter()
            .enumerate()
            .map(|(i, c)| compatibility::ActiveModel {
                release_id: Set(id),
                position: Set(i as i32),
                conf: Set(c.conf.clone()),
                min_1c_version: Set(c.min.clone()),
                max_1c_version: Set(c.max.clone()),
                ..Default::default()
            })
            .collect();
        for chunk in rows.chunks(200) {
            compatibility::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(txn)
                .await?;
        }
    }
    if let Some(metadata) = metadata {
        release_metadata::Entity::delete_many()
            .filter(release_metadata::Column::ReleaseId.eq(id))
            .exec(txn)
            .await?;
        let rows: Vec<release_metadata::ActiveModel> = metadata
            .iter()
            .map(|(k, v)| release_metadata::ActiveModel {
                release_id: Set(id),
                key: Set(k.clone()),
                value: Set(v.clone()),
                ..Default::default()
            })
            .collect();
        for chunk in rows.chunks(200) {
            release_metadata::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(txn)
                .await?;
        }
    }
    Ok(())
}

/// Creates a draft release of distribution `code`; returns its id.
pub async fn create(
    db: &DatabaseConnection,
    code: &str,
    input: NewRelease,
) -> Result<i32, ApiError> {
    let dist = find_distribution(db, code).await?;
    let version = parse_version(scheme_of(&dist), &input.version)?;
    let compat = validate_compatibility(&input.compatibility).map_err(ApiError::bad_request)?;
    validate_metadata(&input.metadata).map_err(ApiError::bad_request)?;
    let now = Utc::now();
    let txn = db.begin().await?;
    let row = release::ActiveModel {
        distribution_id: Set(dist.id),
        version: Set(input.version.trim().to_owned()),
        version_norm: Set(version.normalized()),
        status: Set(Status::Draft.as_str().to_owned()),
        published_at: Set(None),
        prerelease: Set(input.prerelease || version.is_prerelease()),
        changelog: Set(input.changelog),
        yank_reason: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        common::conflict_on_unique(e, || {
            format!(
                "distribution {:?} already has a release with version {} (or an equal one)",
                dist.code,
                input.version.trim()
            )
        })
    })?;
    write_compat_and_meta(&txn, row.id, Some(&compat), Some(&input.metadata)).await?;
    catalog_sync::record(&txn, Change::Distribution(dist.id)).await?;
    txn.commit().await?;
    Ok(row.id)
}

/// Changes the fields `edit` gives (see [`ReleaseEdit`]); version and prerelease only while
/// draft; a published release keeps at least one compatibility entry.
pub async fn edit(state: &AppState, id: i32, edit: ReleaseEdit) -> Result<(), ApiError> {
    let db = &state.db;
    let existing = find(db, id).await?;
    let dist = distribution::Entity::find_by_id(existing.distribution_id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("release {id} not found")))?;
    let version = match edit.version {
        Some(None) => return Err(ApiError::bad_request("version cannot be null")),
        Some(Some(v)) if v.trim() != existing.version => {
            let v = v.trim();
            Some((v.to_owned(), parse_version(scheme_of(&dist), v)?))
        }
        _ => None,
    };
    let prerelease = match edit.prerelease {
        Some(None) => {
            return Err(ApiError::bad_request(
                "prerelease cannot be null; send true or false",
            ));
        }
        Some(Some(p)) if p != existing.prerelease => Some(p),
        _ => None,
    };
    let compat = edit
        .compatibility
        .map(Option::unwrap_or_default)
        .as_deref()
        .map(validate_compatibility)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let metadata = edit.metadata.map(Option::unwrap_or_default);
    if let Some(m) = &metadata {
        validate_metadata(m).map_err(ApiError::bad_request)?;
    }
    let changelog = edit.changelog.map(Option::unwrap_or_default);
    let txn = db.begin().await?;
    if version.is_some() || prerelease.is_some() {
        lock_draft(&txn, id, "version and prerelease can change").await?;
    }
    let current = find(&txn, id).await?;
    if compat.as_ref().is_some_and(Vec::is_empty)
        && Status::parse(&current.status) == Some(Status::Published)
    {
        return Err(no_compat_while_published(id));
    }
    let mut row: release::ActiveModel = current.into();
    if let Some((text, parsed)) = &version {
        row.version = Set(text.clone());
        row.version_norm = Set(parsed.normalized());
    }
    if let Some(p) = prerelease {
        row.prerelease = Set(p);
    }
    if let Some(changelog) = changelog {
        row.changelog = Set(changelog);
    }
    row.updated_at = Set(Utc::now());
    row.update(&txn).await.map_err(|e| {
        common::conflict_on_unique(e, || {
            format!(
                "distribution {:?} already has a release with version {} (or an equal one)",
                dist.code,
                version.as_ref().map_or("", |(t, _)| t.as_str())
            )
        })
    })?;
    write_compat_and_meta(&txn, id, compat.as_deref(), metadata.as_ref()).await?;
    catalog_sync::record(&txn, Change::Distribution(dist.id)).await?;
    txn.commit().await?;
    refresh(state, dist.id).await
}

/// Deletes draft release `id` with its files (their blobs are released).
pub async fn delete(db: &DatabaseConnection, id: i32) -> Result<(), ApiError> {
    let txn = db.begin().await?;
    lock_draft(&txn, id, "it can be deleted").await?;
    let distribution_id = find(&txn, id).await?.distribution_id;
    let files = file::Entity::find()
        .filter(file::Column::ReleaseId.eq(id))
        .all(&txn)
        .await?;
    file::Entity::delete_many()
        .filter(file::Column::ReleaseId.eq(id))
        .exec(&txn)
        .await?;
    write_compat_and_meta(&txn, id, Some(&[]), Some(&BTreeMap::new())).await?;
    release::Entity::delete_by_id(id).exec(&txn).await?;
    blobs::release(&txn, files.iter().map(|f| &f.sha256), Utc::now()).await?;
    catalog_sync::record(&txn, Change::Distribution(distribution_id)).await?;
    txn.commit().await?;
    Ok(())
}

/// Inside `txn`, moves release `id` to `to` if [`transition`] allows it from its status. The
/// conditional update takes the row's write lock first, so two concurrent moves cannot both
/// succeed; a refused move answers 409 with the reason.
async fn move_to(
    txn: &DatabaseTransaction,
    id: i32,
    to: Status,
    update: sea_orm::UpdateMany<release::Entity>,
) -> Result<release::Model, ApiError> {
    let sources: Vec<&str> = Status::sources(to)
        .into_iter()
        .map(Status::as_str)
        .collect();
    let res = update
        .col_expr(release::Column::Status, Expr::value(to.as_str()))
        .col_expr(release::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(release::Column::Id.eq(id))
        .filter(release::Column::Status.is_in(sources))
        .exec(txn)
        .await?;
    let r = find(txn, id).await?;
    if res.rows_affected > 0 {
        return Ok(r);
    }
    let from = Status::parse(&r.status)
        .ok_or_else(|| ApiError::internal(format!("release {id} has status {:?}", r.status)))?;
    Err(ApiError::conflict(match transition(from, to) {
        Err(refused) => refused.message(id),
        Ok(_) => format!("release {id} changed concurrently; try again"),
    }))
}

/// Publishes draft release `id`: it needs at least one file and one compatibility entry.
pub async fn publish(state: &AppState, id: i32) -> Result<(), ApiError> {
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let update = release::Entity::update_many()
        .col_expr(release::Column::PublishedAt, Expr::value(Some(now)));
    let r = move_to(&txn, id, Status::Published, update).await?;
    let files = file::Entity::find()
        .filter(file::Column::ReleaseId.eq(id))
        .count(&txn)
        .await?;
    if files == 0 {
        return Err(ApiError::conflict(
            "a release needs at least one file before it can be published",
        ));
    }
    let compat = compatibility::Entity::find()
        .filter(compatibility::Column::ReleaseId.eq(id))
        .count(&txn)
        .await?;
    if compat == 0 {
        return Err(no_compat_to_publish(id));
    }
    catalog_sync::record(&txn, Change::Distribution(r.distribution_id)).await?;
    txn.commit().await?;
    refresh(state, r.distribution_id).await
}

/// Yanks published release `id`, with an optional reason.
pub async fn yank(state: &AppState, id: i32, request: YankRequest) -> Result<(), ApiError> {
    let reason = match request.reason.as_deref().map(str::trim) {
        None => None,
        Some(reason) => Some(common::limited_text("reason", reason, 10_000)?),
    };
    let txn = state.db.begin().await?;
    let update =
        release::Entity::update_many().col_expr(release::Column::YankReason, Expr::value(reason));
    let r = move_to(&txn, id, Status::Yanked, update).await?;
    catalog_sync::record(&txn, Change::Distribution(r.distribution_id)).await?;
    txn.commit().await?;
    refresh(state, r.distribution_id).await
}

// ---------------------------------------------------------------------------------------
// Files

/// Ensures the release exists and is a draft before any bytes are read.
pub async fn check_draft_for_files(db: &DatabaseConnection, id: i32) -> Result<(), ApiError> {
    let r = find(db, id).await?;
    if r.status != STATUS_DRAFT {
        return Err(ApiError::conflict(format!(
            "release {id} is {}: files can change only while it is a draft",
            r.status
        )));
    }
    Ok(())
}

pub fn storage_error(e: StorageError) -> ApiError {
    match e {
        StorageError::TooLarge { limit } => ApiError::too_large(format!(
            "file larger than the upload limit of {limit} bytes"
        )),
        e @ StorageError::DigestMismatch { .. } => {
            ApiError::unprocessable(format!("{e}; nothing was kept"))
        }
        StorageError::Body(_) => ApiError::bad_request("reading the upload body failed"),
        other => ApiError::internal(other),
    }
}

/// Records staged blobs as files of draft release `id` in one transaction: a file of the same
/// name is replaced; `main` names the file that becomes main (otherwise a replaced main file
/// stays main, and a release without a main file gets its oldest file as main). The bytes move
/// to their content keys inside the transaction, after the blobs are claimed (see
/// [`crate::blobs`]); blobs of replaced files are released. Returns the new rows.
pub async fn record_files(
    db: &DatabaseConnection,
    id: i32,
    uploads: Vec<(FileName, StagedBlob)>,
    main: Option<&str>,
) -> Result<Vec<file::Model>, ApiError> {
    let txn = db.begin().await?;
    lock_draft(&txn, id, "files can change").await?;
    refuse_case_collisions(&txn, id, &uploads).await?;
    // Every blob this transaction may touch is locked now, in one sorted pass.
    let names: Vec<&str> = uploads.iter().map(|(n, _)| n.as_str()).collect();
    let replaceable: Vec<String> = file::Entity::find()
        .select_only()
        .column(file::Column::Sha256)
        .filter(file::Column::ReleaseId.eq(id))
        .filter(file::Column::Name.is_in(names))
        .into_tuple()
        .all(&txn)
        .await?;
    let uploaded: Vec<&str> = uploads
        .iter()
        .map(|(_, b)| b.blob().sha256.as_str())
        .collect();
    blobs::lock(
        &txn,
        replaceable
            .iter()
            .map(String::as_str)
            .chain(uploaded.iter().copied()),
    )
    .await?;
    blobs::claim(&txn, &uploaded).await?;
    let mut replaced = Vec::new();
    let mut main = main.map(str::to_owned);
    let mut inserted_ids = Vec::new();
    for (name, staged) in &uploads {
        let blob = staged.blob();
        if let Some(old) = file::Entity::find()
            .filter(file::Column::ReleaseId.eq(id))
            .filter(file::Column::Name.eq(name.as_str()))
            .one(&txn)
            .await?
        {
            if old.main && main.is_none() {
                main = Some(old.name.clone());
            }
            replaced.push(old.sha256.clone());
            file::Entity::delete_by_id(old.id).exec(&txn).await?;
            inserted_ids.retain(|&i| i != old.id);
        }
        let row = file::ActiveModel {
            release_id: Set(id),
            name: Set(name.as_str().to_owned()),
            size: Set(i64::try_from(blob.size).unwrap_or(i64::MAX)),
            md5: Set(blob.md5.clone()),
            sha256: Set(blob.sha256.clone()),
            main: Set(false),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|e| {
            common::conflict_on_unique(e, || {
                format!("file {name} was uploaded concurrently; try again")
            })
        })?;
        inserted_ids.push(row.id);
    }
    set_main(&txn, id, main.as_deref()).await?;
    blobs::release(&txn, &replaced, Utc::now()).await?;
    let rows = file::Entity::find()
        .filter(file::Column::Id.is_in(inserted_ids))
        .order_by_asc(file::Column::Id)
        .all(&txn)
        .await?;
    for (_, staged) in uploads {
        staged.publish().await.map_err(storage_error)?;
    }
    let distribution_id = find(&txn, id).await?.distribution_id;
    catalog_sync::record(&txn, Change::Distribution(distribution_id)).await?;
    txn.commit().await?;
    Ok(rows)
}

/// Two files of one release whose names differ only in case are one file on the customer's
/// Windows or macOS disk, and `vypusk-update` refuses such a release: refuse the upload.
/// A name equal to an existing one replaces that file, as before.
async fn refuse_case_collisions(
    txn: &DatabaseTransaction,
    id: i32,
    uploads: &[(FileName, StagedBlob)],
) -> Result<(), ApiError> {
    let existing: Vec<String> = file::Entity::find()
        .filter(file::Column::ReleaseId.eq(id))
        .all(txn)
        .await?
        .into_iter()
        .map(|f| f.name)
        .collect();
    let uploaded: Vec<&str> = uploads.iter().map(|(n, _)| n.as_str()).collect();
    let mut names: Vec<&str> = existing
        .iter()
        .map(String::as_str)
        .filter(|e| !uploaded.contains(e))
        .collect();
    names.extend(&uploaded);
    match vypusk_protocol::case_collision(names) {
        Some((a, b)) => Err(ApiError::conflict(format!(
            "file names {} and {} differ only in case; they would be one file on the customer's disk",
            quote(a),
            quote(b)
        ))),
        None => Ok(()),
    }
}

/// Streams one file into draft `id` (a file of the same name is replaced): refused before any
/// byte is stored when the release is not a draft or `announced` is over `max_upload_bytes`;
/// `expected` digests are checked as the bytes arrive. `main` makes it the main file.
pub async fn upload<S, E>(
    state: &AppState,
    id: i32,
    name: &FileName,
    body: S,
    announced: Option<u64>,
    expected: ExpectedDigests,
    main: bool,
) -> Result<file::Model, ApiError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin,
    E: fmt::Display,
{
    check_draft_for_files(&state.db, id).await?;
    let max = state.settings.max_upload_bytes;
    if announced.is_some_and(|len| len > max) {
        return Err(ApiError::too_large(format!(
            "file larger than the upload limit of {max} bytes"
        )));
    }
    let staged = state
        .storage
        .stage_stream(body, max, expected)
        .await
        .map_err(storage_error)?;
    let main = main.then_some(name.as_str());
    let rows = record_files(&state.db, id, vec![(name.clone(), staged)], main).await?;
    rows.into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("uploaded file row missing"))
}

/// Makes file `name` the main file of draft `id` (the one `download_link` points to).
pub async fn choose_main(state: &AppState, id: i32, name: &str) -> Result<(), ApiError> {
    let txn = state.db.begin().await?;
    lock_draft(&txn, id, "files can change").await?;
    let exists = file::Entity::find()
        .filter(file::Column::ReleaseId.eq(id))
        .filter(file::Column::Name.eq(name))
        .count(&txn)
        .await?
        > 0;
    if !exists {
        return Err(ApiError::not_found(format!(
            "release {id} has no file {}",
            quote(name)
        )));
    }
    set_main(&txn, id, Some(name)).await?;
    let distribution_id = find(&txn, id).await?.distribution_id;
    catalog_sync::record(&txn, Change::Distribution(distribution_id)).await?;
    txn.commit().await?;
    Ok(())
}

/// Makes `main` the main file, or, without it, the oldest file when none is main.
async fn set_main(txn: &DatabaseTransaction, id: i32, main: Option<&str>) -> Result<(), ApiError> {
    if let Some(name) = main {
        file::Entity::update_many()
            .col_expr(file::Column::Main, Expr::value(false))
            .filter(file::Column::ReleaseId.eq(id))
            .exec(txn)
            .await?;
        file::Entity::update_many()
            .col_expr(file::Column::Main, Expr::value(true))
            .filter(file::Column::ReleaseId.eq(id))
            .filter(file::Column::Name.eq(name))
            .exec(txn)
            .await?;
        return Ok(());
    }
    let has_main = file::Entity::find()
        .filter(file::Column::ReleaseId.eq(id))
        .filter(file::Column::Main.eq(true))
        .count(txn)
        .await?
        > 0;
    if !has_main
        && let Some(oldest) = file::Entity::find()
            .filter(file::Column::ReleaseId.eq(id))
            .order_by_asc(file::Column::Id)
            .one(txn)
            .await?
    {
        file::Entity::update_many()
            .col_expr(file::Column::Main, Expr::value(true))
            .filter(file::Column::Id.eq(oldest.id))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Deletes file `name` of draft release `id` and releases its blob, in one transaction.
pub async fn remove_file(db: &DatabaseConnection, id: i32, name: &str) -> Result<(), ApiError> {
    let txn = db.begin().await?;
    lock_draft(&txn, id, "files can change").await?;
    let row = file::Entity::find()
        .filter(file::Column::ReleaseId.eq(id))
        .filter(file::Column::Name.eq(name))
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("release {id} has no file {name:?}")))?;
    file::Entity::delete_by_id(row.id).exec(&txn).await?;
    set_main(&txn, id, None).await?;
    blobs::release(&txn, [&row.sha256], Utc::now()).await?;
    let distribution_id = find(&txn, id).await?.distribution_id;
    catalog_sync::record(&txn, Change::Distribution(distribution_id)).await?;
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(conf: &str, min: &str, max: Option<&str>) -> CompatInput {
        CompatInput {
            conf: conf.into(),
            min_1c_version: min.into(),
            max_1c_version: max.map(Into::into),
        }
    }

    /// Every (from, to) pair of the table in [`transition`]'s documentation.
    #[test]
    fn transitions_every_pair() {
        use Status::*;
        let expected: [(Status, Status, Result<Status, Refused>); 9] = [
            (Draft, Draft, Err(Refused::Already(Draft))),
            (Draft, Published, Ok(Published)),
            (Draft, Yanked, Err(Refused::DraftYank)),
            (
                Published,
                Draft,
                Err(Refused::NoWayBack {
                    from: Published,
                    to: Draft,
                }),
            ),
            (Published, Published, Err(Refused::Already(Published))),
            (Published, Yanked, Ok(Yanked)),
            (
                Yanked,
                Draft,
                Err(Refused::NoWayBack {
                    from: Yanked,
                    to: Draft,
                }),
            ),
            (
                Yanked,
                Published,
                Err(Refused::NoWayBack {
                    from: Yanked,
                    to: Published,
                }),
            ),
            (Yanked, Yanked, Err(Refused::Already(Yanked))),
        ];
        for (from, to, want) in expected {
            assert_eq!(transition(from, to), want, "{from} → {to}");
        }
        // The table covers every pair exactly once.
        for from in Status::ALL {
            for to in Status::ALL {
                assert_eq!(
                    expected
                        .iter()
                        .filter(|(f, t, _)| (*f, *t) == (from, to))
                        .count(),
                    1
                );
            }
        }
        assert_eq!(Status::sources(Published), vec![Draft]);
        assert_eq!(Status::sources(Yanked), vec![Published]);
        assert_eq!(Status::sources(Draft), vec![]);
    }

    #[test]
    fn refusals_say_why() {
        use Status::*;
        let msg = |from, to| transition(from, to).unwrap_err().message(7);
        assert_eq!(
            msg(Yanked, Published),
            "release 7 was yanked; a yanked release can never be published again"
        );
        assert_eq!(msg(Published, Published), "release 7 is already published");
        assert_eq!(msg(Yanked, Yanked), "release 7 is already yanked");
        assert!(msg(Draft, Yanked).contains("delete a draft instead"));
        assert!(msg(Published, Draft).contains("can never become draft"));
    }

    #[test]
    fn statuses_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("gone"), None);
    }

    #[test]
    fn edits_tell_absent_from_null() {
        let e: ReleaseEdit =
            serde_json::from_str(r#"{"changelog": null, "metadata": {"a": "b"}}"#).unwrap();
        assert!(e.version.is_none());
        assert_eq!(e.changelog, Some(None));
        assert_eq!(e.metadata.unwrap().unwrap()["a"], "b");
        assert!(serde_json::from_str::<ReleaseEdit>(r#"{"status": "draft"}"#).is_err());
        let y: YankRequest = serde_json::from_str("{}").unwrap();
        assert!(y.reason.is_none());
    }

    #[test]
    fn compatibility_rules() {
        let ok = validate_compatibility(&[
            c(" УправлениеТорговлей ", "11.4.11.55", None),
            c("*", "0", Some("9")),
        ])
        .unwrap();
        assert_eq!(ok[0].conf, "УправлениеТорговлей");
        assert_eq!(ok[1].max.as_deref(), Some("9"));
        let err = validate_compatibility(&[c("X", "1.0", None), c("Y", "v1", None)]).unwrap_err();
        assert!(err.contains("compatibility[1].min_1c_version"), "{err}");
        assert!(
            validate_compatibility(&[c("", "1", None)])
                .unwrap_err()
                .contains(".conf")
        );
        assert!(validate_compatibility(&[c("X", "2", Some("1.9"))]).is_err());
        assert!(
            validate_compatibility(&[c("X", "1", Some("1..2"))])
                .unwrap_err()
                .contains("max_1c_version")
        );
    }

    #[test]
    fn metadata_keys() {
        let mut m = BTreeMap::new();
        m.insert("extension_hash".to_owned(), "abc".to_owned());
        assert!(validate_metadata(&m).is_ok());
        m.insert(" x".to_owned(), String::new());
        assert!(validate_metadata(&m).is_err());
    }
}
