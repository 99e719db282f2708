//! The user's own account: change the password (proving the current one). Every session of
//! the user ends with it, this one included, so the user logs in again.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::{Console, Fields, Layout, page, target};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::services::users::{self as service, ChangePassword};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/account", get(show).post(change_password))
}

#[derive(Template)]
#[template(path = "console/account.html")]
struct AccountPage {
    layout: Layout,
    error: String,
    by_key: bool,
}

async fn show(console: Console) -> Response {
    let by_key = matches!(console.caller, Caller::ApiKey { .. });
    page(
        StatusCode::OK,
        &AccountPage {
            layout: console.layout("account"),
            error: String::new(),
            by_key,
        },
    )
}

async fn change_password(
    console: Console,
    State(state): State<AppState>,
    fields: Fields,
) -> Response {
    let by_key = matches!(console.caller, Caller::ApiKey { .. });
    let outcome = if by_key {
        Err(ApiError::forbidden(console.tr.t("account-by-key")))
    } else if fields.raw("new_password") != fields.raw("repeat") {
        Err(ApiError::bad_request(console.tr.t("password-mismatch")))
    } else {
        service::change_password(
            &state.db,
            console.user_id(),
            ChangePassword {
                current_password: fields.raw("current_password").to_owned(),
                new_password: fields.raw("new_password").to_owned(),
            },
            chrono::Utc::now(),
        )
        .await
    };
    let event = console.event(
        "changeOwnPassword",
        target(&[("id", &console.user_id().to_string())]),
    );
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(()) => Redirect::to("/reports/login?next=/console").into_response(),
        Err(e) => page(
            e.status,
            &AccountPage {
                layout: console.layout("account"),
                error: e.message,
                by_key,
            },
        ),
    }
}
