//! Releases and their files (SPEC §5): draft → published → yanked, files only while draft,
//! uploads streamed to storage with optional digest checks. The rules and transactions are in
//! [`crate::services::releases`]; handlers here extract, call the service and render.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use vypusk_protocol::FileName;
use vypusk_storage::{ExpectedDigests, StagedBlob};

use super::common::{self, ApiPath, CodeParam, FileParams, ListOut, ReleaseIdParam};
use super::{ApiJson, ApiJsonOrEmpty, ApiQuery};
use crate::access_log::{AuditNote, target_param};
use crate::auth::{Authorized, need};
use crate::entities::file;
use crate::error::ApiError;
use crate::error::ApiErrorBody;
use crate::services::releases::{
    self as service, NewRelease, ReleaseEdit, ReleaseView, YankRequest, check_draft_for_files,
    storage_error,
};
use crate::state::AppState;

pub use crate::services::releases::{record_files, remove_file};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update_put, update_patch, remove))
        // Uploads are bounded by `max_upload_bytes` per file, not by the JSON body limit.
        .routes(routes!(upload_multipart).layer(DefaultBodyLimit::disable()))
        .routes(routes!(upload).layer(DefaultBodyLimit::disable()))
        .routes(routes!(delete_file))
        .routes(routes!(publish))
        .routes(routes!(yank))
}

// ---------------------------------------------------------------------------------------
// Answers

/// A file of a release.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileOut {
    #[schema(example = "PT40_UT_CRM3_4.0.4.12.zip")]
    pub name: String,
    /// Bytes.
    #[schema(example = 865976)]
    pub size: i64,
    /// Hex.
    #[schema(example = "027ade8b556dd66ab1c3a60d4a53be90")]
    pub md5: String,
    /// Hex.
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    pub sha256: String,
    /// Whether this is the file `download_link` points to.
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
#[derive(Debug, Serialize, ToSchema)]
pub struct CompatOut {
    /// A configuration name, or `*` for any.
    #[schema(example = "УправлениеТорговлей")]
    pub conf: String,
    #[schema(example = "11.4.11.55")]
    pub min_1c_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_1c_version: Option<String>,
}

/// A release as every release route answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseOut {
    pub id: i32,
    /// The distribution's code.
    #[schema(example = "PT40_UT_CRM3")]
    pub distribution: String,
    #[schema(example = "4.0.4.12")]
    pub version: String,
    #[schema(value_type = service::Status)]
    pub status: String,
    /// Seen only by beta licenses and prerelease networks.
    pub prerelease: bool,
    /// Markdown.
    #[schema(example = "* Исправлена печать счёта\n* Новый отчёт «Воронка продаж»")]
    pub changelog: String,
    /// Which configurations it fits; clients see a release only through an entry.
    pub compatibility: Vec<CompatOut>,
    #[schema(example = json!({"extension_hash": "abc123"}))]
    pub metadata: BTreeMap<String, String>,
    pub files: Vec<FileOut>,
    /// RFC 3339 UTC; `null` while draft.
    pub published_at: Option<String>,
    #[schema(example = "2026-11-30T09:00:00Z")]
    pub created_at: String,
    #[schema(example = "2026-11-30T09:00:00Z")]
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
#[derive(Debug, Serialize, ToSchema)]
pub struct FilesOut {
    pub files: Vec<FileOut>,
}

/// The release as answered, read fresh from the database.
async fn answer(state: &AppState, id: i32) -> Result<Json<ReleaseOut>, ApiError> {
    Ok(Json(service::get(&state.db, id).await?.into()))
}

// ---------------------------------------------------------------------------------------
// Releases

/// Creates a draft release of a distribution (permission `publish`).
#[utoipa::path(post, path = "/v1/distributions/{code}/releases", tag = "releases",
    operation_id = "createRelease", params(CodeParam), request_body = NewRelease,
    responses(
        (status = 201, description = "The new draft", body = ReleaseOut),
        (status = 409, description = "This version exists", body = ApiErrorBody),
    ))]
async fn create(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiJson(input): ApiJson<NewRelease>,
) -> Result<(StatusCode, AuditNote, Json<ReleaseOut>), ApiError> {
    let id = service::create(&state.db, &code, input).await?;
    let out = answer(&state, id).await?;
    let note = AuditNote::target(target_param("id", &id.to_string()))
        .with_detail(target_param("version", &out.version));
    Ok((StatusCode::CREATED, note, out))
}

/// Query of `GET /v1/distributions/{code}/releases`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// How many releases to skip.
    #[param(minimum = 0)]
    offset: Option<u64>,
    /// How many at most (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// `id` (default `-id`), `created_at`, `published_at` or `status`, `-` in front for
    /// descending.
    sort: Option<String>,
    /// Only releases with this status.
    #[param(value_type = Option<service::Status>)]
    status: Option<String>,
    /// Only the release with a version equal to this one (`4.0` finds `4.0.0.0`).
    version: Option<String>,
}

/// Lists the releases of a distribution (permission `read`).
#[utoipa::path(get, path = "/v1/distributions/{code}/releases", tag = "releases",
    operation_id = "listReleases", params(CodeParam, ListQuery),
    responses((status = 200, description = "A page of releases", body = ListOut<ReleaseOut>)))]
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

/// One release with its files (permission `read`).
#[utoipa::path(get, path = "/v1/releases/{id}", tag = "releases", operation_id = "getRelease",
    params(ReleaseIdParam),
    responses((status = 200, description = "The release", body = ReleaseOut)))]
async fn read(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<ReleaseOut>, ApiError> {
    answer(&state, id).await
}

/// Changes the fields given, as `PATCH` does (permission `publish`).
#[utoipa::path(put, path = "/v1/releases/{id}", tag = "releases",
    operation_id = "replaceReleaseFields", params(ReleaseIdParam), request_body = ReleaseEdit,
    responses(
        (status = 200, description = "The release as it is now", body = ReleaseOut),
        (status = 409, description = "The change is not allowed in the release's status", body = ApiErrorBody),
    ))]
async fn update_put(
    caller: Authorized<need::Publish>,
    state: State<AppState>,
    id: ApiPath<i32>,
    edit: ApiJson<ReleaseEdit>,
) -> Result<Json<ReleaseOut>, ApiError> {
    update(caller, state, id, edit).await
}

/// Changes only the fields given; `null` clears `changelog`, `compatibility`, `metadata`
/// (permission `publish`).
#[utoipa::path(patch, path = "/v1/releases/{id}", tag = "releases",
    operation_id = "updateRelease", params(ReleaseIdParam), request_body = ReleaseEdit,
    responses(
        (status = 200, description = "The release as it is now", body = ReleaseOut),
        (status = 409, description = "The change is not allowed in the release's status", body = ApiErrorBody),
    ))]
async fn update_patch(
    caller: Authorized<need::Publish>,
    state: State<AppState>,
    id: ApiPath<i32>,
    edit: ApiJson<ReleaseEdit>,
) -> Result<Json<ReleaseOut>, ApiError> {
    update(caller, state, id, edit).await
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

/// Deletes a draft (permission `publish`); published releases are yanked instead.
#[utoipa::path(delete, path = "/v1/releases/{id}", tag = "releases", operation_id = "deleteRelease",
    params(ReleaseIdParam),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Not a draft", body = ApiErrorBody),
    ))]
async fn remove(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Publishes a draft (permission `publish`). Takes no fields; any body is ignored, none is
/// needed. A release without a compatibility entry is refused: no client could see it.
#[utoipa::path(post, path = "/v1/releases/{id}/publish", tag = "releases",
    operation_id = "publishRelease", params(ReleaseIdParam),
    responses(
        (status = 200, description = "The published release", body = ReleaseOut),
        (status = 409, description = "Not a draft, or no compatibility entry", body = ApiErrorBody),
    ))]
async fn publish(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<(AuditNote, Json<ReleaseOut>), ApiError> {
    service::publish(&state, id).await?;
    let out = answer(&state, id).await?;
    let note = AuditNote::default().with_detail(target_param("version", &out.version));
    Ok((note, out))
}

/// Withdraws a published release from clients (permission `publish`). Body optional: none,
/// `{}` or `{"reason": "…"}`.
#[utoipa::path(post, path = "/v1/releases/{id}/yank", tag = "releases",
    operation_id = "yankRelease", params(ReleaseIdParam),
    request_body(content = Option<YankRequest>, description = "Optional"),
    responses(
        (status = 200, description = "The yanked release", body = ReleaseOut),
        (status = 409, description = "Not published", body = ApiErrorBody),
    ))]
async fn yank(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<YankRequest>,
) -> Result<(AuditNote, Json<ReleaseOut>), ApiError> {
    let reason = request.reason.clone().unwrap_or_default();
    service::yank(&state, id, request).await?;
    let out = answer(&state, id).await?;
    let mut detail = target_param("version", &out.version);
    if !reason.trim().is_empty() {
        detail.push(' ');
        detail.push_str(&target_param("reason", reason.trim()));
    }
    Ok((AuditNote::default().with_detail(detail), out))
}

// ---------------------------------------------------------------------------------------
// Files

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UploadQuery {
    /// Make this the main file (the one `download_link` points to).
    #[serde(default)]
    main: bool,
}

/// The digests an upload may be checked against.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct DigestHeaders {
    /// Base64 of the file's 16-byte MD5: a mismatch refuses the upload (422).
    #[param(rename = "Content-MD5", example = "XrY7u+Ae7tCTyyK7j1rNww==")]
    content_md5: Option<String>,
    /// The file's SHA-256, 64 hex digits: a mismatch refuses the upload (422).
    #[param(rename = "X-Checksum-Sha256")]
    x_checksum_sha256: Option<String>,
}

/// A multipart upload: every part with a filename is a file.
#[derive(ToSchema)]
#[allow(dead_code)]
struct MultipartFiles {
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
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

/// Uploads one file of a draft from the raw body, streamed (permission `publish`); a file of
/// the same name is replaced.
#[utoipa::path(put, path = "/v1/releases/{id}/files/{name}", tag = "releases",
    operation_id = "uploadFile", params(FileParams, UploadQuery, DigestHeaders),
    request_body(content = String, content_type = "application/octet-stream",
        description = "The file's bytes"),
    responses(
        (status = 201, description = "Stored", body = FileOut),
        (status = 409, description = "The release is not a draft, or names differ only in case", body = ApiErrorBody),
        (status = 422, description = "The bytes do not match Content-MD5 or X-Checksum-Sha256", body = ApiErrorBody),
    ))]
async fn upload(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath((id, name)): ApiPath<(i32, String)>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<FileOut>), ApiError> {
    let name = parse_file_name(&name)?;
    let expected = expected_digests(&headers).map_err(ApiError::bad_request)?;
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let row = service::upload(
        &state,
        id,
        &name,
        body.into_data_stream(),
        announced,
        expected,
        q.main,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(FileOut::from(&row))))
}

/// Uploads files of a draft as `multipart/form-data` (`curl -F file=@crm.cfe`), each part
/// with a filename streamed (permission `publish`).
#[utoipa::path(post, path = "/v1/releases/{id}/files", tag = "releases",
    operation_id = "uploadFiles", params(ReleaseIdParam),
    request_body(content = MultipartFiles, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = FilesOut),
        (status = 409, description = "The release is not a draft, or names differ only in case", body = ApiErrorBody),
    ))]
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

/// Removes a file from a draft (permission `publish`).
#[utoipa::path(delete, path = "/v1/releases/{id}/files/{name}", tag = "releases",
    operation_id = "deleteFile", params(FileParams),
    responses(
        (status = 204, description = "Removed"),
        (status = 409, description = "The release is not a draft", body = ApiErrorBody),
    ))]
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
