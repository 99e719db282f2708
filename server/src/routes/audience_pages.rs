//! The report pages of issue 13 item 3 under `/reports`: active installations, per customer,
//! expiring subscriptions, share on the newest release, unknown-key attempts. Each renders
//! the table the JSON API answers (`routes::api::stats`), with the same CSV link; the pages
//! naming customers (per customer, expiring, unknown keys per key) need `licenses`, so a
//! `viewer` sees none of them. Handlers: extract → the report function → render.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::reports::{
    PageError, ReportPage, Section, distribution_choices, html, query_string, section,
};
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::i18n::Tr;
use crate::routes::api::stats::{
    StatsParams, active_installations_report, customer_filter, expiring_report,
    newest_share_report, unknown_keys_report,
};
use crate::routes::reports::Reader;
use crate::state::AppState;
use crate::stats::audience::{NewestReleases, customer_summary, customers};
use crate::stats::chart;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reports/active", get(active))
        .route("/reports/customers", get(customers_page))
        .route("/reports/expiring", get(expiring))
        .route("/reports/newest", get(newest))
        .route("/reports/unknown-keys", get(unknown_keys))
}

/// Rows of the per-customer table on one page (the CSV has them all).
const CUSTOMERS_PER_PAGE: u64 = 100;

fn may_see_customers(caller: &Caller, tr: Tr) -> Result<(), PageError> {
    if caller.has(Permission::Licenses) {
        Ok(())
    } else {
        Err(PageError::new(StatusCode::FORBIDDEN, tr.t("report-needs-licenses")).in_lang(tr.0))
    }
}

/// The page every report here shares; each fills in its own parts.
fn page(tr: Tr, caller: &Caller, current: &'static str, params: &StatsParams) -> ReportPage {
    let text = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").to_owned();
    ReportPage {
        tr,
        title: String::new(),
        heading: String::new(),
        current,
        customers: caller.has(Permission::Licenses),
        from: String::new(),
        to: String::new(),
        show_range: false,
        days: params.days().map(|d| d.to_string()).unwrap_or_default(),
        days_label: String::new(),
        distribution: text(&params.distribution),
        distributions: Vec::new(),
        action: format!("/reports/{current}"),
        show_days: false,
        search: None,
        summary: Vec::new(),
        sections: Vec::new(),
        links: Vec::new(),
    }
}

fn csv_url(report: &str, pairs: &[(&str, &str)]) -> String {
    format!("/reports/csv/{report}?{}", query_string(pairs))
}

async fn active(
    Reader(caller): Reader,
    tr: Tr,
    State(state): State<AppState>,
    axum::extract::Query(params): axum::extract::Query<StatsParams>,
) -> Result<Response, PageError> {
    let (table, meta) = active_installations_report(&state, &params).await?;
    let (from, to) = (
        meta.from.clone().unwrap_or_default(),
        meta.to.clone().unwrap_or_default(),
    );
    let mut p = page(tr, &caller, "active", &params);
    let counts = table.pairs("day", "installations");
    let last = counts.last().map_or(0, |(_, n)| *n);
    let peak = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let average = if counts.is_empty() {
        0
    } else {
        counts.iter().map(|(_, n)| *n).sum::<i64>() / counts.len() as i64
    };
    let chart = chart::line_chart("chart-active", &tr.t("report-active-chart"), &counts);
    let mut s = section(
        tr,
        "active-installations",
        tr.t("report-active-title"),
        &table,
        Some(chart),
        csv_url(
            "active-installations",
            &[
                ("from", &from),
                ("to", &to),
                ("distribution", &p.distribution),
            ],
        ),
    );
    s.note = tr.t("report-active-note");
    p.title = tr.t("report-active-title");
    p.heading = tr.t("report-active-title");
    p.show_range = true;
    p.distributions = distribution_choices(&state).await;
    p.summary = vec![
        (tr.t("report-active-last-day"), tr.number(last)),
        (tr.t("report-active-peak"), tr.number(peak)),
        (tr.t("report-active-average"), tr.number(average)),
    ];
    p.from = from;
    p.to = to;
    p.sections = vec![s];
    Ok(html(&p))
}

async fn customers_page(
    Reader(caller): Reader,
    tr: Tr,
    State(state): State<AppState>,
    axum::extract::Query(params): axum::extract::Query<StatsParams>,
) -> Result<Response, PageError> {
    may_see_customers(&caller, tr)?;
    let (offset, _) = params.window()?;
    // One filter and one catalog reading for the rows and the summary.
    let filter = customer_filter(&state, &params)?;
    let newest = NewestReleases::of(&state.catalog);
    let window = Some((offset, CUSTOMERS_PER_PAGE));
    let (table, total) = customers(&state.db, &filter, &newest, window)
        .await
        .map_err(ApiError::from)?;
    let summary = customer_summary(&state.db, &filter, &newest)
        .await
        .map_err(ApiError::from)?;
    let behind = filter.behind_only;
    let search = filter.search.clone().unwrap_or_default();

    let mut p = page(tr, &caller, "customers", &params);
    let behind_text = if behind { "true" } else { "" };
    let filters = [
        ("distribution", p.distribution.as_str()),
        ("search", search.as_str()),
        ("behind", behind_text),
    ];
    let mut s = section(
        tr,
        "customers",
        tr.t("report-customers-title"),
        &table,
        None,
        csv_url("customers", &filters),
    );
    s.note = tr.t("report-customers-note");
    if total > CUSTOMERS_PER_PAGE {
        let shown = if table.rows.is_empty() {
            "—".to_owned()
        } else {
            format!("{}–{}", offset + 1, offset + table.rows.len() as u64)
        };
        s.note = format!(
            "{} {}",
            s.note,
            tr.t2(
                "report-rows-of",
                ("shown", &shown),
                ("all", &tr.number(total as i64)),
            )
        );
        let link = |at: u64| {
            let at = at.to_string();
            let mut pairs = filters.to_vec();
            pairs.push(("offset", at.as_str()));
            format!("/reports/customers?{}", query_string(&pairs))
        };
        if offset > 0 {
            p.links.push((
                link(offset.saturating_sub(CUSTOMERS_PER_PAGE)),
                tr.t("report-previous-page"),
            ));
        }
        if offset + CUSTOMERS_PER_PAGE < total {
            p.links
                .push((link(offset + CUSTOMERS_PER_PAGE), tr.t("report-next-page")));
        }
    }
    p.title = tr.t("report-customers-title");
    p.heading = tr.t("report-customers-title");
    p.distributions = distribution_choices(&state).await;
    p.search = Some((search, behind));
    p.summary = vec![
        (
            tr.t("report-customers-installations"),
            tr.number(summary.installations),
        ),
        (tr.t("report-customers-behind"), tr.number(summary.behind)),
        (
            tr.t("report-customers-licenses"),
            tr.number(summary.licenses),
        ),
    ];
    p.sections = vec![s];
    Ok(html(&p))
}

async fn expiring(
    Reader(caller): Reader,
    tr: Tr,
    State(state): State<AppState>,
    axum::extract::Query(params): axum::extract::Query<StatsParams>,
) -> Result<Response, PageError> {
    may_see_customers(&caller, tr)?;
    let (table, meta) = expiring_report(&state, &params).await?;
    let days = meta.days.unwrap_or(30);
    let mut p = page(tr, &caller, "expiring", &params);
    let days_text = days.to_string();
    let licenses: std::collections::BTreeSet<String> = table
        .column("license")
        .map(|i| table.rows.iter().map(|r| r[i].as_text()).collect())
        .unwrap_or_default();
    let s = section(
        tr,
        "expiring",
        tr.t1("report-expiring-title", "days", days),
        &table,
        None,
        csv_url("expiring-subscriptions", &[("days", &days_text)]),
    );
    p.title = tr.t("report-nav-expiring");
    p.heading = tr.t1("report-expiring-title", "days", days);
    p.show_days = true;
    p.days = days_text;
    p.days_label = tr.t("report-expiring-days");
    p.summary = vec![
        (
            tr.t("report-expiring-count"),
            tr.number(table.rows.len() as i64),
        ),
        (
            tr.t("report-customers-licenses"),
            tr.number(licenses.len() as i64),
        ),
    ];
    p.sections = vec![s];
    Ok(html(&p))
}

async fn newest(
    Reader(caller): Reader,
    tr: Tr,
    State(state): State<AppState>,
    axum::extract::Query(params): axum::extract::Query<StatsParams>,
) -> Result<Response, PageError> {
    let (table, meta) = newest_share_report(&state, &params).await?;
    let days = meta.days.unwrap_or(30);
    let days_text = days.to_string();
    let mut p = page(tr, &caller, "newest", &params);
    let all = table.total("installations");
    let current = table.total("on_newest");
    let chart = chart::bar_chart(
        "chart-newest",
        &tr.t("report-newest-chart"),
        &table.pairs("distribution", "share_percent"),
    );
    let mut s: Section = section(
        tr,
        "newest-share",
        tr.t1("report-newest-title", "days", days),
        &table,
        Some(chart),
        csv_url(
            "newest-share",
            &[("days", &days_text), ("distribution", &p.distribution)],
        ),
    );
    s.note = tr.t("report-newest-note");
    p.title = tr.t("report-nav-newest");
    p.heading = tr.t1("report-newest-title", "days", days);
    p.show_days = true;
    p.days = days_text;
    p.days_label = tr.t("report-days");
    p.distributions = distribution_choices(&state).await;
    p.summary = vec![
        (tr.t("col-installations"), tr.number(all)),
        (tr.t("col-on_newest"), tr.number(current)),
        (
            tr.t("col-share_percent"),
            if all > 0 {
                format!("{} %", current * 100 / all)
            } else {
                "—".into()
            },
        ),
    ];
    p.sections = vec![s];
    Ok(html(&p))
}

async fn unknown_keys(
    Reader(caller): Reader,
    tr: Tr,
    State(state): State<AppState>,
    axum::extract::Query(mut params): axum::extract::Query<StatsParams>,
) -> Result<Response, PageError> {
    params.group_by = None;
    let (per_day, meta) = unknown_keys_report(&state, &params).await?;
    let (from, to) = (
        meta.from.clone().unwrap_or_default(),
        meta.to.clone().unwrap_or_default(),
    );
    let mut p = page(tr, &caller, "unknown-keys", &params);
    let chart = chart::line_chart(
        "chart-unknown-keys",
        &tr.t("report-unknown-chart"),
        &per_day.pairs("day", "attempts"),
    );
    let range = [
        ("from", from.as_str()),
        ("to", to.as_str()),
        ("distribution", p.distribution.as_str()),
    ];
    let mut day_section = section(
        tr,
        "unknown-keys-per-day",
        tr.t("report-unknown-title"),
        &per_day,
        Some(chart),
        csv_url("unknown-keys", &range),
    );
    day_section.note = tr.t("report-unknown-note");
    let days_with = per_day.column("attempts").map_or(0, |i| {
        per_day.rows.iter().filter(|r| r[i].as_int() > 0).count()
    });
    p.summary = vec![
        (tr.t("col-attempts"), tr.number(per_day.total("attempts"))),
        (tr.t("report-unknown-days"), tr.number(days_with as i64)),
    ];
    p.sections = vec![day_section];
    if caller.has(Permission::Licenses) {
        params.group_by = Some("key".into());
        let (per_key, _) = unknown_keys_report(&state, &params).await?;
        let mut pairs = range.to_vec();
        pairs.push(("group_by", "key"));
        p.sections.push(section(
            tr,
            "unknown-keys-per-key",
            tr.t("report-unknown-keys-title"),
            &per_key,
            None,
            csv_url("unknown-keys", &pairs),
        ));
    }
    p.title = tr.t("report-nav-unknown-keys");
    p.heading = tr.t("report-unknown-title");
    p.show_range = true;
    p.distributions = distribution_choices(&state).await;
    p.from = from;
    p.to = to;
    Ok(html(&p))
}
