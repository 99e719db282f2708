//! A catalog every instance agrees on (issue 8, item 3; SPEC §8: each instance sees every
//! change within a second).
//!
//! Every write of distributions, releases, files, licenses or API keys — through the vendor API
//! of any instance or through the CLI — calls [`record`] inside its own transaction. That bumps
//! the single row of `catalog_generation` and logs what changed in `catalog_changes`. The row's
//! lock is held until the transaction commits, so generations become visible in order and
//! without gaps: an instance that has seen generation N has seen every change up to N.
//!
//! Each running server polls the generation every [`POLL_INTERVAL`] ([`CatalogSync`]) and,
//! when it moved, refreshes only what the new changes name: one distribution, one license, or
//! all licenses after a bulk import. When the log no longer holds every change it missed (it is
//! pruned), it reloads the whole catalog. API keys and users are read from the database on every
//! request, so their changes are counted but need no refresh.

use std::collections::BTreeSet;
use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, Order, Statement};

use crate::catalog::Catalog;

/// How often each instance looks for changes; well under the 1-second goal.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Changes kept in the log; an instance further behind reloads everything.
const KEEP_CHANGES: i64 = 10_000;
/// More changes than this at once are applied by reloading everything.
const MAX_INCREMENTAL: usize = 1_000;

/// What a transaction changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<'a> {
    /// A distribution, or its releases, files, compatibility or metadata (by distribution id).
    Distribution(i32),
    /// One license or its features (by key).
    License(&'a str),
    /// Any number of licenses written by one bulk import, every one with `updated_at` at or
    /// after this time: an instance re-reads only those, never all licenses (issue 9: memory).
    ImportedLicenses(chrono::DateTime<chrono::Utc>),
    /// An API key (by id).
    ApiKey(i32),
    /// A user: roles, `disabled`, password or set-password token (by id).
    User(i32),
}

impl Change<'_> {
    fn kind_and_target(&self) -> (&'static str, String) {
        match self {
            Change::Distribution(id) => ("distribution", id.to_string()),
            Change::License(key) => ("license", (*key).to_owned()),
            Change::ImportedLicenses(since) => ("licenses", since.timestamp().to_string()),
            Change::ApiKey(id) => ("api_key", id.to_string()),
            Change::User(id) => ("user", id.to_string()),
        }
    }
}

/// Records `change` in the writing transaction `txn` and returns the new generation. Call it
/// after the transaction's writes, just before committing: from here to the commit, other
/// writers of the catalog wait for this one.
pub async fn record(txn: &DatabaseTransaction, change: Change<'_>) -> Result<u64, DbErr> {
    let backend = txn.get_database_backend();
    let row = txn
        .query_one_raw(Statement::from_string(
            backend,
            "UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1 \
             RETURNING generation",
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("catalog_generation".into()))?;
    let generation: i64 = row.try_get("", "generation")?;
    let (kind, target) = change.kind_and_target();
    let insert = Query::insert()
        .into_table("catalog_changes")
        .columns(["generation", "kind", "target", "changed_at"])
        .values_panic([
            generation.into(),
            kind.into(),
            target.into(),
            chrono::Utc::now().into(),
        ])
        .to_owned();
    txn.execute(&insert).await?;
    let prune = Query::delete()
        .from_table("catalog_changes")
        .and_where(Expr::col("generation").lte(generation - KEEP_CHANGES))
        .to_owned();
    txn.execute(&prune).await?;
    Ok(u64::try_from(generation).unwrap_or(0))
}

/// The database's current catalog generation.
pub async fn current_generation(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let select = Query::select()
        .column("generation")
        .from("catalog_generation")
        .and_where(Expr::col("id").eq(1))
        .to_owned();
    let row = db
        .query_one(&select)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("catalog_generation".into()))?;
    let generation: i64 = row.try_get("", "generation")?;
    Ok(u64::try_from(generation).unwrap_or(0))
}

/// Brings `catalog` up to the database's generation, refreshing only what changed.
pub async fn catch_up(db: &DatabaseConnection, catalog: &Catalog) -> Result<(), DbErr> {
    let current = current_generation(db).await?;
    let seen = catalog.generation();
    if current == seen {
        return Ok(());
    }
    if current < seen {
        // The database went back (restored from a backup): start over.
        return reload_everything(db, catalog, current).await;
    }
    let select = Query::select()
        .columns(["generation", "kind", "target"])
        .from("catalog_changes")
        .and_where(Expr::col("generation").gt(seen as i64))
        .and_where(Expr::col("generation").lte(current as i64))
        .order_by("generation", Order::Asc)
        .limit(MAX_INCREMENTAL as u64 + 1)
        .to_owned();
    let rows = db.query_all(&select).await?;
    if rows.len() as u64 != current - seen || rows.len() > MAX_INCREMENTAL {
        return reload_everything(db, catalog, current).await;
    }
    let mut distributions = BTreeSet::new();
    let mut licenses = BTreeSet::new();
    let mut all_licenses = false;
    let mut imported_since: Option<i64> = None;
    for row in rows {
        let kind: String = row.try_get("", "kind")?;
        let target: String = row.try_get("", "target")?;
        match kind.as_str() {
            "distribution" => match target.parse::<i32>() {
                Ok(id) => {
                    distributions.insert(id);
                }
                Err(_) => return reload_everything(db, catalog, current).await,
            },
            "license" => {
                licenses.insert(target);
            }
            "licenses" => match target.parse::<i64>() {
                Ok(since) => {
                    imported_since = Some(imported_since.map_or(since, |s: i64| Ord::min(s, since)))
                }
                // Written before imports named their time.
                Err(_) => all_licenses = true,
            },
            "api_key" | "user" => {}
            // Written by a newer version of vypusk: it knows what changed; this one does not.
            _ => return reload_everything(db, catalog, current).await,
        }
    }
    for id in distributions {
        catalog.refresh_distribution(db, id).await?;
    }
    if all_licenses {
        catalog.reload_licenses(db).await?;
    } else {
        if let Some(since) = imported_since.and_then(|s| chrono::DateTime::from_timestamp(s, 0)) {
            catalog.refresh_licenses_since(db, since).await?;
        }
        for key in licenses {
            catalog.refresh_license(db, &key).await?;
        }
    }
    catalog.advance_generation(current);
    Ok(())
}

async fn reload_everything(
    db: &DatabaseConnection,
    catalog: &Catalog,
    generation: u64,
) -> Result<(), DbErr> {
    tracing::info!(generation, "reloading the whole catalog");
    catalog.reload_all(db).await?;
    catalog.set_generation(generation);
    Ok(())
}

/// The task that keeps one instance's catalog up to date; stopped with [`CatalogSync::stop`].
pub struct CatalogSync {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl CatalogSync {
    pub fn start(db: DatabaseConnection, catalog: Catalog) -> CatalogSync {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(POLL_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {}
                }
                match catch_up(&db, &catalog).await {
                    Ok(()) => failing = false,
                    // Logged once per outage, not four times a second; the next tick retries.
                    Err(e) if !failing => {
                        failing = true;
                        tracing::error!(error = %e, "cannot bring the catalog up to date");
                    }
                    Err(_) => {}
                }
            }
        });
        CatalogSync { stop, task }
    }

    /// Stops polling and waits for a refresh under way to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the catalog refresh task failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::TransactionTrait;

    use super::*;

    #[tokio::test]
    async fn generations_count_changes_and_an_instance_refreshes_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = crate::db::connect(&url).await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        // Another process on the same database, as a second instance would be.
        let other = crate::db::connect(&url).await.unwrap();
        let catalog = Catalog::load(&db).await.unwrap();
        assert_eq!(catalog.generation(), 0);

        crate::db::execute_unprepared(
            &db,
            "INSERT INTO licenses (key, customer, itn, beta, revoked, created_at, updated_at) \
             VALUES ('K-1', 'c', '', false, false, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        )
        .await
        .unwrap();
        let txn = db.begin().await.unwrap();
        assert_eq!(record(&txn, Change::License("K-1")).await.unwrap(), 1);
        assert_eq!(record(&txn, Change::ApiKey(3)).await.unwrap(), 2);
        // Not visible to others before the commit.
        catch_up(&other, &catalog).await.unwrap();
        assert_eq!(catalog.generation(), 0);
        assert!(catalog.license("K-1").is_none());
        txn.commit().await.unwrap();

        catch_up(&db, &catalog).await.unwrap();
        assert_eq!(catalog.generation(), 2);
        assert!(catalog.license("K-1").is_some());

        // A change the log no longer holds makes the instance reload everything.
        crate::db::execute_unprepared(
            &db,
            "UPDATE licenses SET revoked = true; \
             UPDATE catalog_generation SET generation = generation + 5",
        )
        .await
        .unwrap();
        catch_up(&db, &catalog).await.unwrap();
        assert_eq!(catalog.generation(), 7);
        assert!(catalog.license("K-1").unwrap().revoked);
    }

    /// A bulk import is re-read alone (issue 9: a large vendor's instance never rebuilds every
    /// license for an import): an instance that catches up sees the imported licenses, and a
    /// license changed outside the import (here, behind the log's back) stays as it was read.
    #[tokio::test]
    async fn an_import_refreshes_only_the_imported_licenses() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = crate::db::connect(&url).await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        crate::db::execute_unprepared(
            &db,
            "INSERT INTO licenses (key, customer, itn, beta, revoked, created_at, updated_at) \
             VALUES ('OLD-1', 'c', '', false, false, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        )
        .await
        .unwrap();
        let catalog = Catalog::load(&db).await.unwrap();
        let old_build = catalog.license("OLD-1").unwrap().build;
        crate::db::execute_unprepared(&db, "UPDATE licenses SET revoked = true")
            .await
            .unwrap();
        let data = |key: &str| crate::licenses_csv::LicenseData {
            key: key.into(),
            customer: "ООО".into(),
            itn: String::new(),
            beta: false,
            revoked: false,
            features: Vec::new(),
        };
        crate::services::licenses::import(&db, &[data("NEW-1"), data("NEW-2")])
            .await
            .unwrap();
        catch_up(&db, &catalog).await.unwrap();
        assert_eq!(catalog.generation(), 1);
        assert!(catalog.license("NEW-1").is_some() && catalog.license("NEW-2").is_some());
        let old = catalog.license("OLD-1").unwrap();
        assert!(!old.revoked, "a license outside the import was re-read");
        assert_eq!(old.build, old_build);
        assert_eq!(catalog.sizes().licenses, 3);
    }
}
