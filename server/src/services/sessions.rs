//! Sessions of the browser pages (issue 12, item 2), kept in the `sessions` table so that every
//! instance on one database knows every session: a session made through one instance opens
//! pages on all of them, and logging out anywhere ends it everywhere.
//!
//! The cookie carries a random 32-byte token (hex); the table keeps only its SHA-256. A session
//! ends when it is `ABSOLUTE_LIFETIME` old, when it was not used for `IDLE_LIMIT`, when its
//! user is disabled, when the password it was made with is no longer the user's (or, for a
//! session an API key opened, when the key is revoked), and at logout. `last_seen_at` is
//! written at most once per `TOUCH_EVERY`, so reading pages does not write on every request.
//!
//! Every function takes the time as an argument (tests pass their own clock).

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, Set,
};
use sha2::{Digest, Sha256};

use crate::auth::{Caller, key_caller, user_caller};
use crate::entities::{admin_user, api_key, session};

/// A session ends this long after login, however busy.
pub const ABSOLUTE_LIFETIME: Duration = Duration::days(7);
/// A session not used for this long ends, unless the settings say otherwise
/// (`session_idle_minutes`).
pub const IDLE_LIMIT: Duration = Duration::hours(8);
/// `last_seen_at` is written at most this often.
pub const TOUCH_EVERY: Duration = Duration::minutes(1);

/// Who logs in: a user with their password, or an API key (of its user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login<'a> {
    Password {
        user_id: i32,
        password_hash: &'a str,
    },
    ApiKey {
        key_id: i32,
        user_id: i32,
    },
}

/// A session just made: the token for the cookie (shown only now) and the row.
pub struct Created {
    pub token: String,
    pub session: session::Model,
}

/// The SHA-256 (hex) of a token: the session's id. The same hash as API keys and
/// set-password tokens are stored under.
pub fn token_hash(token: &str) -> String {
    crate::auth::hash_api_key(token.trim())
}

/// Binds a password session to the password hash it was made with.
fn password_tag(password_hash: &str) -> String {
    hex::encode(&Sha256::digest(password_hash.as_bytes())[..16])
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    hex::encode(bytes)
}

/// Compares two strings in time independent of where they differ (aws-lc's comparison).
pub fn same_secret(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

pub async fn create(
    db: &DatabaseConnection,
    login: Login<'_>,
    ip: Option<String>,
    user_agent: Option<String>,
    now: DateTime<Utc>,
) -> Result<Created, DbErr> {
    let token = random_token();
    let (user_id, api_key_id, tag) = match login {
        Login::Password {
            user_id,
            password_hash,
        } => (user_id, None, password_tag(password_hash)),
        Login::ApiKey { key_id, user_id } => (user_id, Some(key_id), String::new()),
    };
    let row = session::ActiveModel {
        id: Set(token_hash(&token)),
        user_id: Set(user_id),
        api_key_id: Set(api_key_id),
        password_tag: Set(tag),
        csrf_token: Set(random_token()),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(now + ABSOLUTE_LIFETIME),
        ip: Set(ip.map(|s| s.chars().take(64).collect())),
        user_agent: Set(user_agent.map(|s| s.chars().take(512).collect())),
    }
    .insert(db)
    .await?;
    Ok(Created {
        token,
        session: row,
    })
}

/// The idle limit of `session_idle_minutes` (at least a minute).
pub fn idle_limit(minutes: u32) -> Duration {
    Duration::minutes(i64::from(minutes.max(1)))
}

/// Whether a session row is still within its lifetime and idle limit at `now`.
pub fn is_live(row: &session::Model, idle: Duration, now: DateTime<Utc>) -> bool {
    now < row.expires_at && now - row.last_seen_at < idle
}

/// The session of `token` and who it is, while it lasts (see the module docs); touches
/// `last_seen_at` when it is older than `TOUCH_EVERY`. A session found ended is deleted.
pub async fn lookup(
    db: &DatabaseConnection,
    token: &str,
    idle: Duration,
    now: DateTime<Utc>,
) -> Result<Option<(session::Model, Caller)>, DbErr> {
    let Some(mut row) = session::Entity::find_by_id(token_hash(token))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let caller = if is_live(&row, idle, now) {
        caller_of(db, &row).await?
    } else {
        None
    };
    let Some(caller) = caller else {
        session::Entity::delete_by_id(row.id.clone())
            .exec(db)
            .await?;
        return Ok(None);
    };
    if now - row.last_seen_at >= TOUCH_EVERY {
        session::Entity::update_many()
            .col_expr(
                session::Column::LastSeenAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(session::Column::Id.eq(row.id.clone()))
            .exec(db)
            .await?;
        row.last_seen_at = now;
    }
    Ok(Some((row, caller)))
}

async fn caller_of(db: &DatabaseConnection, row: &session::Model) -> Result<Option<Caller>, DbErr> {
    if let Some(key_id) = row.api_key_id {
        let Some(key) = api_key::Entity::find_by_id(key_id).one(db).await? else {
            return Ok(None);
        };
        if key.user_id != Some(row.user_id) {
            return Ok(None);
        }
        return Ok(key_caller(db, &key).await.ok());
    }
    let Some(user) = admin_user::Entity::find_by_id(row.user_id).one(db).await? else {
        return Ok(None);
    };
    if user.disabled
        || user.password_hash.is_empty()
        || !same_secret(&password_tag(&user.password_hash), &row.password_tag)
    {
        return Ok(None);
    }
    user_caller(db, user.id).await
}

/// Logout: ends the session of `token`.
pub async fn delete(db: &DatabaseConnection, token: &str) -> Result<(), DbErr> {
    session::Entity::delete_by_id(token_hash(token))
        .exec(db)
        .await?;
    Ok(())
}

/// Ends every session of user `user_id` (disabled, password changed).
pub async fn delete_for_user<C: ConnectionTrait>(db: &C, user_id: i32) -> Result<u64, DbErr> {
    Ok(session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user_id))
        .exec(db)
        .await?
        .rows_affected)
}

/// Deletes sessions ended by time (housekeeping; lookups delete the ones they meet).
pub async fn delete_ended(
    db: &DatabaseConnection,
    idle: Duration,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(session::Entity::delete_many()
        .filter(
            Condition::any()
                .add(session::Column::ExpiresAt.lte(now))
                .add(session::Column::LastSeenAt.lte(now - idle)),
        )
        .exec(db)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use sea_orm::Database;
    use vypusk_migrations::{Migrator, MigratorTrait};

    use super::*;

    async fn db_with_user() -> (DatabaseConnection, admin_user::Model) {
        let db = Database::connect("sqlite::memory:").await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        let t0 = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let user = admin_user::ActiveModel {
            username: Set("maria".into()),
            password_hash: Set("$argon2id$hash-one".into()),
            created_at: Set(t0),
            roles: Set("viewer".into()),
            disabled: Set(false),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
        (db, user)
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    async fn login(
        db: &DatabaseConnection,
        user: &admin_user::Model,
        now: DateTime<Utc>,
    ) -> String {
        create(
            db,
            Login::Password {
                user_id: user.id,
                password_hash: &user.password_hash,
            },
            Some("127.0.0.1".into()),
            None,
            now,
        )
        .await
        .unwrap()
        .token
    }

    #[tokio::test]
    async fn create_lookup_and_logout() {
        let (db, user) = db_with_user().await;
        let created = create(
            &db,
            Login::Password {
                user_id: user.id,
                password_hash: &user.password_hash,
            },
            None,
            None,
            t0(),
        )
        .await
        .unwrap();
        // Only the hash is stored.
        assert_ne!(created.session.id, created.token);
        assert_eq!(created.session.id, token_hash(&created.token));
        assert_eq!(created.session.csrf_token.len(), 64);
        let (row, caller) = lookup(&db, &created.token, IDLE_LIMIT, t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(caller.user_id(), user.id);
        assert_eq!(row.csrf_token, created.session.csrf_token);
        assert!(
            lookup(&db, "not-a-token", IDLE_LIMIT, t0())
                .await
                .unwrap()
                .is_none()
        );
        delete(&db, &created.token).await.unwrap();
        assert!(
            lookup(&db, &created.token, IDLE_LIMIT, t0())
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn idle_sessions_end_and_use_keeps_them() {
        let (db, user) = db_with_user().await;
        let token = login(&db, &user, t0()).await;
        // Used every 7 hours, it lives on past 8 hours.
        let mut now = t0();
        for _ in 0..3 {
            now += Duration::hours(7);
            let (row, _) = lookup(&db, &token, IDLE_LIMIT, now).await.unwrap().unwrap();
            assert_eq!(row.last_seen_at, now);
        }
        // Touched at most once a minute.
        let (row, _) = lookup(&db, &token, IDLE_LIMIT, now + Duration::seconds(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.last_seen_at, now);
        // Idle past the limit: gone, and stays gone.
        let later = now + IDLE_LIMIT + Duration::seconds(1);
        assert!(
            lookup(&db, &token, IDLE_LIMIT, later)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            lookup(&db, &token, IDLE_LIMIT, now)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn the_idle_limit_follows_the_setting() {
        assert_eq!(idle_limit(0), Duration::minutes(1));
        assert_eq!(idle_limit(480), IDLE_LIMIT);
        let (db, user) = db_with_user().await;
        let token = login(&db, &user, t0()).await;
        let half_hour = idle_limit(30);
        let now = t0() + Duration::minutes(29);
        assert!(lookup(&db, &token, half_hour, now).await.unwrap().is_some());
        let later = now + Duration::minutes(31);
        assert!(
            lookup(&db, &token, half_hour, later)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn sessions_end_at_the_absolute_limit() {
        let (db, user) = db_with_user().await;
        let token = login(&db, &user, t0()).await;
        let mut now = t0();
        while now + Duration::hours(6) < t0() + ABSOLUTE_LIFETIME {
            now += Duration::hours(6);
            assert!(
                lookup(&db, &token, IDLE_LIMIT, now)
                    .await
                    .unwrap()
                    .is_some(),
                "{now}"
            );
        }
        let end = t0() + ABSOLUTE_LIFETIME;
        assert!(
            lookup(&db, &token, IDLE_LIMIT, end)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn disabled_users_and_changed_passwords_end_sessions() {
        let (db, user) = db_with_user().await;
        let token = login(&db, &user, t0()).await;
        let mut active: admin_user::ActiveModel = user.clone().into();
        active.disabled = Set(true);
        active.update(&db).await.unwrap();
        assert!(
            lookup(&db, &token, IDLE_LIMIT, t0())
                .await
                .unwrap()
                .is_none()
        );

        let mut active: admin_user::ActiveModel = user.clone().into();
        active.disabled = Set(false);
        active.update(&db).await.unwrap();
        let token = login(&db, &user, t0()).await;
        assert!(
            lookup(&db, &token, IDLE_LIMIT, t0())
                .await
                .unwrap()
                .is_some()
        );
        let mut active: admin_user::ActiveModel = user.clone().into();
        active.password_hash = Set("$argon2id$hash-two".into());
        active.update(&db).await.unwrap();
        assert!(
            lookup(&db, &token, IDLE_LIMIT, t0())
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_users_sessions_end_together() {
        let (db, user) = db_with_user().await;
        let a = login(&db, &user, t0()).await;
        let b = login(&db, &user, t0()).await;
        assert_eq!(delete_for_user(&db, user.id).await.unwrap(), 2);
        assert!(lookup(&db, &a, IDLE_LIMIT, t0()).await.unwrap().is_none());
        assert!(lookup(&db, &b, IDLE_LIMIT, t0()).await.unwrap().is_none());
        let c = login(&db, &user, t0()).await;
        assert_eq!(
            delete_ended(&db, IDLE_LIMIT, t0() + IDLE_LIMIT)
                .await
                .unwrap(),
            1,
            "idle"
        );
        assert!(lookup(&db, &c, IDLE_LIMIT, t0()).await.unwrap().is_none());
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
