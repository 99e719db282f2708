//! Statistics reports (SPEC §7), permission `read` (downloads per license, which name license
//! keys, need `licenses`): `/api/v1/stats/downloads`,
//! `/api/v1/stats/upgrade-paths`, `/api/v1/stats/installed-base` as JSON or CSV, and
//! `/api/v1/stats/pipeline` (the capture queue's counters). The HTML reports under `/reports`
//! render the same tables.
//!
//! Issue 13 item 3 adds `/api/v1/stats/active-installations`, `/api/v1/stats/newest-share`,
//! `/api/v1/stats/unknown-keys` (permission `read`; per key needs `licenses`) and the reports
//! naming customers, `/api/v1/stats/customers` and `/api/v1/stats/expiring-subscriptions`
//! (permission `licenses`): a `viewer` sees no customer data.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiQuery;
use crate::auth::{Authorized, Caller, Permission, need};
use crate::error::ApiError;
use crate::state::AppState;
use crate::stats::audience;
use crate::stats::query::{self, BaseGroupBy, Cell, Filter, GroupBy, Table};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(downloads))
        .routes(routes!(upgrade_paths))
        .routes(routes!(installed_base))
        .routes(routes!(active_installations))
        .routes(routes!(customers))
        .routes(routes!(expiring_subscriptions))
        .routes(routes!(newest_share))
        .routes(routes!(unknown_keys))
        .routes(routes!(pipeline))
}

/// Query parameters of every report; all optional, validated here so errors read well.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// First day, `YYYY-MM-DD` (default: 30 days before `to`).
    #[param(example = "2026-11-01")]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (default: today, UTC).
    #[param(example = "2026-11-30")]
    pub to: Option<String>,
    /// Distribution code.
    #[param(example = "PT40_UT_CRM3")]
    pub distribution: Option<String>,
    /// Release id, or a version of `distribution`.
    pub release: Option<String>,
    /// Downloads: `day` (default), `release`, `distribution`, `conf` or `license` (needs
    /// `licenses`); installed base: `version` (default) or `conf`; unknown keys: `day`
    /// (default) or `key` (needs `licenses`).
    pub group_by: Option<String>,
    /// `json` (default) or `csv`.
    #[param(example = "json")]
    pub format: Option<String>,
    /// Installed base and newest share: installations seen in the last N days; expiring
    /// subscriptions: ending within the next N days (default 30).
    #[param(example = "30")]
    pub days: Option<String>,
    /// Customers: part of the license key, customer name or ITN (any case).
    pub search: Option<String>,
    /// Customers: `true` lists only installations not on the newest release.
    #[param(example = "false")]
    pub behind: Option<String>,
    /// Customers (JSON): rows to skip (default 0); the CSV has every row.
    #[param(example = "0")]
    pub offset: Option<String>,
    /// Customers (JSON): rows at most, 1 to 1000 (default 100).
    #[param(example = "100")]
    pub limit: Option<String>,
}

/// What a report covers, as its answer states it.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ReportMeta {
    /// First day of the range.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026-11-01")]
    pub from: Option<String>,
    /// Last day of the range.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026-11-30")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "day")]
    pub group_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_id: Option<i32>,
    /// Installed base, newest share: the window in days; expiring subscriptions: the days
    /// ahead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// Customers: the search text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// Customers: only installations not on the newest release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behind: Option<bool>,
    /// Customers: rows matching in all, and the window of them in `rows`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// Sums of a report's count columns, those it has.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ReportTotals {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downloads: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installations: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i64>,
}

/// A report as JSON: what it covers, its columns, a row per group (column → value), totals.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatsReport {
    #[serde(flatten)]
    pub meta: ReportMeta,
    #[schema(example = json!(["day", "downloads", "completed", "bytes"]))]
    pub columns: Vec<String>,
    /// One object per row: column name → text or number.
    #[schema(example = json!([{"day": "2026-11-30", "downloads": 12, "completed": 11, "bytes": 9525736}]))]
    pub rows: Vec<BTreeMap<String, Cell>>,
    pub totals: ReportTotals,
}

impl StatsReport {
    pub fn new(table: &Table, meta: ReportMeta) -> StatsReport {
        let total = |c: &str| {
            table
                .column(c)
                .filter(|_| table.summable(c))
                .map(|_| table.total(c))
        };
        StatsReport {
            meta,
            columns: table.columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: table
                .rows
                .iter()
                .map(|row| {
                    table
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| ((*c).to_owned(), v.clone()))
                        .collect()
                })
                .collect(),
            totals: ReportTotals {
                downloads: total("downloads"),
                completed: total("completed"),
                bytes: total("bytes"),
                installations: total("installations"),
                attempts: total("attempts"),
            },
        }
    }
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

    pub fn behind(&self) -> Result<bool, ApiError> {
        match given(&self.behind) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(b) => Err(ApiError::bad_request(format!(
                "behind must be true or false, not {b:?}"
            ))),
        }
    }

    /// The rows wanted, by the lists' one paging rule (`services::common::page`).
    pub fn window(&self) -> Result<(u64, u64), ApiError> {
        let number = |name: &str, v: &Option<String>| -> Result<Option<u64>, ApiError> {
            given(v)
                .map(|s| {
                    s.parse::<u64>().map_err(|_| {
                        ApiError::bad_request(format!("{name} must be a whole number, not {s:?}"))
                    })
                })
                .transpose()
        };
        let page = crate::services::common::page(
            number("offset", &self.offset)?,
            number("limit", &self.limit)?,
            None,
        )?;
        Ok((page.offset, page.limit))
    }

    /// Unknown keys per `day` (default) or per `key`.
    pub fn per_key(&self) -> Result<bool, ApiError> {
        match given(&self.group_by) {
            None | Some("day") => Ok(false),
            Some("key") => Ok(true),
            Some(g) => Err(ApiError::bad_request(format!(
                "group_by must be day or key, not {g:?}"
            ))),
        }
    }

    /// The keys tried are what clients typed, maybe a customer's key mistyped: per key needs
    /// `licenses` (403 otherwise).
    pub fn check_may_read_keys(&self, caller: &Caller) -> Result<(), ApiError> {
        if self.per_key()? && !caller.has(Permission::Licenses) {
            return Err(ApiError::forbidden(
                "unknown keys per key name the keys: this needs the \"licenses\" permission",
            ));
        }
        Ok(())
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
) -> Result<(Table, ReportMeta), ApiError> {
    let filter = params.filter(state)?;
    let group_by = params.group_by()?;
    let table = query::downloads(&state.db, &filter, group_by).await?;
    let meta = ReportMeta {
        group_by: Some(group_by.as_str().to_owned()),
        release_id: filter.release_id,
        ..range_meta(&filter, params)
    };
    Ok((table, meta))
}

pub async fn upgrade_paths_report(
    state: &AppState,
    params: &StatsParams,
) -> Result<(Table, ReportMeta), ApiError> {
    let filter = params.filter(state)?;
    let table = query::upgrade_paths(&state.db, &filter).await?;
    Ok((table, range_meta(&filter, params)))
}

pub async fn installed_base_report(
    state: &AppState,
    params: &StatsParams,
) -> Result<(Table, ReportMeta), ApiError> {
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
    let meta = ReportMeta {
        days: Some(days),
        group_by: Some(
            match group_by {
                BaseGroupBy::Version => "version",
                BaseGroupBy::Conf => "conf",
            }
            .to_owned(),
        ),
        distribution: given(&params.distribution).map(str::to_owned),
        ..ReportMeta::default()
    };
    Ok((table, meta))
}

pub async fn active_installations_report(
    state: &AppState,
    params: &StatsParams,
) -> Result<(Table, ReportMeta), ApiError> {
    let filter = params.filter(state)?;
    let table = audience::active_installations(&state.db, &filter).await?;
    Ok((table, range_meta(&filter, params)))
}

pub fn customer_filter(
    state: &AppState,
    params: &StatsParams,
) -> Result<audience::CustomerFilter, ApiError> {
    Ok(audience::CustomerFilter {
        distribution_id: params.distribution_id(state)?,
        search: given(&params.search).map(str::to_owned),
        behind_only: params.behind()?,
    })
}

/// The per-customer rows in `window` (every row for `None`), with what they cover.
pub async fn customers_report(
    state: &AppState,
    params: &StatsParams,
    window: audience::Window,
) -> Result<(Table, ReportMeta), ApiError> {
    let filter = customer_filter(state, params)?;
    let newest = audience::NewestReleases::of(&state.catalog);
    let (table, total) = audience::customers(&state.db, &filter, &newest, window).await?;
    let meta = ReportMeta {
        distribution: given(&params.distribution).map(str::to_owned),
        search: filter.search.clone(),
        behind: Some(filter.behind_only),
        total: Some(total),
        offset: window.map(|(offset, _)| offset),
        limit: window.map(|(_, limit)| limit),
        ..ReportMeta::default()
    };
    Ok((table, meta))
}

pub async fn expiring_report(
    state: &AppState,
    params: &StatsParams,
) -> Result<(Table, ReportMeta), ApiError> {
    let days = params.days()?;
    let names = crate::services::products::names(&state.db).await?;
    let table = audience::expiring(&state.db, days, chrono::Utc::now(), &names).await?;
    let meta = ReportMeta {
        days: Some(days),
        ..ReportMeta::default()
    };
    Ok((table, meta))
}

pub async fn newest_share_report(
    state: &AppState,
    params: &StatsParams,
) -> Result<(Table, ReportMeta), ApiError> {
    let distribution_id = params.distribution_id(state)?;
    let days = params.days()?;
    let newest = audience::NewestReleases::of(&state.catalog);
    let table = audience::newest_share(
        &state.db,
        distribution_id,
        days,
        chrono::Utc::now(),
        &newest,
    )
    .await?;
    let meta = ReportMeta {
        days: Some(days),
        distribution: given(&params.distribution).map(str::to_owned),
        ..ReportMeta::default()
    };
    Ok((table, meta))
}

pub async fn unknown_keys_report(
    state: &AppState,
    params: &StatsParams,
) -> Result<(Table, ReportMeta), ApiError> {
    let filter = params.filter(state)?;
    let per_key = params.per_key()?;
    let table = if per_key {
        audience::unknown_keys_per_key(&state.db, &filter).await?
    } else {
        audience::unknown_keys_per_day(&state.db, &filter).await?
    };
    let meta = ReportMeta {
        group_by: Some(if per_key { "key" } else { "day" }.to_owned()),
        ..range_meta(&filter, params)
    };
    Ok((table, meta))
}

fn range_meta(filter: &Filter, params: &StatsParams) -> ReportMeta {
    ReportMeta {
        from: Some(filter.from.format("%Y-%m-%d").to_string()),
        to: Some(filter.to.format("%Y-%m-%d").to_string()),
        distribution: given(&params.distribution).map(str::to_owned),
        ..ReportMeta::default()
    }
}

/// JSON, or CSV as an attachment named after the report.
pub fn render(table: Table, meta: ReportMeta, csv: bool, name: &str) -> Response {
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
        axum::Json(StatsReport::new(&table, meta)).into_response()
    }
}

/// Downloads per day, release, distribution, configuration or license (permission `read`;
/// per license needs `licenses`, since it names license keys). `format=csv` answers CSV.
#[utoipa::path(get, path = "/v1/stats/downloads", tag = "statistics",
    operation_id = "getDownloadStats", params(StatsParams),
    responses((status = 200, description = "The report", content(
        (StatsReport = "application/json"),
        (String = "text/csv"),
    ))))]
async fn downloads(
    caller: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, ApiError> {
    params.check_may_read(&caller.0)?;
    let csv = params.csv()?;
    let (table, meta) = downloads_report(&state, &params).await?;
    let name = format!("downloads-by-{}", meta.group_by.as_deref().unwrap_or("day"));
    Ok(render(table, meta, csv, &name))
}

/// Which versions installations came from and went to (permission `read`).
#[utoipa::path(get, path = "/v1/stats/upgrade-paths", tag = "statistics",
    operation_id = "getUpgradePaths", params(StatsParams),
    responses((status = 200, description = "The report", content(
        (StatsReport = "application/json"),
        (String = "text/csv"),
    ))))]
async fn upgrade_paths(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, ApiError> {
    let csv = params.csv()?;
    let (table, meta) = upgrade_paths_report(&state, &params).await?;
    Ok(render(table, meta, csv, "upgrade-paths"))
}

/// Installations seen in the last `days`, by version or configuration (permission `read`).
#[utoipa::path(get, path = "/v1/stats/installed-base", tag = "statistics",
    operation_id = "getInstalledBase", params(StatsParams),
    responses((status = 200, description = "The report", content(
        (StatsReport = "application/json"),
        (String = "text/csv"),
    ))))]
async fn installed_base(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, ApiError> {
    let csv = params.csv()?;
    let (table, meta) = installed_base_report(&state, &params).await?;
    Ok(render(table, meta, csv, "installed-base"))
}

/// Installations that checked, per day of the range (permission `read`). From a daily
/// roll-up: an installation (license key, or hashed address for free distributions, plus
/// CONF) counts once on each UTC day on which it checked; days without checks are zeros.
#[utoipa::path(get, path = "/v1/stats/active-installations", tag = "statistics",
    operation_id = "getActiveInstallations", params(StatsParams),
    responses((status = 200, description = "The report", content(
        (StatsReport = "application/json"),
        (String = "text/csv"),
    ))))]
async fn active_installations(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, ApiError> {
    let csv = params.csv()?;
    let (table, meta) = active_installations_report(&state, &params).await?;
    Ok(render(table, meta, csv, "active-installations"))
}

/// Per customer: license → customer → configuration → installed version → last seen, with
/// the distribution's newest release and whether the installation runs it (permission
/// `licenses`: it names customers). Installations identified by a license key only, by
/// customer; JSON answers `limit` rows from `offset` with the `total`, CSV every row.
#[utoipa::path(get, path = "/v1/stats/customers", tag = "statistics",
    operation_id = "getCustomerInstallations", params(StatsParams),
    responses((status = 200, description = "The report", content(
        (StatsReport = "application/json"),
        (String = "text/csv"),
    ))))]
async fn customers(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, ApiError> {
    let csv = params.csv()?;
    let window = params.window()?;
    let (table, meta) = customers_report(&state, &params, (!csv).then_some(window)).await?;
    Ok(render(table, meta, csv, "customers"))
}

/// License features whose subscription ends within the next `days` days (default 30), on
/// licenses not revoked, soonest first (permission `licenses`).
#[utoipa::path(get, path = "/v1/stats/expiring-subscriptions", tag = "statistics",
    operation_id = "getExpiringSubscriptions", params(StatsParams),
    responses((status = 200, description = "The report", content(
        (StatsReport = "application/json"),
        (String = "text/csv"),
    ))))]
async fn expiring_subscriptions(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, ApiError> {
    let csv = params.csv()?;
    let (table, meta) = expiring_report(&state, &params).await?;
    Ok(render(table, meta, csv, "expiring-subscriptions"))
}

/// Per distribution: installations seen in the last `days` days, how many run the newest
/// release (not a pre-release) or later, and that share in whole percent, rounded down
/// (permission `read`).
#[utoipa::path(get, path = "/v1/stats/newest-share", tag = "statistics",
    operation_id = "getNewestReleaseShare", params(StatsParams),
    responses((status = 200, description = "The report", content(
        (StatsReport = "application/json"),
        (String = "text/csv"),
    ))))]
async fn newest_share(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, ApiError> {
    let csv = params.csv()?;
    let (table, meta) = newest_share_report(&state, &params).await?;
    Ok(render(table, meta, csv, "newest-share"))
}

/// Checks (`getAvailableReleases`, `getLatestRelease`) that named a license key the server
/// does not know: per day, attempts and distinct keys (permission `read`); `group_by=key`
/// lists the keys tried most (at most 1000; permission `licenses`).
#[utoipa::path(get, path = "/v1/stats/unknown-keys", tag = "statistics",
    operation_id = "getUnknownKeyAttempts", params(StatsParams),
    responses((status = 200, description = "The report", content(
        (StatsReport = "application/json"),
        (String = "text/csv"),
    ))))]
async fn unknown_keys(
    caller: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, ApiError> {
    params.check_may_read_keys(&caller.0)?;
    let csv = params.csv()?;
    let (table, meta) = unknown_keys_report(&state, &params).await?;
    let name = format!(
        "unknown-keys-by-{}",
        meta.group_by.as_deref().unwrap_or("day")
    );
    Ok(render(table, meta, csv, &name))
}

/// The statistics capture pipeline's counters since this instance started.
#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineCounters {
    /// Events waiting to be written.
    pub queued: u64,
    pub queue_capacity: u64,
    pub written_events: u64,
    /// Events dropped because the queue was full.
    pub dropped_events: u64,
    /// Events the database refused.
    pub failed_events: u64,
    pub retention_days: u32,
}

/// The capture pipeline's counters since start (permission `read`).
#[utoipa::path(get, path = "/v1/stats/pipeline", tag = "statistics",
    operation_id = "getStatsPipeline",
    responses((status = 200, description = "The counters", body = PipelineCounters)))]
async fn pipeline(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
) -> Result<axum::Json<PipelineCounters>, ApiError> {
    Ok(axum::Json(PipelineCounters {
        queued: state.stats.queued() as u64,
        queue_capacity: crate::recorder::QUEUE as u64,
        written_events: state.stats.written(),
        dropped_events: state.stats.dropped(),
        failed_events: state.stats.failed(),
        retention_days: state.settings.stats_retention_days,
    }))
}
