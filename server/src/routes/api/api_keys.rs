//! `/api/v1/api-keys`: keys of the vendor API with permissions (admin only). The rules live in
//! `services::api_keys`; these handlers extract, call and render.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};

use super::common::ApiPath;
use super::{ApiJson, ApiQuery, Page};
use crate::auth::{Authorized, need};
use crate::error::ApiError;
use crate::services::api_keys::{self as service, ApiKeyList, CreatedApiKey, NewApiKey};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/api-keys", get(list).post(create))
        .route("/v1/api-keys/{id}", delete(remove))
}

async fn create(
    _: Authorized<need::Admin>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let created = service::create(&state.db, input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn list(
    _: Authorized<need::Admin>,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<ApiKeyList>, ApiError> {
    Ok(Json(service::list(&state.db, &page).await?))
}

async fn remove(
    _: Authorized<need::Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, ApiError> {
    service::revoke(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
