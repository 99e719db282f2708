//! `GET /api/v1/audit`: the audit log (`services::audit`), filtered, as a JSON page or as CSV
//! (permission `admin`: owners).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiQuery;
use super::common::ListOut;
use crate::auth::{Authorized, need};
use crate::error::ApiError;
use crate::services::audit::{self as service, EntryView, Filter, Via};
use crate::services::common;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The filters, the page and the format; every parameter optional. Blank values are absent.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries whose actor contains this (case-insensitive): a login, `api-key:3`, `cli`.
    #[param(example = "maria")]
    pub actor: Option<String>,
    /// Entries of exactly this action: an operation id (`publishRelease`, `createLicense`,
    /// `revokeApiKey` …) or `login`, `loginFailed`, `logout`.
    #[param(example = "publishRelease")]
    pub action: Option<String>,
    /// `api`, `console`, `cli` or `login`.
    #[param(example = "api")]
    pub via: Option<String>,
    /// Entries whose target contains this (case-insensitive), e.g. `code="CRM"` or a license
    /// key's fingerprint.
    pub target: Option<String>,
    /// First day, `YYYY-MM-DD` (UTC).
    #[param(example = "2026-12-01")]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), included.
    #[param(example = "2026-12-31")]
    pub to: Option<String>,
    /// `true`: only entries answered with status 400 or more (refused, failed logins);
    /// `false`: only the others.
    #[param(example = false)]
    pub failed: Option<String>,
    /// How many entries to skip (JSON only).
    #[param(minimum = 0)]
    pub offset: Option<u64>,
    /// How many entries at most, 1 to 1000 (JSON only; default 100).
    #[param(minimum = 1, maximum = 1000, example = 100)]
    pub limit: Option<u64>,
    /// Sort by `at` (the default, newest first: `-at`), `id`, `actor`, `action` or `status`;
    /// `-` in front for descending (JSON only; the CSV is always newest first).
    pub sort: Option<String>,
    /// `json` (default) or `csv` (also chosen by `Accept: text/csv`): every matching entry,
    /// newest first, at most 1,000,000 rows.
    #[param(example = "json")]
    pub format: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `value` of parameter `name`, parsed; blank is absent, anything unparsable a 400 that says
/// what was expected.
fn parsed<T: std::str::FromStr>(
    name: &str,
    value: &Option<String>,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    match given(value) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "{name} must be {expected}, not {}",
                crate::error::quote(v)
            ))
        }),
    }
}

impl AuditQuery {
    fn filter(&self) -> Result<Filter, ApiError> {
        Ok(Filter {
            actor: given(&self.actor).map(str::to_owned),
            action: given(&self.action).map(str::to_owned),
            via: parsed::<Via>("via", &self.via, "api, console, cli or login")?,
            target: given(&self.target).map(str::to_owned),
            from: parsed("from", &self.from, "a date YYYY-MM-DD")?,
            to: parsed("to", &self.to, "a date YYYY-MM-DD")?,
            failed: parsed("failed", &self.failed, "true or false")?,
        })
    }

    /// CSV when `format=csv`, or without `format` when `Accept` names `text/csv`.
    fn csv(&self, headers: &HeaderMap) -> Result<bool, ApiError> {
        match given(&self.format) {
            Some("csv") => Ok(true),
            Some("json") => Ok(false),
            Some(f) => Err(ApiError::bad_request(format!(
                "format must be json or csv, not {}",
                crate::error::quote(f)
            ))),
            None => Ok(headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.to_ascii_lowercase().contains("text/csv"))),
        }
    }
}

/// The audit log: who did what and when — changes through the vendor API, the console and
/// the CLI, logins, failed logins and logouts — newest first, filtered (permission `admin`:
/// owners). `format=csv` (or `Accept: text/csv`) answers every matching entry as a CSV
/// attachment instead of a page.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", operation_id = "listAuditLog",
    params(AuditQuery),
    responses((status = 200, description = "A page of entries, or every matching entry as CSV", content(
        (ListOut<EntryView> = "application/json"),
        (String = "text/csv"),
    ))))]
async fn list(
    _: Authorized<need::Admin>,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let filter = query.filter()?;
    if query.csv(&headers)? {
        return csv(state, &filter).await;
    }
    let page = common::page(query.offset, query.limit, query.sort.clone())?;
    Ok(Json(service::list(&state.db, &filter, &page).await?).into_response())
}

/// The CSV export as an attachment, streamed (`services::audit::csv_stream`).
pub async fn csv(state: AppState, filter: &Filter) -> Result<Response, ApiError> {
    let body = service::csv_stream(&state.db, filter).await?;
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"vypusk-audit.csv\""),
    );
    Ok(response)
}
