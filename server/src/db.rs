//! Database connection, migrations and the admin user. SQLite and PostgreSQL are chosen by URL;
//! everything above this module is the same for both.

use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DbBackend, EntityTrait, QueryFilter, Set,
};
use vypusk_migrations::{Migrator, MigratorTrait as _};

use crate::auth::{ADMIN_USER, hash_password, random_alphanumeric};
use crate::entities::admin_user;
use crate::services::users::Role;

/// How long opening the database may take before startup fails (issue 8, item 4: a wrong URL
/// or an unreachable server must not mean 30 s of silence).
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(4);

pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let shown = redact_url(url);
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        // One plain connection first: the pool retries refused connections until its acquire
        // timeout and then reports only the timeout, while this names the cause.
        preflight_postgres(url)
            .await
            .map_err(|why| anyhow::anyhow!("cannot open the database {shown}: {why}"))?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(CONNECT_DEADLINE)
        .acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        // WAL lets readers proceed while one writer commits; a busy timeout instead of
        // immediate "database is locked" errors.
        options.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    }
    let db = tokio::time::timeout(CONNECT_DEADLINE, Database::connect(options))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "cannot open the database {shown}: no answer within {CONNECT_DEADLINE:?}"
            )
        })?
        .map_err(|e| anyhow::anyhow!("cannot open the database {shown}: {e}"))?;
    Ok(db)
}

async fn preflight_postgres(url: &str) -> Result<(), String> {
    use sea_orm::sqlx::Connection as _;
    match tokio::time::timeout(
        CONNECT_DEADLINE,
        sea_orm::sqlx::postgres::PgConnection::connect(url),
    )
    .await
    {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CONNECT_DEADLINE:?}")),
    }
}

/// `url` with its password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

/// Key of the PostgreSQL advisory lock held while migrating (any fixed number; this one is
/// "vypusk" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x7679_7075_736b;

/// Applies pending migrations. Instances starting together on one PostgreSQL database take
/// turns (issue 8, item 2): the first migrates, the others wait on an advisory lock and then
/// find nothing left to do. SQLite has one writer at a time already.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    let failed = |e: &dyn std::fmt::Display| anyhow::anyhow!("database migration failed: {e}");
    if db.get_database_backend() != DbBackend::Postgres {
        return Migrator::up(db, None).await.map_err(|e| failed(&e));
    }
    // A session-level advisory lock belongs to one connection, so one connection of the pool
    // is held for the whole run; the migrations use others. Should this process die, its
    // session ends and PostgreSQL releases the lock.
    use sea_orm::sqlx;
    let mut holder = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *holder)
        .await
        .map_err(|e| failed(&e))?;
    let result = Migrator::up(db, None).await.map_err(|e| failed(&e));
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *holder)
        .await;
    if unlocked.is_err() {
        // Closing the session is what releases the lock then.
        drop(holder.detach());
    }
    result
}

pub fn kind(db: &DatabaseConnection) -> &'static str {
    match db.get_database_backend() {
        DbBackend::Sqlite => "sqlite",
        DbBackend::Postgres => "postgres",
        _ => "other",
    }
}

/// Creates the admin user, the first owner, on first start; gives it a password when it has
/// none (made by `vypusk api-key create` on a data directory no server had started on), and
/// gives keys without a user to the first owner. Returns the password when it was generated,
/// so the caller can show it once.
pub async fn ensure_admin(
    db: &DatabaseConnection,
    configured: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let existing = admin_user::Entity::find()
        .filter(admin_user::Column::Username.eq(ADMIN_USER))
        .one(db)
        .await?;
    if let Some(admin) = existing {
        let mut generated = None;
        if admin.password_hash.is_empty() && admin.set_password_token_hash.is_none() {
            let (password, made) = match configured {
                Some(p) if !p.is_empty() => (p.to_owned(), false),
                _ => (random_alphanumeric(24), true),
            };
            let hash = {
                let password = password.clone();
                tokio::task::spawn_blocking(move || hash_password(&password)).await?
            };
            // Only if still without one: another instance may have just set it.
            let updated = admin_user::Entity::update_many()
                .col_expr(
                    admin_user::Column::PasswordHash,
                    sea_orm::sea_query::Expr::value(hash),
                )
                .filter(admin_user::Column::Id.eq(admin.id))
                .filter(admin_user::Column::PasswordHash.eq(""))
                .exec(db)
                .await?;
            if made && updated.rows_affected == 1 {
                generated = Some(password);
            }
        }
        crate::services::users::first_owner(db)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        return Ok(generated);
    }
    let (password, generated) = match configured {
        Some(p) if !p.is_empty() => (p.to_owned(), false),
        _ => (random_alphanumeric(24), true),
    };
    let hash = {
        let password = password.clone();
        tokio::task::spawn_blocking(move || hash_password(&password)).await?
    };
    let inserted = admin_user::ActiveModel {
        username: Set(ADMIN_USER.to_owned()),
        password_hash: Set(hash),
        created_at: Set(chrono::Utc::now()),
        roles: Set(Role::Owner.as_str().to_owned()),
        disabled: Set(false),
        ..Default::default()
    }
    .insert(db)
    .await;
    match inserted {
        Ok(_) => {
            crate::services::users::first_owner(db)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            Ok(generated.then_some(password))
        }
        // Another instance starting at the same moment created it first; its password holds.
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Sets the admin's password (creating the admin if needed). Servers on the same database
/// stop accepting the old password with their next request: their cache of verified passwords
/// is keyed by the stored hash (see `auth`).
pub async fn set_admin_password(db: &DatabaseConnection, password: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        password.chars().count() >= 12,
        "the password must have at least 12 characters"
    );
    let hash = {
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_password(&password)).await?
    };
    let updated = admin_user::Entity::update_many()
        .col_expr(
            admin_user::Column::PasswordHash,
            sea_orm::sea_query::Expr::value(hash.clone()),
        )
        .filter(admin_user::Column::Username.eq(ADMIN_USER))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        admin_user::ActiveModel {
            username: Set(ADMIN_USER.to_owned()),
            password_hash: Set(hash),
            created_at: Set(chrono::Utc::now()),
            roles: Set(Role::Owner.as_str().to_owned()),
            disabled: Set(false),
            ..Default::default()
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

/// True when `e` is a unique-constraint violation (the same on SQLite and PostgreSQL).
pub fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// Runs `sql` on whichever backend; used by tests and the demo.
pub async fn execute_unprepared(db: &DatabaseConnection, sql: &str) -> anyhow::Result<()> {
    db.execute_unprepared(sql).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://vypusk:s3cret@db.example:5432/vypusk"),
            "postgres://vypusk:***@db.example:5432/vypusk"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:1/x"),
            "postgres://postgres@127.0.0.1:1/x"
        );
    }

    #[tokio::test]
    async fn unreachable_database_fails_fast_naming_it() {
        let started = std::time::Instant::now();
        let e = connect("postgres://postgres:pw@127.0.0.1:1/x")
            .await
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(5), "{e}");
        assert!(e.contains("postgres://postgres:***@127.0.0.1:1/x"), "{e}");
        assert!(!e.contains("pw"), "{e}");
    }
}
