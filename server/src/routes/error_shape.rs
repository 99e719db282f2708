//! Every error under `/releases/` and `/api/` is JSON in its family's shape (SPEC §4: `{"error"}`,
//! SPEC §5: `{Code, Text, Message, Exception}`), whatever produced it. Handlers build their errors
//! with `ClientError`/`ApiError`; what reaches a client without them — axum's own rejections,
//! such as a path segment that is not UTF-8, answer `text/plain` — is rewritten here, before the
//! signing layer, so it is signed like every other JSON answer.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ClientError};

/// Rejection texts are one line; anything longer is cut by the error constructors anyway.
const MAX_REJECTION_TEXT: usize = 16 * 1024;

pub async fn client_family(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    match plain_error(response).await {
        Ok(response) => response,
        Err((status, text)) => ClientError::new(status, text).into_response(),
    }
}

pub async fn api_family(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    match plain_error(response).await {
        Ok(response) => response,
        Err((status, text)) => {
            let exception = match status {
                StatusCode::BAD_REQUEST => "BadRequest",
                StatusCode::NOT_FOUND => "NotFound",
                StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
                StatusCode::PAYLOAD_TOO_LARGE => "PayloadTooLarge",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
                StatusCode::UNPROCESSABLE_ENTITY => "UnprocessableEntity",
                StatusCode::REQUEST_TIMEOUT => "RequestTimeout",
                _ => "Error",
            };
            ApiError::new(status, exception, text).into_response()
        }
    }
}

/// `Ok` with the response untouched unless it is an error answered as plain text; then the
/// status and the message to answer with instead (never the text of a server error).
async fn plain_error(response: Response) -> Result<Response, (StatusCode, String)> {
    let status = response.status();
    let is_plain_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !is_plain_text {
        return Ok(response);
    }
    if status.is_server_error() {
        let (_, body) = response.into_parts();
        let text = body_text(body).await;
        tracing::error!(%status, error = %text, "server error answered as plain text");
        return Err((status, "internal server error".to_owned()));
    }
    let (_, body) = response.into_parts();
    let text = body_text(body).await;
    let text = if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text.trim().to_owned()
    };
    Err((status, text))
}

async fn body_text(body: Body) -> String {
    match to_bytes(body, MAX_REJECTION_TEXT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    }
}
