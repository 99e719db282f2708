//! Releases and their files (SPEC §5): draft → published → yanked, files only while draft,
//! uploads streamed to storage with optional digest checks. The rules and transactions are in
//! [`crate::services::releases`]; handlers here extract, call the service and render.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};
use vypusk_protocol::FileName;
use vypusk_storage::{ExpectedDigests, StagedBlob};

use super::common::{self, ApiPath, ListOut};
use super::{ApiJson, ApiJsonOrEmpty, ApiQuery};
use crate::auth::{Authorized, need};
use crate::entities::file;
use crate::error::ApiError;
use crate::services::releases::{
    self as service, NewRelease, ReleaseEdit, ReleaseView, YankRequest, check_draft_for_files,
    storage_error,
};
use crate::state::AppState;

pub use crate::services::releases::{record_files, remove_file};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/distributions/{code}/releases", get(list).post(create))
        .route(
            "/v1/releases/{id}",
            get(read).put(update).patch(update).delete(remove),
        )
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
// Answers

/// A file of a release.
#[derive(Debug, Serialize)]
pub struct FileOut {
    pub name: String,
    pub size: i64,
    pub md5: String,
    pub sha256: String,
    pub main: bool,
}

impl From<&file::Model> for FileOut {
    fn from(f: &file::Model) -> Self {
        FileOut {
            name: f.name.clone(),
            size: f.size,
            md5: f.md5.clone(),
            sha256: f.sha256.clone(),
            main: f.main,
        }
    }
}

/// One compatibility entry; `max_1c_version` only when set.
#[derive(Debug, Serialize)]
pub struct CompatOut {
    pub conf: String,
    pub min_1c_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_1c_version: Option<String>,
}

/// A release as every release route answers it.
#[derive(Debug, Serialize)]
pub struct ReleaseOut {
    pub id: i32,
    pub distribution: String,
    pub version: String,
    pub status: String,
    pub prerelease: bool,
    pub changelog: String,
    pub compatibility: Vec<CompatOut>,
    pub metadata: BTreeMap<String, String>,
    pub files: Vec<FileOut>,
    pub published_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub yank_reason: Option<String>,
}

impl From<ReleaseView> for ReleaseOut {
    fn from(v: ReleaseView) -> Self {
        let r = v.release;
        ReleaseOut {
            id: r.id,
            distribution: v.distribution,
            version: r.version,
            status: r.status,
            prerelease: r.prerelease,
            changelog: r.changelog,
            compatibility: v
                .parts
                .compat
                .into_iter()
                .map(|c| CompatOut {
                    conf: c.conf,
                    min_1c_version: c.min_1c_version,
                    max_1c_version: c.max_1c_version,
                })
                .collect(),
            metadata: v.parts.meta.into_iter().map(|m| (m.key, m.value)).collect(),
            files: v.parts.files.iter().map(FileOut::from).collect(),
            published_at: r.published_at.map(common::ts),
            created_at: common::ts(r.created_at),
            updated_at: common::ts(r.updated_at),
            yank_reason: r.yank_reason,
        }
    }
}

/// The answer of a multipart upload.
#[derive(Debug, Serialize)]
pub struct FilesOut {
    pub files: Vec<FileOut>,
}

/// The release as answered, read fresh from the database.
async fn answer(state: &AppState, id: i32) -> Result<Json<ReleaseOut>, ApiError> {
    Ok(Json(service::get(&state.db, id).await?.into()))
}

// ---------------------------------------------------------------------------------------
// Releases

async fn create(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiJson(input): ApiJson<NewRelease>,
) -> Result<(StatusCode, Json<ReleaseOut>), ApiError> {
    let id = service::create(&state.db, &code, input).await?;
    Ok((StatusCode::CREATED, answer(&state, id).await?))
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
) -> Result<Json<ListOut<ReleaseOut>>, ApiError> {
    let page = common::page(q.offset, q.limit, q.sort)?;
    let filter = service::ListFilter {
        status: q.status,
        version: q.version,
    };
    let (views, total) = service::list(&state.db, &code, &filter, &page).await?;
    let items = views.into_iter().map(ReleaseOut::from).collect();
    Ok(Json(ListOut::new(items, total, &page)))
}

async fn read(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<ReleaseOut>, ApiError> {
    answer(&state, id).await
}

/// `PUT` and `PATCH`: only the fields given change; `null` clears an optional field.
async fn update(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(edit): ApiJson<ReleaseEdit>,
) -> Result<Json<ReleaseOut>, ApiError> {
    service::edit(&state, id, edit).await?;
    answer(&state, id).await
}

async fn remove(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Takes no fields; any body is ignored, none is needed.
async fn publish(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<ReleaseOut>, ApiError> {
    service::publish(&state, id).await?;
    answer(&state, id).await
}

/// Body optional: none, `{}` or `{"reason": "…"}`.
async fn yank(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<YankRequest>,
) -> Result<Json<ReleaseOut>, ApiError> {
    service::yank(&state, id, request).await?;
    answer(&state, id).await
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

async fn upload(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath((id, name)): ApiPath<(i32, String)>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<FileOut>), ApiError> {
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
    Ok((StatusCode::CREATED, Json(FileOut::from(&row))))
}

async fn upload_multipart(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<FilesOut>), ApiError> {
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
        Json(FilesOut {
            files: rows.iter().map(FileOut::from).collect(),
        }),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
