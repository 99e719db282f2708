//! `/api/v1/api-keys`: keys of the vendor API with permissions. A user logged in with a
//! password manages their own keys, with permissions their roles include; an owner (or an
//! `admin` key) manages every key. The rules live in `services::api_keys`; these handlers
//! extract, call and render.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{ApiKeyIdParam, ApiPath, ListOut};
use super::{ApiJson, ApiQuery, Page};
use crate::access_log::{AuditNote, target_param};
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::services::api_keys::{
    self as service, ApiKeyList, ApiKeyView, CreatedApiKey, KeyOwner, NewApiKey,
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(remove))
}

/// Who may manage API keys, decided from the headers: any user logged in with a password, or
/// an API key with `admin` (a key without it cannot make keys).
pub struct KeyManager(pub Caller);

impl FromRequestParts<AppState> for KeyManager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if matches!(caller, Caller::ApiKey { .. }) {
            caller.require(Permission::Admin)?;
        }
        Ok(KeyManager(caller))
    }
}

impl KeyManager {
    /// `None`: every key (an owner); otherwise only the caller's own.
    fn scope(&self) -> Option<i32> {
        service::scope_of(&self.0)
    }
}

/// Creates an API key of the calling user, with permissions the user's roles include; the
/// answer shows the key this once (a user logged in with a password, or a key with `admin`).
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", operation_id = "createApiKey",
    request_body = NewApiKey,
    responses((status = 201, description = "Created; `key` is shown only now", body = CreatedApiKey)))]
async fn create(
    KeyManager(caller): KeyManager,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewApiKey>,
) -> Result<(StatusCode, AuditNote, Json<CreatedApiKey>), ApiError> {
    let owner = KeyOwner {
        user_id: caller.user_id(),
        may_grant: caller.permissions().to_vec(),
    };
    let created = service::create(&state.db, &owner, input).await?;
    let note =
        AuditNote::target(target_param("id", &created.view.id.to_string())).with_detail(format!(
            "{} permissions={}",
            target_param("name", &created.view.name),
            Permission::join(&created.view.permissions)
        ));
    Ok((StatusCode::CREATED, note, Json(created)))
}

/// Lists API keys, never the keys themselves: every key for an owner, one's own otherwise.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", operation_id = "listApiKeys",
    params(Page),
    responses((status = 200, description = "A page of API keys", body = ListOut<ApiKeyView>)))]
async fn list(
    manager: KeyManager,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<ApiKeyList>, ApiError> {
    Ok(Json(
        service::list(&state.db, &page, manager.scope()).await?,
    ))
}

/// Revokes an API key at once, on every instance (an owner any key, others their own).
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", operation_id = "revokeApiKey",
    params(ApiKeyIdParam),
    responses((status = 204, description = "Revoked")))]
async fn remove(
    manager: KeyManager,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, ApiError> {
    service::revoke(&state.db, id, manager.scope()).await?;
    Ok(StatusCode::NO_CONTENT)
}
