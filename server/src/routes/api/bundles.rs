//! `GET /api/v1/releases/{id}/bundle?license=KEY`: an offline bundle of one release for one
//! license (issue 10). The work is `crate::bundle`'s; this extracts, calls it and answers.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiQuery;
use super::common::{ApiPath, ReleaseIdParam};
use crate::auth::{Authorized, need};
use crate::bundle::{self, BundleError, BundleSources};
use crate::error::ApiError;
use crate::error::ApiErrorBody;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(bundle_route))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct BundleQuery {
    /// The license the bundle is for; optional for free distributions.
    #[serde(default)]
    #[param(example = "ACME-0001")]
    license: Option<String>,
}

impl From<BundleError> for ApiError {
    fn from(e: BundleError) -> Self {
        match e {
            BundleError::UnknownRelease(_) => ApiError::not_found(e.to_string()),
            BundleError::NotPublished(m) => ApiError::conflict(m),
            BundleError::BadLicense(m) => ApiError::bad_request(m),
            BundleError::NotDownloadable(m) => ApiError::unprocessable(m),
            BundleError::Internal(m) => ApiError::internal(m),
        }
    }
}

/// An offline bundle of a published release for one license: a tar of the signed answer and
/// the files, for `vypusk-update install --from-bundle` on a machine without network access
/// (permission `licenses`).
///
/// The permission is checked first, from the headers (the extractor's order): a caller without
/// `licenses` learns nothing about releases or keys, whatever the query says.
#[utoipa::path(get, path = "/v1/releases/{id}/bundle", tag = "releases",
    operation_id = "getReleaseBundle", params(ReleaseIdParam, BundleQuery),
    responses(
        (status = 200, description = "The bundle (tar), streamed with its exact length",
            content_type = "application/x-tar", body = crate::openapi::Binary),
        (status = 409, description = "The release is not published", body = ApiErrorBody),
        (status = 422, description = "The license may not download this release", body = ApiErrorBody),
    ))]
async fn bundle_route(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
    ApiQuery(query): ApiQuery<BundleQuery>,
) -> Result<Response, ApiError> {
    let plan = bundle::plan(&BundleSources::of(&state), id, query.license.as_deref()).await?;
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(vypusk_protocol::bundle::CONTENT_TYPE),
        ),
        (header::CONTENT_LENGTH, HeaderValue::from(plan.len())),
        (
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&format!("attachment; filename=\"{}\"", plan.file_name()))
                .map_err(ApiError::internal)?,
        ),
    ];
    Ok((
        StatusCode::OK,
        headers,
        Body::from_stream(plan.into_stream()),
    )
        .into_response())
}
