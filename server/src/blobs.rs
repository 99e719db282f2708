//! Blob reclamation: when the bytes of a file may be deleted from object storage.
//!
//! Bytes are content-addressed and shared by every file row with the same sha256 (SPEC §3), and
//! several instances may share one database and one object store (SPEC §8), so "no row refers to
//! this blob right now" is not enough to delete it: an upload of the same bytes may be about to
//! insert its row (issue 7, defect 2). The rules, on SQLite and PostgreSQL alike:
//!
//! - Table `blobs` holds one row per stored blob with `unreferenced_since` (NULL while a file
//!   row refers to it). That row is the blob's lock: uploads, deletes and the sweeper take it
//!   (an upsert, or the sweeper's DELETE) before they decide anything about the blob, so they
//!   are serialised per blob — by the row lock on PostgreSQL, by the single writer on SQLite
//!   (every such transaction starts with a write, so SQLite takes its write lock up front).
//!   Locks are taken release row first, then blob rows in sorted order, so they cannot deadlock.
//! - An upload streams its bytes to `tmp/` ([`vypusk_storage::StagedBlob`]), then in one
//!   transaction: locks its release, [`claim`]s its blobs (`unreferenced_since = NULL`), inserts
//!   its file rows, and only then moves the bytes to their content key, and commits. A sweep of
//!   the same blob has therefore either committed before (the bytes are written again) or waits
//!   for the commit (and then sees the row).
//! - Whoever removes file rows calls [`release`] in the same transaction: under the blob's lock
//!   it counts the remaining references and, when there are none, records
//!   `unreferenced_since = now`. A reuse clears it in the transaction that inserts the new row,
//!   so "older than the grace period" means "unreferenced for longer than the grace period".
//! - The [`Sweeper`] runs every `blob_sweep_interval_secs`; see [`sweep`]. It deletes a blob
//!   only under its lock, after re-counting references, so even a wrong `unreferenced_since`
//!   cannot lose referenced bytes.
//! - Crash leftovers — bytes moved into place by an upload whose transaction never committed —
//!   have no row; the sweep's listing gives them one ("unreferenced since now"), so they go once
//!   the grace period has passed. Leftovers under `tmp/` are removed at start-up as before.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait, TryInsertResult,
};
use tokio::sync::watch;
use vypusk_storage::{BlobKey, Storage};

use crate::config::Settings;
use crate::entities::{blob, file};

/// Stored blobs looked up per query while listing, and orphans reclaimed per batch.
const BATCH: usize = 500;
/// Upper bound of reclaim batches per sweep; the rest waits for the next sweep.
const MAX_BATCHES_PER_SWEEP: usize = 100;

/// Sweeper timing, from `blob_grace_secs` and `blob_sweep_interval_secs`.
#[derive(Debug, Clone, Copy)]
pub struct SweepOptions {
    /// How long a blob stays unreferenced before it is deleted.
    pub grace: Duration,
    /// Time between sweeps; the first runs at start.
    pub interval: Duration,
}

impl SweepOptions {
    pub fn from_settings(settings: &Settings) -> SweepOptions {
        SweepOptions {
            grace: Duration::from_secs(settings.blob_grace_secs),
            interval: Duration::from_secs_f64(settings.blob_sweep_interval_secs),
        }
    }
}

/// Locks the rows of `sha256s` in sorted order, creating missing ones (as referenced: the
/// caller decides what they are).
pub async fn lock(
    txn: &DatabaseTransaction,
    sha256s: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<(), DbErr> {
    // A no-op update of the key takes the row lock on PostgreSQL (DO NOTHING would not).
    upsert_sorted(txn, sha256s, blob::Column::Sha256).await
}

/// For an upload, before its file rows are inserted and its bytes published: the blobs of
/// `sha256s` are referenced from now on (locks them too).
pub async fn claim(
    txn: &DatabaseTransaction,
    sha256s: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<(), DbErr> {
    upsert_sorted(txn, sha256s, blob::Column::UnreferencedSince).await
}

/// Inserts a referenced row for each of `sha256s`, or updates `column` of an existing one to
/// that, one statement per row in sorted order, so transactions lock rows in one order and
/// cannot deadlock.
async fn upsert_sorted(
    txn: &DatabaseTransaction,
    sha256s: impl IntoIterator<Item = impl AsRef<str>>,
    column: blob::Column,
) -> Result<(), DbErr> {
    let sorted: BTreeSet<String> = sha256s.into_iter().map(|s| s.as_ref().to_owned()).collect();
    for sha in sorted {
        blob::Entity::insert(blob::ActiveModel {
            sha256: Set(sha),
            unreferenced_since: Set(None),
        })
        .on_conflict(
            OnConflict::column(blob::Column::Sha256)
                .update_column(column)
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    }
    Ok(())
}

/// After file rows were deleted in `txn`: each blob of `sha256s` that no file row refers to
/// any more is recorded as unreferenced since `now` (unless it already was).
pub async fn release(
    txn: &DatabaseTransaction,
    sha256s: impl IntoIterator<Item = impl AsRef<str>>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let sorted: BTreeSet<String> = sha256s.into_iter().map(|s| s.as_ref().to_owned()).collect();
    lock(txn, &sorted).await?;
    for sha in sorted {
        // Counted after the lock, in a statement of its own, so that on PostgreSQL it sees the
        // rows of an upload that committed while we waited for the lock.
        if references(txn, &sha).await? > 0 {
            continue;
        }
        blob::Entity::update_many()
            .col_expr(blob::Column::UnreferencedSince, Expr::value(Some(now)))
            .filter(blob::Column::Sha256.eq(sha.as_str()))
            .filter(blob::Column::UnreferencedSince.is_null())
            .exec(txn)
            .await?;
    }
    Ok(())
}

async fn references<C: ConnectionTrait>(db: &C, sha256: &str) -> Result<u64, DbErr> {
    file::Entity::find()
        .filter(file::Column::Sha256.eq(sha256))
        .count(db)
        .await
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Stored blobs that had no row (crash leftovers), now recorded as unreferenced.
    pub registered: u64,
    /// Rows that claimed a reference no file row has, now recorded as unreferenced.
    pub marked: u64,
    /// Blobs deleted from storage.
    pub reclaimed: u64,
}

/// One sweep at time `now`: gives stored blobs without a row one (unreferenced since `now`),
/// marks rows without references, then deletes every blob unreferenced since at least `grace`
/// before `now`. Returns early, between blobs, once `stop` is set.
pub async fn sweep(
    db: &DatabaseConnection,
    storage: &Storage,
    now: DateTime<Utc>,
    grace: Duration,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<SweepReport> {
    let mut report = SweepReport {
        registered: register_unknown(db, storage, now, stop).await?,
        marked: mark_unreferenced(db, now).await?,
        reclaimed: 0,
    };
    let grace = chrono::Duration::from_std(grace)?;
    let cutoff = now - grace;
    // A failed blob stays for the next sweep; skip it so the batch loop still ends.
    let mut failed = BTreeSet::new();
    for _ in 0..MAX_BATCHES_PER_SWEEP {
        let due: Vec<String> = blob::Entity::find()
            .select_only()
            .column(blob::Column::Sha256)
            .filter(blob::Column::UnreferencedSince.lte(cutoff))
            .filter(blob::Column::Sha256.is_not_in(failed.iter().cloned()))
            .order_by_asc(blob::Column::Sha256)
            .limit(BATCH as u64)
            .into_tuple()
            .all(db)
            .await?;
        let last_batch = due.len() < BATCH;
        for sha in due {
            if *stop.borrow() {
                return Ok(report);
            }
            match reclaim(db, storage, &sha, cutoff).await {
                Ok(true) => report.reclaimed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(sha256 = %sha, error = %e, "cannot reclaim blob");
                    failed.insert(sha);
                }
            }
        }
        if last_batch {
            break;
        }
    }
    Ok(report)
}

/// Deletes the blob of `sha256` if it is still unreferenced since `cutoff` or earlier, under
/// its lock. True when deleted.
async fn reclaim(
    db: &DatabaseConnection,
    storage: &Storage,
    sha256: &str,
    cutoff: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let txn = db.begin().await?;
    // First statement and a write: takes the row lock (PostgreSQL) or the write lock (SQLite);
    // an upload claiming the blob meanwhile has cleared `unreferenced_since`, so nothing matches.
    let locked = blob::Entity::delete_many()
        .filter(blob::Column::Sha256.eq(sha256))
        .filter(blob::Column::UnreferencedSince.lte(cutoff))
        .exec(&txn)
        .await?;
    if locked.rows_affected == 0 {
        return Ok(false);
    }
    if references(&txn, sha256).await? > 0 {
        // A row said "unreferenced" although a file refers to the blob: keep it, referenced.
        claim(&txn, [sha256]).await?;
        txn.commit().await?;
        return Ok(false);
    }
    let key = BlobKey::from_sha256_hex(sha256)?;
    // Deleting before the commit: should the commit fail, the row stays and the next sweep
    // deletes the (already missing) bytes again, which is harmless.
    storage.delete(&key).await?;
    txn.commit().await?;
    Ok(true)
}

/// Stored blobs without a row get one, unreferenced since `now`.
async fn register_unknown(
    db: &DatabaseConnection,
    storage: &Storage,
    now: DateTime<Utc>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let mut listed = storage.list_blobs().try_chunks(BATCH);
    let mut registered = 0;
    while let Some(keys) = listed.try_next().await.map_err(|e| e.1)? {
        if *stop.borrow() {
            break;
        }
        let shas: Vec<String> = keys.iter().map(|k| k.sha256_hex().to_owned()).collect();
        let known: BTreeSet<String> = blob::Entity::find()
            .select_only()
            .column(blob::Column::Sha256)
            .filter(blob::Column::Sha256.is_in(shas.iter().cloned()))
            .into_tuple::<String>()
            .all(db)
            .await?
            .into_iter()
            .collect();
        for sha in shas.into_iter().filter(|s| !known.contains(s)) {
            // DO NOTHING: an upload that claimed the blob meanwhile keeps its row (on
            // PostgreSQL this waits for that upload's commit).
            let inserted = blob::Entity::insert(blob::ActiveModel {
                sha256: Set(sha),
                unreferenced_since: Set(Some(now)),
            })
            .on_conflict_do_nothing_on([blob::Column::Sha256])
            .exec_without_returning(db)
            .await?;
            if let TryInsertResult::Inserted(n) = inserted {
                registered += n;
            }
        }
    }
    Ok(registered)
}

/// Rows that say "referenced" without any file row referring to them (e.g. a file row removed
/// by a path that forgot [`release`]) become unreferenced since `now`. Harmless if it races an
/// upload: [`reclaim`] re-counts under the lock.
async fn mark_unreferenced(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let referenced = Query::select()
        .expr(Expr::val(1))
        .from(file::Entity)
        .and_where(
            Expr::col((file::Entity, file::Column::Sha256))
                .equals((blob::Entity, blob::Column::Sha256)),
        )
        .to_owned();
    let res = blob::Entity::update_many()
        .col_expr(blob::Column::UnreferencedSince, Expr::value(Some(now)))
        .filter(blob::Column::UnreferencedSince.is_null())
        .filter(Expr::exists(referenced).not())
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// The background sweep; [`Sweeper::stop`] ends it between two blobs.
pub struct Sweeper {
    handle: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Sweeper {
    pub fn start(db: DatabaseConnection, storage: Storage, options: SweepOptions) -> Sweeper {
        let (stop, stop_rx) = watch::channel(false);
        let handle = tokio::spawn(sweep_loop(db, storage, options, stop_rx));
        Sweeper { handle, stop }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

async fn sweep_loop(
    db: DatabaseConnection,
    storage: Storage,
    options: SweepOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(options.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
        }
        match sweep(&db, &storage, Utc::now(), options.grace, &stop).await {
            Ok(report) if report != SweepReport::default() => {
                tracing::info!(
                    registered = report.registered,
                    marked = report.marked,
                    reclaimed = report.reclaimed,
                    "blob sweep"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "blob sweep failed"),
        }
        if *stop.borrow() {
            break;
        }
    }
}

#[cfg(test)]
mod tests;
