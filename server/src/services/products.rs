//! Named products and features (issue 13 item 2, seed 002): a catalogue that maps the numbers
//! of a license gate (`lic_product_id`, `lic_feature_id`) and of license features to names,
//! so nobody has to remember that 85/43 is «Телефония / Обновления». A feature may carry a
//! default subscription length (`default_days`): a feature added to a license through the
//! vendor API or the console without an end date gets `today + default_days` (through the end
//! of that day). The CSV import is exempt: a file replaces licenses as written, so an export
//! read back changes nothing. Numbers on the wire stay as they are.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::common;
use crate::auth::{Caller, Permission};
use crate::entities::{product, product_feature};
use crate::error::ApiError;

/// The longest default subscription (100 years).
pub const MAX_DEFAULT_DAYS: u32 = 36_500;
/// The most products and features a catalogue lists (it is read whole).
pub const MAX_ENTRIES: u64 = 10_000;

/// Who may name products and features: those who gate distributions (`publish`) and those who
/// sell licenses (`licenses`); everyone who reads may see the names.
pub fn may_edit(caller: &Caller) -> Result<(), ApiError> {
    if caller.has(Permission::Publish) || caller.has(Permission::Licenses) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "naming products and features needs the publish or the licenses permission",
        ))
    }
}

/// `POST /api/v1/products`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    /// The number distributions and licenses use (`lic_product_id`, a feature's `product`).
    #[schema(example = 85)]
    pub number: i64,
    #[schema(example = "Телефония")]
    pub name: String,
}

/// `PUT /api/v1/products/{number}`: the new name.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductEdit {
    #[schema(example = "Телефония")]
    pub name: String,
}

/// `PUT /api/v1/products/{number}/features/{feature}`: creates or replaces a feature's name
/// and default subscription length.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureName {
    #[schema(example = "Обновления")]
    pub name: String,
    /// Days of subscription a license gets when this feature is added to it without an end
    /// date (1 to 36500); absent or `null`: such a feature never lapses.
    #[serde(default)]
    #[schema(example = 365)]
    pub default_days: Option<u32>,
}

/// A named feature in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NamedFeature {
    #[schema(example = 43)]
    pub number: i64,
    #[schema(example = "Обновления")]
    pub name: String,
    #[schema(example = 365)]
    pub default_days: Option<u32>,
}

/// A named product with its named features, in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ProductView {
    #[schema(example = 85)]
    pub number: i64,
    #[schema(example = "Телефония")]
    pub name: String,
    /// By number.
    pub features: Vec<NamedFeature>,
}

/// Every product and feature name, for showing numbers as names.
#[derive(Debug, Default, Clone)]
pub struct Names {
    products: BTreeMap<i64, ProductView>,
}

impl Names {
    pub fn product(&self, product: i64) -> Option<&str> {
        self.products.get(&product).map(|p| p.name.as_str())
    }

    pub fn feature(&self, product: i64, feature: i64) -> Option<&NamedFeature> {
        self.products
            .get(&product)?
            .features
            .iter()
            .find(|f| f.number == feature)
    }

    /// "Телефония / Обновления (85/43)", or "85/43" for numbers nobody named.
    pub fn describe(&self, product: i64, feature: i64) -> String {
        let numbers = format!("{product}/{feature}");
        match (self.product(product), self.feature(product, feature)) {
            (Some(p), Some(f)) => format!("{p} / {} ({numbers})", f.name),
            (Some(p), None) => format!("{p} / feature {feature} ({numbers})"),
            _ => numbers,
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &ProductView> {
        self.products.values()
    }
}

fn checked_name(name: &str) -> Result<String, ApiError> {
    common::required_text("name", name, 255)
}

fn checked_days(days: Option<u32>) -> Result<Option<i32>, ApiError> {
    match days {
        None => Ok(None),
        Some(d) if (1..=MAX_DEFAULT_DAYS).contains(&d) => Ok(Some(d as i32)),
        Some(_) => Err(ApiError::bad_request(format!(
            "default_days must be between 1 and {MAX_DEFAULT_DAYS}"
        ))),
    }
}

fn product_not_found(number: i64) -> ApiError {
    ApiError::not_found(format!("product {number} is not named"))
}

/// The whole catalogue, by product number.
pub async fn names(db: &DatabaseConnection) -> Result<Names, ApiError> {
    Ok(Names {
        products: list(db).await?.into_iter().map(|p| (p.number, p)).collect(),
    })
}

/// Every named product with its features, by number.
pub async fn list(db: &DatabaseConnection) -> Result<Vec<ProductView>, ApiError> {
    use sea_orm::QuerySelect;
    let products = product::Entity::find()
        .order_by_asc(product::Column::Number)
        .limit(MAX_ENTRIES)
        .all(db)
        .await?;
    let features = product_feature::Entity::find()
        .order_by_asc(product_feature::Column::ProductNumber)
        .order_by_asc(product_feature::Column::Number)
        .limit(MAX_ENTRIES)
        .all(db)
        .await?;
    let mut by_product: HashMap<i64, Vec<NamedFeature>> = HashMap::new();
    for f in features {
        by_product
            .entry(f.product_number)
            .or_default()
            .push(NamedFeature {
                number: f.number,
                name: f.name,
                default_days: f.default_days.and_then(|d| u32::try_from(d).ok()),
            });
    }
    Ok(products
        .into_iter()
        .map(|p| ProductView {
            features: by_product.remove(&p.number).unwrap_or_default(),
            number: p.number,
            name: p.name,
        })
        .collect())
}

pub async fn get(db: &DatabaseConnection, number: i64) -> Result<ProductView, ApiError> {
    names(db)
        .await?
        .products
        .remove(&number)
        .ok_or_else(|| product_not_found(number))
}

/// Names product `number`; 409 when it has a name already.
pub async fn create(db: &DatabaseConnection, input: NewProduct) -> Result<ProductView, ApiError> {
    let name = checked_name(&input.name)?;
    let now = Utc::now();
    product::ActiveModel {
        number: Set(input.number),
        name: Set(name),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| {
        common::conflict_on_unique(e, || format!("product {} is named already", input.number))
    })?;
    get(db, input.number).await
}

pub async fn rename(
    db: &DatabaseConnection,
    number: i64,
    input: ProductEdit,
) -> Result<ProductView, ApiError> {
    let name = checked_name(&input.name)?;
    let res = product::Entity::update_many()
        .col_expr(product::Column::Name, sea_orm::sea_query::Expr::value(name))
        .col_expr(
            product::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(product::Column::Number.eq(number))
        .exec(db)
        .await?;
    if res.rows_affected == 0 {
        return Err(product_not_found(number));
    }
    get(db, number).await
}

/// Forgets the names of product `number` and its features (distributions and licenses keep
/// their numbers).
pub async fn delete(db: &DatabaseConnection, number: i64) -> Result<(), ApiError> {
    let txn = db.begin().await?;
    product_feature::Entity::delete_many()
        .filter(product_feature::Column::ProductNumber.eq(number))
        .exec(&txn)
        .await?;
    let res = product::Entity::delete_many()
        .filter(product::Column::Number.eq(number))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        return Err(product_not_found(number));
    }
    txn.commit().await?;
    Ok(())
}

/// Creates or replaces the name and default length of feature `feature` of named product
/// `product`.
pub async fn put_feature(
    db: &DatabaseConnection,
    product: i64,
    feature: i64,
    input: FeatureName,
) -> Result<ProductView, ApiError> {
    let name = checked_name(&input.name)?;
    let days = checked_days(input.default_days)?;
    let now = Utc::now();
    let txn = db.begin().await?;
    if product::Entity::find()
        .filter(product::Column::Number.eq(product))
        .one(&txn)
        .await?
        .is_none()
    {
        return Err(product_not_found(product));
    }
    // Replace when it is there (one statement: a feature deleted meanwhile is simply not
    // updated), insert otherwise.
    let updated = product_feature::Entity::update_many()
        .col_expr(product_feature::Column::Name, Expr::value(name.clone()))
        .col_expr(product_feature::Column::DefaultDays, Expr::value(days))
        .col_expr(product_feature::Column::UpdatedAt, Expr::value(now))
        .filter(product_feature::Column::ProductNumber.eq(product))
        .filter(product_feature::Column::Number.eq(feature))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        product_feature::ActiveModel {
            product_number: Set(product),
            number: Set(feature),
            name: Set(name),
            default_days: Set(days),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|e| {
            common::conflict_on_unique(e, || {
                format!("feature {product}/{feature} was named at the same time; try again")
            })
        })?;
    }
    txn.commit().await?;
    get(db, product).await
}

pub async fn delete_feature(
    db: &DatabaseConnection,
    product: i64,
    feature: i64,
) -> Result<(), ApiError> {
    let res = product_feature::Entity::delete_many()
        .filter(product_feature::Column::ProductNumber.eq(product))
        .filter(product_feature::Column::Number.eq(feature))
        .exec(db)
        .await?;
    if res.rows_affected == 0 {
        return Err(ApiError::not_found(format!(
            "feature {product}/{feature} is not named"
        )));
    }
    Ok(())
}

/// The end of a feature added `now` with `days` of subscription: the end of the day
/// `now + days`, UTC, as `YYYY-MM-DD` (what licenses take).
pub fn default_end(now: DateTime<Utc>, days: u32) -> String {
    (now + chrono::Duration::days(i64::from(days)))
        .format("%Y-%m-%d")
        .to_string()
}

/// Gives each feature in `features` that is not in `already` (product, feature) and has no
/// end date its catalogue default, when it has one.
pub fn apply_defaults(
    names: &Names,
    already: &[(i64, i64)],
    features: &mut [super::licenses::FeatureInput],
    now: DateTime<Utc>,
) {
    for f in features.iter_mut() {
        let open = f
            .active_until
            .as_deref()
            .is_none_or(|v| v.trim().is_empty());
        if !open || already.contains(&(f.product, f.feature)) {
            continue;
        }
        if let Some(days) = names
            .feature(f.product, f.feature)
            .and_then(|n| n.default_days)
        {
            f.active_until = Some(default_end(now, days));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::licenses::FeatureInput;

    fn names() -> Names {
        let mut products = BTreeMap::new();
        products.insert(
            85,
            ProductView {
                number: 85,
                name: "Телефония".into(),
                features: vec![
                    NamedFeature {
                        number: 43,
                        name: "Обновления".into(),
                        default_days: Some(365),
                    },
                    NamedFeature {
                        number: 44,
                        name: "Запись звонков".into(),
                        default_days: None,
                    },
                ],
            },
        );
        Names { products }
    }

    #[test]
    fn numbers_are_described_by_their_names() {
        let n = names();
        assert_eq!(n.describe(85, 43), "Телефония / Обновления (85/43)");
        assert_eq!(n.describe(85, 99), "Телефония / feature 99 (85/99)");
        assert_eq!(n.describe(1, 2), "1/2");
    }

    #[test]
    fn defaults_apply_only_to_new_open_features() {
        let now = "2026-11-30T10:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let f = |p, feat, until: Option<&str>| FeatureInput {
            product: p,
            feature: feat,
            active_until: until.map(str::to_owned),
        };
        let mut features = vec![
            f(85, 43, None),
            f(85, 43, Some("2030-01-01")),
            f(85, 44, None),
            f(7, 7, Some("")),
        ];
        apply_defaults(&names(), &[], &mut features, now);
        assert_eq!(features[0].active_until.as_deref(), Some("2027-11-30"));
        assert_eq!(features[1].active_until.as_deref(), Some("2030-01-01"));
        assert_eq!(features[2].active_until, None, "no default: never lapses");
        assert_eq!(features[3].active_until.as_deref(), Some(""), "not named");
        let mut kept = vec![f(85, 43, None)];
        apply_defaults(&names(), &[(85, 43)], &mut kept, now);
        assert_eq!(
            kept[0].active_until, None,
            "an existing feature keeps its terms"
        );
    }

    #[test]
    fn default_days_are_bounded() {
        assert!(checked_days(Some(0)).is_err());
        assert!(checked_days(Some(MAX_DEFAULT_DAYS + 1)).is_err());
        assert_eq!(checked_days(Some(365)).unwrap(), Some(365));
    }
}
