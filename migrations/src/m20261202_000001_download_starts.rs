//! Downloads counted the way users mean them (issue 9; SPEC §4.6): a download is counted when a
//! request for the file's first byte is served, so separate downloads through one link count
//! separately and a download resumed in many ranges counts once.
//!
//! `download_events` keeps one row per link (`dedup_key`) and gains two counters:
//! - `starts`: requests of the link that started at the file's first byte (the downloads);
//! - `completions`: responses of the link that delivered the file's last byte.
//!
//! The roll-ups count `starts` downloads and `min(completions, starts)` completed ones. Rows
//! written before this migration were counted once each, so they get `starts = 1` and
//! `completions = 1` when `completed`, 0 otherwise.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table("download_events")
                    .add_column(integer("starts").default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("download_events")
                    .add_column(integer("completions").default(0))
                    .to_owned(),
            )
            .await?;
        let completed = Query::update()
            .table("download_events")
            .value("completions", 1)
            .and_where(Expr::col("completed").eq(true))
            .to_owned();
        manager.exec_stmt(completed).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["completions", "starts"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("download_events")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
