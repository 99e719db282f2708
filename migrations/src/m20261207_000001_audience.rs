//! Roll-ups of the reports vendors asked for (issue 13 item 3): active installations per day,
//! and checks that named a license key the server does not know.
//!
//! - `stats_active_days`: one row per installation (distribution, installation, CONF) per UTC
//!   day on which it checked. It exists so that concurrent batches, and instances sharing a
//!   database, count an installation once a day: the writer adds to `stats_daily_active`
//!   only the rows its insert actually created. Rows older than two days are deleted; the
//!   counts stay.
//! - `stats_daily_active`: installations that checked, per day and distribution.
//! - `stats_daily_unknown_keys`: checks naming an unknown key, per day, distribution and key.
//!   Pruned with the raw events (`stats_retention_days`), since it holds what clients typed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn primary_key(cols: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    for col in cols {
        stmt.col(*col);
    }
    stmt.primary().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("stats_active_days")
                    .col(string_len("day", 10))
                    .col(integer("distribution_id"))
                    .col(string("installation"))
                    .col(string("conf"))
                    .primary_key(&mut primary_key(&[
                        "day",
                        "distribution_id",
                        "installation",
                        "conf",
                    ]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("stats_daily_active")
                    .col(string_len("day", 10))
                    .col(integer("distribution_id"))
                    .col(big_integer("installations"))
                    .primary_key(&mut primary_key(&["day", "distribution_id"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("stats_daily_unknown_keys")
                    .col(string_len("day", 10))
                    .col(integer("distribution_id"))
                    .col(string_len("license_key", 64))
                    .col(big_integer("attempts"))
                    .primary_key(&mut primary_key(&["day", "distribution_id", "license_key"]))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "stats_daily_unknown_keys",
            "stats_daily_active",
            "stats_active_days",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
