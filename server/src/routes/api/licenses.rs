//! `/api/v1/licenses`: license keys with their features, and the all-or-nothing CSV import.
//! The rules live in `services::licenses`; these handlers extract, call and render.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::common::ApiPath;
use super::{ApiJson, ApiQuery};
use crate::auth::{Authorized, need};
use crate::error::ApiError;
use crate::licenses_csv;
use crate::services::licenses::{
    self as service, ImportSummary, LicenseList, LicensePatch, LicenseQuery, LicenseView,
    NewLicense,
};
use crate::state::AppState;

pub use crate::services::licenses::IMPORT_BODY_LIMIT;

/// Every route here needs the `licenses` permission, reading included: licenses are customer
/// data (names, ITNs, keys), which `read` and `publish` keys never see. PUT and PATCH are the
/// same edit: only the fields given change (`services::licenses`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/licenses", get(list).post(create))
        // `import` is a valid key too: its GET/PUT/PATCH/DELETE still reach the license.
        .route(
            "/v1/licenses/import",
            post(import_route)
                .layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT))
                .get(read_import_key)
                .put(update_import_key)
                .patch(update_import_key)
                .delete(remove_import_key),
        )
        .route(
            "/v1/licenses/{key}",
            get(read).put(update).patch(update).delete(remove),
        )
}

async fn create(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewLicense>,
) -> Result<(StatusCode, Json<LicenseView>), ApiError> {
    let created = service::create(&state.db, &state.catalog, input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn list(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LicenseQuery>,
) -> Result<Json<LicenseList>, ApiError> {
    Ok(Json(service::list(&state.db, q).await?))
}

async fn read(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<LicenseView>, ApiError> {
    Ok(Json(service::show(&state.db, &key).await?))
}

/// `PUT` and `PATCH`: only the fields given change.
async fn update(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
    ApiJson(patch): ApiJson<LicensePatch>,
) -> Result<Json<LicenseView>, ApiError> {
    Ok(Json(
        service::update(&state.db, &state.catalog, &key, patch).await?,
    ))
}

async fn remove(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state.db, &state.catalog, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn read_import_key(
    caller: Authorized<need::Licenses>,
    state: State<AppState>,
) -> Result<Json<LicenseView>, ApiError> {
    read(caller, state, ApiPath("import".to_owned())).await
}

async fn update_import_key(
    caller: Authorized<need::Licenses>,
    state: State<AppState>,
    patch: ApiJson<LicensePatch>,
) -> Result<Json<LicenseView>, ApiError> {
    update(caller, state, ApiPath("import".to_owned()), patch).await
}

async fn remove_import_key(
    caller: Authorized<need::Licenses>,
    state: State<AppState>,
) -> Result<StatusCode, ApiError> {
    remove(caller, state, ApiPath("import".to_owned())).await
}

/// `POST /v1/licenses/import`: the body is the CSV, raw or as a multipart file part, UTF-8 or
/// Windows-1251 (see `licenses_csv`).
async fn import_route(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    licenses_csv::CsvUpload(body): licenses_csv::CsvUpload,
) -> Result<Json<ImportSummary>, ApiError> {
    Ok(Json(
        service::import_csv(&state.db, &state.catalog, &body).await?,
    ))
}
