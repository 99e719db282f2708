//! Distributions (SPEC §3, §5): the rules of the vendor API's distribution routes, their
//! transactions and catalog refreshes. Handlers in `routes/api/distributions.rs` extract, call
//! a function here and render.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Order,
    PaginatorTrait, QueryFilter, Set, TransactionTrait,
};
use serde::Deserialize;
use vypusk_protocol::VersionScheme;

use super::releases::Status;
use crate::catalog_sync::{self, Change};
use crate::domain::DistributionCode;
use crate::entities::{compatibility, distribution, file, release, release_metadata};
use crate::error::ApiError;

use super::common::{self, Page};
use super::patch;
use crate::state::AppState;

/// The fields of a new distribution (SPEC §3), for POST; an edit merged over a distribution.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDistribution {
    /// The client's `TYPE`: letters, digits, `_`, `-`, `.`; unique. Required.
    #[serde(default)]
    #[schema(example = "PT40_UT_CRM3")]
    pub code: Option<String>,
    #[schema(example = "CRM для Управления торговлей")]
    pub name: String,
    #[serde(default)]
    #[schema(example = "Сделки, звонки и задачи прямо в карточке клиента")]
    pub description: String,
    #[serde(default)]
    #[schema(example = "ООО «Пример»")]
    pub developer: String,
    /// Shown to clients as the module's `version` (MIKO's field).
    #[serde(default)]
    #[schema(example = "PT40")]
    pub label: String,
    #[serde(default)]
    #[schema(example = "https://example.com/crm")]
    pub promo_link: String,
    /// With `lic_feature_id`: the license feature a client needs to download; both or neither.
    #[serde(default)]
    #[schema(example = 85)]
    pub lic_product_id: Option<i64>,
    #[serde(default)]
    #[schema(example = 43)]
    pub lic_feature_id: Option<i64>,
    /// Default `true`.
    #[serde(default = "yes")]
    pub published: bool,
    #[serde(default)]
    pub hide_unlicensed: bool,
    /// `1c` (default) or `semver`; fixed once releases exist.
    #[serde(default)]
    #[schema(example = "1c")]
    pub version_scheme: Option<String>,
}

fn yes() -> bool {
    true
}

/// Body of `PUT` and `PATCH /v1/distributions/{code}`: only the fields given change; `null`
/// clears `description`, `developer`, `label`, `promo_link` (to "") and the license gate
/// (`lic_product_id` and `lic_feature_id`, both set or both null); `name`, `published`,
/// `hide_unlicensed` and `version_scheme` cannot be null. `code` may be given only to check it
/// equals the URL's.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DistributionEdit {
    /// Only checked against the URL's: a code cannot change.
    #[serde(default)]
    #[schema(example = "PT40_UT_CRM3")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = String, required = false, example = "CRM для Управления торговлей")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = Option<String>, required = false)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = Option<String>, required = false)]
    pub developer: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = Option<String>, required = false)]
    pub label: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = Option<String>, required = false)]
    pub promo_link: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = Option<i64>, required = false)]
    pub lic_product_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = Option<i64>, required = false)]
    pub lic_feature_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = bool, required = false)]
    pub published: Option<Option<bool>>,
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = bool, required = false)]
    pub hide_unlicensed: Option<Option<bool>>,
    #[serde(default, deserialize_with = "patch::field")]
    #[schema(value_type = String, required = false, example = "1c")]
    pub version_scheme: Option<Option<String>>,
}

/// A field that cannot be null: its value, the existing one when left out, or 400.
fn required<T>(field: &str, edit: Option<Option<T>>, existing: T) -> Result<T, ApiError> {
    match edit {
        None => Ok(existing),
        Some(Some(v)) => Ok(v),
        Some(None) => Err(ApiError::bad_request(format!("{field} cannot be null"))),
    }
}

/// A field that `null` clears: its value, `cleared` for null, the existing one when left out.
fn clearable<T>(edit: Option<Option<T>>, existing: T, cleared: T) -> T {
    match edit {
        None => existing,
        Some(v) => v.unwrap_or(cleared),
    }
}

impl DistributionEdit {
    /// The distribution's fields after this edit, as POST would take them.
    fn merge(self, d: &distribution::Model) -> Result<NewDistribution, ApiError> {
        Ok(NewDistribution {
            code: self.code,
            name: required("name", self.name, d.name.clone())?,
            description: clearable(self.description, d.description.clone(), String::new()),
            developer: clearable(self.developer, d.developer.clone(), String::new()),
            label: clearable(self.label, d.label.clone(), String::new()),
            promo_link: clearable(self.promo_link, d.promo_link.clone(), String::new()),
            lic_product_id: self.lic_product_id.unwrap_or(d.lic_product_id),
            lic_feature_id: self.lic_feature_id.unwrap_or(d.lic_feature_id),
            published: required("published", self.published, d.published)?,
            hide_unlicensed: required("hide_unlicensed", self.hide_unlicensed, d.hide_unlicensed)?,
            version_scheme: match self.version_scheme {
                None => None,
                Some(Some(s)) => Some(s),
                Some(None) => return Err(ApiError::bad_request("version_scheme cannot be null")),
            },
        })
    }
}

struct Validated {
    name: String,
    description: String,
    developer: String,
    label: String,
    promo_link: String,
    gate: (Option<i64>, Option<i64>),
    published: bool,
    hide_unlicensed: bool,
    scheme: Option<VersionScheme>,
}

impl NewDistribution {
    fn validate(self) -> Result<Validated, ApiError> {
        let gate = match (self.lic_product_id, self.lic_feature_id) {
            (Some(p), Some(f)) => (Some(p), Some(f)),
            (None, None) => (None, None),
            _ => {
                return Err(ApiError::bad_request(
                    "lic_product_id and lic_feature_id must be both set (licensed) or both null (free)",
                ));
            }
        };
        let scheme = match self.version_scheme.as_deref() {
            None => None,
            Some(s) => Some(
                s.parse::<VersionScheme>()
                    .map_err(|e| ApiError::bad_request(format!("version_scheme: {e}")))?,
            ),
        };
        Ok(Validated {
            name: common::required_text("name", &self.name, 255)?,
            description: common::limited_text("description", &self.description, 100_000)?,
            developer: common::limited_text("developer", self.developer.trim(), 255)?,
            label: common::limited_text("label", self.label.trim(), 255)?,
            promo_link: common::limited_text("promo_link", self.promo_link.trim(), 2048)?,
            gate,
            published: self.published,
            hide_unlicensed: self.hide_unlicensed,
            scheme,
        })
    }
}

/// The distribution with this code, or 404.
pub async fn find<C: ConnectionTrait>(db: &C, code: &str) -> Result<distribution::Model, ApiError> {
    distribution::Entity::find()
        .filter(distribution::Column::Code.eq(code))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("distribution {code:?} not found")))
}

/// One page of distributions, by code unless `page.sort` says otherwise, and the total.
pub async fn list(
    db: &DatabaseConnection,
    page: &Page,
) -> Result<(Vec<distribution::Model>, u64), ApiError> {
    common::paginate(
        db,
        distribution::Entity::find(),
        page,
        &[
            ("code", distribution::Column::Code),
            ("name", distribution::Column::Name),
            ("id", distribution::Column::Id),
            ("created_at", distribution::Column::CreatedAt),
            ("updated_at", distribution::Column::UpdatedAt),
        ],
        (distribution::Column::Code, Order::Asc),
        (distribution::Column::Id, Order::Asc),
    )
    .await
}

async fn refresh(state: &AppState, id: i32) -> Result<(), ApiError> {
    state.catalog.refresh_distribution(&state.db, id).await?;
    Ok(())
}

/// Creates a distribution (`code` required).
pub async fn create(
    state: &AppState,
    input: NewDistribution,
) -> Result<distribution::Model, ApiError> {
    let code = input
        .code
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("code is required"))?;
    let code = DistributionCode::parse(code).map_err(ApiError::bad_request)?;
    let v = input.validate()?;
    let now = chrono::Utc::now();
    let txn = state.db.begin().await?;
    let row = distribution::ActiveModel {
        code: Set(code.as_str().to_owned()),
        name: Set(v.name),
        description: Set(v.description),
        developer: Set(v.developer),
        label: Set(v.label),
        promo_link: Set(v.promo_link),
        lic_product_id: Set(v.gate.0),
        lic_feature_id: Set(v.gate.1),
        published: Set(v.published),
        hide_unlicensed: Set(v.hide_unlicensed),
        version_scheme: Set(v.scheme.unwrap_or_default().as_str().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        common::conflict_on_unique(e, || {
            format!("distribution {:?} already exists", code.as_str())
        })
    })?;
    catalog_sync::record(&txn, Change::Distribution(row.id)).await?;
    txn.commit().await?;
    refresh(state, row.id).await?;
    Ok(row)
}

/// Changes the fields `edit` gives (see [`DistributionEdit`]); the version scheme only while
/// the distribution has no releases.
pub async fn edit(
    state: &AppState,
    code: &str,
    edit: DistributionEdit,
) -> Result<distribution::Model, ApiError> {
    let existing = find(&state.db, code).await?;
    let input = edit.merge(&existing)?;
    if let Some(body_code) = &input.code
        && body_code != &existing.code
    {
        return Err(ApiError::bad_request(format!(
            "code {body_code:?} in the body differs from {:?} in the URL; a code cannot change",
            existing.code
        )));
    }
    let v = input.validate()?;
    let txn = state.db.begin().await?;
    if let Some(scheme) = v.scheme
        && scheme.as_str() != existing.version_scheme
    {
        let releases = release::Entity::find()
            .filter(release::Column::DistributionId.eq(existing.id))
            .count(&txn)
            .await?;
        if releases > 0 {
            return Err(ApiError::conflict(
                "version_scheme can change only while the distribution has no releases",
            ));
        }
    }
    let mut row: distribution::ActiveModel = existing.clone().into();
    row.name = Set(v.name);
    row.description = Set(v.description);
    row.developer = Set(v.developer);
    row.label = Set(v.label);
    row.promo_link = Set(v.promo_link);
    row.lic_product_id = Set(v.gate.0);
    row.lic_feature_id = Set(v.gate.1);
    row.published = Set(v.published);
    row.hide_unlicensed = Set(v.hide_unlicensed);
    if let Some(scheme) = v.scheme {
        row.version_scheme = Set(scheme.as_str().to_owned());
    }
    row.updated_at = Set(chrono::Utc::now());
    // Deleted since it was read (a DELETE at the same time): gone, not an internal error.
    let row = row.update(&txn).await.map_err(|e| match e {
        sea_orm::DbErr::RecordNotUpdated => {
            ApiError::not_found(format!("distribution {code:?} not found"))
        }
        e => ApiError::from(e),
    })?;
    catalog_sync::record(&txn, Change::Distribution(row.id)).await?;
    txn.commit().await?;
    refresh(state, row.id).await?;
    Ok(row)
}

/// Deletes a distribution without published releases, with its releases and files (their
/// blobs are released).
pub async fn delete(state: &AppState, code: &str) -> Result<(), ApiError> {
    let existing = find(&state.db, code).await?;
    let txn = state.db.begin().await?;
    let releases = release::Entity::find()
        .filter(release::Column::DistributionId.eq(existing.id))
        .all(&txn)
        .await?;
    if releases
        .iter()
        .any(|r| Status::parse(&r.status) == Some(Status::Published))
    {
        return Err(ApiError::conflict(format!(
            "distribution {:?} has published releases; yank them first",
            existing.code
        )));
    }
    let ids: Vec<i32> = releases.iter().map(|r| r.id).collect();
    let mut sha256s = Vec::new();
    for chunk in ids.chunks(500) {
        let files = file::Entity::find()
            .filter(file::Column::ReleaseId.is_in(chunk.to_vec()))
            .all(&txn)
            .await?;
        sha256s.extend(files.into_iter().map(|f| f.sha256));
        file::Entity::delete_many()
            .filter(file::Column::ReleaseId.is_in(chunk.to_vec()))
            .exec(&txn)
            .await?;
        compatibility::Entity::delete_many()
            .filter(compatibility::Column::ReleaseId.is_in(chunk.to_vec()))
            .exec(&txn)
            .await?;
        release_metadata::Entity::delete_many()
            .filter(release_metadata::Column::ReleaseId.is_in(chunk.to_vec()))
            .exec(&txn)
            .await?;
    }
    release::Entity::delete_many()
        .filter(release::Column::DistributionId.eq(existing.id))
        .exec(&txn)
        .await?;
    distribution::Entity::delete_by_id(existing.id)
        .exec(&txn)
        .await?;
    crate::blobs::release(&txn, &sha256s, chrono::Utc::now()).await?;
    catalog_sync::record(&txn, Change::Distribution(existing.id)).await?;
    txn.commit().await?;
    refresh(state, existing.id).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> distribution::Model {
        distribution::Model {
            id: 1,
            code: "PT40_UT_CRM3".into(),
            name: "CRM".into(),
            description: "Описание".into(),
            developer: "MIKO".into(),
            label: "MIKO".into(),
            promo_link: "https://example.com".into(),
            lic_product_id: Some(85),
            lic_feature_id: Some(43),
            published: true,
            hide_unlicensed: true,
            version_scheme: "1c".into(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    fn edit(json: &str) -> DistributionEdit {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn edits_keep_what_they_do_not_name() {
        let merged = edit(r#"{"label": "Новый"}"#).merge(&model()).unwrap();
        assert_eq!(merged.label, "Новый");
        assert_eq!(merged.name, "CRM");
        assert_eq!(merged.description, "Описание");
        assert_eq!(
            (merged.lic_product_id, merged.lic_feature_id),
            (Some(85), Some(43))
        );
        assert!(merged.published && merged.hide_unlicensed);
        assert_eq!(merged.version_scheme, None, "the scheme is kept");
    }

    #[test]
    fn null_clears_optional_fields_and_is_refused_for_required_ones() {
        let merged =
            edit(r#"{"description": null, "lic_product_id": null, "lic_feature_id": null}"#)
                .merge(&model())
                .unwrap();
        assert_eq!(merged.description, "");
        assert_eq!((merged.lic_product_id, merged.lic_feature_id), (None, None));
        for field in ["name", "published", "hide_unlicensed", "version_scheme"] {
            let e = edit(&format!(r#"{{"{field}": null}}"#));
            assert!(e.merge(&model()).is_err(), "{field}");
        }
        // Half a gate merges, and validation refuses it.
        let half = edit(r#"{"lic_feature_id": null}"#).merge(&model()).unwrap();
        assert!(half.validate().is_err());
    }
}
