//! The audit log kept in the database (issue 12, item 3): who did what and when, from the
//! vendor API, the console, the CLI and the login form alike. Every instance sharing the
//! database writes to the one `audit_log` table.
//!
//! Actions are named by the operation ids of the OpenAPI document (`publishRelease`,
//! `createLicense`, `revokeApiKey` …), so one filter finds the same action whichever way it was
//! done; logins are `login`, `loginFailed` and `logout`. Targets name what was acted on the way
//! the vendor API's paths do (`id="12"`, `code="CRM"`, `key_sha256=` and the first 12 hex digits
//! of a license key's SHA-256: license keys are never written). Recording is best effort: a row
//! that cannot be written is logged and counted (`vypusk_audit_write_errors_total`), and the
//! action it describes stands. Nothing is pruned.

use std::io::Write;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, Order, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::{Deserialize, Deserializer, Serialize};

use crate::entities::audit_log;
use crate::error::ApiError;
use crate::services::common::{self, ListOut, Page};

/// How an action reached the server.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The vendor API (`/api/…`), with a password or an API key.
    Api,
    /// The console's pages.
    Console,
    /// `vypusk` commands working on the data directory directly.
    Cli,
    /// The login form of the browser pages.
    Login,
}

impl Via {
    pub const ALL: [Via; 4] = [Via::Api, Via::Console, Via::Cli, Via::Login];

    pub fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Console => "console",
            Via::Cli => "cli",
            Via::Login => "login",
        }
    }
}

impl FromStr for Via {
    type Err = String;

    fn from_str(s: &str) -> Result<Via, String> {
        Via::ALL
            .into_iter()
            .find(|v| v.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "via must be api, console, cli or login, not {}",
                    crate::error::quote(s)
                )
            })
    }
}

/// One action to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// A user's login, `api-key:ID`, `cli`, or for a failed login the name tried (quoted, at
    /// most 64 characters) or `api-key`.
    pub actor: String,
    /// The user acting (directly or through one of their keys), when known.
    pub user_id: Option<i32>,
    pub via: Via,
    /// An operation id of the OpenAPI document, or `login`, `loginFailed`, `logout`.
    pub action: String,
    /// What was acted on, as `name=value` pairs (`id="12"`, `code="CRM"`, `key_sha256=…`).
    pub target: String,
    /// Anything else worth keeping (a yank's reason, why a login failed); may be empty.
    pub detail: String,
    /// The HTTP status of the answer, where there is one.
    pub status: Option<u16>,
    /// The client's address.
    pub client: Option<String>,
}

impl Event {
    /// An event with no user id, detail, status or client.
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

/// How many characters of each text column are kept (longer values are cut, marked `…`).
const MAX_ACTOR_CHARS: usize = 128;
const MAX_ACTION_CHARS: usize = 128;
const MAX_TARGET_CHARS: usize = 1000;
const MAX_DETAIL_CHARS: usize = 1000;
const MAX_CLIENT_CHARS: usize = 64;

fn capped(value: String, max_chars: usize) -> String {
    match value.char_indices().nth(max_chars.saturating_sub(1)) {
        Some((cut, _)) if value[cut..].chars().nth(1).is_some() => {
            let mut out = value[..cut].to_owned();
            out.push('…');
            out
        }
        _ => value,
    }
}

/// Writes `event` as of `at`. Best effort: a failure is logged (warn) and counted in
/// `vypusk_audit_write_errors_total`, and never fails the action. Call it with the
/// connection after the action's transaction committed: in a PostgreSQL transaction a failed
/// insert would abort the transaction.
pub async fn record<C: ConnectionTrait>(db: &C, event: Event, at: DateTime<Utc>) {
    let action = capped(event.action, MAX_ACTION_CHARS);
    let row = audit_log::ActiveModel {
        id: NotSet,
        at: Set(at),
        actor: Set(capped(event.actor, MAX_ACTOR_CHARS)),
        user_id: Set(event.user_id),
        via: Set(event.via.as_str().to_owned()),
        action: Set(action.clone()),
        target: Set(capped(event.target, MAX_TARGET_CHARS)),
        detail: Set(capped(event.detail, MAX_DETAIL_CHARS)),
        status: Set(event.status.map(|s| i16::try_from(s).unwrap_or(i16::MAX))),
        client: Set(event.client.map(|c| capped(c, MAX_CLIENT_CHARS))),
    };
    if let Err(e) = audit_log::Entity::insert(row)
        .exec_without_returning(db)
        .await
    {
        metrics::counter!(crate::telemetry::AUDIT_WRITE_ERRORS).increment(1);
        tracing::warn!(error = %e, action = %action, "cannot write to the audit log");
    }
}

/// The name a failed login tried, as its `actor`: quoted, at most 64 characters.
pub fn tried_login(login: &str) -> String {
    let quoted = crate::error::quote(login);
    if quoted.chars().count() <= 64 {
        return quoted;
    }
    let mut out: String = quoted.chars().take(63).collect();
    out.push('…');
    out
}

/// Which entries a list or export shows; every field optional. Read from a query string or
/// a form: a blank value is no filter.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Filter {
    /// Case-insensitive substring of the actor (ASCII case only on SQLite).
    #[serde(default, deserialize_with = "blank_is_none")]
    pub actor: Option<String>,
    /// Exactly this action (`publishRelease`).
    #[serde(default, deserialize_with = "blank_is_none")]
    pub action: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub via: Option<Via>,
    /// Case-insensitive substring of the target.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub target: Option<String>,
    /// From this day on (UTC).
    #[serde(default, deserialize_with = "blank_is_none")]
    pub from: Option<NaiveDate>,
    /// Up to and including this day (UTC).
    #[serde(default, deserialize_with = "blank_is_none")]
    pub to: Option<NaiveDate>,
    /// `true`: only answers with status 400 or more; `false`: only the others.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub failed: Option<bool>,
}

/// An optional value read from text, blank being `None` (HTML forms send empty fields).
fn blank_is_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

/// Longest substring or action a filter takes.
const MAX_FILTER_CHARS: usize = 200;

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `lower(column) LIKE '%needle%'`, with the needle's `%`, `_` and `\` taken literally.
fn contains(column: audit_log::Column, needle: &str) -> sea_orm::sea_query::SimpleExpr {
    let pattern = format!("%{}%", common::like_escape(&needle.to_lowercase()));
    Expr::expr(Func::lower(Expr::col((audit_log::Entity, column))))
        .like(LikeExpr::new(pattern).escape('\\'))
}

/// The `WHERE` of `filter`; 400 for a filter that cannot match sensibly (a range ending
/// before it starts, an overlong text).
pub(crate) fn condition(filter: &Filter) -> Result<Condition, ApiError> {
    let mut condition = Condition::all();
    for (name, value) in [
        ("actor", &filter.actor),
        ("action", &filter.action),
        ("target", &filter.target),
    ] {
        if given(value).is_some_and(|v| v.chars().count() > MAX_FILTER_CHARS) {
            return Err(ApiError::bad_request(format!(
                "{name} is longer than {MAX_FILTER_CHARS} characters"
            )));
        }
    }
    if let Some(actor) = given(&filter.actor) {
        condition = condition.add(contains(audit_log::Column::Actor, actor));
    }
    if let Some(action) = given(&filter.action) {
        condition = condition.add(audit_log::Column::Action.eq(action));
    }
    if let Some(via) = filter.via {
        condition = condition.add(audit_log::Column::Via.eq(via.as_str()));
    }
    if let Some(target) = given(&filter.target) {
        condition = condition.add(contains(audit_log::Column::Target, target));
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(ApiError::bad_request(format!(
            "from ({from}) is after to ({to})"
        )));
    }
    if let Some(from) = filter.from {
        condition = condition
            .add(audit_log::Column::At.gte(from.and_time(chrono::NaiveTime::MIN).and_utc()));
    }
    // Up to the end of `to`: before the next day starts.
    if let Some(next) = filter.to.and_then(|to| to.succ_opt()) {
        condition = condition
            .add(audit_log::Column::At.lt(next.and_time(chrono::NaiveTime::MIN).and_utc()));
    }
    match filter.failed {
        Some(true) => condition = condition.add(audit_log::Column::Status.gte(400)),
        Some(false) => {
            condition = condition.add(
                Condition::any()
                    .add(audit_log::Column::Status.is_null())
                    .add(audit_log::Column::Status.lt(400)),
            )
        }
        None => {}
    }
    Ok(condition)
}

/// One entry as the API, the console and the CSV export show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntryView {
    #[schema(example = 42)]
    pub id: i64,
    /// When, RFC 3339 UTC.
    #[schema(example = "2026-12-05T10:15:00Z")]
    pub at: String,
    /// A user's login, `api-key:ID`, `cli`, or for a failed login the (quoted) name tried.
    #[schema(example = "maria")]
    pub actor: String,
    pub via: Via,
    /// An operation id of this document, or `login`, `loginFailed`, `logout`.
    #[schema(example = "publishRelease")]
    pub action: String,
    /// What was acted on.
    #[schema(example = "id=\"12\"")]
    pub target: String,
    /// More about it (a yank's reason, why a login failed); may be empty.
    #[schema(example = "")]
    pub detail: String,
    /// The HTTP status of the answer, where there is one.
    #[schema(example = 200)]
    pub status: Option<u16>,
    /// The client's address.
    #[schema(example = "192.0.2.10")]
    pub client: Option<String>,
}

impl From<audit_log::Model> for EntryView {
    fn from(row: audit_log::Model) -> EntryView {
        EntryView {
            id: row.id,
            at: common::ts(row.at),
            actor: row.actor,
            // Rows are written through `record`; anything else reads as the API.
            via: row.via.parse().unwrap_or(Via::Api),
            action: row.action,
            target: row.target,
            detail: row.detail,
            status: row.status.and_then(|s| u16::try_from(s).ok()),
            client: row.client,
        }
    }
}

/// Fields a list sorts by (`-` in front for descending); newest first without `sort`.
const SORT_COLUMNS: &[(&str, audit_log::Column)] = &[
    ("at", audit_log::Column::At),
    ("id", audit_log::Column::Id),
    ("actor", audit_log::Column::Actor),
    ("action", audit_log::Column::Action),
    ("status", audit_log::Column::Status),
];

/// A page of the entries `filter` matches, newest first unless `page.sort` says otherwise.
pub async fn list(
    db: &DatabaseConnection,
    filter: &Filter,
    page: &Page,
) -> Result<ListOut<EntryView>, ApiError> {
    let query = audit_log::Entity::find().filter(condition(filter)?);
    let (rows, total) = common::paginate(
        db,
        query,
        page,
        SORT_COLUMNS,
        (audit_log::Column::At, Order::Desc),
        (audit_log::Column::Id, Order::Desc),
    )
    .await?;
    Ok(ListOut::new(
        rows.into_iter().map(EntryView::from).collect(),
        total,
        page,
    ))
}

/// The most rows one CSV export holds (newest first): narrow `from`/`to` for older ones.
pub const MAX_CSV_ROWS: u64 = 1_000_000;
/// Rows read from the database at a time by an export.
const CSV_PAGE_ROWS: u64 = 1000;

/// The columns of the CSV export, in order.
pub const CSV_HEADER: [&str; 9] = [
    "id", "at", "actor", "via", "action", "target", "detail", "status", "client",
];

/// An export in progress: reads the entries `filter` matches a page at a time, newest first
/// (by time, then id, continuing after the last row seen, so entries written meanwhile
/// neither repeat nor shift rows), and renders each page as CSV. The header comes with the
/// first chunk. At most [`MAX_CSV_ROWS`] rows.
pub struct CsvExport {
    condition: Condition,
    /// `(at, id)` of the last row written.
    after: Option<(DateTime<Utc>, i64)>,
    rows: u64,
    header_sent: bool,
    done: bool,
}

impl CsvExport {
    pub fn new(filter: &Filter) -> Result<CsvExport, ApiError> {
        Ok(CsvExport {
            condition: condition(filter)?,
            after: None,
            rows: 0,
            header_sent: false,
            done: false,
        })
    }

    /// The next chunk of CSV text; `None` when the export is complete. The first chunk is
    /// the header and the first page (just the header when nothing matches).
    pub async fn next_chunk(
        &mut self,
        db: &DatabaseConnection,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let mut writer = csv::Writer::from_writer(Vec::new());
        if !self.header_sent {
            writer
                .write_record(CSV_HEADER)
                .map_err(ApiError::internal)?;
            self.header_sent = true;
        }
        let want = std::cmp::min(CSV_PAGE_ROWS, MAX_CSV_ROWS - self.rows);
        let mut query = audit_log::Entity::find().filter(self.condition.clone());
        if let Some((at, id)) = self.after {
            query = query.filter(
                Condition::any().add(audit_log::Column::At.lt(at)).add(
                    Condition::all()
                        .add(audit_log::Column::At.eq(at))
                        .add(audit_log::Column::Id.lt(id)),
                ),
            );
        }
        let rows = if want == 0 {
            Vec::new()
        } else {
            query
                .order_by(audit_log::Column::At, Order::Desc)
                .order_by(audit_log::Column::Id, Order::Desc)
                .limit(want)
                .all(db)
                .await?
        };
        if (rows.len() as u64) < want || want == 0 {
            self.done = true;
        }
        if let Some(last) = rows.last() {
            self.after = Some((last.at, last.id));
        }
        self.rows += rows.len() as u64;
        if self.rows >= MAX_CSV_ROWS {
            self.done = true;
        }
        for row in rows {
            let entry = EntryView::from(row);
            writer
                .write_record([
                    entry.id.to_string().as_str(),
                    &entry.at,
                    &entry.actor,
                    entry.via.as_str(),
                    &entry.action,
                    &entry.target,
                    &entry.detail,
                    &entry.status.map(|s| s.to_string()).unwrap_or_default(),
                    entry.client.as_deref().unwrap_or(""),
                ])
                .map_err(ApiError::internal)?;
        }
        let bytes = writer.into_inner().map_err(ApiError::internal)?;
        if bytes.is_empty() {
            return Ok(None);
        }
        Ok(Some(bytes))
    }
}

/// Every entry `filter` matches as CSV (header row first, newest first, at most
/// [`MAX_CSV_ROWS`] rows), read from the database a page at a time and written to `out` as
/// it goes.
pub async fn write_csv<W: Write>(
    db: &DatabaseConnection,
    filter: &Filter,
    mut out: W,
) -> Result<(), ApiError> {
    let mut export = CsvExport::new(filter)?;
    while let Some(chunk) = export.next_chunk(db).await? {
        out.write_all(&chunk).map_err(ApiError::internal)?;
    }
    out.flush().map_err(ApiError::internal)
}

/// The CSV export as a stream of chunks, a page of rows at a time as the reader takes them.
/// The first page is read before this returns, so a failing database is an error here; a
/// failure later ends the stream with an error (the client sees an incomplete transfer, not a
/// short file).
pub async fn csv_stream(
    db: &DatabaseConnection,
    filter: &Filter,
) -> Result<
    impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + use<>,
    ApiError,
> {
    let mut export = CsvExport::new(filter)?;
    let first = export.next_chunk(db).await?.unwrap_or_default();
    let db = db.clone();
    let rest = futures::stream::try_unfold(export, move |mut export| {
        let db = db.clone();
        async move {
            match export.next_chunk(&db).await {
                Ok(Some(chunk)) => Ok(Some((bytes::Bytes::from(chunk), export))),
                Ok(None) => Ok(None),
                Err(e) => Err(std::io::Error::other(e.message)),
            }
        }
    });
    Ok(futures::StreamExt::chain(
        futures::stream::once(async move { Ok(bytes::Bytes::from(first)) }),
        rest,
    ))
}

#[cfg(test)]
mod tests {
    use sea_orm::{Database, DbBackend, QueryTrait};
    use vypusk_migrations::{Migrator, MigratorTrait};

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sql(filter: &Filter) -> String {
        audit_log::Entity::find()
            .filter(condition(filter).unwrap())
            .build(DbBackend::Sqlite)
            .to_string()
    }

    #[test]
    fn via_names() {
        for via in Via::ALL {
            assert_eq!(via.as_str().parse::<Via>().unwrap(), via);
            assert_eq!(
                serde_json::to_value(via).unwrap(),
                serde_json::Value::String(via.as_str().to_owned())
            );
        }
        assert!("API".parse::<Via>().is_err());
    }

    #[test]
    fn long_values_are_cut() {
        assert_eq!(capped("abc".into(), 3), "abc");
        assert_eq!(capped("abcd".into(), 3), "ab…");
        assert_eq!(capped("абвгд".into(), 4), "абв…");
        assert_eq!(tried_login("admin"), "\"admin\"");
        let long = tried_login(&"x".repeat(300));
        assert_eq!(long.chars().count(), 64);
        assert!(long.starts_with("\"xxx") && long.ends_with('…'));
        // A control character cannot forge a second line or column.
        assert_eq!(tried_login("a\nb"), "\"a\\nb\"");
    }

    #[test]
    fn filters_become_conditions() {
        let unfiltered = |text: String| text.ends_with("FROM \"audit_log\" WHERE TRUE");
        assert!(unfiltered(sql(&Filter::default())));
        let text = sql(&Filter {
            actor: Some(" Ma_ria ".into()),
            action: Some("publishRelease".into()),
            via: Some(Via::Cli),
            target: Some("50%".into()),
            ..Filter::default()
        });
        assert!(
            text.contains(r#"LOWER("audit_log"."actor") LIKE '%ma\_ria%' ESCAPE '\'"#),
            "{text}"
        );
        assert!(
            text.contains(r#"LOWER("audit_log"."target") LIKE '%50\%%' ESCAPE '\'"#),
            "{text}"
        );
        assert!(text.contains(r#""action" = 'publishRelease'"#), "{text}");
        assert!(text.contains(r#""via" = 'cli'"#), "{text}");
        // Blank text is no filter.
        assert!(unfiltered(sql(&Filter {
            actor: Some("  ".into()),
            ..Filter::default()
        })));
        // `to` is inclusive: before the next day starts.
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let text = sql(&Filter {
            from: Some(day("2026-12-01")),
            to: Some(day("2026-12-31")),
            ..Filter::default()
        });
        assert!(
            text.contains(r#""at" >= '2026-12-01 00:00:00.000000 +00:00'"#),
            "{text}"
        );
        assert!(
            text.contains(r#""at" < '2027-01-01 00:00:00.000000 +00:00'"#),
            "{text}"
        );
        let text = sql(&Filter {
            failed: Some(true),
            ..Filter::default()
        });
        assert!(text.contains(r#""status" >= 400"#), "{text}");
        let text = sql(&Filter {
            failed: Some(false),
            ..Filter::default()
        });
        assert!(
            text.contains(r#""status" IS NULL OR "audit_log"."status" < 400"#),
            "{text}"
        );
        // A range that ends before it starts, an overlong text: 400.
        let refused = condition(&Filter {
            from: Some(day("2026-12-02")),
            to: Some(day("2026-12-01")),
            ..Filter::default()
        })
        .unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::BAD_REQUEST);
        let refused = condition(&Filter {
            target: Some("x".repeat(201)),
            ..Filter::default()
        })
        .unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::BAD_REQUEST);
    }

    /// As a form or query string sends it: every value text, blank ones absent.
    #[test]
    fn filters_read_from_text() {
        let filter: Filter = serde_json::from_value(serde_json::json!({
            "actor": "", "action": "yankRelease", "via": "console", "target": " ",
            "from": "2026-12-01", "to": "", "failed": "true",
        }))
        .unwrap();
        assert_eq!(filter.actor, None);
        assert_eq!(filter.action.as_deref(), Some("yankRelease"));
        assert_eq!(filter.via, Some(Via::Console));
        assert_eq!(filter.target, None);
        assert_eq!(filter.from, NaiveDate::from_ymd_opt(2026, 12, 1));
        assert_eq!(filter.to, None);
        assert_eq!(filter.failed, Some(true));
        for bad in [
            serde_json::json!({"via": "web"}),
            serde_json::json!({"from": "01.12.2026"}),
            serde_json::json!({"failed": "yes"}),
        ] {
            assert!(serde_json::from_value::<Filter>(bad).is_err());
        }
    }

    async fn db() -> DatabaseConnection {
        let db = Database::connect("sqlite::memory:").await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        db
    }

    fn event(via: Via, actor: &str, action: &str, status: Option<u16>) -> Event {
        Event {
            status,
            user_id: Some(1),
            client: Some("192.0.2.1".into()),
            ..Event::new(via, actor, action, "id=\"7\"")
        }
    }

    #[tokio::test]
    async fn records_lists_and_filters() {
        let db = db().await;
        record(
            &db,
            event(Via::Api, "Maria", "publishRelease", Some(200)),
            at("2026-12-01T10:00:00Z"),
        )
        .await;
        record(
            &db,
            Event {
                detail: "wrong credentials".into(),
                ..event(Via::Login, "\"mallory\"", "loginFailed", Some(401))
            },
            at("2026-12-02T23:59:59Z"),
        )
        .await;
        record(
            &db,
            event(Via::Cli, "cli", "createApiKey", None),
            at("2026-12-03T00:00:00Z"),
        )
        .await;
        let page = common::page(None, None, None).unwrap();
        let all = list(&db, &Filter::default(), &page).await.unwrap();
        assert_eq!(all.total, 3);
        // Newest first.
        let actions: Vec<&str> = all.items.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["createApiKey", "loginFailed", "publishRelease"]);
        let first = &all.items[2];
        assert_eq!(first.at, "2026-12-01T10:00:00Z");
        assert_eq!(
            (first.via, first.status, first.target.as_str()),
            (Via::Api, Some(200), "id=\"7\"")
        );
        assert_eq!(first.client.as_deref(), Some("192.0.2.1"));
        assert_eq!(all.items[0].status, None);

        let count = |filter: Filter| {
            let db = db.clone();
            let page = page.clone();
            async move {
                list(&db, &filter, &page)
                    .await
                    .unwrap()
                    .items
                    .into_iter()
                    .map(|e| e.action)
                    .collect::<Vec<_>>()
            }
        };
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 12, d);
        assert_eq!(
            count(Filter {
                actor: Some("mARIA".into()),
                ..Filter::default()
            })
            .await,
            ["publishRelease"]
        );
        assert_eq!(
            count(Filter {
                via: Some(Via::Cli),
                ..Filter::default()
            })
            .await,
            ["createApiKey"]
        );
        assert_eq!(
            count(Filter {
                failed: Some(true),
                ..Filter::default()
            })
            .await,
            ["loginFailed"]
        );
        assert_eq!(
            count(Filter {
                failed: Some(false),
                ..Filter::default()
            })
            .await,
            ["createApiKey", "publishRelease"]
        );
        // `to` takes in its day's last second; `from` starts at midnight.
        assert_eq!(
            count(Filter {
                from: day(2),
                to: day(2),
                ..Filter::default()
            })
            .await,
            ["loginFailed"]
        );
        assert_eq!(
            count(Filter {
                from: day(3),
                ..Filter::default()
            })
            .await,
            ["createApiKey"]
        );
        assert!(
            count(Filter {
                action: Some("publish".into()),
                ..Filter::default()
            })
            .await
            .is_empty(),
            "actions match exactly"
        );
        // `%` and `_` are literal.
        assert!(
            count(Filter {
                actor: Some("m_ria".into()),
                ..Filter::default()
            })
            .await
            .is_empty()
        );
    }

    /// More rows than a page, many at the same second: every row once, newest first, the
    /// header once.
    #[tokio::test]
    async fn csv_export_pages_through_every_row() {
        let db = db().await;
        let n = CSV_PAGE_ROWS as usize * 2 + 17;
        let rows: Vec<audit_log::ActiveModel> = (0..n)
            .map(|i| audit_log::ActiveModel {
                id: NotSet,
                // Ten rows a second: ties on `at` cross page boundaries.
                at: Set(at("2026-12-01T00:00:00Z") + chrono::Duration::seconds(i as i64 / 10)),
                actor: Set(format!("user{i}")),
                user_id: Set(None),
                via: Set("api".into()),
                action: Set("updateLicense".into()),
                target: Set("key_sha256=0123456789ab".into()),
                detail: Set("a \"quoted\", detail\nwith a newline".into()),
                status: Set(Some(200)),
                client: Set(None),
            })
            .collect();
        for chunk in rows.chunks(500) {
            audit_log::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&db)
                .await
                .unwrap();
        }
        let mut out = Vec::new();
        write_csv(&db, &Filter::default(), &mut out).await.unwrap();
        let mut reader = csv::Reader::from_reader(out.as_slice());
        assert_eq!(reader.headers().unwrap(), CSV_HEADER.as_slice());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), n);
        let ids: Vec<i64> = records.iter().map(|r| r[0].parse().unwrap()).collect();
        let mut expected: Vec<i64> = (1..=n as i64).collect();
        expected.reverse();
        assert_eq!(ids, expected);
        let last = &records[n - 1];
        assert_eq!(&last[1], "2026-12-01T00:00:00Z");
        assert_eq!(&last[2], "user0");
        assert_eq!(&last[6], "a \"quoted\", detail\nwith a newline");
        assert_eq!((&last[7], &last[8]), ("200", ""));

        // Nothing matches: just the header.
        let mut out = Vec::new();
        let none = Filter {
            action: Some("nothing".into()),
            ..Filter::default()
        };
        write_csv(&db, &none, &mut out).await.unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id,at,actor,via,action,target,detail,status,client\n"
        );
    }
}
