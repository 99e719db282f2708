//! The statistics pipeline: checks and counted downloads go through one bounded in-memory
//! queue and are written in batches (at most `MAX_DELAY` late), so neither the check path nor a
//! download ever waits for the database. A full queue drops the event and counts the drop.
//!
//! Each batch is one transaction: raw rows (`check_events`, `download_events`) plus the deltas
//! of the daily roll-ups computed by [`crate::stats::rollup`]. Raw events older than the
//! retention period are deleted in the background; roll-ups are kept.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
    TransactionTrait, Value,
};
use tokio::sync::{mpsc, watch};

use crate::entities::{check_event, download_event};
use crate::stats::capture::{CheckEvent, DownloadEvent, Event};
use crate::stats::rollup::{self, ActiveKey, KnownDownload, Plan};

pub const QUEUE: usize = 65_536;
const BATCH: usize = 5_000;
const MAX_DELAY: Duration = Duration::from_millis(500);
/// How often a batch being collected looks at the queue.
const COLLECT_STEP: Duration = Duration::from_millis(50);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Rows per multi-row INSERT: well under SQLite's and PostgreSQL's bind-parameter limits.
const ROWS_PER_STATEMENT: usize = 500;

pub struct RecorderOptions {
    /// Salt of client-address hashes.
    pub salt: Vec<u8>,
    /// Raw events older than this many days are deleted; 0 keeps them forever.
    pub retention_days: u32,
}

/// Counters of the pipeline, for the stats API.
#[derive(Default)]
pub struct Counters {
    pub dropped: AtomicU64,
    pub written: AtomicU64,
    pub failed: AtomicU64,
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Event>,
    counters: Arc<Counters>,
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

impl Recorder {
    pub fn start(db: DatabaseConnection, options: RecorderOptions) -> (Recorder, RecorderTask) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (stop, stop_rx) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let handle = tokio::spawn(write_loop(db, rx, stop_rx, options, counters.clone()));
        (Recorder { tx, counters }, RecorderTask { handle, stop })
    }

    fn send(&self, event: Event) {
        if self.tx.try_send(event).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records a check; never waits.
    pub fn check(&self, event: CheckEvent) {
        self.send(Event::Check(event));
    }

    /// Records one request of a counted download; never waits.
    pub fn download(&self, event: DownloadEvent) {
        self.send(Event::Download(event));
    }

    /// Events lost because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Events written to the database.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// Events lost because their batch could not be written.
    pub fn failed(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }

    /// Events waiting in the queue.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

async fn write_loop(
    db: DatabaseConnection,
    mut rx: mpsc::Receiver<Event>,
    mut stop: watch::Receiver<bool>,
    options: RecorderOptions,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            first = rx.recv() => {
                let Some(first) = first else { break };
                batch.push(first);
                // Collects what arrives within MAX_DELAY by looking at the queue now and then,
                // not by waiting on it: a waiting receiver is woken by every event, which at
                // thousands of checks a second costs the request threads a wake-up each.
                let deadline = tokio::time::Instant::now() + MAX_DELAY;
                loop {
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(e) => batch.push(e),
                            Err(_) => break,
                        }
                    }
                    let now = tokio::time::Instant::now();
                    if batch.len() >= BATCH || now >= deadline || *stop.borrow() {
                        break;
                    }
                    tokio::time::sleep_until(deadline.min(now + COLLECT_STEP)).await;
                }
                write(&db, &mut batch, &options.salt, &counters).await;
            }
            _ = prune.tick() => {
                if options.retention_days > 0 {
                    prune_raw_events(&db, options.retention_days).await;
                }
                prune_active_days(&db).await;
            }
            _ = stop.changed() => {
                while let Ok(e) = rx.try_recv() {
                    batch.push(e);
                    if batch.len() >= BATCH {
                        write(&db, &mut batch, &options.salt, &counters).await;
                    }
                }
                write(&db, &mut batch, &options.salt, &counters).await;
                break;
            }
        }
    }
}

async fn write(db: &DatabaseConnection, batch: &mut Vec<Event>, salt: &[u8], counters: &Counters) {
    if batch.is_empty() {
        return;
    }
    let events = std::mem::take(batch);
    let count = events.len() as u64;
    // One retry: a busy SQLite or a dropped PostgreSQL connection should not lose a batch.
    let mut result = write_batch(db, events.clone(), salt).await;
    if result.is_err() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        result = write_batch(db, events, salt).await;
    }
    match result {
        Ok(()) => {
            counters.written.fetch_add(count, Ordering::Relaxed);
        }
        Err(e) => {
            counters.failed.fetch_add(count, Ordering::Relaxed);
            tracing::error!(error = %e, count, "cannot write statistics events");
        }
    }
}

/// Key of the PostgreSQL advisory lock under which batches with downloads are written (any
/// fixed number, distinct from the migration lock's).
const DOWNLOAD_BATCH_LOCK_KEY: i64 = 0x7679_7075_736c;

/// Writes one batch: raw rows and roll-up deltas in one transaction.
pub async fn write_batch(
    db: &DatabaseConnection,
    events: Vec<Event>,
    salt: &[u8],
) -> Result<(), DbErr> {
    let mut checks = Vec::new();
    let mut downloads = Vec::new();
    for event in events {
        match event {
            Event::Check(c) => checks.push(c),
            Event::Download(d) => downloads.push(d),
        }
    }
    let mut plan = Plan::default();
    rollup::plan_checks(&mut plan, checks, salt);
    let txn = db.begin().await?;
    if !downloads.is_empty() && db.get_database_backend() == sea_orm::DbBackend::Postgres {
        // Instances sharing the database (issue 8, item 3) take turns with downloads: a
        // download begun on one and resumed on another reaches both recorders, and two batches
        // reading a link's starts and completions at once would both count from the same
        // values (or both insert its row). Held until commit; SQLite has one writer at a time
        // already.
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [DOWNLOAD_BATCH_LOCK_KEY.into()],
        ))
        .await?;
    }
    let known = known_downloads(&txn, &downloads).await?;
    rollup::plan_downloads(&mut plan, downloads, known);
    apply(&txn, plan).await?;
    txn.commit().await
}

/// The links of this batch that the database already has a row for.
async fn known_downloads(
    db: &impl ConnectionTrait,
    events: &[DownloadEvent],
) -> Result<HashMap<String, KnownDownload>, DbErr> {
    let mut keys: Vec<&str> = events.iter().map(|e| e.dedup_key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut known = HashMap::new();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let rows = download_event::Entity::find()
            .filter(download_event::Column::DedupKey.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        for row in rows {
            known.insert(
                row.dedup_key.clone(),
                KnownDownload {
                    at: row.at,
                    distribution_id: row.distribution_id,
                    release_id: row.release_id,
                    file_id: row.file_id,
                    license_key: row.license_key,
                    conf: row.conf,
                    installed_version: row.installed_version,
                    starts: i64::from(row.starts),
                    completions: i64::from(row.completions),
                },
            );
        }
    }
    Ok(known)
}

async fn apply(db: &impl ConnectionTrait, plan: Plan) -> Result<(), DbErr> {
    let Plan {
        check_rows,
        download_inserts,
        download_updates,
        downloads,
        license_downloads,
        upgrades,
        checks,
        installations,
        active,
        unknown_keys,
    } = plan;

    let check_models = check_rows.into_iter().map(|row| check_event::ActiveModel {
        at: Set(row.event.at),
        distribution_id: Set(row.event.distribution_id),
        installed_version: Set(row.event.installed_version),
        conf: Set(row.event.conf),
        conf_version: Set(row.event.conf_version),
        offered_version: Set(row.event.offered_version),
        license_key: Set(row.event.license_key),
        client_hash: Set(row.client_hash),
        ..Default::default()
    });
    for chunk in chunks(check_models) {
        check_event::Entity::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }

    let download_models = download_inserts.into_iter().map(|row| {
        let e = row.event;
        download_event::ActiveModel {
            at: Set(e.at),
            distribution_id: Set(e.distribution_id),
            release_id: Set(e.release_id),
            file_id: Set(e.file_id),
            license_key: Set(e.license_key),
            conf: Set(e.conf),
            conf_version: Set(e.conf_version),
            installed_version: Set(e.installed_version),
            bytes: Set(i64::try_from(e.bytes).unwrap_or(i64::MAX)),
            completed: Set(row.completed),
            dedup_key: Set(e.dedup_key),
            starts: Set(saturating_i32(row.starts)),
            completions: Set(saturating_i32(row.completions)),
            ..Default::default()
        }
    });
    for chunk in chunks(download_models) {
        download_event::Entity::insert_many(chunk)
            .on_conflict_do_nothing_on([download_event::Column::DedupKey])
            .exec_without_returning(db)
            .await?;
    }
    for update in download_updates {
        let mut stmt = download_event::Entity::update_many().col_expr(
            download_event::Column::Bytes,
            Expr::col(download_event::Column::Bytes).add(update.add_bytes),
        );
        if update.add_starts != 0 {
            stmt = stmt.col_expr(
                download_event::Column::Starts,
                Expr::col(download_event::Column::Starts).add(saturating_i32(update.add_starts)),
            );
        }
        if update.add_completions != 0 {
            stmt = stmt.col_expr(
                download_event::Column::Completions,
                Expr::col(download_event::Column::Completions)
                    .add(saturating_i32(update.add_completions)),
            );
        }
        if update.completed {
            stmt = stmt.col_expr(download_event::Column::Completed, Expr::value(true));
        }
        stmt.filter(download_event::Column::DedupKey.eq(update.dedup_key))
            .exec(db)
            .await?;
    }

    upsert_sums(
        db,
        "stats_daily_downloads",
        &["day", "distribution_id", "release_id", "file_id", "conf"],
        &["downloads", "completed", "bytes"],
        downloads.into_iter().map(|(k, c)| {
            vec![
                k.day.into(),
                k.distribution_id.into(),
                k.release_id.into(),
                k.file_id.into(),
                k.conf.into(),
                c.downloads.into(),
                c.completed.into(),
                c.bytes.into(),
            ]
        }),
    )
    .await?;
    upsert_sums(
        db,
        "stats_daily_license_downloads",
        &["day", "distribution_id", "release_id", "license_key"],
        &["downloads", "completed", "bytes"],
        license_downloads.into_iter().map(|(k, c)| {
            vec![
                k.day.into(),
                k.distribution_id.into(),
                k.release_id.into(),
                k.license_key.into(),
                c.downloads.into(),
                c.completed.into(),
                c.bytes.into(),
            ]
        }),
    )
    .await?;
    upsert_sums(
        db,
        "stats_daily_upgrades",
        &["day", "distribution_id", "installed_version", "release_id"],
        &["downloads"],
        upgrades.into_iter().map(|(k, n)| {
            vec![
                k.day.into(),
                k.distribution_id.into(),
                k.installed_version.into(),
                k.release_id.into(),
                n.into(),
            ]
        }),
    )
    .await?;
    upsert_sums(
        db,
        "stats_daily_checks",
        &["day", "distribution_id", "conf", "installed_version"],
        &["checks"],
        checks.into_iter().map(|(k, n)| {
            vec![
                k.day.into(),
                k.distribution_id.into(),
                k.conf.into(),
                k.installed_version.into(),
                n.into(),
            ]
        }),
    )
    .await?;

    // Installations: the newest check wins; `first_seen` stays.
    const TABLE: &str = "stats_installations";
    let rows: Vec<Vec<Value>> = installations
        .into_iter()
        .map(|(k, s)| {
            vec![
                k.distribution_id.into(),
                k.installation.into(),
                k.conf.into(),
                s.installed_version.into(),
                s.conf_version.into(),
                s.first_seen.into(),
                s.last_seen.into(),
            ]
        })
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut stmt = Query::insert();
        stmt.into_table(TABLE).columns([
            "distribution_id",
            "installation",
            "conf",
            "installed_version",
            "conf_version",
            "first_seen",
            "last_seen",
        ]);
        for row in chunk {
            stmt.values_panic(row.iter().cloned().map(Expr::val));
        }
        stmt.on_conflict(
            OnConflict::columns(["distribution_id", "installation", "conf"])
                .update_columns(["installed_version", "conf_version", "last_seen"])
                .action_and_where(
                    Expr::col(("excluded", "last_seen")).gte(Expr::col((TABLE, "last_seen"))),
                )
                .to_owned(),
        );
        db.execute(&stmt).await?;
    }

    // Active installations: a (day, installation) row is inserted once, by whichever batch
    // (of whichever instance) comes first; only the rows inserted here add to the day's count.
    let active: Vec<ActiveKey> = active.into_iter().collect();
    let mut inserted = Vec::new();
    for chunk in active.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO stats_active_days (day, distribution_id, installation, conf) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING day, distribution_id",
            vec!["(?,?,?,?)"; chunk.len()].join(",")
        );
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|a| {
                [
                    a.day.clone().into(),
                    a.distribution_id.into(),
                    a.installation.clone().into(),
                    a.conf.clone().into(),
                ]
            })
            .collect();
        let rows = db
            .query_all_raw(crate::stats::query::statement(
                db.get_database_backend(),
                &sql,
                values,
            ))
            .await?;
        for row in rows {
            inserted.push((
                row.try_get_by_index::<String>(0)?,
                row.try_get_by_index::<i32>(1)?,
            ));
        }
    }
    upsert_sums(
        db,
        "stats_daily_active",
        &["day", "distribution_id"],
        &["installations"],
        rollup::active_deltas(inserted)
            .into_iter()
            .map(|((day, distribution_id), n)| vec![day.into(), distribution_id.into(), n.into()]),
    )
    .await?;
    upsert_sums(
        db,
        "stats_daily_unknown_keys",
        &["day", "distribution_id", "license_key"],
        &["attempts"],
        unknown_keys.into_iter().map(|(k, n)| {
            vec![
                k.day.into(),
                k.distribution_id.into(),
                k.license_key.into(),
                n.into(),
            ]
        }),
    )
    .await?;
    Ok(())
}

fn saturating_i32(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX })
}

fn chunks<T>(items: impl Iterator<Item = T>) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    for item in items {
        match out.last_mut() {
            Some(last) if last.len() < ROWS_PER_STATEMENT => last.push(item),
            _ => out.push(vec![item]),
        }
    }
    out
}

/// `INSERT … ON CONFLICT (keys) DO UPDATE SET s = table.s + excluded.s` for each sum column.
/// The rows' keys are distinct (they come from a map), as PostgreSQL requires.
async fn upsert_sums(
    db: &impl ConnectionTrait,
    table: &'static str,
    keys: &[&'static str],
    sums: &[&'static str],
    rows: impl Iterator<Item = Vec<Value>>,
) -> Result<(), DbErr> {
    let rows: Vec<Vec<Value>> = rows.collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut stmt = Query::insert();
        stmt.into_table(table)
            .columns(keys.iter().chain(sums.iter()).copied());
        for row in chunk {
            stmt.values_panic(row.iter().cloned().map(Expr::val));
        }
        stmt.on_conflict(
            OnConflict::columns(keys.iter().copied())
                .values(
                    sums.iter()
                        .map(|&s| (s, Expr::col((table, s)).add(Expr::col(("excluded", s))))),
                )
                .to_owned(),
        );
        db.execute(&stmt).await?;
    }
    Ok(())
}

/// Deletes raw events older than the retention period, in chunks so the writer is never
/// held for long.
async fn prune_raw_events(db: &DatabaseConnection, retention_days: u32) {
    let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(retention_days));
    for table in ["check_events", "download_events"] {
        loop {
            let sql = format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE at < {} LIMIT 10000)",
                placeholder(db, 1)
            );
            let stmt = sea_orm::Statement::from_sql_and_values(
                db.get_database_backend(),
                sql,
                [cutoff.into()],
            );
            match db.execute_raw(stmt).await {
                Ok(r) if r.rows_affected() > 0 => {
                    tracing::debug!(table, deleted = r.rows_affected(), "pruned raw events")
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, table, "cannot prune raw statistics events");
                    break;
                }
            }
        }
    }
    // Unknown keys are what clients typed: kept as long as the raw events.
    let sql = format!(
        "DELETE FROM stats_daily_unknown_keys WHERE day < {}",
        placeholder(db, 1)
    );
    let stmt = sea_orm::Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        [crate::stats::capture::day_of(cutoff).into()],
    );
    if let Err(e) = db.execute_raw(stmt).await {
        tracing::warn!(error = %e, "cannot prune stats_daily_unknown_keys");
    }
}

/// Deletes `stats_active_days` rows older than two days: they only keep an installation from
/// being counted twice on a day, and batches are written seconds after their checks.
async fn prune_active_days(db: &DatabaseConnection) {
    let cutoff = crate::stats::capture::day_of(chrono::Utc::now() - chrono::Duration::days(2));
    let sql = format!(
        "DELETE FROM stats_active_days WHERE day < {}",
        placeholder(db, 1)
    );
    let stmt =
        sea_orm::Statement::from_sql_and_values(db.get_database_backend(), sql, [cutoff.into()]);
    if let Err(e) = db.execute_raw(stmt).await {
        tracing::warn!(error = %e, "cannot prune stats_active_days");
    }
}

fn placeholder(db: &DatabaseConnection, n: usize) -> String {
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use sea_orm::Database;
    use vypusk_migrations::{Migrator, MigratorTrait};

    use super::*;
    use crate::stats::query::{self, Filter, GroupBy};

    fn check() -> CheckEvent {
        CheckEvent {
            at: chrono::Utc::now(),
            distribution_id: 1,
            paid: false,
            installed_version: "1.0".into(),
            conf: "УТ".into(),
            conf_version: "11.5".into(),
            offered_version: "2.0".into(),
            license_key: None,
            unknown_key: None,
            client: IpAddr::from([192, 0, 2, 1]),
        }
    }

    /// One request through link `key`: `first_byte` when it started at byte 0, `completed`
    /// when it delivered the last byte.
    fn download(key: &str, bytes: u64, first_byte: bool, completed: bool) -> DownloadEvent {
        DownloadEvent {
            at: chrono::Utc::now(),
            distribution_id: 1,
            release_id: 7,
            file_id: 70,
            license_key: Some("K-1".into()),
            conf: "УТ".into(),
            conf_version: "11.5".into(),
            installed_version: "1.0".into(),
            bytes,
            first_byte,
            completed,
            dedup_key: key.into(),
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let (tx, _rx) = mpsc::channel(2);
        let recorder = Recorder {
            tx,
            counters: Arc::new(Counters::default()),
        };
        for _ in 0..5 {
            recorder.check(check());
        }
        assert_eq!(recorder.dropped(), 3);
        assert_eq!(recorder.queued(), 2);
    }

    /// Batches against a real (in-memory SQLite) schema: a download resumed in a later batch
    /// adds bytes and its completion to the first day and is counted once; a second download
    /// through the same link counts again; a resume written before the request it continues
    /// counts once when that request comes; a range from the middle alone only adds bytes.
    #[tokio::test]
    async fn batches_maintain_the_roll_ups() {
        let db = Database::connect("sqlite::memory:").await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        write_batch(
            &db,
            vec![
                Event::Check(check()),
                Event::Check(check()),
                Event::Download(download("a", 400, true, false)),
                Event::Download(download("b", 1000, true, true)),
            ],
            b"salt",
        )
        .await
        .unwrap();
        write_batch(
            &db,
            vec![
                // The rest of a's first download, then a second download through a's link.
                Event::Download(download("a", 600, false, true)),
                Event::Download(download("a", 1000, true, true)),
                // The end of d, written before d's first request.
                Event::Download(download("d", 600, false, true)),
                // A range from the middle, never continued or begun.
                Event::Download(download("m", 100, false, false)),
                // The installation of the first batch again, and a key nobody issued.
                Event::Check(check()),
                Event::Check(CheckEvent {
                    unknown_key: Some("K-TYPO".into()),
                    client: IpAddr::from([192, 0, 2, 9]),
                    ..check()
                }),
            ],
            b"salt",
        )
        .await
        .unwrap();
        let today = chrono::Utc::now().date_naive();
        let filter = Filter {
            from: today,
            to: today,
            distribution_id: Some(1),
            release_id: None,
        };
        // Two installations active today (the first counted once over both batches).
        let active = crate::stats::audience::active_installations(&db, &filter)
            .await
            .unwrap();
        assert_eq!(active.total("installations"), 2);
        let unknown = crate::stats::audience::unknown_keys_per_key(&db, &filter)
            .await
            .unwrap();
        assert_eq!(unknown.rows.len(), 1);
        assert_eq!(unknown.total("attempts"), 1);
        let totals = |table: &query::Table| {
            (
                table.total("downloads"),
                table.total("completed"),
                table.total("bytes"),
            )
        };
        let table = query::downloads(&db, &filter, GroupBy::Day).await.unwrap();
        assert_eq!(totals(&table), (3, 3, 3700));
        write_batch(
            &db,
            vec![Event::Download(download("d", 400, true, false))],
            b"salt",
        )
        .await
        .unwrap();
        let table = query::downloads(&db, &filter, GroupBy::Day).await.unwrap();
        assert_eq!(totals(&table), (4, 4, 4100));
        let table = query::downloads(&db, &filter, GroupBy::License)
            .await
            .unwrap();
        assert_eq!(totals(&table), (4, 4, 4100));
        let paths = query::upgrade_paths(&db, &filter).await.unwrap();
        assert_eq!(paths.total("downloads"), 4);
        let base = query::installed_base(
            &db,
            Some(1),
            30,
            query::BaseGroupBy::Version,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!(base.total("installations"), 2);
        let per_release = query::downloads_per_release(&db, 1).await.unwrap();
        assert_eq!(per_release.get(&7), Some(&4));
        let raw = download_event::Entity::find().all(&db).await.unwrap();
        assert_eq!(raw.len(), 4);
        let row = |key: &str| {
            let r = raw.iter().find(|r| r.dedup_key == key).unwrap();
            (r.bytes, r.starts, r.completions, r.completed)
        };
        assert_eq!(row("a"), (2000, 2, 2, true));
        assert_eq!(row("b"), (1000, 1, 1, true));
        assert_eq!(row("d"), (1000, 1, 1, true));
        assert_eq!(row("m"), (100, 0, 0, false));
        assert_eq!(check_event::Entity::find().all(&db).await.unwrap().len(), 4);
    }

    /// Rows written before the `starts`/`completions` columns were each one counted download:
    /// the migration keeps them so, and later requests through their links count on top.
    #[tokio::test]
    async fn rows_from_before_the_migration_count_one_download_each() {
        use sea_orm::ConnectionTrait;
        let db = Database::connect("sqlite::memory:").await.unwrap();
        // Every migration before the one that added the counters.
        let before = Migrator::migrations()
            .iter()
            .position(|m| m.name() == "m20261202_000001_download_starts")
            .unwrap();
        Migrator::up(&db, Some(u32::try_from(before).unwrap()))
            .await
            .unwrap();
        for (key, completed) in [("old-done", true), ("old-partial", false)] {
            db.execute_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Sqlite,
                "INSERT INTO download_events (at, distribution_id, release_id, file_id, \
                 license_key, conf, conf_version, installed_version, bytes, dedup_key, completed) \
                 VALUES (?, 1, 7, 70, NULL, 'УТ', '11.5', '1.0', 100, ?, ?)",
                [chrono::Utc::now().into(), key.into(), completed.into()],
            ))
            .await
            .unwrap();
        }
        Migrator::up(&db, None).await.unwrap();
        let raw = download_event::Entity::find().all(&db).await.unwrap();
        let row = |key: &str| {
            let r = raw.iter().find(|r| r.dedup_key == key).unwrap();
            (r.starts, r.completions, r.completed)
        };
        assert_eq!(row("old-done"), (1, 1, true));
        assert_eq!(row("old-partial"), (1, 0, false));
        // The partial one is resumed to the end: completed, not counted again.
        write_batch(
            &db,
            vec![Event::Download(download("old-partial", 900, false, true))],
            b"salt",
        )
        .await
        .unwrap();
        let today = chrono::Utc::now().date_naive();
        let filter = Filter {
            from: today,
            to: today,
            distribution_id: Some(1),
            release_id: None,
        };
        let table = query::downloads(&db, &filter, GroupBy::Day).await.unwrap();
        // The roll-ups get only what this batch added (the old rows' were written with them).
        assert_eq!(
            (
                table.total("downloads"),
                table.total("completed"),
                table.total("bytes")
            ),
            (0, 1, 900)
        );
        let raw = download_event::Entity::find().all(&db).await.unwrap();
        let partial = raw.iter().find(|r| r.dedup_key == "old-partial").unwrap();
        assert_eq!((partial.starts, partial.completions), (1, 1));
        assert!(partial.completed);
    }

    /// Two instances' recorders on one PostgreSQL database (issue 8, item 3): each round, a
    /// download begins on one and is resumed on the other while both write their batches at
    /// the same moment. Every download counts once and every check and byte adds up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_recorders_on_postgresql_add_up_exactly() {
        use sea_orm::ConnectionTrait;
        const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
        let admin = Database::connect(ADMIN_URL).await.unwrap_or_else(|e| {
            panic!("PostgreSQL must run at 127.0.0.1:5432 (scripts/test-all.sh starts it): {e}")
        });
        let name = format!(
            "vypusk_recorders_{}",
            hex::encode(rand::random::<[u8; 6]>())
        );
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        let a = crate::db::connect(&url).await.unwrap();
        crate::db::migrate(&a).await.unwrap();
        let b = crate::db::connect(&url).await.unwrap();

        const ROUNDS: usize = 20;
        const CHECKS_PER_BATCH: usize = 5;
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let writer = |db: DatabaseConnection, first_part: bool| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                for round in 0..ROUNDS {
                    let key = format!("download-{round}");
                    let mut events: Vec<Event> = (0..CHECKS_PER_BATCH)
                        .map(|_| Event::Check(check()))
                        .collect();
                    // The same new installation reaches both instances in the same round: it
                    // is active once.
                    events.push(Event::Check(CheckEvent {
                        client: IpAddr::from([198, 51, 100, round as u8]),
                        ..check()
                    }));
                    events.push(Event::Download(if first_part {
                        download(&key, 400, true, false)
                    } else {
                        download(&key, 600, false, true)
                    }));
                    barrier.wait().await;
                    write_batch(&db, events, b"salt").await.unwrap();
                }
            })
        };
        let (ra, rb) = tokio::join!(writer(a.clone(), true), writer(b.clone(), false));
        ra.unwrap();
        rb.unwrap();

        let today = chrono::Utc::now().date_naive();
        let filter = Filter {
            from: today,
            to: today,
            distribution_id: Some(1),
            release_id: None,
        };
        let table = query::downloads(&a, &filter, GroupBy::Day).await.unwrap();
        let counted = (
            table.total("downloads"),
            table.total("completed"),
            table.total("bytes"),
        );
        let checks: i64 = a
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT CAST(SUM(checks) AS BIGINT) AS n FROM stats_daily_checks",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "n")
            .unwrap();
        let active: i64 = a
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT CAST(SUM(installations) AS BIGINT) AS n FROM stats_daily_active",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "n")
            .unwrap();
        let raw = download_event::Entity::find().all(&a).await.unwrap();
        a.close().await.unwrap();
        b.close().await.unwrap();
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await;

        assert_eq!(
            counted,
            (ROUNDS as i64, ROUNDS as i64, ROUNDS as i64 * 1000)
        );
        assert_eq!(checks, (2 * ROUNDS * (CHECKS_PER_BATCH + 1)) as i64);
        // 192.0.2.1 and one address per round, each counted once however many batches of
        // both instances had it.
        assert_eq!(active, ROUNDS as i64 + 1);
        assert_eq!(raw.len(), ROUNDS);
        assert!(
            raw.iter()
                .all(|r| r.bytes == 1000 && (r.starts, r.completions) == (1, 1) && r.completed),
            "{raw:?}"
        );
    }
}
