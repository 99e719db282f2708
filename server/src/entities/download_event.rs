use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "download_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub at: DateTimeUtc,
    pub distribution_id: i32,
    pub release_id: i32,
    pub file_id: i32,
    pub license_key: Option<String>,
    pub conf: String,
    pub conf_version: String,
    pub installed_version: String,
    pub bytes: i64,
    /// Some request of this download delivered the file's last byte (see `stats`).
    pub completed: bool,
    pub dedup_key: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
