//! The audit log (`services::audit`): one row per recorded action, never changed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: DateTimeUtc,
    /// A user's login, `api-key:ID`, `cli`, or the (quoted) name a failed login tried.
    pub actor: String,
    pub user_id: Option<i32>,
    /// `api`, `console`, `cli` or `login`.
    pub via: String,
    /// An operation id of the OpenAPI document, or `login`, `loginFailed`, `logout`.
    pub action: String,
    pub target: String,
    pub detail: String,
    pub status: Option<i16>,
    pub client: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
