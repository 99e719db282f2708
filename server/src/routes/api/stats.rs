//! Statistics reports (SPEC §7), permission `read` (downloads per license, which name license
//! keys, need `licenses`): `/api/v1/stats/downloads`,
//! `/api/v1/stats/upgrade-paths`, `/api/v1/stats/installed-base` as JSON or CSV, and
//! `/api/v1/stats/pipeline` (the capture queue's counters). The HTML reports under `/reports`
//! render the same tables.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ApiQuery;
use crate::auth::{Authorized, Caller, Permission, need};
use crate::error::ApiError;
use crate::state::AppState;
use crate::stats::query::{self, BaseGroupBy, Filter, GroupBy, Table};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/stats/downloads", get(downloads))
        .route("/v1/stats/upgrade-paths", get(upgrade_paths))
        .route("/v1/stats/installed-base", get(installed_base))
        .route("/v1/stats/pipeline", get(pipeline))
}

/// Query parameters of every report; all optional, validated here so errors read well.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatsParams {
    pub from: Option<String>,
    pub to: Option<String>,
    /// Distribution code.
    pub distribution: Option<String>,
    /// Release id, or a version of `distribution`.
    pub release: Option<String>,
    pub group_by: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    /// Installed base: the last N days (default 30).
    pub days: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl StatsParams {
    pub fn distribution_id(&self, state: &AppState) -> Result<Option<i32>, ApiError> {
        match given(&self.distribution) {
            None => Ok(None),
            Some(code) => state
                .catalog
                .distribution(code)
                .map(|d| Some(d.id))
                .ok_or_else(|| ApiError::not_found(format!("distribution {code:?} not found"))),
        }
    }

    pub fn filter(&self, state: &AppState) -> Result<Filter, ApiError> {
        let today = chrono::Utc::now().date_naive();
        let (from, to) = query::date_range(given(&self.from), given(&self.to), today)
            .map_err(ApiError::bad_request)?;
        let distribution_id = self.distribution_id(state)?;
        let release_id = match given(&self.release) {
            None => None,
            Some(r) => Some(match r.parse::<i32>() {
                Ok(id) => id,
                Err(_) => {
                    let code = given(&self.distribution).ok_or_else(|| {
                        ApiError::bad_request(
                            "release is a release id, or a version with distribution",
                        )
                    })?;
                    let dist = state.catalog.distribution(code).ok_or_else(|| {
                        ApiError::not_found(format!("distribution {code:?} not found"))
                    })?;
                    let wanted = vypusk_protocol::Version::parse(dist.scheme, r)
                        .map_err(|e| ApiError::bad_request(format!("release: {e}")))?;
                    dist.releases
                        .iter()
                        .find(|rel| rel.version == wanted)
                        .map(|rel| rel.id)
                        .ok_or_else(|| {
                            ApiError::not_found(format!("release {r} of {code} not found"))
                        })?
                }
            }),
        };
        Ok(Filter {
            from,
            to,
            distribution_id,
            release_id,
        })
    }

    pub fn group_by(&self) -> Result<GroupBy, ApiError> {
        match given(&self.group_by) {
            None => Ok(GroupBy::Day),
            Some(g) => serde_json::from_value(Value::String(g.to_owned())).map_err(|_| {
                ApiError::bad_request(format!(
                    "group_by must be day, release, distribution, conf or license, not {g:?}"
                ))
            }),
        }
    }

    /// Downloads per license name license keys, which are customer data: only a caller with
    /// `licenses` may group by license (403 otherwise).
    pub fn check_may_read(&self, caller: &Caller) -> Result<(), ApiError> {
        if self.group_by()? == GroupBy::License && !caller.has(Permission::Licenses) {
            return Err(ApiError::forbidden(
                "downloads per license name license keys: this needs the \"licenses\" permission",
            ));
        }
        Ok(())
    }

    pub fn base_group_by(&self) -> Result<BaseGroupBy, ApiError> {
        match given(&self.group_by) {
            None => Ok(BaseGroupBy::Version),
            Some(g) => serde_json::from_value(Value::String(g.to_owned())).map_err(|_| {
                ApiError::bad_request(format!("group_by must be version or conf, not {g:?}"))
            }),
        }
    }

    pub fn days(&self) -> Result<u32, ApiError> {
        match given(&self.days) {
            None => Ok(30),
            Some(d) => d
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=3660).contains(d))
                .ok_or_else(|| ApiError::bad_request("days must be a number from 1 to 3660")),
        }
    }

    pub fn csv(&self) -> Result<bool, ApiError> {
        match given(&self.format) {
            None | Some("json") => Ok(false),
            Some("csv") => Ok(true),
            Some(f) => Err(ApiError::bad_request(format!(
                "format must be json or csv, not {f:?}"
            ))),
        }
    }
}

/// The downloads report: table plus what it covers.
pub async fn downloads_report(
    state: &AppState,
    params: &StatsParams,
) -> Result<(Table, Map<String, Value>), ApiError> {
    let filter = params.filter(state)?;
    let group_by = params.group_by()?;
    let table = query::downloads(&state.db, &filter, group_by).await?;
    let mut meta = range_meta(&filter, params);
    meta.insert("group_by".into(), json!(group_by.as_str()));
    if let Some(r) = filter.release_id {
        meta.insert("release_id".into(), json!(r));
    }
    Ok((table, meta))
}

pub async fn upgrade_paths_report(
    state: &AppState,
    params: &StatsParams,
) -> Result<(Table, Map<String, Value>), ApiError> {
    let filter = params.filter(state)?;
    let table = query::upgrade_paths(&state.db, &filter).await?;
    Ok((table, range_meta(&filter, params)))
}

pub async fn installed_base_report(
    state: &AppState,
    params: &StatsParams,
) -> Result<(Table, Map<String, Value>), ApiError> {
    let distribution_id = params.distribution_id(state)?;
    let days = params.days()?;
    let group_by = params.base_group_by()?;
    let table = query::installed_base(
        &state.db,
        distribution_id,
        days,
        group_by,
        chrono::Utc::now(),
    )
    .await?;
    let mut meta = Map::new();
    meta.insert("days".into(), json!(days));
    meta.insert(
        "group_by".into(),
        json!(match group_by {
            BaseGroupBy::Version => "version",
            BaseGroupBy::Conf => "conf",
        }),
    );
    if let Some(d) = given(&params.distribution) {
        meta.insert("distribution".into(), json!(d));
    }
    Ok((table, meta))
}

fn range_meta(filter: &Filter, params: &StatsParams) -> Map<String, Value> {
    let mut meta = Map::new();
    meta.insert(
        "from".into(),
        json!(filter.from.format("%Y-%m-%d").to_string()),
    );
    meta.insert("to".into(), json!(filter.to.format("%Y-%m-%d").to_string()));
    if let Some(d) = given(&params.distribution) {
        meta.insert("distribution".into(), json!(d));
    }
    meta
}

/// JSON, or CSV as an attachment named after the report.
pub fn render(table: Table, meta: Map<String, Value>, csv: bool, name: &str) -> Response {
    if csv {
        let mut response = table.to_csv().into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\"")) {
            headers.insert(header::CONTENT_DISPOSITION, v);
        }
        response
    } else {
        axum::Json(query::report_json(&table, meta)).into_response()
    }
}

async fn downloads(
    caller: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, ApiError> {
    params.check_may_read(&caller.0)?;
    let csv = params.csv()?;
    let (table, meta) = downloads_report(&state, &params).await?;
    let name = format!(
        "downloads-by-{}",
        meta["group_by"].as_str().unwrap_or("day")
    );
    Ok(render(table, meta, csv, &name))
}

async fn upgrade_paths(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, ApiError> {
    let csv = params.csv()?;
    let (table, meta) = upgrade_paths_report(&state, &params).await?;
    Ok(render(table, meta, csv, "upgrade-paths"))
}

async fn installed_base(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, ApiError> {
    let csv = params.csv()?;
    let (table, meta) = installed_base_report(&state, &params).await?;
    Ok(render(table, meta, csv, "installed-base"))
}

/// The capture pipeline's counters since start.
async fn pipeline(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(json!({
        "queued": state.stats.queued(),
        "queue_capacity": crate::recorder::QUEUE,
        "written_events": state.stats.written(),
        "dropped_events": state.stats.dropped(),
        "failed_events": state.stats.failed(),
        "retention_days": state.settings.stats_retention_days,
    }))
    .into_response())
}
