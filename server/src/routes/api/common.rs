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

// Path parameters as the OpenAPI document describes them; the handlers extract the values
// with `ApiPath`, these types only describe them.

/// `{code}`: a distribution.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct CodeParam {
    /// The distribution's code, the client's `TYPE`.
    #[param(example = "PT40_UT_CRM3")]
    code: String,
}

/// `{id}`: a release.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ReleaseIdParam {
    /// The release's id.
    #[param(example = 1)]
    id: i32,
}

/// `{id}` and `{name}`: a file of a release.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct FileParams {
    /// The release's id.
    #[param(example = 1)]
    id: i32,
    /// The file's name (no path, no control characters).
    #[param(example = "PT40_UT_CRM3_4.0.4.12.zip")]
    name: String,
}

/// `{key}`: a license.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct LicenseKeyParam {
    /// The license key.
    #[param(example = "ACME-0001")]
    key: String,
}

/// `{id}`: an API key.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ApiKeyIdParam {
    /// The API key's id (not the key).
    #[param(example = 2)]
    id: i32,
}

/// `{id}`: a user.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct UserIdParam {
    /// The user's id.
    #[param(example = 2)]
    id: i32,
}

/// `{number}`: a named product.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ProductParam {
    /// The product's number (`lic_product_id`).
    #[param(example = 85)]
    number: i64,
}

/// `{number}` and `{feature}`: a named feature of a product.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ProductFeatureParams {
    /// The product's number (`lic_product_id`).
    #[param(example = 85)]
    number: i64,
    /// The feature's number (`lic_feature_id`).
    #[param(example = 43)]
    feature: i64,
}
