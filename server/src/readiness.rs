//! `GET /readyz` (SPEC §8 Running; issue 8, item 4): 200 `ok` when the database answers a
//! trivial query and the object store answers a lookup, 503 naming the part that does not.
//! The causes go to the log, not to the answer.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use vypusk_storage::{BlobKey, StorageError};

use crate::state::AppState;

/// Longest wait for each part; a load balancer's probe should not hang.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A key no upload can have (the SHA-256 of nothing is not all zeros): looking it up must
/// answer `NotFound`, which shows the store answers.
const PROBE_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = async {
        match tokio::time::timeout(PROBE_TIMEOUT, state.db.ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readyz: the database does not answer");
                false
            }
            Err(_) => {
                tracing::warn!(
                    ?PROBE_TIMEOUT,
                    "readyz: the database does not answer in time"
                );
                false
            }
        }
    };
    let storage = async {
        let key = BlobKey::from_sha256_hex(PROBE_KEY).expect("valid probe key");
        match tokio::time::timeout(PROBE_TIMEOUT, state.storage.head(&key)).await {
            Ok(Ok(_) | Err(StorageError::NotFound)) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readyz: the object store does not answer");
                false
            }
            Err(_) => {
                tracing::warn!(
                    ?PROBE_TIMEOUT,
                    "readyz: the object store does not answer in time"
                );
                false
            }
        }
    };
    let (database, storage) = tokio::join!(database, storage);
    let failed: Vec<&str> = [(database, "database"), (storage, "storage")]
        .into_iter()
        .filter_map(|(ok, part)| (!ok).then_some(part))
        .collect();
    if failed.is_empty() {
        (StatusCode::OK, "ok".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {} not answering", failed.join(" and ")),
        )
    }
}
