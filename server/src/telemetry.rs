//! `GET /metrics` in the Prometheus text format (SPEC §8 Running; issue 8, item 4).
//!
//! Series are recorded through the `metrics` facade into the `metrics-exporter-prometheus`
//! recorder, which also renders the text format; the route is ours (on the main listener, or
//! only on `metrics_listen` when that is set), not the exporter's HTTP listener. Per-request
//! series are recorded by [`crate::access_log`]; the gauges that mirror state elsewhere (the
//! statistics queue, the catalog, the database pool) are read when scraped, so the hot path
//! pays nothing for them.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::DbBackend;

use crate::catalog::Catalog;
use crate::state::AppState;

pub const HTTP_REQUESTS: &str = "vypusk_http_requests_total";
pub const HTTP_RESPONSE_TIME: &str = "vypusk_http_response_time_seconds";
pub const CHECKS: &str = "vypusk_checks_total";
pub const DOWNLOADS: &str = "vypusk_downloads_total";
pub const DOWNLOAD_BYTES: &str = "vypusk_download_bytes_total";
pub const UPLOADS: &str = "vypusk_uploads_total";
pub const UPLOAD_BYTES: &str = "vypusk_upload_bytes_total";
pub const STATS_QUEUE_DEPTH: &str = "vypusk_stats_queue_depth";
pub const STATS_DROPPED: &str = "vypusk_stats_events_dropped_total";
pub const STATS_WRITTEN: &str = "vypusk_stats_events_written_total";
pub const STATS_FAILED: &str = "vypusk_stats_events_failed_total";
pub const CATALOG_GENERATION: &str = "vypusk_catalog_generation";
pub const CATALOG_DISTRIBUTIONS: &str = "vypusk_catalog_distributions";
pub const CATALOG_RELEASES: &str = "vypusk_catalog_releases";
pub const CATALOG_LICENSES: &str = "vypusk_catalog_licenses";
pub const DB_POOL_CONNECTIONS: &str = "vypusk_db_pool_connections";
pub const DB_POOL_IDLE: &str = "vypusk_db_pool_idle_connections";
pub const BUILD_INFO: &str = "vypusk_build_info";
pub const AUDIT_WRITE_ERRORS: &str = "vypusk_audit_write_errors_total";

/// Upper bounds (seconds) of the response-time buckets: from a cached check (well under a
/// millisecond) to a slow upload's answer.
const RESPONSE_TIME_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide recorder's handle. Installed once: the `metrics` facade has one global
/// recorder, and in-process tests may launch several servers.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(HTTP_RESPONSE_TIME.to_owned()),
                RESPONSE_TIME_BUCKETS,
            )
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics stays empty");
        }
        describe();
        metrics::gauge!(BUILD_INFO, "version" => crate::VERSION).set(1.0);
        handle
    })
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "Requests answered, by route family and status"
    );
    describe_histogram!(
        HTTP_RESPONSE_TIME,
        Unit::Seconds,
        "Time from a request's arrival to its answer's head, by route family"
    );
    describe_counter!(CHECKS, "Update checks answered (status 200), by call");
    describe_counter!(
        AUDIT_WRITE_ERRORS,
        "Audit log entries that could not be written to the database"
    );
    describe_counter!(DOWNLOADS, "File downloads answered with 200 or 206");
    describe_counter!(DOWNLOAD_BYTES, Unit::Bytes, "File bytes sent");
    describe_counter!(UPLOADS, "Files uploaded through the vendor API");
    describe_counter!(UPLOAD_BYTES, Unit::Bytes, "Bytes of uploaded files");
    describe_gauge!(STATS_QUEUE_DEPTH, "Statistics events waiting to be written");
    describe_counter!(STATS_DROPPED, "Statistics events lost to a full queue");
    describe_counter!(STATS_WRITTEN, "Statistics events written to the database");
    describe_counter!(
        STATS_FAILED,
        "Statistics events lost because their batch failed"
    );
    describe_gauge!(CATALOG_GENERATION, "Generation of the in-memory catalog");
    describe_gauge!(CATALOG_DISTRIBUTIONS, "Distributions in the catalog");
    describe_gauge!(CATALOG_RELEASES, "Releases in the catalog");
    describe_gauge!(CATALOG_LICENSES, "Licenses in the catalog");
    describe_gauge!(DB_POOL_CONNECTIONS, "Open database connections");
    describe_gauge!(DB_POOL_IDLE, "Idle database connections");
    describe_gauge!(BUILD_INFO, "Always 1; the version is a label");
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let handle = handle();
    observe_state(&state);
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}

/// Copies the state kept elsewhere into gauges (and monotonic counters) at scrape time.
fn observe_state(state: &AppState) {
    let stats = &state.stats;
    metrics::gauge!(STATS_QUEUE_DEPTH).set(stats.queued() as f64);
    metrics::counter!(STATS_DROPPED).absolute(stats.dropped());
    metrics::counter!(STATS_WRITTEN).absolute(stats.written());
    metrics::counter!(STATS_FAILED).absolute(stats.failed());

    let sizes = state.catalog.sizes();
    metrics::gauge!(CATALOG_DISTRIBUTIONS).set(sizes.distributions as f64);
    metrics::gauge!(CATALOG_RELEASES).set(sizes.releases as f64);
    metrics::gauge!(CATALOG_LICENSES).set(sizes.licenses as f64);
    if let Some(generation) = catalog_generation(&state.catalog) {
        metrics::gauge!(CATALOG_GENERATION).set(generation as f64);
    }

    let (open, idle) = match state.db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = state.db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DbBackend::Sqlite => {
            let pool = state.db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => return,
    };
    metrics::gauge!(DB_POOL_CONNECTIONS).set(f64::from(open));
    metrics::gauge!(DB_POOL_IDLE).set(idle as f64);
}

/// The catalog's generation number (bumped by every change, see `catalog_sync`).
fn catalog_generation(catalog: &Catalog) -> Option<u64> {
    Some(catalog.generation())
}
