//! `blobs`: one row per stored blob (content key = sha256), with the moment it stopped being
//! referenced by any file row. The row is also the per-blob lock that uploads, deletes and the
//! sweeper take before deciding anything about the blob (see the server's `blobs` module).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("blobs")
                    .col(string_len("sha256", 64).primary_key())
                    // NULL while some file row refers to the blob.
                    .col(timestamp_with_time_zone_null("unreferenced_since"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_blobs_unreferenced_since")
                    .table("blobs")
                    .col("unreferenced_since")
                    .to_owned(),
            )
            .await?;
        // Every blob referenced today. Stored blobs without a row (left by crashes before this
        // table existed) are found by the sweeper's listing.
        manager
            .get_connection()
            .execute_unprepared("INSERT INTO blobs (sha256) SELECT DISTINCT sha256 FROM files")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("blobs").to_owned())
            .await
    }
}
