//! Statistics: raw check events, the `completed` flag of download events, and the daily
//! roll-ups that every report reads (so no report scans raw events).
//!
//! Roll-up key columns are all NOT NULL (an absent license is `''`), so the composite primary
//! keys work as upsert targets on SQLite and PostgreSQL alike.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn index(table: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(format!("ix_{table}_{}", cols.join("_")))
        .table(table);
    for col in cols {
        stmt.col(*col);
    }
    stmt.to_owned()
}

fn primary_key(cols: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    for col in cols {
        stmt.col(*col);
    }
    stmt.primary().to_owned()
}

/// `YYYY-MM-DD` (UTC); text sorts and compares the same on both databases.
fn day() -> ColumnDef {
    string_len("day", 10)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("download_events")
                    .add_column(boolean("completed").default(false))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("check_events")
                    .col(pk_auto("id"))
                    .col(timestamp_with_time_zone("at"))
                    .col(integer("distribution_id"))
                    .col(string_len("installed_version", 128))
                    .col(string("conf"))
                    .col(string_len("conf_version", 128))
                    // Newest release in the answer; '' when nothing was offered.
                    .col(string_len("offered_version", 128))
                    .col(string_len_null("license_key", 64))
                    // SHA-256 of the per-install salt and the client address, hex, shortened.
                    .col(string_len("client_hash", 32))
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("check_events", &["at"])).await?;

        // Downloads per day, distribution, release, file and configuration.
        manager
            .create_table(
                Table::create()
                    .table("stats_daily_downloads")
                    .col(day())
                    .col(integer("distribution_id"))
                    .col(integer("release_id"))
                    .col(integer("file_id"))
                    .col(string("conf"))
                    .col(big_integer("downloads"))
                    .col(big_integer("completed"))
                    .col(big_integer("bytes"))
                    .primary_key(&mut primary_key(&[
                        "day",
                        "distribution_id",
                        "release_id",
                        "file_id",
                        "conf",
                    ]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("stats_daily_downloads", &["distribution_id", "day"]))
            .await?;

        // Downloads per day, distribution, release and license ('' = none).
        manager
            .create_table(
                Table::create()
                    .table("stats_daily_license_downloads")
                    .col(day())
                    .col(integer("distribution_id"))
                    .col(integer("release_id"))
                    .col(string_len("license_key", 64))
                    .col(big_integer("downloads"))
                    .col(big_integer("completed"))
                    .col(big_integer("bytes"))
                    .primary_key(&mut primary_key(&[
                        "day",
                        "distribution_id",
                        "release_id",
                        "license_key",
                    ]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "stats_daily_license_downloads",
                &["distribution_id", "day"],
            ))
            .await?;

        // Upgrade paths: installed version ('' = fresh install) → downloaded release.
        manager
            .create_table(
                Table::create()
                    .table("stats_daily_upgrades")
                    .col(day())
                    .col(integer("distribution_id"))
                    .col(string_len("installed_version", 128))
                    .col(integer("release_id"))
                    .col(big_integer("downloads"))
                    .primary_key(&mut primary_key(&[
                        "day",
                        "distribution_id",
                        "installed_version",
                        "release_id",
                    ]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("stats_daily_upgrades", &["distribution_id", "day"]))
            .await?;

        // Checks per day, distribution, configuration and installed version.
        manager
            .create_table(
                Table::create()
                    .table("stats_daily_checks")
                    .col(day())
                    .col(integer("distribution_id"))
                    .col(string("conf"))
                    .col(string_len("installed_version", 128))
                    .col(big_integer("checks"))
                    .primary_key(&mut primary_key(&[
                        "day",
                        "distribution_id",
                        "conf",
                        "installed_version",
                    ]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("stats_daily_checks", &["distribution_id", "day"]))
            .await?;

        // The latest check of each installation (license key, or hashed address for free
        // distributions, plus CONF): the installed base without scanning raw checks.
        manager
            .create_table(
                Table::create()
                    .table("stats_installations")
                    .col(integer("distribution_id"))
                    .col(string_len("installation", 80))
                    .col(string("conf"))
                    .col(string_len("installed_version", 128))
                    .col(string_len("conf_version", 128))
                    .col(timestamp_with_time_zone("first_seen"))
                    .col(timestamp_with_time_zone("last_seen"))
                    .primary_key(&mut primary_key(&[
                        "distribution_id",
                        "installation",
                        "conf",
                    ]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "stats_installations",
                &["distribution_id", "last_seen"],
            ))
            .await?;
        manager
            .create_index(index("stats_installations", &["last_seen"]))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "stats_installations",
            "stats_daily_checks",
            "stats_daily_upgrades",
            "stats_daily_license_downloads",
            "stats_daily_downloads",
            "check_events",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("download_events")
                    .drop_column("completed")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
