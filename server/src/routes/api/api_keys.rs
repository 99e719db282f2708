//! `/api/v1/api-keys`: keys of the vendor API with permissions. A key is shown once, at
//! creation; only its SHA-256 and its first characters (to recognise it) are stored.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, Order, PaginatorTrait, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{self, ApiPath};
use super::{ApiJson, ApiQuery, Page};
use crate::auth::{self, Authorized, Permission, need};
use crate::catalog_sync::{self, Change};
use crate::entities::api_key;
use crate::error::ApiError;
use crate::state::AppState;

/// Characters of a key kept in clear, so a list can tell keys apart.
pub const PREFIX_LEN: usize = 12;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/api-keys", get(list).post(create))
        .route("/v1/api-keys/{id}", delete(remove))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateInput {
    name: String,
    permissions: Vec<Permission>,
}

pub fn to_json(k: &api_key::Model) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "permissions": auth::Permission::parse_list(&k.permissions),
        "created_at": common::ts(k.created_at),
        "last_used_at": common::ts_opt(k.last_used_at),
    })
}

/// Stores a new key and returns its row and the key itself (the only time it exists in clear).
/// Used by the API and by `vypusk api-key create`.
pub async fn create_key(
    db: &DatabaseConnection,
    name: &str,
    permissions: &[Permission],
) -> Result<(api_key::Model, String), DbErr> {
    let key = auth::generate_api_key();
    let mut unique: Vec<Permission> = Vec::new();
    for p in permissions {
        if !unique.contains(p) {
            unique.push(*p);
        }
    }
    let txn = db.begin().await?;
    let row = api_key::ActiveModel {
        name: Set(name.to_owned()),
        prefix: Set(key.chars().take(PREFIX_LEN).collect()),
        key_hash: Set(auth::hash_api_key(&key)),
        permissions: Set(Permission::join(&unique)),
        created_at: Set(chrono::Utc::now()),
        last_used_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    catalog_sync::record(&txn, Change::ApiKey(row.id)).await?;
    txn.commit().await?;
    Ok((row, key))
}

/// Deletes key `id`; false when there is none. Used by the API and by `vypusk api-key revoke`.
pub async fn revoke_key(db: &DatabaseConnection, id: i32) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let res = api_key::Entity::delete_by_id(id).exec(&txn).await?;
    if res.rows_affected == 0 {
        return Ok(false);
    }
    catalog_sync::record(&txn, Change::ApiKey(id)).await?;
    txn.commit().await?;
    Ok(true)
}

async fn create(
    _: Authorized<need::Admin>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<CreateInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = common::required_text("name", &input.name, 255)?;
    if input.permissions.is_empty() {
        return Err(ApiError::bad_request(
            "permissions must list at least one of read, publish, licenses, admin",
        ));
    }
    let (row, key) = create_key(&state.db, &name, &input.permissions).await?;
    let mut body = to_json(&row);
    body["key"] = json!(key);
    Ok((StatusCode::CREATED, Json(body)))
}

async fn list(
    _: Authorized<need::Admin>,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Value>, ApiError> {
    page.validate()?;
    let (column, order) = page.order(
        &[
            ("id", api_key::Column::Id),
            ("name", api_key::Column::Name),
            ("created_at", api_key::Column::CreatedAt),
        ],
        (api_key::Column::Id, Order::Asc),
    )?;
    let total = api_key::Entity::find().count(&state.db).await?;
    let rows = api_key::Entity::find()
        .order_by(column, order)
        .order_by_asc(api_key::Column::Id)
        .offset(common::offset(&page))
        .limit(page.limit)
        .all(&state.db)
        .await?;
    Ok(Json(common::list(
        rows.iter().map(to_json).collect(),
        total,
        &page,
    )))
}

async fn remove(
    _: Authorized<need::Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i32>,
) -> Result<StatusCode, ApiError> {
    if !revoke_key(&state.db, id).await? {
        return Err(ApiError::not_found(format!("API key {id} not found")));
    }
    Ok(StatusCode::NO_CONTENT)
}
