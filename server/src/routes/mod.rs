//! HTTP routes, one module per area, each returning its router.

pub mod api;
pub mod body_limit;
pub mod client;
pub mod error_shape;
pub mod files;
pub mod reports;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;

use crate::state::AppState;

/// JSON bodies of both API families.
pub const JSON_BODY_LIMIT: usize = 1 << 20;

pub fn router(state: AppState) -> Router {
    let signed = Router::new()
        .nest(
            "/releases",
            client::router()
                .merge(files::router())
                .layer(middleware::from_fn(error_shape::client_family)),
        )
        .nest(
            "/api",
            api::router(&state).layer(middleware::from_fn(error_shape::api_family)),
        )
        // Inside the signing layer, so an early 413 is signed like every JSON answer.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            body_limit::reject_oversized_bodies,
        ))
        .layer(middleware::from_fn_with_state(
            state.signer.clone(),
            crate::signing::sign_responses,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(reports::router())
        // Before `signed` is merged: its routes have their own (signed) copy of this layer.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            body_limit::reject_oversized_bodies,
        ))
        .merge(signed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}
