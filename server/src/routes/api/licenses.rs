//! `/api/v1/licenses`: license keys with their features, and the all-or-nothing CSV import.

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{self, ApiPath};
use super::{ApiJson, ApiQuery};
use crate::auth::{Authorized, need};
use crate::catalog_sync::{self, Change};
use crate::entities::{license, license_feature};
use crate::error::ApiError;
use crate::licenses_csv::{self, FeatureData, LicenseData};
use crate::state::AppState;

/// Largest CSV accepted by the import (100 000 licenses fit comfortably).
pub const IMPORT_BODY_LIMIT: usize = 256 << 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/licenses", get(list).post(create))
        // `import` is a valid key too: its GET/PUT/DELETE still reach the license.
        .route(
            "/v1/licenses/import",
            post(import_route)
                .layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT))
                .get(read_import_key)
                .put(update_import_key)
                .delete(remove_import_key),
        )
        .route("/v1/licenses/{key}", get(read).put(update).delete(remove))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeatureInput {
    product: i64,
    feature: i64,
    #[serde(default)]
    active_until: Option<String>,
}

/// POST needs `key`; PUT replaces every field and takes `key` only to check it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LicenseInput {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    customer: String,
    #[serde(default)]
    itn: String,
    #[serde(default)]
    beta: bool,
    #[serde(default)]
    revoked: bool,
    #[serde(default)]
    features: Vec<FeatureInput>,
}

impl LicenseInput {
    fn into_data(self, key: String) -> Result<LicenseData, ApiError> {
        let mut features = Vec::with_capacity(self.features.len());
        for (i, f) in self.features.into_iter().enumerate() {
            let active_until = match f.active_until.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(v) => Some(
                    licenses_csv::parse_active_until(v)
                        .map_err(|e| ApiError::bad_request(format!("features[{i}]: {e}")))?,
                ),
            };
            features.push(FeatureData {
                product: f.product,
                feature: f.feature,
                active_until,
            });
        }
        let data = LicenseData {
            key,
            customer: self.customer.trim().to_owned(),
            itn: self.itn.trim().to_owned(),
            beta: self.beta,
            revoked: self.revoked,
            features,
        };
        licenses_csv::validate(&data).map_err(ApiError::bad_request)?;
        Ok(data)
    }
}

fn to_json(l: &license::Model, features: &[license_feature::Model]) -> Value {
    json!({
        "key": l.key,
        "customer": l.customer,
        "itn": l.itn,
        "beta": l.beta,
        "revoked": l.revoked,
        "features": features.iter().map(|f| json!({
            "product": f.product,
            "feature": f.feature,
            "active_until": common::ts_opt(f.active_until),
        })).collect::<Vec<_>>(),
        "created_at": common::ts(l.created_at),
        "updated_at": common::ts(l.updated_at),
    })
}

async fn features_of<C: ConnectionTrait>(
    db: &C,
    ids: &[i32],
) -> Result<HashMap<i32, Vec<license_feature::Model>>, DbErr> {
    let mut out: HashMap<i32, Vec<license_feature::Model>> = HashMap::new();
    for chunk in ids.chunks(500) {
        for f in license_feature::Entity::find()
            .filter(license_feature::Column::LicenseId.is_in(chunk.to_vec()))
            .order_by_asc(license_feature::Column::Product)
            .order_by_asc(license_feature::Column::Feature)
            .all(db)
            .await?
        {
            out.entry(f.license_id).or_default().push(f);
        }
    }
    Ok(out)
}

async fn find<C: ConnectionTrait>(db: &C, key: &str) -> Result<Option<license::Model>, DbErr> {
    license::Entity::find()
        .filter(license::Column::Key.eq(key))
        .one(db)
        .await
}

fn not_found(key: &str) -> ApiError {
    ApiError::not_found(format!(
        "license {:?} not found",
        key.chars().take(80).collect::<String>()
    ))
}

async fn one_json(db: &DatabaseConnection, key: &str) -> Result<Value, ApiError> {
    let l = find(db, key).await?.ok_or_else(|| not_found(key))?;
    let features = features_of(db, &[l.id]).await?;
    Ok(to_json(&l, features.get(&l.id).map_or(&[], Vec::as_slice)))
}

fn feature_rows(license_id: i32, data: &LicenseData) -> Vec<license_feature::ActiveModel> {
    data.features
        .iter()
        .map(|f| license_feature::ActiveModel {
            license_id: Set(license_id),
            product: Set(f.product),
            feature: Set(f.feature),
            active_until: Set(f.active_until),
            ..Default::default()
        })
        .collect()
}

async fn insert_features<C: ConnectionTrait>(
    db: &C,
    rows: Vec<license_feature::ActiveModel>,
) -> Result<(), DbErr> {
    for chunk in rows.chunks(500) {
        license_feature::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Creates or replaces `licenses` (fields and features) in one transaction; licenses not
/// named stay as they are. Returns how many were written.
pub async fn import(db: &DatabaseConnection, licenses: &[LicenseData]) -> Result<usize, DbErr> {
    let now = Utc::now();
    let txn = db.begin().await?;
    let mut existing: HashMap<String, i32> = HashMap::new();
    let keys: Vec<String> = licenses.iter().map(|l| l.key.clone()).collect();
    for chunk in keys.chunks(500) {
        for l in license::Entity::find()
            .filter(license::Column::Key.is_in(chunk.to_vec()))
            .all(&txn)
            .await?
        {
            existing.insert(l.key, l.id);
        }
    }
    let existing_ids: Vec<i32> = existing.values().copied().collect();
    for chunk in existing_ids.chunks(500) {
        license_feature::Entity::delete_many()
            .filter(license_feature::Column::LicenseId.is_in(chunk.to_vec()))
            .exec(&txn)
            .await?;
    }
    let mut new_rows = Vec::new();
    for l in licenses {
        if let Some(&id) = existing.get(&l.key) {
            license::Entity::update_many()
                .col_expr(license::Column::Customer, Expr::value(l.customer.clone()))
                .col_expr(license::Column::Itn, Expr::value(l.itn.clone()))
                .col_expr(license::Column::Beta, Expr::value(l.beta))
                .col_expr(license::Column::Revoked, Expr::value(l.revoked))
                .col_expr(license::Column::UpdatedAt, Expr::value(now))
                .filter(license::Column::Id.eq(id))
                .exec(&txn)
                .await?;
        } else {
            new_rows.push(license::ActiveModel {
                key: Set(l.key.clone()),
                customer: Set(l.customer.clone()),
                itn: Set(l.itn.clone()),
                beta: Set(l.beta),
                revoked: Set(l.revoked),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            });
        }
    }
    for chunk in new_rows.chunks(200) {
        license::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await?;
    }
    // Ids of the new rows, by key.
    let new_keys: Vec<String> = licenses
        .iter()
        .filter(|l| !existing.contains_key(&l.key))
        .map(|l| l.key.clone())
        .collect();
    for chunk in new_keys.chunks(500) {
        for l in license::Entity::find()
            .filter(license::Column::Key.is_in(chunk.to_vec()))
            .all(&txn)
            .await?
        {
            existing.insert(l.key, l.id);
        }
    }
    let mut features = Vec::new();
    for l in licenses {
        if let Some(&id) = existing.get(&l.key) {
            features.extend(feature_rows(id, l));
        }
    }
    insert_features(&txn, features).await?;
    catalog_sync::record(&txn, Change::ImportedLicenses(now)).await?;
    txn.commit().await?;
    Ok(licenses.len())
}

async fn create(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<LicenseInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = input
        .key
        .clone()
        .ok_or_else(|| ApiError::bad_request("key is required"))?;
    let data = input.into_data(key.trim().to_owned())?;
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let row = license::ActiveModel {
        key: Set(data.key.clone()),
        customer: Set(data.customer.clone()),
        itn: Set(data.itn.clone()),
        beta: Set(data.beta),
        revoked: Set(data.revoked),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        common::conflict_on_unique(e, || format!("license {:?} already exists", data.key))
    })?;
    insert_features(&txn, feature_rows(row.id, &data)).await?;
    catalog_sync::record(&txn, Change::License(&data.key)).await?;
    txn.commit().await?;
    state.catalog.refresh_license(&state.db, &data.key).await?;
    Ok((
        StatusCode::CREATED,
        Json(one_json(&state.db, &data.key).await?),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    offset: Option<u64>,
    limit: Option<u64>,
    sort: Option<String>,
    /// Substring of the key, the customer or the ITN.
    search: Option<String>,
}

async fn list(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = common::page(q.offset, q.limit, q.sort)?;
    let mut query = license::Entity::find();
    if let Some(search) = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = format!("%{}%", common::like_escape(search));
        let like = || LikeExpr::new(pattern.clone()).escape('\\');
        query = query.filter(
            Condition::any()
                .add(Expr::col((license::Entity, license::Column::Key)).like(like()))
                .add(Expr::col((license::Entity, license::Column::Customer)).like(like()))
                .add(Expr::col((license::Entity, license::Column::Itn)).like(like())),
        );
    }
    let (column, order) = page.order(
        &[
            ("key", license::Column::Key),
            ("customer", license::Column::Customer),
            ("itn", license::Column::Itn),
            ("created_at", license::Column::CreatedAt),
            ("updated_at", license::Column::UpdatedAt),
        ],
        (license::Column::Key, Order::Asc),
    )?;
    let total = query.clone().count(&state.db).await?;
    let rows = query
        .order_by(column, order)
        .order_by_asc(license::Column::Id)
        .offset(common::offset(&page))
        .limit(page.limit)
        .all(&state.db)
        .await?;
    let ids: Vec<i32> = rows.iter().map(|l| l.id).collect();
    let features = features_of(&state.db, &ids).await?;
    let items = rows
        .iter()
        .map(|l| to_json(l, features.get(&l.id).map_or(&[], Vec::as_slice)))
        .collect();
    Ok(Json(common::list(items, total, &page)))
}

async fn read(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(one_json(&state.db, &key).await?))
}

async fn update(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
    ApiJson(input): ApiJson<LicenseInput>,
) -> Result<Json<Value>, ApiError> {
    if let Some(body_key) = &input.key
        && body_key.trim() != key
    {
        return Err(ApiError::bad_request(format!(
            "key {:?} in the body differs from the URL's; a key cannot change",
            body_key.chars().take(80).collect::<String>()
        )));
    }
    let existing = find(&state.db, &key)
        .await?
        .ok_or_else(|| not_found(&key))?;
    let data = input.into_data(existing.key.clone())?;
    let txn = state.db.begin().await?;
    let mut row: license::ActiveModel = existing.clone().into();
    row.customer = Set(data.customer.clone());
    row.itn = Set(data.itn.clone());
    row.beta = Set(data.beta);
    row.revoked = Set(data.revoked);
    row.updated_at = Set(Utc::now());
    row.update(&txn).await?;
    license_feature::Entity::delete_many()
        .filter(license_feature::Column::LicenseId.eq(existing.id))
        .exec(&txn)
        .await?;
    insert_features(&txn, feature_rows(existing.id, &data)).await?;
    catalog_sync::record(&txn, Change::License(&key)).await?;
    txn.commit().await?;
    state.catalog.refresh_license(&state.db, &key).await?;
    Ok(Json(one_json(&state.db, &key).await?))
}

async fn remove(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let existing = find(&state.db, &key)
        .await?
        .ok_or_else(|| not_found(&key))?;
    let txn = state.db.begin().await?;
    license_feature::Entity::delete_many()
        .filter(license_feature::Column::LicenseId.eq(existing.id))
        .exec(&txn)
        .await?;
    license::Entity::delete_by_id(existing.id)
        .exec(&txn)
        .await?;
    catalog_sync::record(&txn, Change::License(&key)).await?;
    txn.commit().await?;
    state.catalog.refresh_license(&state.db, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn read_import_key(
    caller: Authorized<need::Read>,
    state: State<AppState>,
) -> Result<Json<Value>, ApiError> {
    read(caller, state, ApiPath("import".to_owned())).await
}

async fn update_import_key(
    caller: Authorized<need::Licenses>,
    state: State<AppState>,
    input: ApiJson<LicenseInput>,
) -> Result<Json<Value>, ApiError> {
    update(caller, state, ApiPath("import".to_owned()), input).await
}

async fn remove_import_key(
    caller: Authorized<need::Licenses>,
    state: State<AppState>,
) -> Result<StatusCode, ApiError> {
    remove(caller, state, ApiPath("import".to_owned())).await
}

/// `POST /v1/licenses/import`: the body is the CSV, raw or as a multipart file part, UTF-8 or
/// Windows-1251 (see `licenses_csv`).
async fn import_route(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    licenses_csv::CsvUpload(body): licenses_csv::CsvUpload,
) -> Result<Json<Value>, ApiError> {
    let (licenses, _) = licenses_csv::parse_bytes(&body).map_err(ApiError::bad_request)?;
    let features: usize = licenses.iter().map(|l| l.features.len()).sum();
    let since = Utc::now();
    let imported = import(&state.db, &licenses).await?;
    // Only what this import wrote is re-read, not every license (issue 9: memory).
    state
        .catalog
        .refresh_licenses_since(&state.db, since)
        .await?;
    Ok(Json(json!({"imported": imported, "features": features})))
}
