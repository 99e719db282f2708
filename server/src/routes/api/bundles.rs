//! `GET /api/v1/releases/{id}/bundle?license=KEY`: an offline bundle of one release for one
//! license (issue 10). The work is `crate::bundle`'s; this extracts, calls it and answers.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::ApiQuery;
use super::common::ApiPath;
use crate::auth::{Authorized, need};
use crate::bundle::{self, BundleError, BundleSources};
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/releases/{id}/bundle", get(bundle_route))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleQuery {
    /// The license the bundle is for; optional for free distributions.
    #[serde(default)]
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

/// The permission is checked first, from the headers (the extractor's order): a caller without
/// `licenses` learns nothing about releases or keys, whatever the query says.
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
