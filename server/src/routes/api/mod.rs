//! The vendor API under `/api/` (SPEC §5). Every answer is JSON; every error has the
//! `{Code, Text, Message, Exception}` shape.

pub mod api_keys;
pub mod bundles;
pub mod common;
pub mod distributions;
pub mod licenses;
pub mod releases;
pub mod stats;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::auth::{Authorized, need};
use crate::error::ApiError;
use crate::state::AppState;

pub fn router(_state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/serverinfo", get(server_info))
        .merge(distributions::router())
        .merge(releases::router())
        .merge(bundles::router())
        .merge(licenses::router())
        .merge(api_keys::router())
        .merge(stats::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// Every URN a client can start from.
const URNS: &[&str] = &[
    "/api/serverinfo",
    "/api/v1/distributions",
    "/api/v1/licenses",
    "/api/v1/api-keys",
    "/api/v1/stats/downloads",
    "/api/v1/stats/upgrade-paths",
    "/api/v1/stats/installed-base",
    "/api/v1/stats/pipeline",
];

async fn root() -> Json<Value> {
    Json(json!({"Version": crate::VERSION, "Urns": URNS}))
}

async fn server_info(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    Ok(Json(json!({
        "ComputerName": host,
        "OSType": std::env::consts::OS,
        "OSVersion": os_version(),
        "PID": std::process::id(),
        "Version": crate::VERSION,
        "Started": state.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "Database": state.database_kind,
        "Storage": state.storage.describe(),
    })))
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
