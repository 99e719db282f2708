//! A named feature of a license product (`services::products`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "product_features")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub product_number: i64,
    pub number: i64,
    pub name: String,
    pub default_days: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
