//! Users and roles (issue 12, item 1). `admin_users` becomes the table of every user of the
//! vendor API: each gains its roles (comma-separated: `owner`, `release`, `support`,
//! `viewer`), a `disabled` flag, the SHA-256 of a pending one-time set-password token with its
//! expiry, and `updated_at`. The existing `admin` becomes the first owner. A user made by an
//! owner has no password until the token is used (`password_hash` is then empty, which never
//! verifies).
//!
//! API keys belong to a user (`api_keys.user_id`); existing keys go to the first owner.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            string("roles").default("").to_owned(),
            boolean("disabled").default(false).to_owned(),
            string_null("set_password_token_hash"),
            timestamp_with_time_zone_null("set_password_expires_at"),
            timestamp_with_time_zone_null("updated_at"),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("admin_users")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        let owners = Query::update()
            .table("admin_users")
            .value("roles", "owner")
            .to_owned();
        manager.exec_stmt(owners).await?;

        manager
            .alter_table(
                Table::alter()
                    .table("api_keys")
                    .add_column(integer_null("user_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("UPDATE api_keys SET user_id = (SELECT MIN(id) FROM admin_users)")
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_keys_user_id")
                    .table("api_keys")
                    .col("user_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_api_keys_user_id")
                    .table("api_keys")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("api_keys")
                    .drop_column("user_id")
                    .to_owned(),
            )
            .await?;
        for column in [
            "updated_at",
            "set_password_expires_at",
            "set_password_token_hash",
            "disabled",
            "roles",
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("admin_users")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
