//! vypusk: a self-hosted release-distribution server and update checker.
//!
//! `launch` runs the server on a bound listener until `shutdown` resolves, so tests bind
//! 127.0.0.1:0 and drive the real thing over HTTP.

pub mod access_log;
pub mod answer;
pub mod auth;
pub mod backup;
pub mod blobs;
pub mod bundle;
pub mod catalog;
pub mod catalog_sync;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod db;
pub mod domain;
pub mod entities;
pub mod error;
pub mod export;
pub mod fsutil;
pub mod http_server;
pub mod i18n;
pub mod identity;
pub mod licenses_csv;
pub mod logging;
pub mod openapi;
pub mod ratelimit;
pub mod readiness;
pub mod recorder;
pub mod routes;
pub mod services;
pub mod signing;
pub mod state;
pub mod stats;
pub mod telemetry;
pub mod tokens;

/// Check answers whose signatures are kept: well above the distinct checks a large vendor's
/// installations send within one second (answers carry `server_time`, see `answer::AnswerKey`);
/// a few hundred bytes each.
const SIGNATURE_CACHE_ENTRIES: usize = 16_384;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::state::AppState;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Opens everything under `settings` (database with migrations applied, storage, keys,
/// catalog) and returns the state plus the task that writes statistics events.
pub async fn open(
    settings: &Settings,
    public_url: String,
) -> anyhow::Result<(AppState, recorder::RecorderTask)> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    let db = db::connect(&settings.database_url()).await?;
    db::migrate(&db).await?;
    let storage = vypusk_storage::Storage::from_url(&settings.storage_url())
        .map_err(|e| anyhow::anyhow!("storage: {e}"))?;
    match storage.remove_incomplete_uploads().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed leftovers of interrupted uploads"),
        Err(e) => tracing::warn!(error = %e, "cannot clean interrupted uploads"),
    }
    // Shared by every instance on this database (issue 8, item 2).
    let identity = identity::load(&db, settings).await?;
    let signer = Arc::new(identity.signer);
    let secret = identity.token_secret;
    let salt = identity.stats_salt;
    let catalog = catalog::Catalog::load(&db).await?;
    let (stats, recorder_task) = recorder::Recorder::start(
        db.clone(),
        recorder::RecorderOptions {
            salt,
            retention_days: settings.stats_retention_days,
        },
    );
    let database_kind = db::kind(&db);
    let state = AppState::new(state::AppStateParts {
        db,
        storage,
        catalog,
        signer,
        tokens: Arc::new(tokens::TokenSigner::new(secret, settings.token_ttl_secs)),
        prerelease_networks: Arc::new(settings.prerelease_networks()?),
        trusted_proxies: Arc::new(settings.trusted_proxies()?),
        limiter: Arc::new(ratelimit::FailureLimiter::new(
            settings.license_failures_per_minute,
        )),
        settings: Arc::new(settings.clone()),
        public_url_json: {
            let quoted = serde_json::to_string(&public_url)?;
            quoted[1..quoted.len() - 1].into()
        },
        public_url: public_url.into(),
        answer_signatures: Arc::new(answer::SignatureCache::new(SIGNATURE_CACHE_ENTRIES)),
        stats,
        auth: Arc::new(auth::AuthCache::new(settings.login_failures_per_minute)),
        started: chrono::Utc::now(),
        database_kind,
    });
    Ok((state, recorder_task))
}

/// Serves until `shutdown` resolves; in-flight requests finish and queued statistics events are
/// written before it returns.
pub async fn launch(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bound = listener.local_addr()?;
    // Before anything records a metric: until then the `metrics` facade discards them.
    telemetry::handle();
    let metrics_listener = match settings.metrics_listen_addr()? {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let (state, recorder_task) = open(&settings, settings.public_url_for(bound)).await?;
    if let Some(password) = db::ensure_admin(&state.db, settings.admin_password.as_deref()).await? {
        println!("Created the admin user. Its password, shown only this once: {password}");
    }
    let sweeper = blobs::Sweeper::start(
        state.db.clone(),
        state.storage.clone(),
        blobs::SweepOptions::from_settings(&settings),
    );
    // `/metrics` only on `metrics_listen` when set; the router leaves it out then.
    let metrics_server = match metrics_listener {
        Some(listener) => {
            let addr = listener.local_addr()?;
            tracing::info!("metrics on http://{addr}/metrics");
            println!("metrics on http://{addr}/metrics");
            let app = routes::metrics_router().with_state(state.clone());
            Some(tokio::spawn(axum::serve(listener, app).into_future()))
        }
        None => None,
    };
    // Changes made by other instances and by the CLI reach this one's catalog (issue 8, item 3).
    let catalog_sync = catalog_sync::CatalogSync::start(state.db.clone(), state.catalog.clone());
    let app = routes::router(state);
    let limits = http_server::ConnectionLimits::from_settings(&settings);
    tracing::info!(?limits, "connection limits");
    println!(
        "at most {} open connections (open-file limit {})",
        limits.max_connections, limits.open_file_limit
    );
    tracing::info!("vypusk {VERSION} listening on http://{bound}");
    // Also on stdout: the test harness and scripts read this line.
    println!("vypusk {VERSION} listening on http://{bound}");
    http_server::serve(listener, app, limits, shutdown).await;
    sweeper.stop().await;
    if let Some(task) = metrics_server {
        task.abort();
    }
    catalog_sync.stop().await;
    recorder_task.flush_and_stop().await;
    tokio::task::spawn_blocking(access_log::flush).await.ok();
    Ok(())
}

/// Binds `addr`, naming it in the error (issue 8, item 4: "cannot listen on 127.0.0.1:8080:
/// address in use").
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::AddrInUse => "address in use".to_owned(),
            std::io::ErrorKind::AddrNotAvailable => "no such local address".to_owned(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            _ => e.to_string(),
        };
        anyhow::anyhow!("cannot listen on {addr}: {why}")
    })
}
