//! The two error shapes: the vendor API's (seed 000: `{Code, Text, Message, Exception}`) and
//! the client protocol's (`{"error": "…"}`). Handlers build them with a few constructors;
//! anything unexpected is logged and answered as a bare 500 without internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error of the vendor API (`/api/…`).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub exception: &'static str,
    pub message: String,
}

/// The body of every vendor-API error (the document's `ApiError` schema).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = ApiError)]
pub struct ApiErrorBody<'a> {
    /// The HTTP status code.
    #[schema(example = 409)]
    pub code: u16,
    /// Its reason phrase.
    #[schema(example = "Conflict")]
    pub text: &'a str,
    /// What went wrong and, where there is one, the fix.
    #[schema(
        example = "release 12 has no compatibility entries, so no client would ever see it: add one, e.g. {\"conf\": \"*\", \"min_1c_version\": \"0\"}"
    )]
    pub message: &'a str,
    /// A stable name of the kind of error.
    #[schema(example = "Conflict")]
    pub exception: &'a str,
}

/// Longest message a vendor-API error carries. Long enough for a CSV import's list of bad
/// lines; values quoted inside messages are cut much shorter by [`quote`].
pub const MAX_API_MESSAGE: usize = 64 * 1024;
/// Longest message a client-protocol error carries: its messages are one sentence.
pub const MAX_CLIENT_MESSAGE: usize = 1024;
/// How much of a client-chosen value a message quotes.
const MAX_QUOTED_CHARS: usize = 80;

/// `value` as a message quotes it: Rust string syntax, cut after a few dozen characters, so
/// a 300,000-character `TYPE` cannot make the answer echo it back.
pub fn quote(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(MAX_QUOTED_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// Cuts `message` to at most `max` bytes on a character boundary, marking the cut.
fn capped(mut message: String, max: usize) -> String {
    if message.len() > max {
        let cut = message.floor_char_boundary(max.saturating_sub('…'.len_utf8()));
        message.truncate(cut);
        message.push('…');
    }
    message
}

impl ApiError {
    pub fn new(status: StatusCode, exception: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            exception,
            message: capped(message.into(), MAX_API_MESSAGE),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "authentication required: HTTP Basic as a user, or an API key",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UnprocessableEntity",
            message,
        )
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", message)
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "method not allowed on this URL",
        )
    }
    /// Logs the cause; the client sees only that something failed on our side.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error in vendor API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "internal server error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ApiErrorBody {
            code: self.status.as_u16(),
            text: self.status.canonical_reason().unwrap_or(""),
            message: &self.message,
            exception: self.exception,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("60"),
            );
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"vypusk\""),
            );
        }
        response
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::internal(e)
    }
}

/// An error of the client protocol (`/releases/…`).
#[derive(Debug)]
pub struct ClientError {
    pub status: StatusCode,
    pub message: String,
}

impl ClientError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ClientError {
            status,
            message: capped(message.into(), MAX_CLIENT_MESSAGE),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed license checks from this address; try again in a minute",
        )
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error in client protocol");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }
}

impl IntoResponse for ClientError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(vypusk_protocol::wire::ClientError {
                error: self.message,
            }),
        )
            .into_response()
    }
}

impl From<sea_orm::DbErr> for ClientError {
    fn from(e: sea_orm::DbErr) -> Self {
        ClientError::internal(e)
    }
}

impl From<vypusk_storage::StorageError> for ClientError {
    fn from(e: vypusk_storage::StorageError) -> Self {
        match e {
            vypusk_storage::StorageError::NotFound => {
                ClientError::not_found("the file's bytes are missing from storage")
            }
            other => ClientError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_quotes_are_capped() {
        let long = "Ж".repeat(300_000);
        let e = ClientError::bad_request(format!("unknown distribution TYPE {long:?}"));
        assert!(e.message.len() <= MAX_CLIENT_MESSAGE, "{}", e.message.len());
        assert!(e.message.ends_with('…'));
        let e = ApiError::bad_request(long.clone());
        assert!(e.message.len() <= MAX_API_MESSAGE);
        assert_eq!(quote("abc"), "\"abc\"");
        let q = quote(&long);
        assert_eq!(q.chars().count(), 80 + 3);
        assert!(q.ends_with("\"…"));
    }
}
