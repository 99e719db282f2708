//! Who is calling the vendor API: a user (HTTP Basic, with the permissions of the user's roles,
//! `services::users`) or an API key (`Bearer` or `x-api-key`) with permissions, never more than
//! its user's roles allow now. Passwords are PBKDF2-hashed; API keys are stored as SHA-256.
//! Users and keys are read from the database on every request, so a disabled user, a changed
//! role or a revoked key counts on every instance with its next request.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::pbkdf2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::Rng;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use sha2::Digest;

use crate::entities::{admin_user, api_key};
use crate::error::ApiError;
use crate::ratelimit::FailureLimiter;
use crate::services::audit::{self, Event, Via};
use crate::services::users;
use crate::state::AppState;

pub const ADMIN_USER: &str = "admin";
const PBKDF2_ITERATIONS: u32 = 210_000;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Read the catalog (distributions, releases, files) and statistics; no customer data
    /// (licenses, customers, ITNs, license keys).
    Read,
    /// Create and change distributions, releases and files; implies `read`.
    Publish,
    /// Read and write licenses and customers (offline bundles, per-license statistics);
    /// implies `read`.
    Licenses,
    /// Everything, including API keys.
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 4] = [
        Permission::Read,
        Permission::Publish,
        Permission::Licenses,
        Permission::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Publish => "publish",
            Permission::Licenses => "licenses",
            Permission::Admin => "admin",
        }
    }

    /// Whether holding `self` grants `wanted` (SPEC §1 roles): `admin` grants everything,
    /// `publish` and `licenses` grant `read` besides themselves, `read` only itself. So a
    /// `publish` key (a release engineer's CI) never reaches customer data.
    pub const fn implies(self, wanted: Permission) -> bool {
        matches!(
            (self, wanted),
            (Permission::Admin, _)
                | (Permission::Publish, Permission::Publish | Permission::Read)
                | (
                    Permission::Licenses,
                    Permission::Licenses | Permission::Read
                )
                | (Permission::Read, Permission::Read)
        )
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Stored as a comma-separated list.
    pub fn parse_list(s: &str) -> Vec<Permission> {
        s.split(',')
            .filter_map(|p| Permission::parse(p.trim()))
            .collect()
    }

    pub fn join(list: &[Permission]) -> String {
        list.iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// An authenticated caller of the vendor API.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A user logged in with their password: the permissions of the user's roles.
    User {
        id: i32,
        login: String,
        permissions: Vec<Permission>,
    },
    /// An API key of user `user_id`: the key's permissions as far as the user's roles allow.
    ApiKey {
        id: i32,
        user_id: i32,
        permissions: Vec<Permission>,
    },
}

/// Whether one of `held` implies `wanted` ([`Permission::implies`]).
pub fn grants(held: &[Permission], wanted: Permission) -> bool {
    held.iter().any(|p| p.implies(wanted))
}

/// What a key holding `key` may do for a user holding `user`: everything both grant. The
/// key's own list when the user grants all of it; otherwise the permissions both imply (so an
/// `admin` key of a user demoted to `release` keeps `publish` and `read`).
pub fn narrowed(key: &[Permission], user: &[Permission]) -> Vec<Permission> {
    if key.iter().all(|p| grants(user, *p)) {
        return key.to_vec();
    }
    Permission::ALL
        .into_iter()
        .filter(|p| grants(key, *p) && grants(user, *p))
        .collect()
}

impl Caller {
    /// Whether one of the caller's permissions implies `wanted` ([`Permission::implies`]).
    pub fn has(&self, wanted: Permission) -> bool {
        grants(self.permissions(), wanted)
    }

    pub fn permissions(&self) -> &[Permission] {
        match self {
            Caller::User { permissions, .. } | Caller::ApiKey { permissions, .. } => permissions,
        }
    }

    /// The user acting, directly or through one of their keys.
    pub fn user_id(&self) -> i32 {
        match self {
            Caller::User { id, .. } => *id,
            Caller::ApiKey { user_id, .. } => *user_id,
        }
    }

    pub fn require(&self, wanted: Permission) -> Result<(), ApiError> {
        if self.has(wanted) {
            Ok(())
        } else {
            let who = match self {
                Caller::User { .. } => "this user's roles lack",
                Caller::ApiKey { .. } => "this API key lacks",
            };
            Err(ApiError::forbidden(format!(
                "{who} the {:?} permission",
                wanted.as_str()
            )))
        }
    }
}

/// A permission a route needs, as a type, so the check runs in the extractor: before any
/// body is read (issue 7: a 200 MiB upload without the permission must not be read at all).
pub trait Needs: Send + Sync + 'static {
    const PERMISSION: Permission;
}

/// The permission markers for [`Authorized`].
pub mod need {
    use super::{Needs, Permission};

    pub struct Read;
    pub struct Publish;
    pub struct Licenses;
    pub struct Admin;

    impl Needs for Read {
        const PERMISSION: Permission = Permission::Read;
    }
    impl Needs for Publish {
        const PERMISSION: Permission = Permission::Publish;
    }
    impl Needs for Licenses {
        const PERMISSION: Permission = Permission::Licenses;
    }
    impl Needs for Admin {
        const PERMISSION: Permission = Permission::Admin;
    }
}

/// A caller holding permission `N`: 401 without credentials, 403 without the permission,
/// both answered from the headers alone.
pub struct Authorized<N: Needs>(pub Caller, PhantomData<N>);

impl<N: Needs> FromRequestParts<AppState> for Authorized<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(N::PERMISSION)?;
        Ok(Authorized(caller, PhantomData))
    }
}

/// How many successful password checks are remembered.
const VERIFIED_CACHE_ENTRIES: usize = 1024;
/// `api_keys.last_used_at` is written at most this often per key.
const LAST_USED_INTERVAL: Duration = Duration::from_secs(60);
/// How long a login waits for a free password-hashing slot before it is answered 503.
const HASHING_WAIT: Duration = Duration::from_secs(10);

/// Authentication state shared by every request: the throttle of failed logins, the bound on
/// concurrent password hashing, the cache of verified passwords and the `last_used_at` writer.
pub struct AuthCache {
    /// `sha256(stored hash ‖ 0 ‖ password)` of passwords that verified. Keyed by the stored
    /// hash, so a changed password (on any instance) is forgotten at once: the next request
    /// reads the new hash and misses.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// PBKDF2 runs on the blocking pool; this bounds how many run at once, so guessers cannot
    /// take the pool from everybody else.
    hashing: tokio::sync::Semaphore,
    throttle: LoginThrottle,
    /// When each API key's `last_used_at` was last written.
    key_use: Mutex<HashMap<i32, Instant>>,
    /// When a throttled login from each address was last written to the audit log.
    throttled_recorded: Mutex<HashMap<IpAddr, Instant>>,
}

impl AuthCache {
    pub fn new(failures_per_minute: u32) -> AuthCache {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        AuthCache {
            verified: Mutex::default(),
            hashing: tokio::sync::Semaphore::new(cores),
            throttle: LoginThrottle::new(failures_per_minute),
            key_use: Mutex::default(),
            throttled_recorded: Mutex::default(),
        }
    }
}

impl Default for AuthCache {
    fn default() -> Self {
        AuthCache::new(crate::config::Settings::default().login_failures_per_minute)
    }
}

/// Failed logins per client address and per (user name, client address) — never per user
/// alone, or anyone could lock the owner out by guessing from elsewhere. A (user, address)
/// pair gets `per_user` failures a minute; an address, three times that over all the names
/// and keys it tries.
pub struct LoginThrottle {
    per_address: FailureLimiter<IpAddr>,
    per_user: FailureLimiter<(String, IpAddr)>,
}

impl LoginThrottle {
    pub fn new(per_user: u32) -> LoginThrottle {
        LoginThrottle {
            per_address: FailureLimiter::new(per_user.saturating_mul(3)),
            per_user: FailureLimiter::new(per_user),
        }
    }

    fn blocked(&self, user: Option<&str>, ip: IpAddr) -> bool {
        self.per_address.is_blocked(&ip)
            || user.is_some_and(|u| self.per_user.is_blocked(&(u.to_owned(), ip)))
    }

    fn failed(&self, user: Option<&str>, ip: IpAddr) {
        self.per_address.record_failure(ip);
        if let Some(u) = user {
            self.per_user.record_failure((u.to_owned(), ip));
        }
    }

    fn succeeded(&self, user: &str, ip: IpAddr) {
        self.per_user.forget(&(user.to_owned(), ip));
    }
}

/// What a caller presents: a user name and password, or an API key.
#[derive(Clone)]
pub enum Credentials {
    Password { user: String, password: String },
    ApiKey(String),
}

impl Credentials {
    /// `x-api-key: KEY`, `Authorization: Bearer KEY` or `Authorization: Basic …`; `None` when
    /// the request carries none of them (or a malformed one).
    pub fn from_headers(headers: &HeaderMap) -> Option<Credentials> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        if let Some(key) = header("x-api-key") {
            return Some(Credentials::ApiKey(key.to_owned()));
        }
        let auth = header("authorization")?;
        if let Some(key) = strip_prefix_ci(auth, "bearer ") {
            return Some(Credentials::ApiKey(key.trim().to_owned()));
        }
        let encoded = strip_prefix_ci(auth, "basic ")?;
        let decoded = B64
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())?;
        let (user, password) = decoded.split_once(':')?;
        Some(Credentials::Password {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credentials =
            Credentials::from_headers(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let client = crate::client_addr::ClientAddr::from_parts(parts, &state.trusted_proxies).0;
        let caller = match authenticate(state, &credentials, client).await {
            Ok(caller) => caller,
            Err(e) => {
                // The one audit entry of a failed login; the request's own is not written.
                let reason = match (&credentials, e.status) {
                    (_, StatusCode::TOO_MANY_REQUESTS) => Some("throttled"),
                    (Credentials::Password { .. }, StatusCode::UNAUTHORIZED) => {
                        Some("wrong credentials")
                    }
                    (Credentials::ApiKey(_), StatusCode::UNAUTHORIZED) => Some(e.message.as_str()),
                    _ => None,
                };
                if let Some(reason) = reason {
                    record_login_failure(state, Via::Api, &credentials, e.status, reason, client)
                        .await;
                }
                return Err(e);
            }
        };
        // The audit line of this request names who it was (see `access_log`).
        if let Some(actor) = parts.extensions.get::<crate::access_log::AuditActor>() {
            actor.set(&caller);
        }
        Ok(caller)
    }
}

/// Checks `credentials` from `client`: the one way in for the vendor API, the reports login
/// form and anything else that signs in. Throttled before any password is hashed.
pub async fn authenticate(
    state: &AppState,
    credentials: &Credentials,
    client: IpAddr,
) -> Result<Caller, ApiError> {
    let throttle = &state.auth.throttle;
    match credentials {
        Credentials::ApiKey(key) => {
            if throttle.blocked(None, client) {
                return Err(too_many_failed_logins());
            }
            let caller = api_key_caller(state, key).await;
            if caller.is_err() {
                throttle.failed(None, client);
                tracing::info!(target: "audit", %client, "failed login with an unknown or revoked API key");
            }
            caller
        }
        Credentials::Password { user, password } => {
            if throttle.blocked(Some(user), client) {
                return Err(too_many_failed_logins());
            }
            if let Some(caller) = verify_user(state, user, password).await? {
                throttle.succeeded(user, client);
                return Ok(caller);
            }
            throttle.failed(Some(user), client);
            tracing::info!(target: "audit", %client, user = %crate::error::quote(user), "failed login");
            Err(ApiError::unauthorized())
        }
    }
}

/// How often a throttled login from one address is written to the audit log: a guesser
/// refused a thousand times a minute makes one entry a minute, not a thousand.
const THROTTLED_RECORD_INTERVAL: Duration = Duration::from_secs(60);

/// Records a failed login (`loginFailed`) in the audit log: the name tried (or `api-key`),
/// why (`reason`), the answer's status. A throttled one (429) at most once a minute per
/// address.
pub async fn record_login_failure(
    state: &AppState,
    via: Via,
    credentials: &Credentials,
    status: StatusCode,
    reason: &str,
    client: IpAddr,
) {
    if status == StatusCode::TOO_MANY_REQUESTS {
        let now = Instant::now();
        let mut recorded = state
            .auth
            .throttled_recorded
            .lock()
            .expect("throttled logins map poisoned");
        if recorded
            .get(&client)
            .is_some_and(|last| now.duration_since(*last) < THROTTLED_RECORD_INTERVAL)
        {
            return;
        }
        if recorded.len() > 100_000 {
            recorded.clear();
        }
        recorded.insert(client, now);
    }
    let actor = match credentials {
        Credentials::Password { user, .. } => audit::tried_login(user),
        Credentials::ApiKey(_) => "api-key".to_owned(),
    };
    let event = Event {
        detail: reason.to_owned(),
        status: Some(status.as_u16()),
        client: Some(client.to_string()),
        ..Event::new(via, actor, "loginFailed", "")
    };
    audit::record(&state.db, event, chrono::Utc::now()).await;
}

/// Records a login (`login`) through the login form of `actor` (a login, or `api-key:ID`:
/// [`crate::access_log::actor_name`] of the caller), user `user_id`.
pub async fn record_login(state: &AppState, actor: String, user_id: i32, client: IpAddr) {
    let event = Event {
        user_id: Some(user_id),
        client: Some(client.to_string()),
        ..Event::new(Via::Login, actor, "login", "")
    };
    audit::record(&state.db, event, chrono::Utc::now()).await;
}

/// Records a logout (`logout`) of the session of user `user_id` (made with API key
/// `api_key_id`, if so).
pub async fn record_logout(
    state: &AppState,
    user_id: i32,
    api_key_id: Option<i32>,
    client: IpAddr,
) {
    let actor = match api_key_id {
        Some(id) => format!("api-key:{id}"),
        None => match admin_user::Entity::find_by_id(user_id).one(&state.db).await {
            Ok(Some(user)) => user.username,
            _ => format!("user:{user_id}"),
        },
    };
    let event = Event {
        user_id: Some(user_id),
        client: Some(client.to_string()),
        ..Event::new(Via::Login, actor, "logout", "")
    };
    audit::record(&state.db, event, chrono::Utc::now()).await;
}

fn too_many_failed_logins() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "too many failed logins from this address; try again in a minute",
    )
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix))
    .then(|| &s[prefix.len()..])
}

/// The enabled user `login` when `password` is theirs (a user without a password, or a
/// disabled one, never verifies).
async fn verify_user(
    state: &AppState,
    login: &str,
    password: &str,
) -> Result<Option<Caller>, ApiError> {
    let Some(user) = admin_user::Entity::find()
        .filter(admin_user::Column::Username.eq(login))
        .one(&state.db)
        .await?
    else {
        return Ok(None);
    };
    if user.disabled || user.password_hash.is_empty() {
        return Ok(None);
    }
    if !verify_cached(state, &user.password_hash, password).await? {
        return Ok(None);
    }
    Ok(Some(Caller::User {
        id: user.id,
        permissions: users::permissions_of_user(&user),
        login: user.username,
    }))
}

/// User `id` as a caller, while enabled; `None` otherwise.
pub async fn user_caller(db: &DatabaseConnection, id: i32) -> Result<Option<Caller>, DbErr> {
    Ok(admin_user::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|u| !u.disabled)
        .map(|u| Caller::User {
            id: u.id,
            permissions: users::permissions_of_user(&u),
            login: u.username,
        }))
}

/// The stored password hash of user `id`, while enabled: what a reports session is bound to.
pub async fn user_password_hash(db: &DatabaseConnection, id: i32) -> Result<Option<String>, DbErr> {
    Ok(admin_user::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|u| !u.disabled && !u.password_hash.is_empty())
        .map(|u| u.password_hash))
}

async fn verify_cached(state: &AppState, hash: &str, password: &str) -> Result<bool, ApiError> {
    let hash = hash.to_owned();
    let fingerprint: [u8; 32] = sha2::Sha256::new()
        .chain_update(hash.as_bytes())
        .chain_update([0u8])
        .chain_update(password.as_bytes())
        .finalize()
        .into();
    if state
        .auth
        .verified
        .lock()
        .expect("auth cache poisoned")
        .contains(&fingerprint)
    {
        return Ok(true);
    }
    let _slot = tokio::time::timeout(HASHING_WAIT, state.auth.hashing.acquire())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "too many logins at once; try again in a few seconds",
            )
        })?
        .map_err(ApiError::internal)?;
    let password = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(ApiError::internal)?;
    if ok {
        let mut verified = state.auth.verified.lock().expect("auth cache poisoned");
        if verified.len() >= VERIFIED_CACHE_ENTRIES {
            verified.clear();
        }
        verified.insert(fingerprint);
    }
    Ok(ok)
}

/// The caller an API key row stands for: 401 when its user is disabled or gone; otherwise the
/// key's permissions narrowed to what the user's roles allow now ([`narrowed`]).
pub async fn key_caller(db: &DatabaseConnection, row: &api_key::Model) -> Result<Caller, ApiError> {
    let user = match row.user_id {
        Some(id) => admin_user::Entity::find_by_id(id).one(db).await?,
        None => None,
    };
    let Some(user) = user.filter(|u| !u.disabled) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "this API key's user is disabled",
        ));
    };
    let allowed = users::permissions_of_user(&user);
    Ok(Caller::ApiKey {
        id: row.id,
        user_id: user.id,
        permissions: narrowed(&Permission::parse_list(&row.permissions), &allowed),
    })
}

async fn api_key_caller(state: &AppState, key: &str) -> Result<Caller, ApiError> {
    let row = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(hash_api_key(key)))
        .one(&state.db)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "unknown or revoked API key",
            )
        })?;
    let caller = key_caller(&state.db, &row).await?;
    note_key_use(state, row.id);
    Ok(caller)
}

/// Writes `last_used_at` at most once a minute per key, in a task of its own so the request
/// never waits for it.
fn note_key_use(state: &AppState, id: i32) {
    let now = Instant::now();
    {
        let mut seen = state.auth.key_use.lock().expect("key use map poisoned");
        if seen
            .get(&id)
            .is_some_and(|last| now.duration_since(*last) < LAST_USED_INTERVAL)
        {
            return;
        }
        if seen.len() > 100_000 {
            seen.clear();
        }
        seen.insert(id, now);
    }
    let db = state.db.clone();
    tokio::spawn(async move {
        let result = api_key::Entity::update_many()
            .col_expr(
                api_key::Column::LastUsedAt,
                sea_orm::sea_query::Expr::value(chrono::Utc::now()),
            )
            .filter(api_key::Column::Id.eq(id))
            .exec(&db)
            .await;
        if let Err(e) = result {
            tracing::warn!(key = id, error = %e, "cannot record the API key's last use");
        }
    });
}

pub fn hash_api_key(key: &str) -> String {
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// A new API key: `vypk_` + 40 random alphanumerics. Returned once, stored hashed.
pub fn generate_api_key() -> String {
    format!("vypk_{}", random_alphanumeric(40))
}

pub fn random_alphanumeric(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// `pbkdf2-sha256$ITER$SALT$HASH` (base64).
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill(&mut salt);
    let mut out = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(PBKDF2_ITERATIONS).expect("non-zero"),
        &salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "pbkdf2-sha256${PBKDF2_ITERATIONS}${}${}",
        B64.encode(salt),
        B64.encode(out)
    )
}

pub fn verify_password(stored: &str, password: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(iter), Some(salt), Some(hash)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(iter), Ok(salt), Ok(hash)) = (
        iter.parse::<u32>().ok().and_then(NonZeroU32::new),
        B64.decode(salt),
        B64.decode(hash),
    ) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iter,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("s3cret");
        assert!(verify_password(&h, "s3cret"));
        assert!(!verify_password(&h, "s3cret "));
        assert!(!verify_password("garbage", "s3cret"));
    }

    /// Every cell of the implication table (rows: held, columns: wanted).
    #[test]
    fn implication_table() {
        use Permission::*;
        let wanted = [Read, Publish, Licenses, Admin];
        let table = [
            (Read, [true, false, false, false]),
            (Publish, [true, true, false, false]),
            (Licenses, [true, false, true, false]),
            (Admin, [true, true, true, true]),
        ];
        for (held, row) in table {
            for (w, expected) in wanted.into_iter().zip(row) {
                assert_eq!(held.implies(w), expected, "{held:?} implies {w:?}");
            }
        }
        // Combinations add up: publish + licenses is both, still not admin.
        let both = Caller::ApiKey {
            id: 3,
            user_id: 1,
            permissions: vec![Publish, Licenses],
        };
        assert!(both.has(Publish) && both.has(Licenses) && both.has(Read));
        assert!(!both.has(Admin));
        let nothing = Caller::ApiKey {
            id: 4,
            user_id: 1,
            permissions: vec![],
        };
        assert!(wanted.into_iter().all(|w| !nothing.has(w)));
    }

    #[test]
    fn permissions_imply() {
        let publisher = Caller::ApiKey {
            id: 1,
            user_id: 1,
            permissions: vec![Permission::Publish],
        };
        assert!(publisher.has(Permission::Read));
        assert!(publisher.has(Permission::Publish));
        assert!(!publisher.has(Permission::Licenses));
        assert!(!publisher.has(Permission::Admin));
        let reader = Caller::ApiKey {
            id: 2,
            user_id: 1,
            permissions: vec![Permission::Read],
        };
        assert!(!reader.has(Permission::Publish));
        let owner = Caller::User {
            id: 1,
            login: "admin".into(),
            permissions: vec![Permission::Admin],
        };
        assert!(Permission::ALL.into_iter().all(|p| owner.has(p)));
        assert_eq!(
            Permission::parse_list("read, publish,bogus"),
            vec![Permission::Read, Permission::Publish]
        );
    }

    /// A key never does more than its user's roles allow now.
    #[test]
    fn keys_are_narrowed_to_their_user() {
        use Permission::*;
        assert_eq!(narrowed(&[Publish], &[Admin]), vec![Publish]);
        assert_eq!(narrowed(&[Admin], &[Publish]), vec![Read, Publish]);
        assert_eq!(
            narrowed(&[Publish, Licenses], &[Licenses]),
            vec![Read, Licenses]
        );
        assert_eq!(narrowed(&[Publish], &[Licenses]), vec![Read]);
        assert_eq!(narrowed(&[Admin], &[]), Vec::<Permission>::new());
        assert_eq!(narrowed(&[Read], &[Read]), vec![Read]);
    }
}
