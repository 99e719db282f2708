//! The vendor API under `/api/` (SPEC §5). Every answer is JSON; every error has the
//! `{Code, Text, Message, Exception}` shape. Each handler's `#[utoipa::path]` is its part of
//! the OpenAPI document (`crate::openapi`).

pub mod api_keys;
pub mod audit;
pub mod bundles;
pub mod common;
pub mod distributions;
pub mod licenses;
pub mod products;
pub mod releases;
pub mod stats;
pub mod users;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, need};
use crate::error::ApiError;
use crate::state::AppState;

/// The vendor API's routes, each with its part of the OpenAPI document (`crate::openapi`).
/// `/api/openapi.json` is the document itself, the one route under `/api` it does not list.
pub fn router() -> OpenApiRouter<AppState> {
    let documented = OpenApiRouter::new()
        .routes(routes!(root))
        .routes(routes!(server_info))
        .merge(distributions::router())
        .merge(releases::router())
        .merge(bundles::router())
        .merge(licenses::router())
        .merge(api_keys::router())
        .merge(users::router())
        .merge(audit::router())
        .merge(products::router())
        .merge(stats::router());
    let (routes, document) = documented.split_for_parts();
    let routes: Router<AppState> = routes
        .route("/openapi.json", get(crate::openapi::serve_document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    OpenApiRouter::with_openapi(document).merge(OpenApiRouter::from(routes))
}

/// Every URN a client can start from.
const URNS: &[&str] = &[
    "/api/serverinfo",
    "/api/v1/distributions",
    "/api/v1/licenses",
    "/api/v1/api-keys",
    "/api/v1/users",
    "/api/v1/audit",
    "/api/v1/stats/downloads",
    "/api/v1/stats/upgrade-paths",
    "/api/v1/stats/installed-base",
    "/api/v1/stats/pipeline",
];

/// The answer of `GET /api`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ApiRoot {
    /// The server's version.
    #[schema(example = "0.1.0")]
    pub version: String,
    /// The lists a client can start from.
    pub urns: Vec<String>,
    /// Every operation of `/api/` and `/releases/`, as in the OpenAPI document.
    pub routes: Vec<RouteView>,
    /// The OpenAPI 3.1 document.
    #[schema(example = "/api/openapi.json")]
    pub open_api: String,
    /// Swagger UI: every operation, with "Try it out".
    #[schema(example = "/docs")]
    pub docs: String,
}

/// One operation: a method and a path template.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteView {
    #[schema(example = "GET")]
    pub method: String,
    #[schema(example = "/api/v1/distributions/{code}")]
    pub path: String,
}

/// What the vendor API offers: its URNs, every route, where the document and Swagger UI are.
#[utoipa::path(get, path = "/", tag = "server", operation_id = "getApiRoot",
    responses((status = 200, description = "What the API offers", body = ApiRoot)))]
async fn root() -> Json<ApiRoot> {
    Json(ApiRoot {
        version: crate::VERSION.to_owned(),
        urns: URNS.iter().map(|u| (*u).to_owned()).collect(),
        routes: crate::openapi::operations()
            .into_iter()
            .map(|(method, path)| RouteView {
                method: method.to_owned(),
                path,
            })
            .collect(),
        open_api: crate::openapi::DOCUMENT_PATH.to_owned(),
        docs: crate::openapi::DOCS_PATH.to_owned(),
    })
}

/// The answer of `GET /api/serverinfo`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ServerInfo {
    #[schema(example = "updates-1")]
    pub computer_name: String,
    #[serde(rename = "OSType")]
    #[schema(example = "linux")]
    pub os_type: String,
    #[serde(rename = "OSVersion")]
    #[schema(example = "6.12.48")]
    pub os_version: String,
    #[serde(rename = "PID")]
    pub pid: u32,
    #[schema(example = "0.1.0")]
    pub version: String,
    /// When this instance started, RFC 3339 UTC.
    #[schema(example = "2026-11-30T09:00:00Z")]
    pub started: String,
    /// `sqlite` or `postgres`.
    #[schema(example = "sqlite")]
    pub database: String,
    /// Where the files are kept.
    #[schema(example = "local:/var/lib/vypusk/objects")]
    pub storage: String,
}

/// The host, process and storage of the instance that answers (permission `read`).
#[utoipa::path(get, path = "/serverinfo", tag = "server", operation_id = "getServerInfo",
    responses((status = 200, description = "This instance", body = ServerInfo)))]
async fn server_info(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
) -> Result<Json<ServerInfo>, ApiError> {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    Ok(Json(ServerInfo {
        computer_name: host,
        os_type: std::env::consts::OS.to_owned(),
        os_version: os_version(),
        pid: std::process::id(),
        version: crate::VERSION.to_owned(),
        started: state
            .started
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        database: state.database_kind.to_string(),
        storage: state.storage.describe(),
    }))
}

fn os_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|_| std::env::consts::ARCH.to_owned())
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no such URL: {}", request.uri().path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// `Json<T>` whose rejections (malformed JSON, wrong types, too large, wrong content type)
/// answer in the vendor API's error shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::bad_request(
                "expected Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large(format!(
                        "request body larger than {} bytes",
                        super::JSON_BODY_LIMIT
                    ))
                } else {
                    ApiError::bad_request(e.body_text())
                }
            })?;
        // 1C's text writers can put a byte-order mark in front (SPEC §4): skip it.
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        match Json::<T>::from_bytes(body) {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// Like [`ApiJson`], but an empty body (no bytes, or only whitespace) is `T::default()`, with
/// or without a `Content-Type`: for actions such as yank and publish whose fields are all
/// optional, so `curl -X POST …/yank` works.
pub struct ApiJsonOrEmpty<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for ApiJsonOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json_content_type(req.headers());
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large(format!(
                        "request body larger than {} bytes",
                        super::JSON_BODY_LIMIT
                    ))
                } else {
                    ApiError::bad_request(e.body_text())
                }
            })?;
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(ApiJsonOrEmpty(T::default()));
        }
        if !json {
            return Err(ApiError::bad_request(
                "expected Content-Type: application/json (or no body)",
            ));
        }
        match Json::<T>::from_bytes(body) {
            Ok(Json(value)) => Ok(ApiJsonOrEmpty(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// `application/json` or any `application/*+json`, parameters (charset) allowed.
fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            ApiError::bad_request(format!("invalid JSON body: {}", e.body_text()))
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::bad_request(format!("malformed JSON: {}", e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::bad_request("expected Content-Type: application/json")
        }
        JsonRejection::BytesRejection(e)
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            ApiError::too_large(format!(
                "request body larger than {} bytes",
                super::JSON_BODY_LIMIT
            ))
        }
        other => ApiError::bad_request(other.body_text()),
    }
}

/// `Query<T>` whose rejections answer in the vendor API's error shape.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("invalid query string: {}", rejection.body_text()))
}

pub use crate::services::common::Page;
