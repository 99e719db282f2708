//! The latest check of each installation (license key or hashed address, plus CONF).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stats_installations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub distribution_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub installation: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub conf: String,
    pub installed_version: String,
    pub conf_version: String,
    pub first_seen: DateTimeUtc,
    pub last_seen: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
