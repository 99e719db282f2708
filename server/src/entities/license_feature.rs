use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "license_features")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub license_id: i32,
    pub product: i64,
    pub feature: i64,
    pub active_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
