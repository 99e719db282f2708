//! `/api/v1/users`: users of the vendor API and their roles (owner only), setting a password
//! with a one-time token (no credentials), and changing one's own password. The rules live in
//! `services::users`; these handlers extract, call and render.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::common::{ApiPath, ListOut, UserIdParam};
use super::{ApiJson, ApiQuery, Page};
use crate::access_log::{AuditNote, target_param};
use crate::auth::{Authorized, Caller, need};
use crate::error::{ApiError, ApiErrorBody};
use crate::services::users::{
    self as service, ChangePassword, CreatedUser, NewUser, SetPassword, UserList, UserPatch,
    UserView,
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update))
        .routes(routes!(me))
        .routes(routes!(set_password))
        .routes(routes!(change_password))
}

/// Lists users (permission `admin`: owners).
#[utoipa::path(get, path = "/v1/users", tag = "users", operation_id = "listUsers",
    params(Page),
    responses((status = 200, description = "A page of users", body = ListOut<UserView>)))]
async fn list(
    _: Authorized<need::Admin>,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<UserList>, ApiError> {
    Ok(Json(service::list(&state.db, &page).await?))
}

/// Creates a user with roles and no password; the answer holds a one-time set-password token,
/// shown only now, valid for 72 hours (permission `admin`: owners).
#[utoipa::path(post, path = "/v1/users", tag = "users", operation_id = "createUser",
    request_body = NewUser,
    responses(
        (status = 201, description = "Created; `set_password_token` is shown only now", body = CreatedUser),
        (status = 409, description = "The login is taken", body = ApiErrorBody),
    ))]
async fn create(
    _: Authorized<need::Admin>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewUser>,
) -> Result<(StatusCode, AuditNote, Json<CreatedUser>), ApiError> {
    let created = service::create(&state.db, input, chrono::Utc::now()).await?;
    let note = AuditNote::target(target_param("id", &created.user.id.to_string()))
        .with_detail(user_detail(&created.user));
    Ok((StatusCode::CREATED, note, Json(created)))
}

/// One user (permission `admin`: owners).
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", operation_id = "getUser",
    params(UserIdParam),
    responses((status = 200, description = "The user", body = UserView)))]
async fn get_one(
    _: Authorized<need::Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(service::get(&state.db, id).await?))
}

/// Changes a user's roles or disables (enables) the user; only the fields given change. A
/// disabled user's password and API keys stop working at once. The last enabled owner can be
/// neither disabled nor demoted, and no owner disables or demotes themself (permission
/// `admin`: owners).
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", operation_id = "updateUser",
    params(UserIdParam),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user as changed", body = UserView),
        (status = 409, description = "The change would leave no enabled owner, or an owner would disable or demote themself", body = ApiErrorBody),
    ))]
async fn update(
    owner: Authorized<need::Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(input): ApiJson<UserPatch>,
) -> Result<(AuditNote, Json<UserView>), ApiError> {
    let actor = Some(owner.0.user_id());
    let user = service::update(&state.db, actor, id, input, chrono::Utc::now()).await?;
    Ok((
        AuditNote::default().with_detail(user_detail(&user)),
        Json(user),
    ))
}

/// The calling user (the user of the calling API key): login, roles, permissions.
#[utoipa::path(get, path = "/v1/users/me", tag = "users", operation_id = "getCurrentUser",
    responses((status = 200, description = "The calling user", body = UserView)))]
async fn me(caller: Caller, State(state): State<AppState>) -> Result<Json<UserView>, ApiError> {
    Ok(Json(service::get(&state.db, caller.user_id()).await?))
}

/// Sets a new user's password with the one-time token from the user's creation; no
/// credentials needed. The token works once and for 72 hours; the password has at least 12
/// characters.
#[utoipa::path(post, path = "/v1/users/set-password", tag = "users", operation_id = "setPasswordWithToken",
    request_body = SetPassword,
    responses((status = 204, description = "The password is set; the token is used up")))]
async fn set_password(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<SetPassword>,
) -> Result<(AuditNote, StatusCode), ApiError> {
    let user = service::set_password_with_token(&state.db, input, chrono::Utc::now()).await?;
    // No credentials: the token's user is who acted.
    let note = AuditNote {
        target: target_param("id", &user.id.to_string()),
        actor: Some((user.login, user.id)),
        ..AuditNote::default()
    };
    Ok((note, StatusCode::NO_CONTENT))
}

/// Changes the calling user's own password (HTTP Basic only: an API key cannot change a
/// password). Servers refuse the old password with their next request.
#[utoipa::path(post, path = "/v1/users/me/password", tag = "users", operation_id = "changeOwnPassword",
    request_body = ChangePassword,
    responses((status = 204, description = "Changed")))]
async fn change_password(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    let Caller::User { id, .. } = caller else {
        return Err(ApiError::forbidden(
            "an API key cannot change a password: log in with the user's password",
        ));
    };
    service::change_password(&state.db, id, input, chrono::Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user as an audit entry's detail: login, roles, and whether disabled.
fn user_detail(user: &UserView) -> String {
    let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
    format!(
        "{} roles={}{}",
        target_param("login", &user.login),
        roles.join(","),
        if user.disabled { " disabled" } else { "" }
    )
}
