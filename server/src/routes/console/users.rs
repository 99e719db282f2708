//! Users in the console (owners only): list, create with a one-time set-password link (shown
//! once; no mail server needed), change roles, disable and enable. The set-password page the
//! link opens is public: the token is the credential. Rules: `services::users`.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::{Console, Done, Fields, Layout, Pager, done, page, refused, target};
use crate::auth::need;
use crate::error::ApiError;
use crate::i18n::Tr;
use crate::routes::reports::html;
use crate::services::common::Page;
use crate::services::users::{self as service, NewUser, Role, SetPassword, UserPatch, UserView};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/users", get(list).post(create))
        .route("/console/users/{id}", post(update))
        .route(
            "/console/set-password",
            get(set_password_form).post(set_password),
        )
}

pub struct UserRow {
    pub id: i32,
    pub login: String,
    pub roles: Vec<(&'static str, bool)>,
    pub disabled: bool,
    pub has_password: bool,
    pub created_at: String,
}

impl UserRow {
    fn of(u: &UserView, tr: Tr) -> Self {
        UserRow {
            id: u.id,
            login: u.login.clone(),
            roles: Role::ALL
                .iter()
                .map(|r| (r.as_str(), u.roles.contains(r)))
                .collect(),
            disabled: u.disabled,
            has_password: u.has_password,
            created_at: chrono::DateTime::parse_from_rfc3339(&u.created_at)
                .map(|t| tr.date(t.with_timezone(&chrono::Utc)))
                .unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    layout: Layout,
    rows: Vec<UserRow>,
    pager: Pager,
    roles: Vec<&'static str>,
    /// After a creation: the user and the one-time link.
    created_login: String,
    created_link: String,
    created_expires: String,
    error: String,
    login: String,
}

/// What a render of the page shows besides the list.
struct Shown<'a> {
    status: StatusCode,
    created: Option<(String, String, String)>,
    error: String,
    /// The login typed, after a refusal.
    login: String,
    notice: Option<&'a str>,
}

impl Shown<'_> {
    fn ok(notice: Option<&str>) -> Shown<'_> {
        Shown {
            status: StatusCode::OK,
            created: None,
            error: String::new(),
            login: String::new(),
            notice,
        }
    }

    fn refused(e: ApiError, login: String) -> Shown<'static> {
        Shown {
            status: e.status,
            created: None,
            error: e.message,
            login,
            notice: None,
        }
    }
}

async fn render(
    console: &Console<need::Admin>,
    state: &AppState,
    p: &Page,
    shown: Shown<'_>,
) -> Response {
    let Shown {
        status,
        created,
        error,
        login,
        notice,
    } = shown;
    let users = match service::list(&state.db, p).await {
        Ok(u) => u,
        Err(e) => return refused(console, e),
    };
    let (created_login, created_link, created_expires) = created.unwrap_or_default();
    page(
        status,
        &UsersPage {
            layout: console.layout("users").with_notice(notice),
            rows: users
                .items
                .iter()
                .map(|u| UserRow::of(u, console.tr))
                .collect(),
            pager: Pager::new(p, users.total, "/console/users", &[]),
            roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
            created_login,
            created_link,
            created_expires,
            error,
            login,
        },
    )
}

async fn list(
    console: Console<need::Admin>,
    State(state): State<AppState>,
    Query(q): Query<Done>,
    Query(p): Query<Page>,
) -> Response {
    if let Err(e) = p.validate() {
        return refused(&console, e);
    }
    render(&console, &state, &p, Shown::ok(q.done.as_deref())).await
}

fn roles_of(fields: &Fields) -> Result<Vec<Role>, ApiError> {
    fields
        .all("role")
        .iter()
        .map(|r| Role::parse(r).ok_or_else(|| ApiError::bad_request(format!("unknown role {r:?}"))))
        .collect()
}

const FIRST_PAGE: Page = Page {
    offset: 0,
    limit: 100,
    sort: None,
};

async fn create(
    console: Console<need::Admin>,
    State(state): State<AppState>,
    fields: Fields,
) -> Response {
    let login = fields.get("login").to_owned();
    let outcome = match roles_of(&fields) {
        Ok(roles) => {
            service::create(
                &state.db,
                NewUser {
                    login: login.clone(),
                    roles,
                },
                chrono::Utc::now(),
            )
            .await
        }
        Err(e) => Err(e),
    };
    let target = match &outcome {
        Ok(c) => target(&[("id", &c.user.id.to_string())]),
        Err(_) => String::new(),
    };
    let mut event = console.event("createUser", target);
    event.detail = match &outcome {
        Ok(c) => format!(
            "login={:?} roles={}",
            c.user.login,
            Role::join(&c.user.roles)
        ),
        Err(_) => format!("login={login:?}"),
    };
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(created) => {
            let link = format!(
                "{}/console/set-password?token={}",
                state.public_url.trim_end_matches('/'),
                created.set_password_token
            );
            render(
                &console,
                &state,
                &FIRST_PAGE,
                Shown {
                    status: StatusCode::CREATED,
                    created: Some((created.user.login, link, created.set_password_expires_at)),
                    ..Shown::ok(None)
                },
            )
            .await
        }
        Err(e) => render(&console, &state, &FIRST_PAGE, Shown::refused(e, login)).await,
    }
}

/// Roles (the ticked boxes) and `disabled` of one user, from the row's form.
async fn update(
    console: Console<need::Admin>,
    State(state): State<AppState>,
    Path(id): Path<i32>,
    fields: Fields,
) -> Response {
    let outcome = match roles_of(&fields) {
        Ok(roles) => {
            service::update(
                &state.db,
                Some(console.user_id()),
                id,
                UserPatch {
                    roles: Some(Some(roles)),
                    disabled: Some(Some(fields.checked("disabled"))),
                },
                chrono::Utc::now(),
            )
            .await
        }
        Err(e) => Err(e),
    };
    let mut event = console.event("updateUser", target(&[("id", &id.to_string())]));
    if let Ok(u) = &outcome {
        event.detail = format!("roles={} disabled={}", Role::join(&u.roles), u.disabled);
    }
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(_) => done("/console/users", "saved"),
        Err(e) => {
            render(
                &console,
                &state,
                &FIRST_PAGE,
                Shown::refused(e, String::new()),
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------
// The one-time link

#[derive(Template)]
#[template(path = "console/set_password.html")]
struct SetPasswordPage<'a> {
    token: &'a str,
    error: &'a str,
    tr: Tr,
}

#[derive(serde::Deserialize, Default)]
struct TokenParam {
    token: Option<String>,
}

/// The form the one-time link opens. Whether the token is valid is told only when it is used
/// (the API's rule), so the page does not reveal which tokens exist.
async fn set_password_form(tr: Tr, Query(q): Query<TokenParam>) -> Response {
    html(&SetPasswordPage {
        token: q.token.as_deref().unwrap_or(""),
        error: "",
        tr,
    })
}

#[derive(serde::Deserialize)]
struct SetPasswordForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
}

/// No session exists yet, so there is no CSRF token: the one-time token in the form is the
/// credential, which another site cannot know.
async fn set_password(
    tr: Tr,
    State(state): State<AppState>,
    client: crate::client_addr::ClientAddr,
    form: Result<axum::Form<SetPasswordForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(form)) = form else {
        return (StatusCode::BAD_REQUEST, "unreadable form").into_response();
    };
    let outcome = if form.password != form.repeat {
        Err(ApiError::bad_request(tr.t("password-mismatch")))
    } else {
        service::set_password_with_token(
            &state.db,
            SetPassword {
                token: form.token.clone(),
                password: form.password.clone(),
            },
            chrono::Utc::now(),
        )
        .await
    };
    if let Ok(user) = &outcome {
        let mut event = crate::services::audit::Event::new(
            crate::services::audit::Via::Login,
            user.login.clone(),
            "setPasswordWithToken",
            super::target(&[("id", &user.id.to_string())]),
        );
        event.user_id = Some(user.id);
        event.status = Some(200);
        event.client = Some(client.0.to_string());
        crate::services::audit::record(&state.db, event, chrono::Utc::now()).await;
    }
    match outcome {
        Ok(_) => Redirect::to("/reports/login?next=/console").into_response(),
        Err(e) => {
            let mut response = html(&SetPasswordPage {
                token: &form.token,
                error: &e.message,
                tr,
            });
            *response.status_mut() = e.status;
            response
        }
    }
}
