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

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ApiErrorBody<'a> {
    code: u16,
    text: &'a str,
    message: &'a str,
    exception: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, exception: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            exception,
            message: message.into(),
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
            "authentication required: HTTP Basic as admin, or an API key",
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
            message: message.into(),
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
