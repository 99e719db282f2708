//! API keys of the vendor API (`/api/v1/api-keys`, `vypusk api-key …`, `vypusk demo`): create,
//! list, revoke. A key belongs to a user and is created with permissions its creator holds;
//! when it is used, its permissions are narrowed to what its user's roles allow then
//! (`auth::key_caller`). A key is shown once, at creation; only its SHA-256 and its first characters
//! (to recognise it) are stored. Each write runs in one transaction and records the change for
//! the other instances (`catalog_sync`), which drop the key from their credential caches.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Order,
    QueryFilter, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use crate::auth::{self, Permission};
use crate::catalog_sync::{self, Change};
use crate::entities::api_key;
use crate::error::ApiError;

use super::common::{self, ListOut, Page};

/// Characters of a key kept in clear, so a list can tell keys apart.
pub const PREFIX_LEN: usize = 12;

/// The longest name a key may have.
pub const NAME_MAX_CHARS: usize = 255;

/// `POST /api/v1/api-keys`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// Who uses the key.
    #[schema(example = "ci")]
    pub name: String,
    pub permissions: Vec<Permission>,
}

/// An API key in an answer (never the key itself, except in [`CreatedApiKey`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: i32,
    #[schema(example = "ci")]
    pub name: String,
    /// The first characters of the key.
    #[schema(example = "vk_3f9a1c2b")]
    pub prefix: String,
    pub permissions: Vec<Permission>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC; `null`: never used.
    pub last_used_at: Option<String>,
    /// The user the key belongs to.
    pub user_id: Option<i32>,
}

/// The answer to a creation: the key's fields and the key, shown only this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub view: ApiKeyView,
    pub key: String,
}

/// A page of API keys: `{"items", "total", "offset", "limit"}`.
pub type ApiKeyList = ListOut<ApiKeyView>;

impl ApiKeyView {
    pub fn of(k: &api_key::Model) -> Self {
        ApiKeyView {
            id: k.id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            permissions: Permission::parse_list(&k.permissions),
            created_at: common::ts(k.created_at),
            last_used_at: k.last_used_at.map(common::ts),
            user_id: k.user_id,
        }
    }
}

pub const NO_PERMISSIONS: &str =
    "permissions must list at least one of read, publish, licenses, admin";

/// `read,publish` (as the CLI takes them) → permissions, each once, in the order given.
/// Unknown names are an error, not silently dropped; an empty list is an error too.
pub fn parse_permissions(list: &str) -> Result<Vec<Permission>, ApiError> {
    let mut out = Vec::new();
    for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let p = Permission::parse(p).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown permission {p:?} (use read, publish, licenses, admin)"
            ))
        })?;
        out.push(p);
    }
    checked_permissions(&out)
}

/// Each permission once, in the order given; an empty list is refused.
fn checked_permissions(permissions: &[Permission]) -> Result<Vec<Permission>, ApiError> {
    let mut unique: Vec<Permission> = Vec::new();
    for p in permissions {
        if !unique.contains(p) {
            unique.push(*p);
        }
    }
    if unique.is_empty() {
        return Err(ApiError::bad_request(NO_PERMISSIONS));
    }
    Ok(unique)
}

/// Who a new key is for: the user, and what the creator may hand on (the creator's
/// permissions; a key never gets one its creator lacks).
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub user_id: i32,
    pub may_grant: Vec<Permission>,
}

/// Whose keys `caller` manages: everyone's for an owner (permission `admin`), otherwise only
/// their own (`Some(user id)`).
pub fn scope_of(caller: &auth::Caller) -> Option<i32> {
    (!caller.has(Permission::Admin)).then(|| caller.user_id())
}

/// 403 naming the first of `wanted` that `held` does not grant.
pub fn check_grantable(wanted: &[Permission], held: &[Permission]) -> Result<(), ApiError> {
    match wanted.iter().find(|p| !auth::grants(held, **p)) {
        None => Ok(()),
        Some(p) => Err(ApiError::forbidden(format!(
            "a key cannot have the {:?} permission: the roles of the user creating it do not include it",
            p.as_str()
        ))),
    }
}

/// Stores a new key of `owner.user_id` (the name trimmed, 1 to 255 characters; at least one
/// permission, each one `owner.may_grant` grants) and returns it with the key itself, the only
/// time it exists in clear.
pub async fn create(
    db: &DatabaseConnection,
    owner: &KeyOwner,
    input: NewApiKey,
) -> Result<CreatedApiKey, ApiError> {
    let name = common::required_text("name", &input.name, NAME_MAX_CHARS)?;
    let permissions = checked_permissions(&input.permissions)?;
    check_grantable(&permissions, &owner.may_grant)?;
    let key = auth::generate_api_key();
    let txn = db.begin().await?;
    let row = api_key::ActiveModel {
        name: Set(name),
        prefix: Set(key.chars().take(PREFIX_LEN).collect()),
        key_hash: Set(auth::hash_api_key(&key)),
        permissions: Set(Permission::join(&permissions)),
        created_at: Set(chrono::Utc::now()),
        last_used_at: Set(None),
        user_id: Set(Some(owner.user_id)),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    catalog_sync::record(&txn, Change::ApiKey(row.id)).await?;
    txn.commit().await?;
    Ok(CreatedApiKey {
        view: ApiKeyView::of(&row),
        key,
    })
}

/// A page of keys (of user `only_user` when given), sorted by `id` (default), `name` or
/// `created_at`.
pub async fn list(
    db: &DatabaseConnection,
    page: &Page,
    only_user: Option<i32>,
) -> Result<ApiKeyList, ApiError> {
    let mut select = api_key::Entity::find();
    if let Some(user) = only_user {
        select = select.filter(api_key::Column::UserId.eq(user));
    }
    let (rows, total) = common::paginate(
        db,
        select,
        page,
        &[
            ("id", api_key::Column::Id),
            ("name", api_key::Column::Name),
            ("created_at", api_key::Column::CreatedAt),
        ],
        (api_key::Column::Id, Order::Asc),
        (api_key::Column::Id, Order::Asc),
    )
    .await?;
    Ok(ListOut::new(
        rows.iter().map(ApiKeyView::of).collect(),
        total,
        page,
    ))
}

/// The key `id`, if it exists.
pub async fn find<C: ConnectionTrait>(db: &C, id: i32) -> Result<Option<ApiKeyView>, ApiError> {
    Ok(api_key::Entity::find_by_id(id)
        .one(db)
        .await?
        .as_ref()
        .map(ApiKeyView::of))
}

/// Deletes key `id` (only if it belongs to user `only_user`, when given); 404 when there is
/// none.
pub async fn revoke(
    db: &DatabaseConnection,
    id: i32,
    only_user: Option<i32>,
) -> Result<(), ApiError> {
    let txn = db.begin().await?;
    let mut delete = api_key::Entity::delete_many().filter(api_key::Column::Id.eq(id));
    if let Some(user) = only_user {
        delete = delete.filter(api_key::Column::UserId.eq(user));
    }
    let res = delete.exec(&txn).await?;
    if res.rows_affected == 0 {
        return Err(ApiError::not_found(format!("API key {id} not found")));
    }
    catalog_sync::record(&txn, Change::ApiKey(id)).await?;
    txn.commit().await?;
    Ok(())
}

/// Revokes every key named `name` (the demo's own key, run after run); how many there were.
pub async fn revoke_named(db: &DatabaseConnection, name: &str) -> Result<usize, ApiError> {
    let ids: Vec<i32> = api_key::Entity::find()
        .filter(api_key::Column::Name.eq(name))
        .all(db)
        .await?
        .iter()
        .map(|k| k.id)
        .collect();
    let mut revoked = 0;
    for id in ids {
        match revoke(db, id, None).await {
            Ok(()) => revoked += 1,
            // Revoked meanwhile by someone else: gone all the same.
            Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    Ok(revoked)
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

    async fn owner(db: &DatabaseConnection) -> KeyOwner {
        let user = crate::services::users::first_owner(db).await.unwrap();
        KeyOwner {
            user_id: user.id,
            may_grant: vec![Permission::Admin],
        }
    }

    fn page(offset: u64, limit: u64, sort: Option<&str>) -> Page {
        Page {
            offset,
            limit,
            sort: sort.map(str::to_owned),
        }
    }

    #[test]
    fn permissions_parse_once_each_and_refuse_unknown_or_none() {
        assert_eq!(
            parse_permissions("read, publish,read").unwrap(),
            vec![Permission::Read, Permission::Publish]
        );
        let e = parse_permissions("read,root").unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(e.message.contains("\"root\""), "{}", e.message);
        assert_eq!(
            parse_permissions(" , ").unwrap_err().message,
            NO_PERMISSIONS
        );
        assert!(checked_permissions(&[]).is_err());
    }

    #[test]
    fn a_request_names_only_known_fields_and_permissions() {
        let ok: NewApiKey =
            serde_json::from_str(r#"{"name": "ci", "permissions": ["publish"]}"#).unwrap();
        assert_eq!(ok.permissions, vec![Permission::Publish]);
        assert!(
            serde_json::from_str::<NewApiKey>(r#"{"name": "ci", "permissions": ["root"]}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<NewApiKey>(
                r#"{"name": "ci", "permissions": ["read"], "admin": true}"#
            )
            .is_err()
        );
    }

    #[tokio::test]
    async fn create_list_revoke() {
        let (db, _dir) = db().await;
        let owner = owner(&db).await;
        let created = create(
            &db,
            &owner,
            NewApiKey {
                name: "  ci ".into(),
                permissions: vec![Permission::Publish, Permission::Publish, Permission::Read],
            },
        )
        .await
        .unwrap();
        assert_eq!(created.view.name, "ci");
        assert_eq!(
            created.view.permissions,
            vec![Permission::Publish, Permission::Read]
        );
        assert_eq!(created.view.prefix, created.key[..PREFIX_LEN]);
        assert_eq!(created.view.last_used_at, None);
        // The answer: the view's fields and the key, flat.
        let json = serde_json::to_value(&created).unwrap();
        assert_eq!(json["key"], created.key.as_str());
        assert_eq!(json["permissions"], serde_json::json!(["publish", "read"]));
        assert!(json["last_used_at"].is_null());
        assert!(json.get("view").is_none());

        for name in ["demo", "demo", "other"] {
            let input = NewApiKey {
                name: name.into(),
                permissions: vec![Permission::Admin],
            };
            create(&db, &owner, input).await.unwrap();
        }
        let listed = list(&db, &page(1, 2, Some("-id")), None).await.unwrap();
        assert_eq!(listed.total, 4);
        let names: Vec<&str> = listed.items.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["demo", "demo"]);
        assert!(
            list(&db, &page(0, 10, Some("key_hash")), None)
                .await
                .is_err()
        );
        assert!(list(&db, &page(0, 0, None), None).await.is_err());

        assert_eq!(revoke_named(&db, "demo").await.unwrap(), 2);
        assert_eq!(revoke_named(&db, "demo").await.unwrap(), 0);
        revoke(&db, created.view.id, None).await.unwrap();
        assert_eq!(find(&db, created.view.id).await.unwrap(), None);
        let left: Vec<String> = list(&db, &page(0, 1000, None), None)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|k| k.name)
            .collect();
        assert_eq!(left, ["other"]);
    }

    #[tokio::test]
    async fn revoking_an_unknown_key_is_a_404_and_changes_nothing() {
        let (db, _dir) = db().await;
        let e = revoke(&db, 4242, None).await.unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::NOT_FOUND);
        assert_eq!(e.message, "API key 4242 not found");
    }

    #[tokio::test]
    async fn a_blank_or_overlong_name_is_refused() {
        let (db, _dir) = db().await;
        let owner = owner(&db).await;
        for name in ["   ".to_owned(), "я".repeat(NAME_MAX_CHARS + 1)] {
            let input = NewApiKey {
                name,
                permissions: vec![Permission::Read],
            };
            let e = create(&db, &owner, input).await.unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        }
        assert_eq!(list(&db, &page(0, 10, None), None).await.unwrap().total, 0);
    }
}
