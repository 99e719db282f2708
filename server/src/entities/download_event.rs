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
    /// `min(completions, starts) > 0`: some download through this link was completed
    /// (see `stats`).
    pub completed: bool,
    /// One row per link (token and file, or key hash, file and day).
    pub dedup_key: String,
    /// Requests of this link that started at the file's first byte: the downloads counted.
    pub starts: i32,
    /// Responses of this link that delivered the file's last byte; `min(completions, starts)`
    /// of them are counted as completed downloads.
    pub completions: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
