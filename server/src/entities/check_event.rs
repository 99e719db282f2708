//! A raw check (`getAvailableReleases` / `getLatestRelease`), kept for the retention period.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "check_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub at: DateTimeUtc,
    pub distribution_id: i32,
    pub installed_version: String,
    pub conf: String,
    pub conf_version: String,
    pub offered_version: String,
    pub license_key: Option<String>,
    pub client_hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
