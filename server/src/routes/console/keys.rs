//! API keys in the console: a user's own keys (an owner sees every key), created with
//! permissions the user's roles include and shown once, listed with their last use, revoked.
//! The rules are `services::api_keys`'s, as for `/api/v1/api-keys`.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use super::{Console, Done, Fields, Layout, Pager, done, page, refused, target};
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::services::api_keys::{self as service, KeyOwner, NewApiKey};
use crate::services::common::Page;
use crate::services::users;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/keys", get(list).post(create))
        .route("/console/keys/{id}/revoke", post(revoke))
}

/// A session opened with an API key manages keys only when that key is an `admin` one (as
/// the vendor API rules).
fn may_manage(caller: &Caller) -> Result<(), ApiError> {
    if matches!(caller, Caller::ApiKey { .. }) {
        caller.require(Permission::Admin)?;
    }
    Ok(())
}

pub struct KeyRow {
    pub id: i32,
    pub name: String,
    pub prefix: String,
    pub permissions: String,
    pub user: String,
    pub created_at: String,
    pub last_used_at: String,
}

pub struct Grantable {
    pub name: &'static str,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    layout: Layout,
    rows: Vec<KeyRow>,
    pager: Pager,
    grantable: Vec<Grantable>,
    all_users: bool,
    created_key: String,
    created_name: String,
    error: String,
    name: String,
}

/// An RFC 3339 time of a view as the page's language writes it.
fn short_time(tr: crate::i18n::Tr, rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| tr.time(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// What a render of the page shows besides the list.
struct Shown<'a> {
    status: StatusCode,
    created: Option<(String, String)>,
    error: String,
    /// The name typed, after a refusal.
    name: String,
    notice: Option<&'a str>,
}

impl Shown<'_> {
    fn ok(notice: Option<&str>) -> Shown<'_> {
        Shown {
            status: StatusCode::OK,
            created: None,
            error: String::new(),
            name: String::new(),
            notice,
        }
    }

    fn refused(e: ApiError, name: String) -> Shown<'static> {
        Shown {
            status: e.status,
            created: None,
            error: e.message,
            name,
            notice: None,
        }
    }
}

async fn render(console: &Console, state: &AppState, p: &Page, shown: Shown<'_>) -> Response {
    let Shown {
        status,
        created,
        error,
        name,
        notice,
    } = shown;
    let scope = service::scope_of(&console.caller);
    let keys = match service::list(&state.db, p, scope).await {
        Ok(k) => k,
        Err(e) => return refused(console, e),
    };
    let logins: HashMap<i32, String> = if scope.is_none() {
        let all = Page {
            offset: 0,
            limit: 1000,
            sort: None,
        };
        match users::list(&state.db, &all).await {
            Ok(list) => list.items.into_iter().map(|u| (u.id, u.login)).collect(),
            Err(e) => return refused(console, e),
        }
    } else {
        HashMap::new()
    };
    let rows = keys
        .items
        .iter()
        .map(|k| KeyRow {
            id: k.id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            permissions: k
                .permissions
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            user: k
                .user_id
                .and_then(|u| logins.get(&u).cloned())
                .unwrap_or_default(),
            created_at: short_time(console.tr, &k.created_at),
            last_used_at: k
                .last_used_at
                .as_deref()
                .map(|t| short_time(console.tr, t))
                .unwrap_or_default(),
        })
        .collect();
    let grantable = Permission::ALL
        .iter()
        .filter(|p| console.has(**p))
        .map(|p| Grantable {
            name: p.as_str(),
            checked: *p == Permission::Read,
        })
        .collect();
    let (created_name, created_key) = created.unwrap_or_default();
    page(
        status,
        &KeysPage {
            layout: console.layout("keys").with_notice(notice),
            rows,
            pager: Pager::new(p, keys.total, "/console/keys", &[]),
            grantable,
            all_users: scope.is_none(),
            created_key,
            created_name,
            error,
            name,
        },
    )
}

async fn list(
    console: Console,
    State(state): State<AppState>,
    Query(q): Query<Done>,
    Query(p): Query<Page>,
) -> Response {
    if let Err(e) = may_manage(&console.caller).and_then(|()| p.validate()) {
        return refused(&console, e);
    }
    render(&console, &state, &p, Shown::ok(q.done.as_deref())).await
}

async fn create(console: Console, State(state): State<AppState>, fields: Fields) -> Response {
    if let Err(e) = may_manage(&console.caller) {
        return refused(&console, e);
    }
    let name = fields.get("name").to_owned();
    let permissions = fields
        .all("permission")
        .iter()
        .map(|p| {
            Permission::parse(p)
                .ok_or_else(|| ApiError::bad_request(format!("unknown permission {p:?}")))
        })
        .collect::<Result<Vec<_>, _>>();
    let owner = KeyOwner {
        user_id: console.user_id(),
        may_grant: console.caller.permissions().to_vec(),
    };
    let outcome = match permissions {
        Ok(permissions) => {
            service::create(
                &state.db,
                &owner,
                NewApiKey {
                    name: name.clone(),
                    permissions,
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    let target = match &outcome {
        Ok(c) => target(&[("id", &c.view.id.to_string())]),
        Err(_) => String::new(),
    };
    let mut event = console.event("createApiKey", target);
    if let Ok(c) = &outcome {
        event.detail = format!(
            "name={:?} permissions={}",
            c.view.name,
            Permission::join(&c.view.permissions)
        );
    }
    console.record(&state, event, &outcome).await;
    let first = Page {
        offset: 0,
        limit: 100,
        sort: None,
    };
    match outcome {
        // The key is shown in this answer only; it is stored hashed.
        Ok(created) => {
            render(
                &console,
                &state,
                &first,
                Shown {
                    status: StatusCode::CREATED,
                    created: Some((created.view.name, created.key)),
                    ..Shown::ok(None)
                },
            )
            .await
        }
        Err(e) => render(&console, &state, &first, Shown::refused(e, name)).await,
    }
}

async fn revoke(
    console: Console,
    State(state): State<AppState>,
    Path(id): Path<i32>,
    _fields: Fields,
) -> Response {
    let outcome = match may_manage(&console.caller) {
        Ok(()) => service::revoke(&state.db, id, service::scope_of(&console.caller)).await,
        Err(e) => Err(e),
    };
    let event = console.event("revokeApiKey", target(&[("id", &id.to_string())]));
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(()) => done("/console/keys", "revoked"),
        Err(e) => refused(&console, e),
    }
}
