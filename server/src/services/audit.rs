//! Placeholder until the audit-log branch lands: entries go to the `audit` tracing target.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Api,
    Console,
    Cli,
    Login,
}

pub struct Event {
    pub actor: String,
    pub user_id: Option<i32>,
    pub via: Via,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub status: Option<u16>,
    pub client: Option<String>,
}

impl Event {
    pub fn new(
        via: Via,
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
    ) -> Event {
        Event {
            actor: actor.into(),
            user_id: None,
            via,
            action: action.into(),
            target: target.into(),
            detail: String::new(),
            status: None,
            client: None,
        }
    }
}

pub async fn record<C: sea_orm::ConnectionTrait>(_db: &C, event: Event, _at: DateTime<Utc>) {
    tracing::info!(target: "audit", actor = event.actor, action = event.action,
        target = event.target, via = ?event.via, status = ?event.status, "vendor action");
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub via: Option<Via>,
    pub target: Option<String>,
    pub from: Option<chrono::NaiveDate>,
    pub to: Option<chrono::NaiveDate>,
    pub failed: Option<bool>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EntryView {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub via: Via,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub status: Option<u16>,
    pub client: Option<String>,
}

pub async fn list(
    _db: &sea_orm::DatabaseConnection,
    _filter: &Filter,
    page: &crate::services::common::Page,
) -> Result<crate::services::common::ListOut<EntryView>, crate::error::ApiError> {
    Ok(crate::services::common::ListOut::new(Vec::new(), 0, page))
}

pub async fn write_csv<W: std::io::Write>(
    _db: &sea_orm::DatabaseConnection,
    _filter: &Filter,
    _out: W,
) -> Result<(), crate::error::ApiError> {
    Ok(())
}
