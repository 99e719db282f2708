//! Releases and their files (SPEC §5): draft → published → yanked, files only while draft,
//! uploads streamed to storage with optional digest checks.

use std::collections::{BTreeMap, HashMap};

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use serde::Deserialize;
use serde_json::{Value, json};
use vypusk_protocol::{FileName, Version, VersionScheme};
use vypusk_storage::{ExpectedDigests, StagedBlob, StorageError};

use super::common::{self, ApiPath};
use super::{ApiJson, ApiQuery, distributions};
use crate::auth::{Authorized, need};
use crate::blobs;
use crate::catalog::{STATUS_DRAFT, STATUS_PUBLISHED, STATUS_YANKED};
use crate::catalog_sync::{self, Change};
use crate::entities::{compatibility, distribution, file, release, release_metadata};
use crate::error::{ApiError, quote};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/distributions/{code}/releases", get(list).post(create))
        .route("/v1/releases/{id}", get(read).put(update).delete(remove))
        .route(
            "/v1/releases/{id}/files",
            post(upload_multipart).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/releases/{id}/files/{name}",
            put(upload)
                .layer(DefaultBodyLimit::disable())
                .delete(delete_file),
        )
        .route("/v1/releases/{id}/publish", post(publish))
        .route("/v1/releases/{id}/yank", post(yank))
}

// ---------------------------------------------------------------------------------------
// Input

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompatInput {
    pub conf: String,
    pub min_1c_version: String,
    #[serde(default)]
    pub max_1c_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateInput {
    version: String,
    #[serde(default)]
    changelog: String,
    #[serde(default)]
    compatibility: Vec<CompatInput>,
    #[serde(default)]
    prerelease: bool,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

/// Fields left out stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateInput {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    prerelease: Option<bool>,
    #[serde(default)]
    changelog: Option<String>,
    #[serde(default)]
    compatibility: Option<Vec<CompatInput>>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

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
// Output

#[derive(Default)]
struct Parts {
    compat: Vec<compatibility::Model>,
    meta: Vec<release_metadata::Model>,
    files: Vec<file::Model>,
}

async fn load_parts<C: ConnectionTrait>(
    db: &C,
    ids: &[i32],
) -> Result<HashMap<i32, Parts>, ApiError> {
    let mut out: HashMap<i32, Parts> = HashMap::new();
    for chunk in ids.chunks(500) {
        for c in compatibility::Entity::find()
            .filter(compatibility::Column::ReleaseId.is_in(chunk.to_vec()))
            .order_by_asc(compatibility::Column::Position)
            .all(db)
            .await?
        {
            out.entry(c.release_id).or_default().compat.push(c);
        }
        for m in release_metadata::Entity::find()
            .filter(release_metadata::Column::ReleaseId.is_in(chunk.to_vec()))
            .order_by_asc(release_metadata::Column::Key)
            .all(db)
            .await?
        {
            out.entry(m.release_id).or_default().meta.push(m);
        }
        for f in file::Entity::find()
            .filter(file::Column::ReleaseId.is_in(chunk.to_vec()))
            .order_by_asc(file::Column::Id)
            .all(db)
            .await?
        {
            out.entry(f.release_id).or_default().files.push(f);
        }
    }
    Ok(out)
}

pub fn file_json(f: &file::Model) -> Value {
    json!({
        "name": f.name,
        "size": f.size,
        "md5": f.md5,
        "sha256": f.sha256,
        "main": f.main,
    })
}

fn release_json(r: &release::Model, code: &str, parts: &Parts) -> Value {
    let compatibility: Vec<Value> = parts
        .compat
        .iter()
        .map(|c| {
            let mut v = json!({"conf": c.conf, "min_1c_version": c.min_1c_version});
            if let Some(max) = &c.max_1c_version {
                v["max_1c_version"] = json!(max);
            }
            v
        })
        .collect();
    let metadata: serde_json::Map<String, Value> = parts
        .meta
        .iter()
        .map(|m| (m.key.clone(), Value::String(m.value.clone())))
        .collect();
    json!({
        "id": r.id,
        "distribution": code,
        "version": r.version,
        "status": r.status,
        "prerelease": r.prerelease,
        "changelog": r.changelog,
        "compatibility": compatibility,
        "metadata": metadata,
        "files": parts.files.iter().map(file_json).collect::<Vec<_>>(),
        "published_at": common::ts_opt(r.published_at),
        "created_at": common::ts(r.created_at),
        "updated_at": common::ts(r.updated_at),
        "yank_reason": r.yank_reason,
    })
}

/// The release as JSON, read fresh from the database.
async fn one_json(db: &DatabaseConnection, id: i32) -> Result<Value, ApiError> {
    let r = find(db, id).await?;
    let dist = distribution::Entity::find_by_id(r.distribution_id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("release {id} not found")))?;
    let mut parts = load_parts(db, &[id]).await?;
    Ok(release_json(
        &r,
        &dist.code,
        &parts.remove(&id).unwrap_or_default(),
    ))
}

async fn find<C: ConnectionTrait>(db: &C, id: i32) -> Result<release::Model, ApiError> {
    release::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("release {id} not found")))
}

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

// ---------------------------------------------------------------------------------------
// Releases

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

async fn create(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiJson(input): ApiJson<CreateInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let dist = distributions::find(&state.db, &code).await?;
    let version = parse_version(scheme_of(&dist), &input.version)?;
    let compat = validate_compatibility(&input.compatibility).map_err(ApiError::bad_request)?;
    validate_metadata(&input.metadata).map_err(ApiError::bad_request)?;
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let row = release::ActiveModel {
        distribution_id: Set(dist.id),
        version: Set(input.version.trim().to_owned()),
        version_norm: Set(version.normalized()),
        status: Set(STATUS_DRAFT.to_owned()),
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
    Ok((
        StatusCode::CREATED,
        Json(one_json(&state.db, row.id).await?),
    ))
}

/// Query of `GET /v1/distributions/{code}/releases`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    offset: Option<u64>,
    limit: Option<u64>,
    sort: Option<String>,
    /// Only releases with this status.
    status: Option<String>,
    /// Only the release with a version equal to this one (`4.0` finds `4.0.0.0`).
    version: Option<String>,
}

async fn list(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = common::page(q.offset, q.limit, q.sort)?;
    let dist = distributions::find(&state.db, &code).await?;
    let mut query = release::Entity::find().filter(release::Column::DistributionId.eq(dist.id));
    if let Some(status) = q.status.as_deref() {
        if ![STATUS_DRAFT, STATUS_PUBLISHED, STATUS_YANKED].contains(&status) {
            return Err(ApiError::bad_request(
                "status must be one of draft, published, yanked",
            ));
        }
        query = query.filter(release::Column::Status.eq(status));
    }
    if let Some(version) = q.version.as_deref() {
        let version = parse_version(scheme_of(&dist), version)?;
        query = query.filter(release::Column::VersionNorm.eq(version.normalized()));
    }
    let (column, order) = page.order(
        &[
            ("id", release::Column::Id),
            ("created_at", release::Column::CreatedAt),
            ("published_at", release::Column::PublishedAt),
            ("status", release::Column::Status),
        ],
        (release::Column::Id, Order::Desc),
    )?;
    let total = query.clone().count(&state.db).await?;
    let rows = query
        .order_by(column, order)
        .order_by_desc(release::Column::Id)
        .offset(common::offset(&page))
        .limit(page.limit)
        .all(&state.db)
        .await?;
    let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
    let mut parts = load_parts(&state.db, &ids).await?;
    let items = rows
        .iter()
        .map(|r| release_json(r, &dist.code, &parts.remove(&r.id).unwrap_or_default()))
        .collect();
    Ok(Json(common::list(items, total, &page)))
}

async fn read(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(one_json(&state.db, id).await?))
}

async fn update(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(input): ApiJson<UpdateInput>,
) -> Result<Json<Value>, ApiError> {
    let existing = find(&state.db, id).await?;
    let dist = distribution::Entity::find_by_id(existing.distribution_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("release {id} not found")))?;
    let version = match input.version.as_deref().map(str::trim) {
        Some(v) if v != existing.version => {
            Some((v.to_owned(), parse_version(scheme_of(&dist), v)?))
        }
        _ => None,
    };
    let prerelease = input.prerelease.filter(|&p| p != existing.prerelease);
    let compat = input
        .compatibility
        .as_deref()
        .map(validate_compatibility)
        .transpose()
        .map_err(ApiError::bad_request)?;
    if let Some(m) = &input.metadata {
        validate_metadata(m).map_err(ApiError::bad_request)?;
    }
    let txn = state.db.begin().await?;
    if version.is_some() || prerelease.is_some() {
        lock_draft(&txn, id, "version and prerelease can change").await?;
    }
    let current = find(&txn, id).await?;
    let mut row: release::ActiveModel = current.into();
    if let Some((text, parsed)) = &version {
        row.version = Set(text.clone());
        row.version_norm = Set(parsed.normalized());
    }
    if let Some(p) = prerelease {
        row.prerelease = Set(p);
    }
    if let Some(changelog) = input.changelog {
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
    write_compat_and_meta(&txn, id, compat.as_deref(), input.metadata.as_ref()).await?;
    catalog_sync::record(&txn, Change::Distribution(dist.id)).await?;
    txn.commit().await?;
    refresh(&state, dist.id).await?;
    Ok(Json(one_json(&state.db, id).await?))
}

async fn remove(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, ApiError> {
    let txn = state.db.begin().await?;
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
    Ok(StatusCode::NO_CONTENT)
}

async fn publish(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<Value>, ApiError> {
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let res = release::Entity::update_many()
        .col_expr(release::Column::Status, Expr::value(STATUS_PUBLISHED))
        .col_expr(release::Column::PublishedAt, Expr::value(Some(now)))
        .col_expr(release::Column::UpdatedAt, Expr::value(now))
        .filter(release::Column::Id.eq(id))
        .filter(release::Column::Status.eq(STATUS_DRAFT))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        let r = find(&txn, id).await?;
        return Err(ApiError::conflict(if r.status == STATUS_YANKED {
            format!("release {id} was yanked; a yanked release can never be published again")
        } else {
            format!("release {id} is already {}", r.status)
        }));
    }
    let files = file::Entity::find()
        .filter(file::Column::ReleaseId.eq(id))
        .count(&txn)
        .await?;
    if files == 0 {
        return Err(ApiError::conflict(
            "a release needs at least one file before it can be published",
        ));
    }
    let r = find(&txn, id).await?;
    catalog_sync::record(&txn, Change::Distribution(r.distribution_id)).await?;
    txn.commit().await?;
    refresh(&state, r.distribution_id).await?;
    Ok(Json(one_json(&state.db, id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YankInput {
    reason: String,
}

async fn yank(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(input): ApiJson<YankInput>,
) -> Result<Json<Value>, ApiError> {
    let reason = common::limited_text("reason", input.reason.trim(), 10_000)?;
    let txn = state.db.begin().await?;
    let res = release::Entity::update_many()
        .col_expr(release::Column::Status, Expr::value(STATUS_YANKED))
        .col_expr(release::Column::YankReason, Expr::value(Some(reason)))
        .col_expr(release::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(release::Column::Id.eq(id))
        .filter(release::Column::Status.eq(STATUS_PUBLISHED))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        let r = find(&txn, id).await?;
        return Err(ApiError::conflict(if r.status == STATUS_DRAFT {
            format!(
                "release {id} is a draft; only published releases can be yanked (delete a draft instead)"
            )
        } else {
            format!("release {id} is already yanked")
        }));
    }
    let r = find(&txn, id).await?;
    catalog_sync::record(&txn, Change::Distribution(r.distribution_id)).await?;
    txn.commit().await?;
    refresh(&state, r.distribution_id).await?;
    Ok(Json(one_json(&state.db, id).await?))
}

// ---------------------------------------------------------------------------------------
// Files

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    #[serde(default)]
    main: bool,
}

fn parse_file_name(name: &str) -> Result<FileName, ApiError> {
    FileName::parse(name).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `Content-MD5` (base64 of 16 bytes) and `X-Checksum-Sha256` (64 hex digits).
pub fn expected_digests(headers: &HeaderMap) -> Result<ExpectedDigests, String> {
    let mut expected = ExpectedDigests::default();
    if let Some(v) = headers.get("content-md5") {
        let bytes = v
            .to_str()
            .ok()
            .and_then(|s| {
                base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .ok()
            })
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .ok_or("Content-MD5 must be the base64 of 16 bytes")?;
        expected.md5 = Some(bytes);
    }
    if let Some(v) = headers.get("x-checksum-sha256") {
        let bytes = v
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|s| s.len() == 64)
            .and_then(|s| hex::decode(s).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or("X-Checksum-Sha256 must be 64 hex digits")?;
        expected.sha256 = Some(bytes);
    }
    Ok(expected)
}

fn storage_error(e: StorageError) -> ApiError {
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

/// Ensures the release exists and is a draft before any bytes are read.
async fn check_draft_for_files(db: &DatabaseConnection, id: i32) -> Result<(), ApiError> {
    let r = find(db, id).await?;
    if r.status != STATUS_DRAFT {
        return Err(ApiError::conflict(format!(
            "release {id} is {}: files can change only while it is a draft",
            r.status
        )));
    }
    Ok(())
}

/// Records staged blobs as files of draft release `id` in one transaction: a file of the same
/// name is replaced; `main` names the file that becomes main (otherwise a replaced main file
/// stays main, and a release without a main file gets its oldest file as main). The bytes move
/// to their content keys inside the transaction, after the blobs are claimed (see
/// [`crate::blobs`]); blobs of replaced files are released. Returns the new rows.
pub(crate) async fn record_files(
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

async fn upload(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath((id, name)): ApiPath<(i32, String)>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = parse_file_name(&name)?;
    check_draft_for_files(&state.db, id).await?;
    let expected = expected_digests(&headers).map_err(ApiError::bad_request)?;
    let max = state.settings.max_upload_bytes;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max
    {
        return Err(ApiError::too_large(format!(
            "file larger than the upload limit of {max} bytes"
        )));
    }
    let staged = state
        .storage
        .stage_stream(body.into_data_stream(), max, expected)
        .await
        .map_err(storage_error)?;
    let main = q.main.then_some(name.as_str());
    let rows = record_files(&state.db, id, vec![(name.clone(), staged)], main).await?;
    let row = rows
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("uploaded file row missing"))?;
    Ok((StatusCode::CREATED, Json(file_json(&row))))
}

async fn upload_multipart(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut multipart = multipart.map_err(|e| ApiError::bad_request(e.body_text()))?;
    check_draft_for_files(&state.db, id).await?;
    let max = state.settings.max_upload_bytes;
    let mut uploads: Vec<(FileName, StagedBlob)> = Vec::new();
    let outcome: Result<(), ApiError> = async {
        while let Some(field) = multipart.next_field().await.map_err(|e| {
            ApiError::bad_request(format!("malformed multipart body: {}", e.body_text()))
        })? {
            let Some(file_name) = field.file_name().map(str::to_owned) else {
                // Text fields carry nothing we use.
                continue;
            };
            let name = parse_file_name(&file_name)?;
            let staged = state
                .storage
                .stage_stream(field, max, ExpectedDigests::default())
                .await
                .map_err(storage_error)?;
            uploads.push((name, staged));
        }
        if uploads.is_empty() {
            return Err(ApiError::bad_request(
                "the multipart body has no file parts (parts with a filename)",
            ));
        }
        Ok(())
    }
    .await;
    // On error the staged blobs are dropped, which removes their temp objects.
    outcome?;
    let rows = record_files(&state.db, id, uploads, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"files": rows.iter().map(file_json).collect::<Vec<_>>()})),
    ))
}

async fn delete_file(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath((id, name)): ApiPath<(i32, String)>,
) -> Result<StatusCode, ApiError> {
    remove_file(&state.db, id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes file `name` of draft release `id` and releases its blob, in one transaction.
pub(crate) async fn remove_file(
    db: &DatabaseConnection,
    id: i32,
    name: &str,
) -> Result<(), ApiError> {
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
    fn digests() {
        let mut h = HeaderMap::new();
        assert!(expected_digests(&h).unwrap().md5.is_none());
        h.insert("content-md5", "XrY7u+Ae7tCTyyK7j1rNww==".parse().unwrap());
        assert_eq!(
            hex::encode(expected_digests(&h).unwrap().md5.unwrap()),
            "5eb63bbbe01eeed093cb22bb8f5acdc3"
        );
        h.insert("content-md5", "not base64!".parse().unwrap());
        assert!(expected_digests(&h).is_err());
        h.insert("content-md5", "AAAA".parse().unwrap());
        assert!(expected_digests(&h).is_err());
        let mut h = HeaderMap::new();
        h.insert("x-checksum-sha256", "AB".repeat(32).parse().unwrap());
        assert_eq!(expected_digests(&h).unwrap().sha256, Some([0xab; 32]));
        h.insert("x-checksum-sha256", "zz".repeat(32).parse().unwrap());
        assert!(expected_digests(&h).is_err());
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
