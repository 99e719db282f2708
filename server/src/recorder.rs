//! Counted downloads go through a bounded queue and are written in batches, so a download never
//! waits for the database. A full queue drops the event and counts the drop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::{mpsc, watch};

use crate::entities::download_event;

const QUEUE: usize = 65_536;
const BATCH: usize = 1_000;
const MAX_DELAY: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct DownloadRecorder {
    tx: mpsc::Sender<download_event::ActiveModel>,
    dropped: Arc<AtomicU64>,
}

pub struct RecorderTask {
    handle: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl RecorderTask {
    /// Writes what is queued and stops.
    pub async fn flush_and_stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

impl DownloadRecorder {
    pub fn start(db: DatabaseConnection) -> (DownloadRecorder, RecorderTask) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (stop, stop_rx) = watch::channel(false);
        let handle = tokio::spawn(write_loop(db, rx, stop_rx));
        (
            DownloadRecorder {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
            },
            RecorderTask { handle, stop },
        )
    }

    pub fn record(&self, event: download_event::ActiveModel) {
        if self.tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write_loop(
    db: DatabaseConnection,
    mut rx: mpsc::Receiver<download_event::ActiveModel>,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            first = rx.recv() => {
                let Some(first) = first else { break };
                batch.push(first);
                let deadline = tokio::time::Instant::now() + MAX_DELAY;
                while batch.len() < BATCH {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(e)) => batch.push(e),
                        _ => break,
                    }
                }
                write(&db, &mut batch).await;
            }
            _ = stop.changed() => {
                while let Ok(e) = rx.try_recv() {
                    batch.push(e);
                    if batch.len() >= BATCH {
                        write(&db, &mut batch).await;
                    }
                }
                write(&db, &mut batch).await;
                break;
            }
        }
    }
}

async fn write(db: &DatabaseConnection, batch: &mut Vec<download_event::ActiveModel>) {
    if batch.is_empty() {
        return;
    }
    let events = std::mem::take(batch);
    let count = events.len();
    // The dedup key makes a resumed download count once.
    let result = download_event::Entity::insert_many(events)
        .on_conflict_do_nothing_on([download_event::Column::DedupKey])
        .exec_without_returning(db)
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, count, "cannot write download events");
    }
}
