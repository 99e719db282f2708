//! Users of the vendor API and their roles (issue 12, item 1; `/api/v1/users`): list, create
//! with a one-time set-password token, change roles, disable; set a password with the token;
//! change one's own password. Roles map to the permissions of `auth` through one function,
//! [`permissions_of`]. The last enabled owner can be neither disabled nor demoted.
//!
//! Every write runs in one transaction that first records the change for the other instances
//! (`catalog_sync`): that takes the catalog's single write lock, so two owners demoting each
//! other at the same moment take turns and the last-owner rule holds on PostgreSQL too.
//! Credentials are read from the database on every request (see `auth`), so a disabled user,
//! a changed role or a new password counts on every instance with its next request.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Order,
    PaginatorTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use crate::auth::{self, Permission};
use crate::catalog_sync::{self, Change};
use crate::entities::{admin_user, api_key};
use crate::error::ApiError;

use super::common::{self, ListOut, Page};
use super::patch;

/// How long a set-password token can be used.
pub const TOKEN_LIFETIME: Duration = Duration::hours(72);
/// The shortest password accepted.
pub const PASSWORD_MIN_CHARS: usize = 12;
/// The longest login.
pub const LOGIN_MAX_CHARS: usize = 64;

/// What a user may do (SPEC §1). A user holds one or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, users and API keys included (permission `admin`).
    Owner,
    /// Distributions, releases, files (permission `publish`).
    Release,
    /// Licenses and customers (permission `licenses`).
    Support,
    /// The catalog and statistics, no customer data (permission `read`).
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Release, Role::Support, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Release => "release",
            Role::Support => "support",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The permission the role grants.
    pub const fn permission(self) -> Permission {
        match self {
            Role::Owner => Permission::Admin,
            Role::Release => Permission::Publish,
            Role::Support => Permission::Licenses,
            Role::Viewer => Permission::Read,
        }
    }

    /// Stored as a comma-separated list; unknown names are skipped.
    pub fn parse_list(s: &str) -> Vec<Role> {
        s.split(',').filter_map(|r| Role::parse(r.trim())).collect()
    }

    pub fn join(roles: &[Role]) -> String {
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The permissions `roles` grant, each once, in the order of the roles: the one mapping from
/// roles to `auth`'s permissions.
pub fn permissions_of(roles: &[Role]) -> Vec<Permission> {
    let mut out = Vec::new();
    for p in roles.iter().map(|r| r.permission()) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// The permissions of a stored user now: none when disabled.
pub fn permissions_of_user(user: &admin_user::Model) -> Vec<Permission> {
    if user.disabled {
        return Vec::new();
    }
    permissions_of(&Role::parse_list(&user.roles))
}

/// Whether the stored user is an enabled owner.
fn is_enabled_owner(user: &admin_user::Model) -> bool {
    !user.disabled && Role::parse_list(&user.roles).contains(&Role::Owner)
}

/// `POST /api/v1/users`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Letters, digits, `.`, `_`, `-`, `@`; 1 to 64 characters.
    #[schema(example = "maria")]
    pub login: String,
    /// At least one.
    pub roles: Vec<Role>,
}

/// `PATCH /api/v1/users/{id}`: only the fields given change.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// The user's new roles (at least one), replacing the old ones.
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = Option<Vec<Role>>)]
    pub roles: Option<Option<Vec<Role>>>,
    /// `true` stops the user's password and API keys at once, on every instance.
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = Option<bool>)]
    pub disabled: Option<Option<bool>>,
}

/// `POST /api/v1/users/set-password`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// The one-time token from the user's creation.
    pub token: String,
    /// At least 12 characters.
    pub password: String,
}

/// `POST /api/v1/users/me/password`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    /// At least 12 characters.
    pub new_password: String,
}

/// A user in an answer (never a password or a token hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: i32,
    #[schema(example = "maria")]
    pub login: String,
    pub roles: Vec<Role>,
    /// What the roles grant.
    pub permissions: Vec<Permission>,
    pub disabled: bool,
    /// `false` until the user sets a password with the one-time token.
    pub has_password: bool,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC; `null`: never changed.
    pub updated_at: Option<String>,
}

impl UserView {
    pub fn of(u: &admin_user::Model) -> Self {
        let roles = Role::parse_list(&u.roles);
        UserView {
            id: u.id,
            login: u.username.clone(),
            permissions: permissions_of(&roles),
            roles,
            disabled: u.disabled,
            has_password: !u.password_hash.is_empty(),
            created_at: common::ts(u.created_at),
            updated_at: u.updated_at.map(common::ts),
        }
    }
}

/// The answer to a creation: the user and a one-time set-password token, shown only now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CreatedUser {
    #[serde(flatten)]
    pub user: UserView,
    /// Give it to the user: `POST /api/v1/users/set-password {"token", "password"}`. Used
    /// once; only its SHA-256 is stored.
    pub set_password_token: String,
    /// RFC 3339 UTC; the token is refused after it.
    pub set_password_expires_at: String,
}

/// A page of users: `{"items", "total", "offset", "limit"}`.
pub type UserList = ListOut<UserView>;

/// A login: trimmed, 1 to 64 characters of ASCII letters, digits, `.`, `_`, `-`, `@`.
pub fn checked_login(login: &str) -> Result<String, ApiError> {
    let login = common::required_text("login", login, LOGIN_MAX_CHARS)?;
    if !login
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(ApiError::bad_request(
            "login may hold only ASCII letters, digits, '.', '_', '-' and '@'",
        ));
    }
    Ok(login)
}

/// Each role once, in the order given; none is refused.
pub fn checked_roles(roles: &[Role]) -> Result<Vec<Role>, ApiError> {
    let mut unique: Vec<Role> = Vec::new();
    for r in roles {
        if !unique.contains(r) {
            unique.push(*r);
        }
    }
    if unique.is_empty() {
        return Err(ApiError::bad_request(
            "roles must list at least one of owner, release, support, viewer",
        ));
    }
    Ok(unique)
}

fn checked_password(field: &str, password: &str) -> Result<(), ApiError> {
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(ApiError::bad_request(format!(
            "{field} must have at least {PASSWORD_MIN_CHARS} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(ApiError::bad_request(format!(
            "{field} is longer than 1024 bytes"
        )));
    }
    Ok(())
}

/// The last-owner rule: a change that leaves `enabled_owners_after` enabled owners is refused
/// when that is none, naming what the change would have done.
pub fn last_owner_guard(enabled_owners_after: u64, what: &str) -> Result<(), ApiError> {
    if enabled_owners_after == 0 {
        return Err(ApiError::conflict(format!(
            "{what}: it is the last enabled owner, and someone must be able to manage users"
        )));
    }
    Ok(())
}

/// Whether a stored token (its SHA-256 and expiry) accepts the token hashed as `presented`
/// at `now`.
pub fn token_accepts(
    stored: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
    presented: &str,
    now: DateTime<Utc>,
) -> bool {
    matches!((stored, expires_at), (Some(s), Some(e)) if s == presented && now <= e)
}

async fn hashed(password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(ApiError::internal)
}

fn not_found(id: i32) -> ApiError {
    ApiError::not_found(format!("user {id} not found"))
}

/// A page of users, sorted by `id` (default), `login` or `created_at`.
pub async fn list(db: &DatabaseConnection, page: &Page) -> Result<UserList, ApiError> {
    let (rows, total) = common::paginate(
        db,
        admin_user::Entity::find(),
        page,
        &[
            ("id", admin_user::Column::Id),
            ("login", admin_user::Column::Username),
            ("created_at", admin_user::Column::CreatedAt),
        ],
        (admin_user::Column::Id, Order::Asc),
        (admin_user::Column::Id, Order::Asc),
    )
    .await?;
    Ok(ListOut::new(
        rows.iter().map(UserView::of).collect(),
        total,
        page,
    ))
}

/// User `id`; 404 when there is none.
pub async fn get<C: ConnectionTrait>(db: &C, id: i32) -> Result<UserView, ApiError> {
    let row = admin_user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(UserView::of(&row))
}

/// Creates a user without a password and with a set-password token valid until
/// `now + TOKEN_LIFETIME`; 409 when the login is taken.
pub async fn create(
    db: &DatabaseConnection,
    input: NewUser,
    now: DateTime<Utc>,
) -> Result<CreatedUser, ApiError> {
    let login = checked_login(&input.login)?;
    let roles = checked_roles(&input.roles)?;
    let token = format!("vyst_{}", auth::random_alphanumeric(40));
    let expires = now + TOKEN_LIFETIME;
    let txn = db.begin().await?;
    let row = admin_user::ActiveModel {
        username: Set(login.clone()),
        password_hash: Set(String::new()),
        created_at: Set(now),
        roles: Set(Role::join(&roles)),
        disabled: Set(false),
        set_password_token_hash: Set(Some(auth::hash_api_key(&token))),
        set_password_expires_at: Set(Some(expires)),
        updated_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| common::conflict_on_unique(e, || format!("login {login:?} is taken")))?;
    catalog_sync::record(&txn, Change::User(row.id)).await?;
    txn.commit().await?;
    Ok(CreatedUser {
        user: UserView::of(&row),
        set_password_token: token,
        set_password_expires_at: common::ts(expires),
    })
}

/// A new one-time set-password token for existing user `id` (replacing an unused one), valid
/// until `now + TOKEN_LIFETIME`; the current password keeps working until the token is used.
/// `vypusk demo` hands one out for the demo owner.
pub async fn issue_set_password_token(
    db: &DatabaseConnection,
    id: i32,
    now: DateTime<Utc>,
) -> Result<(String, String), ApiError> {
    let token = format!("vyst_{}", auth::random_alphanumeric(40));
    let expires = now + TOKEN_LIFETIME;
    let res = admin_user::Entity::update_many()
        .col_expr(
            admin_user::Column::SetPasswordTokenHash,
            sea_orm::sea_query::Expr::value(Some(auth::hash_api_key(&token))),
        )
        .col_expr(
            admin_user::Column::SetPasswordExpiresAt,
            sea_orm::sea_query::Expr::value(Some(expires)),
        )
        .filter(admin_user::Column::Id.eq(id))
        .exec(db)
        .await?;
    if res.rows_affected == 0 {
        return Err(not_found(id));
    }
    Ok((token, common::ts(expires)))
}

/// Changes the roles and/or the `disabled` flag of user `id` on behalf of user `actor`,
/// refusing (409) to leave no enabled owner, and refusing an owner who would disable
/// themself or take away their own owner role (another owner does that; nobody locks
/// themself out by mistake).
pub async fn update(
    db: &DatabaseConnection,
    actor: Option<i32>,
    id: i32,
    input: UserPatch,
    now: DateTime<Utc>,
) -> Result<UserView, ApiError> {
    let roles = patch::required("roles", input.roles, "give the user at least one role")?
        .map(|r| checked_roles(&r))
        .transpose()?;
    let disabled = patch::required("disabled", input.disabled, "true or false")?;
    let txn = db.begin().await?;
    // First: the catalog's write lock, so changes of users take turns (see the module docs).
    catalog_sync::record(&txn, Change::User(id)).await?;
    let row = admin_user::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| not_found(id))?;
    let mut after = row.clone();
    if let Some(roles) = &roles {
        after.roles = Role::join(roles);
    }
    if let Some(disabled) = disabled {
        after.disabled = disabled;
    }
    if is_enabled_owner(&row) && !is_enabled_owner(&after) {
        let others = admin_user::Entity::find()
            .filter(admin_user::Column::Id.ne(id))
            .filter(admin_user::Column::Disabled.eq(false))
            .all(&txn)
            .await?
            .iter()
            .filter(|u| is_enabled_owner(u))
            .count() as u64;
        let what = if after.disabled {
            format!("user {:?} cannot be disabled", row.username)
        } else {
            format!("user {:?} cannot lose the owner role", row.username)
        };
        last_owner_guard(others, &what)?;
        if actor == Some(id) {
            return Err(ApiError::conflict(format!(
                "{what} by themself: another owner can do it"
            )));
        }
    }
    let mut active: admin_user::ActiveModel = row.into();
    active.roles = Set(after.roles);
    active.disabled = Set(after.disabled);
    active.updated_at = Set(Some(now));
    let row = active.update(&txn).await?;
    if row.disabled {
        // A disabled user's sessions end at once (on every instance: they are rows).
        crate::services::sessions::delete_for_user(&txn, id).await?;
    }
    txn.commit().await?;
    Ok(UserView::of(&row))
}

/// Sets the password of the user whose set-password token is `input.token`, once: the token
/// is gone afterwards. An unknown, used or expired token is a 400 that does not say which.
pub async fn set_password_with_token(
    db: &DatabaseConnection,
    input: SetPassword,
    now: DateTime<Utc>,
) -> Result<UserView, ApiError> {
    let refused = || ApiError::bad_request("this set-password token is unknown, used or expired");
    let presented = auth::hash_api_key(input.token.trim());
    let row = admin_user::Entity::find()
        .filter(admin_user::Column::SetPasswordTokenHash.eq(presented.clone()))
        .one(db)
        .await?
        .ok_or_else(refused)?;
    if !token_accepts(
        row.set_password_token_hash.as_deref(),
        row.set_password_expires_at,
        &presented,
        now,
    ) {
        return Err(refused());
    }
    checked_password("password", &input.password)?;
    let hash = hashed(&input.password).await?;
    let txn = db.begin().await?;
    catalog_sync::record(&txn, Change::User(row.id)).await?;
    // Only while the token is still there: of two uses at once, one wins.
    let updated = admin_user::Entity::update_many()
        .col_expr(
            admin_user::Column::PasswordHash,
            sea_orm::sea_query::Expr::value(hash),
        )
        .col_expr(
            admin_user::Column::SetPasswordTokenHash,
            sea_orm::sea_query::Expr::value(Option::<String>::None),
        )
        .col_expr(
            admin_user::Column::SetPasswordExpiresAt,
            sea_orm::sea_query::Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            admin_user::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(Some(now)),
        )
        .filter(admin_user::Column::Id.eq(row.id))
        .filter(admin_user::Column::SetPasswordTokenHash.eq(presented))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        return Err(refused());
    }
    crate::services::sessions::delete_for_user(&txn, row.id).await?;
    let view = get(&txn, row.id).await?;
    txn.commit().await?;
    Ok(view)
}

/// User `id` changes their own password, proving the current one.
pub async fn change_password(
    db: &DatabaseConnection,
    id: i32,
    input: ChangePassword,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    checked_password("new_password", &input.new_password)?;
    let row = admin_user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| not_found(id))?;
    let stored = row.password_hash.clone();
    let current = input.current_password.clone();
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&stored, &current))
        .await
        .map_err(ApiError::internal)?;
    if !ok {
        return Err(ApiError::forbidden("current_password is wrong"));
    }
    let hash = hashed(&input.new_password).await?;
    let txn = db.begin().await?;
    catalog_sync::record(&txn, Change::User(id)).await?;
    admin_user::Entity::update_many()
        .col_expr(
            admin_user::Column::PasswordHash,
            sea_orm::sea_query::Expr::value(hash),
        )
        .col_expr(
            admin_user::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(Some(now)),
        )
        .filter(admin_user::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    // Sessions made with the old password end.
    crate::services::sessions::delete_for_user(&txn, id).await?;
    txn.commit().await?;
    Ok(())
}

/// The first owner: the enabled owner with the lowest id (or any owner when all are
/// disabled). When the database has no user at all, it creates `admin` as an owner without a
/// password (`db::ensure_admin` gives it one when a server starts). Keys made on the data
/// directory (`vypusk api-key create`, `vypusk demo`) belong to this user, and so do keys of a
/// database that had no user when it was migrated.
pub async fn first_owner(db: &DatabaseConnection) -> Result<admin_user::Model, ApiError> {
    let owners: Vec<admin_user::Model> = admin_user::Entity::find()
        .order_by_asc(admin_user::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .filter(|u| Role::parse_list(&u.roles).contains(&Role::Owner))
        .collect();
    let found = owners
        .iter()
        .find(|u| !u.disabled)
        .or(owners.first())
        .cloned();
    let owner = match found {
        Some(owner) => owner,
        None => {
            if admin_user::Entity::find().count(db).await? > 0 {
                return Err(ApiError::conflict("the database has users but no owner"));
            }
            let inserted = admin_user::ActiveModel {
                username: Set(auth::ADMIN_USER.to_owned()),
                password_hash: Set(String::new()),
                created_at: Set(Utc::now()),
                roles: Set(Role::Owner.as_str().to_owned()),
                disabled: Set(false),
                ..Default::default()
            }
            .insert(db)
            .await;
            match inserted {
                Ok(owner) => owner,
                // Made by someone else at the same moment.
                Err(e) if crate::db::is_unique_violation(&e) => admin_user::Entity::find()
                    .filter(admin_user::Column::Username.eq(auth::ADMIN_USER))
                    .one(db)
                    .await?
                    .ok_or_else(|| ApiError::internal("admin vanished"))?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    api_key::Entity::update_many()
        .col_expr(
            api_key::Column::UserId,
            sea_orm::sea_query::Expr::value(owner.id),
        )
        .filter(api_key::Column::UserId.is_null())
        .exec(db)
        .await?;
    Ok(owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (DatabaseConnection, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = crate::db::connect(&url).await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        (db, dir)
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Every role's permission, and what a user with several roles may do.
    #[test]
    fn roles_map_to_permissions() {
        use Permission as P;
        let table = [
            (Role::Owner, P::Admin),
            (Role::Release, P::Publish),
            (Role::Support, P::Licenses),
            (Role::Viewer, P::Read),
        ];
        for (role, permission) in table {
            assert_eq!(permissions_of(&[role]), vec![permission], "{role:?}");
        }
        assert_eq!(
            permissions_of(&[Role::Release, Role::Support, Role::Release]),
            vec![P::Publish, P::Licenses]
        );
        assert_eq!(permissions_of(&[]), Vec::<P>::new());
        let support = permissions_of(&[Role::Support]);
        let may = |wanted: P| support.iter().any(|p| p.implies(wanted));
        assert!(may(P::Read) && may(P::Licenses));
        assert!(!may(P::Publish) && !may(P::Admin));
        assert_eq!(
            Role::parse_list("owner, viewer,bogus"),
            vec![Role::Owner, Role::Viewer]
        );
        assert_eq!(Role::join(&[Role::Support, Role::Viewer]), "support,viewer");
        assert!(checked_roles(&[]).is_err());
        assert!(serde_json::from_str::<NewUser>(r#"{"login": "a", "roles": ["root"]}"#).is_err());
    }

    #[test]
    fn logins_and_passwords_are_checked() {
        assert_eq!(checked_login(" maria.k@x ").unwrap(), "maria.k@x");
        for bad in ["", "   ", "ма", "a b", "a:b", &"a".repeat(65)] {
            assert!(checked_login(bad).is_err(), "{bad:?}");
        }
        assert!(checked_password("password", "eleven-char").is_err());
        assert!(checked_password("password", "twelve-chars").is_ok());
    }

    #[test]
    fn last_owner_guard_refuses_none_left() {
        let e = last_owner_guard(0, "user \"admin\" cannot be disabled").unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::CONFLICT);
        assert!(e.message.contains("last enabled owner"), "{}", e.message);
        assert!(last_owner_guard(1, "x").is_ok());
    }

    #[test]
    fn token_acceptance_depends_on_hash_and_time() {
        let t = now();
        let until = Some(t + TOKEN_LIFETIME);
        assert!(token_accepts(Some("h"), until, "h", t));
        assert!(token_accepts(Some("h"), until, "h", t + TOKEN_LIFETIME));
        assert!(!token_accepts(
            Some("h"),
            until,
            "h",
            t + TOKEN_LIFETIME + Duration::seconds(1)
        ));
        assert!(!token_accepts(Some("h"), until, "other", t));
        assert!(!token_accepts(None, None, "h", t));
    }

    #[tokio::test]
    async fn the_last_owner_can_be_neither_disabled_nor_demoted() {
        let (db, _dir) = db().await;
        let admin = first_owner(&db).await.unwrap();
        assert_eq!(admin.username, "admin");
        let demote = UserPatch {
            roles: Some(Some(vec![Role::Viewer])),
            ..Default::default()
        };
        let disable = UserPatch {
            disabled: Some(Some(true)),
            ..Default::default()
        };
        for patch in [demote.clone(), disable.clone()] {
            let e = update(&db, None, admin.id, patch, now()).await.unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::CONFLICT, "{}", e.message);
        }
        assert_eq!(get(&db, admin.id).await.unwrap().roles, vec![Role::Owner]);
        // With a second owner, the first may go; then the second is the last.
        let second = create(
            &db,
            NewUser {
                login: "second".into(),
                roles: vec![Role::Owner, Role::Support],
            },
            now(),
        )
        .await
        .unwrap();
        // Not by themself, though: another owner does it.
        let e = update(&db, Some(admin.id), admin.id, disable.clone(), now())
            .await
            .unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::CONFLICT);
        assert!(e.message.contains("by themself"), "{}", e.message);
        let view = update(&db, Some(second.user.id), admin.id, disable.clone(), now())
            .await
            .unwrap();
        assert!(view.disabled);
        let e = update(&db, None, second.user.id, demote, now())
            .await
            .unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::CONFLICT);
        assert!(
            e.message.contains("cannot lose the owner role"),
            "{}",
            e.message
        );
        // Taking away another role keeps the owner: allowed.
        let kept = update(
            &db,
            None,
            second.user.id,
            UserPatch {
                roles: Some(Some(vec![Role::Owner])),
                ..Default::default()
            },
            now(),
        )
        .await
        .unwrap();
        assert_eq!(kept.permissions, vec![Permission::Admin]);
        // null is refused; absent keeps.
        let null: UserPatch = serde_json::from_str(r#"{"disabled": null}"#).unwrap();
        let e = update(&db, None, second.user.id, null, now())
            .await
            .unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(
            update(&db, None, 4242, UserPatch::default(), now())
                .await
                .unwrap_err()
                .status,
            axum::http::StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn a_set_password_token_works_once_and_expires() {
        let (db, _dir) = db().await;
        first_owner(&db).await.unwrap();
        let new = |login: &str| NewUser {
            login: login.into(),
            roles: vec![Role::Support],
        };
        let created = create(&db, new("maria"), now()).await.unwrap();
        assert!(!created.user.has_password);
        assert_eq!(created.set_password_expires_at, "2026-12-06T10:00:00Z");
        let e = create(&db, new("maria"), now()).await.unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::CONFLICT);
        let set = |token: &str, password: &str| SetPassword {
            token: token.into(),
            password: password.into(),
        };
        // Too short: refused, and the token stays usable.
        let e = set_password_with_token(&db, set(&created.set_password_token, "short"), now())
            .await
            .unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        let view = set_password_with_token(
            &db,
            set(&created.set_password_token, "maria-password-1"),
            now() + Duration::hours(1),
        )
        .await
        .unwrap();
        assert!(view.has_password);
        let stored = admin_user::Entity::find_by_id(view.id)
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert!(auth::verify_password(
            &stored.password_hash,
            "maria-password-1"
        ));
        assert_eq!(stored.set_password_token_hash, None);
        // Used: refused the second time.
        let e = set_password_with_token(
            &db,
            set(&created.set_password_token, "another-password-2"),
            now(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        // Expired: refused, with no password set.
        let late = create(&db, new("late"), now()).await.unwrap();
        let e = set_password_with_token(
            &db,
            set(&late.set_password_token, "late-password-12"),
            now() + TOKEN_LIFETIME + Duration::seconds(1),
        )
        .await
        .unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(!get(&db, late.user.id).await.unwrap().has_password);

        // Changing one's own password needs the current one.
        let wrong = ChangePassword {
            current_password: "not-the-password".into(),
            new_password: "maria-password-2".into(),
        };
        let e = change_password(&db, view.id, wrong, now())
            .await
            .unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::FORBIDDEN);
        let right = ChangePassword {
            current_password: "maria-password-1".into(),
            new_password: "maria-password-2".into(),
        };
        change_password(&db, view.id, right, now()).await.unwrap();
        let stored = admin_user::Entity::find_by_id(view.id)
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert!(auth::verify_password(
            &stored.password_hash,
            "maria-password-2"
        ));
    }
}
