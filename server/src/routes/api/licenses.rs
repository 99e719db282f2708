//! `/api/v1/licenses`: license keys with their features, and the all-or-nothing CSV import.
//! The rules live in `services::licenses`; these handlers extract, call and render.

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set, TransactionTrait,
};
use serde_json::{Value, json};

use super::common::ApiPath;
use super::{ApiJson, ApiQuery};
use crate::auth::{Authorized, need};
use crate::catalog_sync::{self, Change};
use crate::entities::{license, license_feature};
use crate::error::ApiError;
use crate::licenses_csv::{self, LicenseData};
use crate::services::licenses::{
    self as service, LicenseList, LicensePatch, LicenseQuery, LicenseView, NewLicense,
    feature_rows, insert_features,
};
use crate::state::AppState;

/// Largest CSV accepted by the import (100 000 licenses fit comfortably).
pub const IMPORT_BODY_LIMIT: usize = 256 << 20;

/// Every route here needs the `licenses` permission, reading included: licenses are customer
/// data (names, ITNs, keys), which `read` and `publish` keys never see. PUT and PATCH are the
/// same edit: only the fields given change (`services::licenses`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/licenses", get(list).post(create))
        // `import` is a valid key too: its GET/PUT/PATCH/DELETE still reach the license.
        .route(
            "/v1/licenses/import",
            post(import_route)
                .layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT))
                .get(read_import_key)
                .put(update_import_key)
                .patch(update_import_key)
                .delete(remove_import_key),
        )
        .route(
            "/v1/licenses/{key}",
            get(read).put(update).patch(update).delete(remove),
        )
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
    ApiJson(input): ApiJson<NewLicense>,
) -> Result<(StatusCode, Json<LicenseView>), ApiError> {
    let created = service::create(&state.db, &state.catalog, input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn list(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LicenseQuery>,
) -> Result<Json<LicenseList>, ApiError> {
    Ok(Json(service::list(&state.db, q).await?))
}

async fn read(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<LicenseView>, ApiError> {
    Ok(Json(service::show(&state.db, &key).await?))
}

/// `PUT` and `PATCH`: only the fields given change.
async fn update(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
    ApiJson(patch): ApiJson<LicensePatch>,
) -> Result<Json<LicenseView>, ApiError> {
    Ok(Json(
        service::update(&state.db, &state.catalog, &key, patch).await?,
    ))
}

async fn remove(
    _: Authorized<need::Licenses>,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state.db, &state.catalog, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn read_import_key(
    caller: Authorized<need::Licenses>,
    state: State<AppState>,
) -> Result<Json<LicenseView>, ApiError> {
    read(caller, state, ApiPath("import".to_owned())).await
}

async fn update_import_key(
    caller: Authorized<need::Licenses>,
    state: State<AppState>,
    patch: ApiJson<LicensePatch>,
) -> Result<Json<LicenseView>, ApiError> {
    update(caller, state, ApiPath("import".to_owned()), patch).await
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
