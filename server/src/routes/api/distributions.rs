//! `/api/v1/distributions`: create, list, read, update, delete (SPEC §5). The rules and
//! transactions are in [`crate::services::distributions`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::common::{self, ApiPath, ListOut};
use super::{ApiJson, ApiQuery, Page};
use crate::auth::{Authorized, need};
use crate::entities::distribution;
use crate::error::ApiError;
use crate::services::distributions::{self as service, DistributionEdit, NewDistribution};
use crate::state::AppState;

pub use crate::services::distributions::find;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/distributions", get(list).post(create))
        .route(
            "/v1/distributions/{code}",
            get(read).put(update).patch(update).delete(remove),
        )
}

/// A distribution as every distribution route answers it.
#[derive(Debug, Serialize)]
pub struct DistributionOut {
    pub id: i32,
    pub code: String,
    pub name: String,
    pub description: String,
    pub developer: String,
    pub label: String,
    pub promo_link: String,
    pub lic_product_id: Option<i64>,
    pub lic_feature_id: Option<i64>,
    pub published: bool,
    pub hide_unlicensed: bool,
    pub version_scheme: String,
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

async fn create(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewDistribution>,
) -> Result<(StatusCode, Json<DistributionOut>), ApiError> {
    let row = service::create(&state, input).await?;
    Ok((StatusCode::CREATED, Json(DistributionOut::from(&row))))
}

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

async fn read(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<DistributionOut>, ApiError> {
    Ok(Json(DistributionOut::from(&find(&state.db, &code).await?)))
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

async fn remove(
    _: Authorized<need::Publish>,
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}
