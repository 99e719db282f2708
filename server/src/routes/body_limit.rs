//! 413 before any body byte (issue 7, defect 3): a request whose `Content-Length` exceeds what
//! its route reads is answered at once, in its family's error shape, instead of after the body
//! (or never, when a client announces 10 GiB and stalls). Bodies without a length are still
//! bounded while they are read (`DefaultBodyLimit`, `max_upload_bytes`).

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ClientError};
use crate::state::AppState;

/// The most body bytes the matched route reads, or `None` when the route sets no total: the
/// multipart upload bounds each file by `max_upload_bytes` but may carry several.
pub fn route_body_limit(
    state: &AppState,
    method: &Method,
    matched_path: Option<&str>,
) -> Option<u64> {
    let json = super::JSON_BODY_LIMIT as u64;
    let Some(path) = matched_path else {
        return Some(json);
    };
    match (method, path) {
        (&Method::PUT, "/api/v1/releases/{id}/files/{name}") => {
            Some(state.settings.max_upload_bytes)
        }
        (&Method::PUT, "/console/releases/{id}/files/{name}") => {
            Some(state.settings.max_upload_bytes)
        }
        (&Method::POST, "/api/v1/releases/{id}/files" | "/console/releases/{id}/files") => None,
        (&Method::POST, "/api/v1/licenses/import" | "/console/licenses/import") => {
            Some(super::api::licenses::IMPORT_BODY_LIMIT as u64)
        }
        _ => Some(json),
    }
}

/// Route layer: answers 413 when the announced length is over the route's limit.
pub async fn reject_oversized_bodies(
    State(state): State<AppState>,
    matched_path: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let path = matched_path.as_ref().map(MatchedPath::as_str);
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let (Some(length), Some(limit)) =
        (announced, route_body_limit(&state, request.method(), path))
        && length > limit
    {
        let message =
            format!("request body of {length} bytes is larger than the limit of {limit} bytes");
        let path = path.unwrap_or_else(|| request.uri().path());
        return if path.starts_with("/api/") {
            ApiError::too_large(message).into_response()
        } else if path.starts_with("/releases/") {
            ClientError::new(StatusCode::PAYLOAD_TOO_LARGE, message).into_response()
        } else {
            (StatusCode::PAYLOAD_TOO_LARGE, message).into_response()
        };
    }
    next.run(request).await
}
