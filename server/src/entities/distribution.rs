use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "distributions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub code: String,
    pub name: String,
    pub description: String,
    pub developer: String,
    pub label: String,
    pub promo_link: String,
    pub lic_product_id: Option<i64>,
    pub lic_feature_id: Option<i64>,
    pub published: bool,
    pub hide_unlicensed: bool,
    pub version_scheme: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
