//! `/api/v1/api-keys`: keys of the vendor API with permissions (admin only). The rules live in
//! `services::api_keys`; these handlers extract, call and render.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{ApiKeyIdParam, ApiPath, ListOut};
use super::{ApiJson, ApiQuery, Page};
use crate::auth::{Authorized, need};
use crate::error::ApiError;
use crate::services::api_keys::{
    self as service, ApiKeyList, ApiKeyView, CreatedApiKey, NewApiKey,
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(remove))
}

/// Creates an API key; the answer shows the key this once (permission `admin`).
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", operation_id = "createApiKey",
    request_body = NewApiKey,
    responses((status = 201, description = "Created; `key` is shown only now", body = CreatedApiKey)))]
async fn create(
    _: Authorized<need::Admin>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let created = service::create(&state.db, input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Lists API keys, never the keys themselves (permission `admin`).
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", operation_id = "listApiKeys",
    params(Page),
    responses((status = 200, description = "A page of API keys", body = ListOut<ApiKeyView>)))]
async fn list(
    _: Authorized<need::Admin>,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<ApiKeyList>, ApiError> {
    Ok(Json(service::list(&state.db, &page).await?))
}

/// Revokes an API key at once, on every instance (permission `admin`).
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", operation_id = "revokeApiKey",
    params(ApiKeyIdParam),
    responses((status = 204, description = "Revoked")))]
async fn remove(
    _: Authorized<need::Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, ApiError> {
    service::revoke(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
