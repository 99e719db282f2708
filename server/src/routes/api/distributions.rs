//! `/api/v1/distributions`: create, list, read, update, delete (SPEC §5). The rules and
//! transactions are in [`crate::services::distributions`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{self, ApiPath, CodeParam, ListOut};
use super::{ApiJson, ApiQuery, Page};
use crate::access_log::{AuditNote, target_param};
use crate::auth::{Authorized, need};
use crate::entities::distribution;
use crate::error::ApiError;
use crate::error::ApiErrorBody;
use crate::services::distributions::{self as service, DistributionEdit, NewDistribution};
use crate::state::AppState;

pub use crate::services::distributions::find;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update_put, update_patch, remove))
}

/// A distribution as every distribution route answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DistributionOut {
    pub id: i32,
    /// The client's `TYPE`.
    #[schema(example = "PT40_UT_CRM3")]
    pub code: String,
    #[schema(example = "CRM для Управления торговлей")]
    pub name: String,
    #[schema(example = "Сделки, звонки и задачи прямо в карточке клиента")]
    pub description: String,
    #[schema(example = "ООО «Пример»")]
    pub developer: String,
    /// Shown to clients as the module's `version` (MIKO's field).
    #[schema(example = "PT40")]
    pub label: String,
    #[schema(example = "https://example.com/crm")]
    pub promo_link: String,
    /// With `lic_feature_id`: the license feature a client needs to download; `null`: free.
    #[schema(example = 85)]
    pub lic_product_id: Option<i64>,
    #[schema(example = 43)]
    pub lic_feature_id: Option<i64>,
    /// Whether clients see it at all.
    pub published: bool,
    /// Whether clients without a license for it see no releases.
    pub hide_unlicensed: bool,
    /// `1c` (four numbers) or `semver`.
    #[schema(example = "1c")]
    pub version_scheme: String,
    /// RFC 3339 UTC.
    #[schema(example = "2026-11-30T09:00:00Z")]
    pub created_at: String,
    pub updated_at: String,
}

impl From<&distribution::Model> for DistributionOut {
    fn from(d: &distribution::Model) -> Self {
        DistributionOut {
            id: d.id,
            code: d.code.clone(),
            name: d.name.clone(),
            description: d.description.clone(),
            developer: d.developer.clone(),
            label: d.label.clone(),
            promo_link: d.promo_link.clone(),
            lic_product_id: d.lic_product_id,
            lic_feature_id: d.lic_feature_id,
            published: d.published,
            hide_unlicensed: d.hide_unlicensed,
            version_scheme: d.version_scheme.clone(),
            created_at: common::ts(d.created_at),
            updated_at: common::ts(d.updated_at),
        }
    }
}

/// Creates a distribution (permission `publish`).
#[utoipa::path(post, path = "/v1/distributions", tag = "distributions",
    operation_id = "createDistribution", request_body = NewDistribution,
    responses(
        (status = 201, description = "Created", body = DistributionOut),
        (status = 409, description = "A distribution with this code exists", body = ApiErrorBody),
    ))]
async fn create(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewDistribution>,
) -> Result<(StatusCode, AuditNote, Json<DistributionOut>), ApiError> {
    let row = service::create(&state, input).await?;
    let note = AuditNote::target(target_param("code", &row.code));
    Ok((StatusCode::CREATED, note, Json(DistributionOut::from(&row))))
}

/// Lists distributions (permission `read`).
#[utoipa::path(get, path = "/v1/distributions", tag = "distributions",
    operation_id = "listDistributions", params(Page),
    responses((status = 200, description = "A page of distributions", body = ListOut<DistributionOut>)))]
async fn list(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<ListOut<DistributionOut>>, ApiError> {
    let (rows, total) = service::list(&state.db, &page).await?;
    Ok(Json(ListOut::new(
        rows.iter().map(DistributionOut::from).collect(),
        total,
        &page,
    )))
}

/// One distribution (permission `read`).
#[utoipa::path(get, path = "/v1/distributions/{code}", tag = "distributions",
    operation_id = "getDistribution", params(CodeParam),
    responses((status = 200, description = "The distribution", body = DistributionOut)))]
async fn read(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<DistributionOut>, ApiError> {
    Ok(Json(DistributionOut::from(&find(&state.db, &code).await?)))
}

/// Changes the fields given, as `PATCH` does (permission `publish`).
#[utoipa::path(put, path = "/v1/distributions/{code}", tag = "distributions",
    operation_id = "replaceDistributionFields", params(CodeParam), request_body = DistributionEdit,
    responses((status = 200, description = "The distribution as it is now", body = DistributionOut)))]
async fn update_put(
    caller: Authorized<need::Publish>,
    state: State<AppState>,
    code: ApiPath<String>,
    edit: ApiJson<DistributionEdit>,
) -> Result<Json<DistributionOut>, ApiError> {
    update(caller, state, code, edit).await
}

/// Changes only the fields given; `null` clears an optional one (permission `publish`).
#[utoipa::path(patch, path = "/v1/distributions/{code}", tag = "distributions",
    operation_id = "updateDistribution", params(CodeParam), request_body = DistributionEdit,
    responses((status = 200, description = "The distribution as it is now", body = DistributionOut)))]
async fn update_patch(
    caller: Authorized<need::Publish>,
    state: State<AppState>,
    code: ApiPath<String>,
    edit: ApiJson<DistributionEdit>,
) -> Result<Json<DistributionOut>, ApiError> {
    update(caller, state, code, edit).await
}

/// `PUT` and `PATCH`: only the fields given change; `null` clears an optional field.
async fn update(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiJson(edit): ApiJson<DistributionEdit>,
) -> Result<Json<DistributionOut>, ApiError> {
    let row = service::edit(&state, &code, edit).await?;
    Ok(Json(DistributionOut::from(&row)))
}

/// Deletes a distribution that has no published or yanked releases (permission `publish`).
#[utoipa::path(delete, path = "/v1/distributions/{code}", tag = "distributions",
    operation_id = "deleteDistribution", params(CodeParam),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "It has releases clients may have installed", body = ApiErrorBody),
    ))]
async fn remove(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}
