//! Licenses (`/api/v1/licenses`): create, list, show, edit, delete. Each write runs in one
//! transaction, records the change for the other instances (`catalog_sync`) and refreshes this
//! instance's license index after the commit.
//!
//! Edits follow the rule of [`super::patch`]: only the fields given change. `customer` and
//! `itn` are optional (`null` clears them to `""`); `beta` and `revoked` are `true` or `false`
//! (`null` is refused); `features`, when given, replaces the whole list (`[]` removes every
//! feature, `null` is refused so that no client clears a subscription by accident). An edit
//! that does not name `features` never touches them.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, Order, QueryFilter, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::common::{self, ListOut};
use super::patch;
use crate::catalog::Catalog;
use crate::catalog_sync::{self, Change};
use crate::entities::{license, license_feature};
use crate::error::ApiError;
use crate::licenses_csv::{self, FeatureData, LicenseData};

/// One feature of a license as a request gives it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureInput {
    /// A distribution's `lic_product_id`.
    #[schema(example = 85)]
    pub product: i64,
    /// A distribution's `lic_feature_id`.
    #[schema(example = 43)]
    pub feature: i64,
    /// RFC 3339 or `YYYY-MM-DD` (through the end of that day, UTC); absent, `null` or `""`:
    /// the subscription never lapses.
    #[serde(default)]
    #[schema(example = "2027-12-31")]
    pub active_until: Option<String>,
}

/// `POST /api/v1/licenses`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLicense {
    /// Required; an `Option` so that its absence is a 400 that names it.
    #[serde(default)]
    #[schema(example = "ACME-0001")]
    pub key: Option<String>,
    #[serde(default)]
    #[schema(example = "ООО «Ромашка»")]
    pub customer: Option<String>,
    /// The customer's taxpayer number (ИНН).
    #[serde(default)]
    #[schema(example = "7701234567")]
    pub itn: Option<String>,
    #[serde(default)]
    pub beta: Option<bool>,
    #[serde(default)]
    pub revoked: Option<bool>,
    #[serde(default)]
    pub features: Option<Vec<FeatureInput>>,
}

/// `PUT` and `PATCH /api/v1/licenses/{key}`: absent fields stay as they are (see the module).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicensePatch {
    /// Only checked against the URL's: a key cannot change.
    #[serde(default)]
    pub key: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = Option<String>, required = false, example = "ООО «Ромашка»")]
    pub customer: Option<Option<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = Option<String>, required = false, example = "7701234567")]
    pub itn: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = bool, required = false, example = true)]
    pub beta: Option<Option<bool>>,
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = bool, required = false)]
    pub revoked: Option<Option<bool>>,
    /// Replaces the whole list (`[]` removes every feature); left out, it is not touched.
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = Vec<FeatureInput>, required = false)]
    pub features: Option<Option<Vec<FeatureInput>>>,
}

/// `GET /api/v1/licenses` filters and paging.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LicenseQuery {
    /// How many licenses to skip.
    #[param(minimum = 0)]
    pub offset: Option<u64>,
    /// How many at most (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// `key`, `customer`, `itn`, `created_at` or `updated_at`, `-` in front for descending.
    pub sort: Option<String>,
    /// Substring of the key, the customer or the ITN.
    #[param(example = "Ромашка")]
    pub search: Option<String>,
}

/// A license feature in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FeatureView {
    #[schema(example = 85)]
    pub product: i64,
    #[schema(example = 43)]
    pub feature: i64,
    /// RFC 3339 UTC; `null`: never lapses.
    pub active_until: Option<String>,
}

/// A license in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LicenseView {
    #[schema(example = "ACME-0001")]
    pub key: String,
    #[schema(example = "ООО «Ромашка»")]
    pub customer: String,
    #[schema(example = "7701234567")]
    pub itn: String,
    pub beta: bool,
    pub revoked: bool,
    pub features: Vec<FeatureView>,
    pub created_at: String,
    pub updated_at: String,
}

/// Largest CSV accepted by the import (100 000 licenses fit comfortably).
pub const IMPORT_BODY_LIMIT: usize = 256 << 20;

/// A page of licenses: `{"items", "total", "offset", "limit"}`.
pub type LicenseList = ListOut<LicenseView>;

/// The answer to a CSV import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    /// Licenses created or replaced.
    pub imported: usize,
    /// Features they have now.
    pub features: usize,
}

fn view(l: &license::Model, features: &[license_feature::Model]) -> LicenseView {
    LicenseView {
        key: l.key.clone(),
        customer: l.customer.clone(),
        itn: l.itn.clone(),
        beta: l.beta,
        revoked: l.revoked,
        features: features
            .iter()
            .map(|f| FeatureView {
                product: f.product,
                feature: f.feature,
                active_until: f.active_until.map(common::ts),
            })
            .collect(),
        created_at: common::ts(l.created_at),
        updated_at: common::ts(l.updated_at),
    }
}

fn not_found(key: &str) -> ApiError {
    ApiError::not_found(format!(
        "license {:?} not found",
        key.chars().take(80).collect::<String>()
    ))
}

async fn find<C: ConnectionTrait>(db: &C, key: &str) -> Result<Option<license::Model>, DbErr> {
    license::Entity::find()
        .filter(license::Column::Key.eq(key))
        .one(db)
        .await
}

/// The features of `ids`, by license id, each list sorted by product and feature.
pub async fn features_of<C: ConnectionTrait>(
    db: &C,
    ids: &[i32],
) -> Result<HashMap<i32, Vec<license_feature::Model>>, ApiError> {
    let mut out = common::children_of::<license_feature::Entity, _>(
        db,
        license_feature::Column::LicenseId,
        ids,
        license_feature::Column::Product,
        |f| f.license_id,
    )
    .await?;
    for features in out.values_mut() {
        features.sort_by_key(|f| (f.product, f.feature));
    }
    Ok(out)
}

pub fn feature_rows(license_id: i32, data: &LicenseData) -> Vec<license_feature::ActiveModel> {
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

pub async fn insert_features<C: ConnectionTrait>(
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

fn parse_features(features: Vec<FeatureInput>) -> Result<Vec<FeatureData>, ApiError> {
    let mut out = Vec::with_capacity(features.len());
    for (i, f) in features.into_iter().enumerate() {
        let active_until = match f.active_until.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(v) => Some(
                licenses_csv::parse_active_until(v)
                    .map_err(|e| ApiError::bad_request(format!("features[{i}]: {e}")))?,
            ),
        };
        out.push(FeatureData {
            product: f.product,
            feature: f.feature,
            active_until,
        });
    }
    Ok(out)
}

/// `features` with the catalogue's default subscription applied to those newly added
/// without an end date (`services::products`).
async fn with_defaults(
    db: &DatabaseConnection,
    had: &[(i64, i64)],
    mut features: Vec<FeatureInput>,
) -> Result<Vec<FeatureInput>, ApiError> {
    if features.is_empty() {
        return Ok(features);
    }
    let names = super::products::names(db).await?;
    super::products::apply_defaults(&names, had, &mut features, Utc::now());
    Ok(features)
}

fn text(value: Option<String>) -> String {
    value.as_deref().map_or("", str::trim).to_owned()
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

/// `POST /api/v1/licenses/import`: parses the CSV (UTF-8 or Windows-1251, see
/// `licenses_csv`; every bad line named), imports it all or nothing, then re-reads into this
/// instance's index only what the import wrote (issue 9: memory).
pub async fn import_csv(
    db: &DatabaseConnection,
    catalog: &Catalog,
    csv: &[u8],
) -> Result<ImportSummary, ApiError> {
    let (licenses, _) = licenses_csv::parse_bytes(csv).map_err(ApiError::bad_request)?;
    let features: usize = licenses.iter().map(|l| l.features.len()).sum();
    let since = Utc::now();
    let imported = import(db, &licenses).await?;
    catalog.refresh_licenses_since(db, since).await?;
    Ok(ImportSummary { imported, features })
}

/// The license `key` with its features.
pub async fn show(db: &DatabaseConnection, key: &str) -> Result<LicenseView, ApiError> {
    let l = find(db, key).await?.ok_or_else(|| not_found(key))?;
    let features = features_of(db, &[l.id]).await?;
    Ok(view(&l, features.get(&l.id).map_or(&[], Vec::as_slice)))
}

/// A page of licenses, optionally those whose key, customer or ITN contains `search`.
pub async fn list(db: &DatabaseConnection, q: LicenseQuery) -> Result<LicenseList, ApiError> {
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
    let (rows, total) = common::paginate(
        db,
        query,
        &page,
        &[
            ("key", license::Column::Key),
            ("customer", license::Column::Customer),
            ("itn", license::Column::Itn),
            ("created_at", license::Column::CreatedAt),
            ("updated_at", license::Column::UpdatedAt),
        ],
        (license::Column::Key, Order::Asc),
        (license::Column::Id, Order::Asc),
    )
    .await?;
    let ids: Vec<i32> = rows.iter().map(|l| l.id).collect();
    let features = features_of(db, &ids).await?;
    let items = rows
        .iter()
        .map(|l| view(l, features.get(&l.id).map_or(&[], Vec::as_slice)))
        .collect();
    Ok(ListOut::new(items, total, &page))
}

/// Licenses written per page of the export: memory stays bounded whatever their number.
const EXPORT_PAGE: u64 = 1000;

/// Every license whose key, customer or ITN contains `search` (all without it) as CSV in the
/// import's format (`licenses_csv::COLUMNS`, one line per feature, a license without features
/// on one line), so an export can be edited and imported back. Text cells go through
/// `export::spreadsheet_safe`. Returns how many licenses were written.
pub async fn export_csv<W: std::io::Write>(
    db: &DatabaseConnection,
    search: Option<&str>,
    out: W,
) -> Result<usize, ApiError> {
    let mut csv = ::csv::Writer::from_writer(out);
    let failed = |e: ::csv::Error| ApiError::internal(format!("writing the CSV: {e}"));
    csv.write_record(licenses_csv::COLUMNS).map_err(failed)?;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut offset = 0;
    let mut written = 0;
    loop {
        let page = list(
            db,
            LicenseQuery {
                offset: Some(offset),
                limit: Some(EXPORT_PAGE),
                sort: Some("key".into()),
                search: search.map(str::to_owned),
            },
        )
        .await?;
        for l in &page.items {
            let base = [
                crate::export::spreadsheet_safe(&l.key),
                crate::export::spreadsheet_safe(&l.customer),
                crate::export::spreadsheet_safe(&l.itn),
                yes_no(l.beta).to_owned(),
                yes_no(l.revoked).to_owned(),
            ];
            if l.features.is_empty() {
                let mut row = base.to_vec();
                row.extend([String::new(), String::new(), String::new()]);
                csv.write_record(&row).map_err(failed)?;
            }
            for f in &l.features {
                let mut row = base.to_vec();
                row.extend([
                    f.product.to_string(),
                    f.feature.to_string(),
                    f.active_until.clone().unwrap_or_default(),
                ]);
                csv.write_record(&row).map_err(failed)?;
            }
        }
        written += page.items.len();
        offset += EXPORT_PAGE;
        if page.items.len() < EXPORT_PAGE as usize {
            break;
        }
    }
    csv.flush()
        .map_err(|e| ApiError::internal(format!("writing the CSV: {e}")))?;
    Ok(written)
}

/// Creates a license; 409 if the key exists.
pub async fn create(
    db: &DatabaseConnection,
    catalog: &Catalog,
    input: NewLicense,
) -> Result<LicenseView, ApiError> {
    let key = input
        .key
        .as_deref()
        .map(str::trim)
        .ok_or_else(|| ApiError::bad_request("key is required"))?
        .to_owned();
    let data = LicenseData {
        key,
        customer: text(input.customer),
        itn: text(input.itn),
        beta: input.beta.unwrap_or(false),
        revoked: input.revoked.unwrap_or(false),
        features: parse_features(
            with_defaults(db, &[], input.features.unwrap_or_default()).await?,
        )?,
    };
    licenses_csv::validate(&data).map_err(ApiError::bad_request)?;
    let now = Utc::now();
    let txn = db.begin().await?;
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
    catalog.refresh_license(db, &data.key).await?;
    show(db, &data.key).await
}

/// Changes the fields `patch` names, and nothing else (see the module).
pub async fn update(
    db: &DatabaseConnection,
    catalog: &Catalog,
    key: &str,
    patch: LicensePatch,
) -> Result<LicenseView, ApiError> {
    if let Some(body_key) = &patch.key
        && body_key.trim() != key
    {
        return Err(ApiError::bad_request(format!(
            "key {:?} in the body differs from the URL's; a key cannot change",
            body_key.chars().take(80).collect::<String>()
        )));
    }
    let beta = patch::required("beta", patch.beta, "it is true or false")?;
    let revoked = patch::required("revoked", patch.revoked, "it is true or false")?;
    let features = patch::required(
        "features",
        patch.features,
        "send [] to remove every feature, or leave it out to keep them",
    )?;

    // Read outside the transaction (SQLite: a deferred transaction that reads and then
    // writes fails if another writer commits in between); the update below writes only the
    // columns this edit names, so a concurrent edit of other fields is not undone.
    let existing = find(db, key).await?.ok_or_else(|| not_found(key))?;
    let features = match features {
        None => None,
        Some(list) => {
            let had: Vec<(i64, i64)> = features_of(db, &[existing.id])
                .await?
                .remove(&existing.id)
                .unwrap_or_default()
                .iter()
                .map(|f| (f.product, f.feature))
                .collect();
            Some(parse_features(with_defaults(db, &had, list).await?)?)
        }
    };
    let replace_features = features.is_some();
    let data = LicenseData {
        key: existing.key.clone(),
        customer: patch
            .customer
            .clone()
            .map_or(existing.customer.clone(), text),
        itn: patch.itn.clone().map_or(existing.itn.clone(), text),
        beta: beta.unwrap_or(existing.beta),
        revoked: revoked.unwrap_or(existing.revoked),
        // Checked only when replaced: the kept ones are as they were.
        features: features.unwrap_or_default(),
    };
    licenses_csv::validate(&data).map_err(ApiError::bad_request)?;
    let mut row: license::ActiveModel = existing.clone().into();
    if patch.customer.is_some() {
        row.customer = Set(data.customer.clone());
    }
    if patch.itn.is_some() {
        row.itn = Set(data.itn.clone());
    }
    if beta.is_some() {
        row.beta = Set(data.beta);
    }
    if revoked.is_some() {
        row.revoked = Set(data.revoked);
    }
    row.updated_at = Set(Utc::now());
    let txn = db.begin().await?;
    // Deleted since it was read (a DELETE at the same time): gone, not an internal error.
    row.update(&txn).await.map_err(|e| match e {
        DbErr::RecordNotUpdated => not_found(key),
        e => ApiError::from(e),
    })?;
    if replace_features {
        license_feature::Entity::delete_many()
            .filter(license_feature::Column::LicenseId.eq(existing.id))
            .exec(&txn)
            .await?;
        insert_features(&txn, feature_rows(existing.id, &data)).await?;
    }
    catalog_sync::record(&txn, Change::License(key)).await?;
    txn.commit().await?;
    catalog.refresh_license(db, key).await?;
    show(db, key).await
}

/// Deletes a license and its features.
pub async fn delete(db: &DatabaseConnection, catalog: &Catalog, key: &str) -> Result<(), ApiError> {
    let existing = find(db, key).await?.ok_or_else(|| not_found(key))?;
    let txn = db.begin().await?;
    license_feature::Entity::delete_many()
        .filter(license_feature::Column::LicenseId.eq(existing.id))
        .exec(&txn)
        .await?;
    license::Entity::delete_by_id(existing.id)
        .exec(&txn)
        .await?;
    catalog_sync::record(&txn, Change::License(key)).await?;
    txn.commit().await?;
    catalog.refresh_license(db, key).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beta_only_patch_names_nothing_else() {
        let p: LicensePatch = serde_json::from_str(r#"{"beta": true}"#).unwrap();
        assert_eq!(p.beta, Some(Some(true)));
        assert!(p.customer.is_none() && p.itn.is_none() && p.revoked.is_none());
        assert!(p.features.is_none(), "features must stay untouched");
    }

    #[test]
    fn null_and_empty_are_different_requests() {
        let p: LicensePatch = serde_json::from_str(r#"{"itn": null, "features": []}"#).unwrap();
        assert_eq!(p.itn, Some(None));
        assert!(matches!(p.features, Some(Some(ref f)) if f.is_empty()));
        let p: LicensePatch = serde_json::from_str(r#"{"features": null}"#).unwrap();
        assert!(matches!(p.features, Some(None)));
        assert!(serde_json::from_str::<LicensePatch>(r#"{"vip": true}"#).is_err());
    }
}
