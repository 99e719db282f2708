//! Several instances on one database (issue 8, items 2 and 3; SPEC §8).
//!
//! - `cluster_secrets`: the answer-signing key pair, the download-token secret and the
//!   statistics salt, shared by every instance on this database. The first instance to start
//!   inserts them (insert-if-absent); every other instance reads back what won.
//! - `catalog_generation` (one row) and `catalog_changes` (one row per change): every write of
//!   distributions, releases, files, licenses or API keys bumps the generation in its own
//!   transaction and says what changed, so each instance refreshes only that part of its
//!   in-memory catalog. The single row's lock orders the bumps by commit, so an instance that
//!   has seen generation N has seen every change up to N.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("cluster_secrets")
                    .col(string_len("name", 64).primary_key())
                    .col(text("value"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("catalog_generation")
                    .col(integer("id").primary_key())
                    .col(big_integer("generation"))
                    .to_owned(),
            )
            .await?;
        let seed = Query::insert()
            .into_table("catalog_generation")
            .columns(["id", "generation"])
            .values_panic([1.into(), 0i64.into()])
            .to_owned();
        manager.exec_stmt(seed).await?;
        manager
            .create_table(
                Table::create()
                    .table("catalog_changes")
                    .col(big_integer("generation").primary_key())
                    // `distribution`, `license`, `licenses` (all of them) or `api_key`.
                    .col(string_len("kind", 16))
                    // The distribution id, license key or API key id; empty for `licenses`.
                    .col(string_len("target", 255))
                    .col(timestamp_with_time_zone("changed_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["catalog_changes", "catalog_generation", "cluster_secrets"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
