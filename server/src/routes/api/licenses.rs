//! `/api/v1/licenses`: license keys with their features, and the all-or-nothing CSV import.
//! The rules live in `services::licenses`; these handlers extract, call and render.

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::common::{ApiPath, LicenseKeyParam, ListOut};
use super::{ApiJson, ApiQuery};
use crate::access_log::{AuditNote, target_param};
use crate::auth::{Authorized, need};
use crate::error::ApiError;
use crate::error::ApiErrorBody;
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
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(import_route).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)))
        // `import` is a valid key too: its GET/PUT/PATCH/DELETE still reach the license.
        .routes(routes!(
            read_import_key,
            update_import_key_put,
            update_import_key_patch,
            remove_import_key
        ))
        .routes(routes!(read, update_put, update_patch, remove))
}

/// Creates a license (permission `licenses`).
#[utoipa::path(post, path = "/v1/licenses", tag = "licenses", operation_id = "createLicense",
    request_body = NewLicense,
    responses(
        (status = 201, description = "Created", body = LicenseView),
        (status = 409, description = "This key exists", body = ApiErrorBody),
    ))]
async fn create(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewLicense>,
) -> Result<(StatusCode, AuditNote, Json<LicenseView>), ApiError> {
    let created = service::create(&state.db, &state.catalog, input).await?;
    let note = AuditNote::target(target_param("key", &created.key));
    Ok((StatusCode::CREATED, note, Json(created)))
}

/// Lists licenses, optionally those whose key, customer or ITN contain `search`
/// (permission `licenses`).
#[utoipa::path(get, path = "/v1/licenses", tag = "licenses", operation_id = "listLicenses",
    params(LicenseQuery),
    responses((status = 200, description = "A page of licenses", body = ListOut<LicenseView>)))]
async fn list(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LicenseQuery>,
) -> Result<Json<LicenseList>, ApiError> {
    Ok(Json(service::list(&state.db, q).await?))
}

/// One license with its features (permission `licenses`).
#[utoipa::path(get, path = "/v1/licenses/{key}", tag = "licenses", operation_id = "getLicense",
    params(LicenseKeyParam),
    responses((status = 200, description = "The license", body = LicenseView)))]
async fn read(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<LicenseView>, ApiError> {
    Ok(Json(service::show(&state.db, &key).await?))
}

/// Changes the fields given, as `PATCH` does (permission `licenses`).
#[utoipa::path(put, path = "/v1/licenses/{key}", tag = "licenses",
    operation_id = "replaceLicenseFields", params(LicenseKeyParam), request_body = LicensePatch,
    responses((status = 200, description = "The license as it is now", body = LicenseView)))]
async fn update_put(
    caller: Authorized<need::Licenses>,
    state: State<AppState>,
    key: ApiPath<String>,
    patch: ApiJson<LicensePatch>,
) -> Result<Json<LicenseView>, ApiError> {
    update(caller, state, key, patch).await
}

/// Changes only the fields given: `{"beta": true}` never touches the customer or the features
/// (permission `licenses`).
#[utoipa::path(patch, path = "/v1/licenses/{key}", tag = "licenses",
    operation_id = "updateLicense", params(LicenseKeyParam), request_body = LicensePatch,
    responses((status = 200, description = "The license as it is now", body = LicenseView)))]
async fn update_patch(
    caller: Authorized<need::Licenses>,
    state: State<AppState>,
    key: ApiPath<String>,
    patch: ApiJson<LicensePatch>,
) -> Result<Json<LicenseView>, ApiError> {
    update(caller, state, key, patch).await
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

/// Deletes a license and its features (permission `licenses`).
#[utoipa::path(delete, path = "/v1/licenses/{key}", tag = "licenses", operation_id = "deleteLicense",
    params(LicenseKeyParam),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state.db, &state.catalog, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The license whose key is `import` (the path of the CSV import; permission `licenses`).
#[utoipa::path(get, path = "/v1/licenses/import", tag = "licenses",
    operation_id = "getLicenseNamedImport",
    responses((status = 200, description = "The license", body = LicenseView)))]
async fn read_import_key(
    caller: Authorized<need::Licenses>,
    state: State<AppState>,
) -> Result<Json<LicenseView>, ApiError> {
    read(caller, state, ApiPath("import".to_owned())).await
}

/// Changes the license whose key is `import`, as `replaceLicenseFields` (permission `licenses`).
#[utoipa::path(put, path = "/v1/licenses/import", tag = "licenses",
    operation_id = "replaceLicenseNamedImportFields", request_body = LicensePatch,
    responses((status = 200, description = "The license as it is now", body = LicenseView)))]
async fn update_import_key_put(
    caller: Authorized<need::Licenses>,
    state: State<AppState>,
    patch: ApiJson<LicensePatch>,
) -> Result<Json<LicenseView>, ApiError> {
    update(caller, state, ApiPath("import".to_owned()), patch).await
}

/// Changes the license whose key is `import`, as `updateLicense` (permission `licenses`).
#[utoipa::path(patch, path = "/v1/licenses/import", tag = "licenses",
    operation_id = "updateLicenseNamedImport", request_body = LicensePatch,
    responses((status = 200, description = "The license as it is now", body = LicenseView)))]
async fn update_import_key_patch(
    caller: Authorized<need::Licenses>,
    state: State<AppState>,
    patch: ApiJson<LicensePatch>,
) -> Result<Json<LicenseView>, ApiError> {
    update(caller, state, ApiPath("import".to_owned()), patch).await
}

/// Deletes the license whose key is `import` (permission `licenses`).
#[utoipa::path(delete, path = "/v1/licenses/import", tag = "licenses",
    operation_id = "deleteLicenseNamedImport",
    responses((status = 204, description = "Deleted")))]
async fn remove_import_key(
    caller: Authorized<need::Licenses>,
    state: State<AppState>,
) -> Result<StatusCode, ApiError> {
    remove(caller, state, ApiPath("import".to_owned())).await
}

/// The CSV of a license import, as a multipart file part.
#[derive(ToSchema)]
#[allow(dead_code)]
struct CsvFile {
    /// Header `key,customer,itn,beta,revoked,product,feature,active_until` (any order; `;`
    /// works too), one line per feature; UTF-8, or Windows-1251 as Excel saves it.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// `POST /v1/licenses/import`: the body is the CSV, raw or as a multipart file part, UTF-8 or
/// Windows-1251 (see `licenses_csv`). All or nothing: an error names every bad line, and then
/// nothing changes. Applies at once (permission `licenses`).
#[utoipa::path(post, path = "/v1/licenses/import", tag = "licenses",
    operation_id = "importLicenses",
    request_body(description = "The CSV: the raw body, or a multipart part with a filename",
        content(
            (String = "text/csv", example = "key;customer;itn;product;feature;active_until\nACME-0001;ООО «Ромашка»;7701234567;85;43;31.12.2027"),
            (CsvFile = "multipart/form-data"),
        )),
    responses((status = 200, description = "Imported", body = ImportSummary)))]
async fn import_route(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    licenses_csv::CsvUpload(body): licenses_csv::CsvUpload,
) -> Result<(AuditNote, Json<ImportSummary>), ApiError> {
    let summary = service::import_csv(&state.db, &state.catalog, &body).await?;
    let note = AuditNote::default().with_detail(format!(
        "{} licenses, {} features",
        summary.imported, summary.features
    ));
    Ok((note, Json(summary)))
}
