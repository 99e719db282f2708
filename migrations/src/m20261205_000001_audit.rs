//! The audit log (issue 12, item 3): who did what and when, from the vendor API, the console,
//! the CLI and the login form alike. Kept in the database, so every instance sharing it writes
//! to one log. `actor` is a user's login, `api-key:ID`, `cli`, or for a failed login the name
//! that was tried (quoted, at most 64 characters); `via` is `api`, `console`, `cli` or
//! `login`; `action` an operation id of the OpenAPI document (`publishRelease`) or `login`,
//! `loginFailed`, `logout`; `status` the HTTP status where there is one.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("audit_log")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(timestamp_with_time_zone("at"))
                    .col(text("actor"))
                    .col(integer_null("user_id"))
                    .col(string_len("via", 16))
                    .col(text("action"))
                    .col(text("target"))
                    .col(text("detail"))
                    .col(small_integer_null("status"))
                    .col(text_null("client"))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_audit_log_at", "at"),
            ("idx_audit_log_actor", "actor"),
            ("idx_audit_log_action", "action"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table("audit_log")
                        .col(column)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("audit_log").to_owned())
            .await
    }
}
