//! Helpers of the vendor API's handlers: path extraction in the API's error shape. The
//! HTTP-free helpers (paging, child rows, `null` in edits, timestamps, text checks) live in
//! `services::common`, which the services use too; they are re-exported here.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
pub use crate::services::common::*;

/// `Path<T>` whose rejections answer in the vendor API's error shape.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(path_rejection(rejection)),
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    match rejection {
        PathRejection::FailedToDeserializePathParams(e) => {
            ApiError::bad_request(format!("invalid URL parameter: {}", e.body_text()))
        }
        other => ApiError::internal(other.body_text()),
    }
}
