//! Named products and features (issue 13 item 2, seed 002): the numbers that gate a
//! distribution (`lic_product_id`, `lic_feature_id`) and that licenses carry get names, and a
//! feature may have a default subscription length (`default_days`) applied when it is added
//! to a license without an end date. The numbers on the wire do not change.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("products")
                    .if_not_exists()
                    .col(pk_auto("id"))
                    .col(big_integer("number").unique_key())
                    .col(string_len("name", 255))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("product_features")
                    .if_not_exists()
                    .col(pk_auto("id"))
                    .col(big_integer("product_number"))
                    .col(big_integer("number"))
                    .col(string_len("name", 255))
                    .col(integer_null("default_days"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_product_features_number")
                    .table("product_features")
                    .col("product_number")
                    .col("number")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("product_features").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("products").to_owned())
            .await
    }
}
