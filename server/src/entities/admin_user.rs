//! Users of the vendor API (the table keeps its first name, `admin_users`). `roles` is a
//! comma-separated list (`services::users::Role`); an empty `password_hash` means no password
//! has been set yet and never verifies.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "admin_users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub username: String,
    pub password_hash: String,
    pub created_at: DateTimeUtc,
    pub roles: String,
    pub disabled: bool,
    pub set_password_token_hash: Option<String>,
    pub set_password_expires_at: Option<DateTimeUtc>,
    pub updated_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
