//! Shared application state: cheap to clone, with `FromRef` parts for extractors and middleware.

use std::sync::Arc;

use axum::extract::FromRef;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use vypusk_storage::Storage;

use crate::auth::AuthCache;
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::ratelimit::FailureLimiter;
use crate::recorder::Recorder;
use crate::signing::Signer;
use crate::tokens::TokenSigner;

/// The application's state behind one `Arc`: extractors and middleware clone it for every
/// request, and one reference count is cheaper than one per field (issue 9: the hot path).
#[derive(Clone)]
pub struct AppState(Arc<AppStateParts>);

impl AppState {
    pub fn new(parts: AppStateParts) -> Self {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateParts;

    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

pub struct AppStateParts {
    pub db: DatabaseConnection,
    pub storage: Storage,
    pub catalog: Catalog,
    pub signer: Arc<Signer>,
    pub tokens: Arc<TokenSigner>,
    pub settings: Arc<Settings>,
    /// Base of absolute links, without a trailing slash.
    pub public_url: Arc<str>,
    /// `public_url` JSON-escaped (without quotes), for answers written by `answer`.
    pub public_url_json: Arc<str>,
    /// Signatures of check answers without a QueryID (see `answer::AnswerKey`).
    pub answer_signatures: Arc<crate::answer::SignatureCache>,
    pub prerelease_networks: Arc<Vec<ipnet::IpNet>>,
    /// Peers whose forwarding headers are believed (see `client_addr`).
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    pub limiter: Arc<FailureLimiter>,
    /// The statistics pipeline (checks and counted downloads).
    pub stats: Recorder,
    pub auth: Arc<AuthCache>,
    pub started: DateTime<Utc>,
    /// `sqlite` or `postgres`, for serverinfo.
    pub database_kind: &'static str,
}

impl FromRef<AppState> for Arc<Signer> {
    fn from_ref(state: &AppState) -> Self {
        state.signer.clone()
    }
}
