//! Sessions of the browser pages (issue 12, item 2), kept in the database so that a session
//! made on one instance opens pages on every instance sharing the database. `id` is the
//! SHA-256 (hex) of the random token in the cookie; the token itself is never stored.
//! `user_id` is the user logged in; `api_key_id` is set instead of a password check when an
//! API key logged in (the key's user is `user_id`). `password_tag` binds a password session to
//! the password it was made with. `csrf_token` guards the forms of the session.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("sessions")
                    .if_not_exists()
                    .col(string_len("id", 64).primary_key())
                    .col(integer("user_id"))
                    .col(integer_null("api_key_id"))
                    .col(string_len("password_tag", 64).default(""))
                    .col(string_len("csrf_token", 64))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("last_seen_at"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(string_len_null("ip", 64))
                    .col(string_len_null("user_agent", 512))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user_id")
                    .table("sessions")
                    .col("user_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("sessions").to_owned())
            .await
    }
}
