//! Daily roll-up: checks per distribution, configuration and installed version.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stats_daily_checks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub distribution_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub conf: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub installed_version: String,
    pub checks: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
