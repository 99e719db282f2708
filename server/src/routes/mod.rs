//! HTTP routes, one module per area, each returning its router.

pub mod api;
pub mod audience_pages;
pub mod body_limit;
pub mod client;
pub mod console;
pub mod error_shape;
pub mod files;
pub mod reports;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// JSON bodies of both API families.
pub const JSON_BODY_LIMIT: usize = 1 << 20;

/// The routes the OpenAPI document describes, `/releases/…` and `/api/…`, each built with its
/// part of the document from one `#[utoipa::path]` annotation (see `crate::openapi`).
pub fn documented() -> OpenApiRouter<AppState> {
    let client = client::router().merge(files::router());
    let (client, client_document) = client.split_for_parts();
    let client =
        client::with_fallbacks(client).layer(middleware::from_fn(error_shape::client_family));
    let (api, api_document) = api::router().split_for_parts();
    let api = api.layer(middleware::from_fn(error_shape::api_family));
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .nest(
            "/releases",
            OpenApiRouter::with_openapi(client_document).merge(OpenApiRouter::from(client)),
        )
        .nest(
            "/api",
            OpenApiRouter::with_openapi(api_document).merge(OpenApiRouter::from(api)),
        )
}

pub fn router(state: AppState) -> Router {
    let (documented, _) = documented().split_for_parts();
    let signed = documented
        // Inside the signing layer, so an early 413 is signed like every JSON answer.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            body_limit::reject_oversized_bodies,
        ))
        .layer(middleware::from_fn_with_state(
            state.signer.clone(),
            crate::signing::sign_responses,
        ));
    // Only one listener serves `/metrics`: `metrics_listen` when set (see `launch`).
    let metrics_here = state.settings.metrics_listen.is_none();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(crate::readiness::readyz))
        .merge(metrics_here.then(metrics_router).unwrap_or_default())
        .merge(reports::router())
        .merge(console::router())
        .merge(crate::i18n::router())
        .merge(crate::openapi::docs_router())
        // Before `signed` is merged: its routes have their own (signed) copy of this layer.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            body_limit::reject_oversized_bodies,
        ))
        .merge(signed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        // Outermost: access line, metrics and audit see every answer as sent.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::access_log::observe,
        ))
        .with_state(state)
}

/// `GET /metrics` alone, for the main router or the `metrics_listen` listener.
pub fn metrics_router() -> Router<AppState> {
    Router::new().route("/metrics", get(crate::telemetry::render))
}

async fn healthz() -> &'static str {
    "ok"
}
