//! The audit log in the console (owners only): who did what and when, from the vendor API,
//! the console, the CLI and logins alike (one table, so every instance writes to one log),
//! filtered by actor, action, channel, target, dates and failures; exported as CSV with the
//! same filters. Reads `services::audit`.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Console, Layout, Pager, page, refused};
use crate::auth::need;
use crate::error::ApiError;
use crate::services::audit::{self as service, EntryView, Filter, Via};
use crate::services::common::Page;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/audit", get(list))
        .route("/console/audit.csv", get(csv))
}

/// The filter form as typed: empty fields are no filter; bad dates are an error on the page.
#[derive(serde::Deserialize, Default, Clone)]
pub struct FilterForm {
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub via: String,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub failed: String,
}

impl FilterForm {
    fn filter(&self) -> Result<Filter, ApiError> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let date = |field: &str, s: &str| -> Result<Option<chrono::NaiveDate>, ApiError> {
            match text(s) {
                None => Ok(None),
                Some(s) => chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                    .map(Some)
                    .map_err(|_| {
                        ApiError::bad_request(format!("{field} must be a date such as 2026-11-30"))
                    }),
            }
        };
        let via = match self.via.trim() {
            "" => None,
            "api" => Some(Via::Api),
            "console" => Some(Via::Console),
            "cli" => Some(Via::Cli),
            "login" => Some(Via::Login),
            other => return Err(ApiError::bad_request(format!("unknown channel {other:?}"))),
        };
        Ok(Filter {
            actor: text(&self.actor),
            action: text(&self.action),
            via,
            target: text(&self.target),
            from: date("from", &self.from)?,
            to: date("to", &self.to)?,
            failed: (self.failed == "1").then_some(true),
        })
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("actor", self.actor.clone()),
            ("action", self.action.clone()),
            ("via", self.via.clone()),
            ("target", self.target.clone()),
            ("from", self.from.clone()),
            ("to", self.to.clone()),
            ("failed", self.failed.clone()),
        ]
    }
}

pub struct EntryRow {
    pub at: String,
    pub actor: String,
    /// The channel's message id (`via-api`, …).
    pub via_id: &'static str,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub status: String,
    pub failed: bool,
    pub client: String,
}

fn via_id(via: Via) -> &'static str {
    match via {
        Via::Api => "via-api",
        Via::Console => "via-console",
        Via::Cli => "via-cli",
        Via::Login => "via-login",
    }
}

impl EntryRow {
    fn of(e: &EntryView, tr: crate::i18n::Tr) -> Self {
        EntryRow {
            at: chrono::DateTime::parse_from_rfc3339(&e.at)
                .map(|t| {
                    let t = t.with_timezone(&chrono::Utc);
                    format!("{} {}", tr.date(t), t.format("%H:%M:%S"))
                })
                .unwrap_or_else(|_| e.at.clone()),
            actor: e.actor.clone(),
            via_id: via_id(e.via),
            action: e.action.clone(),
            target: e.target.clone(),
            detail: e.detail.clone(),
            status: e.status.map(|s| s.to_string()).unwrap_or_default(),
            failed: e.status.is_some_and(|s| s >= 400),
            client: e.client.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    layout: Layout,
    form: FilterForm,
    rows: Vec<EntryRow>,
    pager: Pager,
    csv_url: String,
    error: String,
}

async fn list(
    console: Console<need::Admin>,
    State(state): State<AppState>,
    Query(form): Query<FilterForm>,
    Query(p): Query<Page>,
) -> Response {
    let pairs = form.pairs();
    let keep: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The serializer is not `Send`: it must be gone before the first `await`.
    let csv_url = {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in keep.iter().filter(|(_, v)| !v.is_empty()) {
            q.append_pair(k, v);
        }
        format!("/console/audit.csv?{}", q.finish())
    };
    let found = match form.filter().and_then(|f| p.validate().map(|()| f)) {
        Ok(filter) => service::list(&state.db, &filter, &p).await,
        Err(e) => Err(e),
    };
    let (rows, total, error, status) = match found {
        Ok(list) => (
            list.items
                .iter()
                .map(|e| EntryRow::of(e, console.tr))
                .collect(),
            list.total,
            String::new(),
            StatusCode::OK,
        ),
        Err(e) if e.status.is_client_error() => (Vec::new(), 0, e.message, e.status),
        Err(e) => return refused(&console, e),
    };
    page(
        status,
        &AuditPage {
            layout: console.layout("audit"),
            pager: Pager::new(&p, total, "/console/audit", &keep),
            form,
            rows,
            csv_url,
            error,
        },
    )
}

async fn csv(
    console: Console<need::Admin>,
    State(state): State<AppState>,
    Query(form): Query<FilterForm>,
) -> Response {
    let filter = match form.filter() {
        Ok(f) => f,
        Err(e) => return refused(&console, e),
    };
    let body = match service::csv_stream(&state.db, &filter).await {
        Ok(b) => b,
        Err(e) => return refused(&console, e),
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"vypusk-audit.csv\""),
            ),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}
