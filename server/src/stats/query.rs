//! Report queries. Every report reads only roll-up tables and returns a [`Table`], which the
//! JSON API, the CSV export and the HTML pages all render, so their numbers cannot differ.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Statement, Value,
};
use serde::{Deserialize, Serialize};

/// A cell of a report table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Cell {
    Text(String),
    Int(i64),
    Bool(bool),
}

impl Cell {
    pub fn as_int(&self) -> i64 {
        match self {
            Cell::Int(n) => *n,
            Cell::Bool(b) => i64::from(*b),
            Cell::Text(_) => 0,
        }
    }

    pub fn as_text(&self) -> String {
        match self {
            Cell::Int(n) => n.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::Text(s) => s.clone(),
        }
    }
}

/// Rows with named columns; numbers are the trailing columns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| *c == name)
    }

    /// Whether a column's total means something: event counts always; counts of distinct
    /// installations only when rows are not days (the same installation is active on many
    /// days); never ids, percentages or numbers of days.
    pub fn summable(&self, column: &str) -> bool {
        match column {
            "downloads" | "completed" | "bytes" | "attempts" | "checks" => true,
            "installations" | "on_newest" => self.column("day").is_none(),
            _ => false,
        }
    }

    /// `(label, number)` of every row, for a chart; empty when a column is missing.
    pub fn pairs(&self, label: &str, value: &str) -> Vec<(String, i64)> {
        let (Some(l), Some(v)) = (self.column(label), self.column(value)) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .map(|r| (r[l].as_text(), r[v].as_int()))
            .collect()
    }

    /// Sum of an integer column.
    pub fn total(&self, name: &str) -> i64 {
        self.column(name)
            .map_or(0, |i| self.rows.iter().map(|r| r[i].as_int()).sum())
    }

    /// Rows as JSON objects.
    pub fn json_rows(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.rows
                .iter()
                .map(|row| {
                    let map: serde_json::Map<String, serde_json::Value> = self
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| {
                            ((*c).to_owned(), serde_json::to_value(v).unwrap_or_default())
                        })
                        .collect();
                    serde_json::Value::Object(map)
                })
                .collect(),
        )
    }

    /// RFC 4180 CSV: header row, CRLF line ends, fields quoted when needed; UTF-8. Text cells
    /// come from clients (`CONF`, versions), so they are made safe for spreadsheets.
    pub fn to_csv(&self) -> String {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        let _ = writer.write_record(&self.columns);
        for row in &self.rows {
            let _ = writer.write_record(row.iter().map(|cell| match cell {
                Cell::Text(text) => crate::export::spreadsheet_safe(text),
                other => other.as_text(),
            }));
        }
        let bytes = writer.into_inner().unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    #[default]
    Day,
    Release,
    Distribution,
    Conf,
    License,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Release => "release",
            GroupBy::Distribution => "distribution",
            GroupBy::Conf => "conf",
            GroupBy::License => "license",
        }
    }
}

/// Inclusive UTC date range and optional distribution / release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub distribution_id: Option<i32>,
    pub release_id: Option<i32>,
}

/// Default range: the 30 days up to today.
pub const DEFAULT_DAYS: i64 = 30;
const MAX_DAYS: i64 = 3660;

/// `YYYY-MM-DD`, or an RFC 3339 time whose UTC date is taken.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc).date_naive())
        .map_err(|_| format!("{s:?} is not an ISO 8601 date like 2026-11-22"))
}

/// Resolves `from`/`to` (either may be missing) against `today`.
pub fn date_range(
    from: Option<&str>,
    to: Option<&str>,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), String> {
    let to = match to.filter(|s| !s.trim().is_empty()) {
        Some(s) => parse_date(s)?,
        None => today,
    };
    let from = match from.filter(|s| !s.trim().is_empty()) {
        Some(s) => parse_date(s)?,
        None => to - chrono::Duration::days(DEFAULT_DAYS - 1),
    };
    if from > to {
        return Err(format!("from ({from}) is after to ({to})"));
    }
    if (to - from).num_days() > MAX_DAYS {
        return Err(format!("the range may span at most {MAX_DAYS} days"));
    }
    Ok((from, to))
}

/// Every day of a range, for charts that show days without downloads.
pub fn days(from: NaiveDate, to: NaiveDate) -> Vec<String> {
    from.iter_days()
        .take_while(|d| *d <= to)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect()
}

/// SQL with `?` placeholders, renumbered as `$n` for PostgreSQL.
pub(crate) fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for ch in sql.chars() {
            if ch == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(ch);
            }
        }
        out
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

pub(super) async fn rows(
    db: &DatabaseConnection,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(statement(db.get_database_backend(), sql, values))
        .await
}

pub(super) fn text(row: &QueryResult, i: usize) -> Result<String, DbErr> {
    Ok(row
        .try_get_by_index::<Option<String>>(i)?
        .unwrap_or_default())
}

pub(super) fn int(row: &QueryResult, i: usize) -> Result<i64, DbErr> {
    Ok(row.try_get_by_index::<Option<i64>>(i)?.unwrap_or(0))
}

/// `WHERE` of the daily tables for a filter; `release` only where the table has the column.
pub(super) fn daily_where(filter: &Filter, with_release: bool) -> (String, Vec<Value>) {
    let mut sql = String::from("t.day >= ? AND t.day <= ?");
    let mut values: Vec<Value> = vec![
        filter.from.format("%Y-%m-%d").to_string().into(),
        filter.to.format("%Y-%m-%d").to_string().into(),
    ];
    if let Some(d) = filter.distribution_id {
        sql.push_str(" AND t.distribution_id = ?");
        values.push(d.into());
    }
    if with_release && let Some(r) = filter.release_id {
        sql.push_str(" AND t.release_id = ?");
        values.push(r.into());
    }
    (sql, values)
}

const SUMS: &str = "CAST(SUM(t.downloads) AS BIGINT) AS downloads, \
     CAST(SUM(t.completed) AS BIGINT) AS completed, CAST(SUM(t.bytes) AS BIGINT) AS bytes";

/// Downloads grouped by `group_by`, from the daily roll-ups.
pub async fn downloads(
    db: &DatabaseConnection,
    filter: &Filter,
    group_by: GroupBy,
) -> Result<Table, DbErr> {
    let (cond, values) = daily_where(filter, true);
    let counts = ["downloads", "completed", "bytes"];
    let (columns, sql, keys): (Vec<&'static str>, String, usize) = match group_by {
        GroupBy::Day => (
            vec!["day"],
            format!(
                "SELECT t.day, {SUMS} FROM stats_daily_downloads t WHERE {cond} \
                 GROUP BY t.day ORDER BY t.day"
            ),
            1,
        ),
        GroupBy::Release => (
            vec!["distribution", "release_id", "version"],
            format!(
                "SELECT d.code, CAST(a.release_id AS BIGINT), r.version, a.downloads, a.completed, a.bytes FROM \
                 (SELECT t.distribution_id, t.release_id, {SUMS} FROM stats_daily_downloads t \
                  WHERE {cond} GROUP BY t.distribution_id, t.release_id) a \
                 LEFT JOIN distributions d ON d.id = a.distribution_id \
                 LEFT JOIN releases r ON r.id = a.release_id \
                 ORDER BY a.downloads DESC, d.code, a.release_id DESC"
            ),
            3,
        ),
        GroupBy::Distribution => (
            vec!["distribution", "name"],
            format!(
                "SELECT d.code, d.name, a.downloads, a.completed, a.bytes FROM \
                 (SELECT t.distribution_id, {SUMS} FROM stats_daily_downloads t \
                  WHERE {cond} GROUP BY t.distribution_id) a \
                 LEFT JOIN distributions d ON d.id = a.distribution_id \
                 ORDER BY a.downloads DESC, d.code"
            ),
            2,
        ),
        GroupBy::Conf => (
            vec!["conf"],
            format!(
                "SELECT t.conf, {SUMS} FROM stats_daily_downloads t WHERE {cond} \
                 GROUP BY t.conf ORDER BY downloads DESC, t.conf"
            ),
            1,
        ),
        GroupBy::License => (
            vec!["license"],
            format!(
                "SELECT t.license_key, {SUMS} FROM stats_daily_license_downloads t WHERE {cond} \
                 GROUP BY t.license_key ORDER BY downloads DESC, t.license_key"
            ),
            1,
        ),
    };
    let result = rows(db, &sql, values).await?;
    let mut table = Table {
        columns: columns.iter().copied().chain(counts).collect(),
        rows: Vec::with_capacity(result.len()),
    };
    for row in &result {
        let mut cells = Vec::with_capacity(keys + 3);
        for i in 0..keys {
            let is_id = table.columns[i] == "release_id";
            cells.push(if is_id {
                Cell::Int(int(row, i)?)
            } else {
                Cell::Text(text(row, i)?)
            });
        }
        for i in keys..keys + 3 {
            cells.push(Cell::Int(int(row, i)?));
        }
        table.rows.push(cells);
    }
    Ok(table)
}

/// Installed version → downloaded release, with counts, most frequent first.
pub async fn upgrade_paths(db: &DatabaseConnection, filter: &Filter) -> Result<Table, DbErr> {
    let (cond, values) = daily_where(filter, false);
    let sql = format!(
        "SELECT d.code, a.installed_version, r.version, a.downloads FROM \
         (SELECT t.distribution_id, t.installed_version, t.release_id, \
          CAST(SUM(t.downloads) AS BIGINT) AS downloads FROM stats_daily_upgrades t \
          WHERE {cond} GROUP BY t.distribution_id, t.installed_version, t.release_id) a \
         LEFT JOIN distributions d ON d.id = a.distribution_id \
         LEFT JOIN releases r ON r.id = a.release_id \
         ORDER BY a.downloads DESC, d.code, a.installed_version, r.version"
    );
    let result = rows(db, &sql, values).await?;
    let mut table = Table {
        columns: vec!["distribution", "from_version", "to_version", "downloads"],
        rows: Vec::with_capacity(result.len()),
    };
    for row in &result {
        table.rows.push(vec![
            Cell::Text(text(row, 0)?),
            Cell::Text(text(row, 1)?),
            Cell::Text(text(row, 2)?),
            Cell::Int(int(row, 3)?),
        ]);
    }
    Ok(table)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BaseGroupBy {
    #[default]
    Version,
    Conf,
}

/// Installations seen in the last `days` days, by their latest installed version (or CONF).
pub async fn installed_base(
    db: &DatabaseConnection,
    distribution_id: Option<i32>,
    days: u32,
    group_by: BaseGroupBy,
    now: DateTime<Utc>,
) -> Result<Table, DbErr> {
    let since = now - chrono::Duration::days(i64::from(days));
    let mut values: Vec<Value> = vec![since.into()];
    let mut cond = String::from("t.last_seen >= ?");
    if let Some(d) = distribution_id {
        cond.push_str(" AND t.distribution_id = ?");
        values.push(d.into());
    }
    let (column, key) = match group_by {
        BaseGroupBy::Version => ("version", "installed_version"),
        BaseGroupBy::Conf => ("conf", "conf"),
    };
    let sql = format!(
        "SELECT d.code, a.k, a.installations FROM \
         (SELECT t.distribution_id, t.{key} AS k, CAST(COUNT(*) AS BIGINT) AS installations \
          FROM stats_installations t WHERE {cond} GROUP BY t.distribution_id, t.{key}) a \
         LEFT JOIN distributions d ON d.id = a.distribution_id \
         ORDER BY d.code, a.installations DESC, a.k"
    );
    let result = rows(db, &sql, values).await?;
    let mut table = Table {
        columns: vec!["distribution", column, "installations"],
        rows: Vec::with_capacity(result.len()),
    };
    for row in &result {
        table.rows.push(vec![
            Cell::Text(text(row, 0)?),
            Cell::Text(text(row, 1)?),
            Cell::Int(int(row, 2)?),
        ]);
    }
    Ok(table)
}

/// Counted downloads per release of a distribution, all time (`getModuleInfo`).
pub async fn downloads_per_release(
    db: &DatabaseConnection,
    distribution_id: i32,
) -> Result<HashMap<i32, i64>, DbErr> {
    let result = rows(
        db,
        "SELECT t.release_id, CAST(SUM(t.downloads) AS BIGINT) FROM stats_daily_downloads t \
         WHERE t.distribution_id = ? GROUP BY t.release_id",
        vec![distribution_id.into()],
    )
    .await?;
    let mut out = HashMap::new();
    for row in &result {
        out.insert(row.try_get_by_index::<i32>(0)?, int(row, 1)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn ranges_default_to_thirty_days() {
        let today = d("2026-11-22");
        assert_eq!(
            date_range(None, None, today).unwrap(),
            (d("2026-10-24"), today)
        );
        assert_eq!(
            date_range(Some("2026-11-01"), Some("2026-11-02T23:59:59+03:00"), today).unwrap(),
            (d("2026-11-01"), d("2026-11-02"))
        );
        assert!(date_range(Some("2026-11-03"), Some("2026-11-02"), today).is_err());
        assert!(date_range(Some("22.11.2026"), None, today).is_err());
        assert_eq!(days(d("2026-11-30"), d("2026-12-02")).len(), 3);
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        let table = Table {
            columns: vec!["conf", "downloads"],
            rows: vec![
                vec![Cell::Text("Бухгалтерия, \"КОРП\"".into()), Cell::Int(3)],
                vec![Cell::Text("УТ".into()), Cell::Int(2)],
            ],
        };
        assert_eq!(
            table.to_csv(),
            "conf,downloads\r\n\"Бухгалтерия, \"\"КОРП\"\"\",3\r\nУТ,2\r\n"
        );
        assert_eq!(table.total("downloads"), 5);
        assert_eq!(
            table.json_rows(),
            json!([{"conf": "Бухгалтерия, \"КОРП\"", "downloads": 3}, {"conf": "УТ", "downloads": 2}])
        );
    }

    #[test]
    fn csv_neutralises_formulas_in_text_cells() {
        let table = Table {
            columns: vec!["conf", "downloads"],
            rows: vec![
                vec![
                    Cell::Text("=HYPERLINK(\"http://x\",\"y\")".into()),
                    Cell::Int(-1),
                ],
                vec![Cell::Text("@SUM(A1)".into()), Cell::Int(2)],
            ],
        };
        assert_eq!(
            table.to_csv(),
            "conf,downloads\r\n\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",-1\r\n'@SUM(A1),2\r\n"
        );
    }

    #[test]
    fn postgres_placeholders_are_numbered() {
        let s = statement(
            DbBackend::Postgres,
            "a = ? AND b = ?",
            vec![1.into(), 2.into()],
        );
        assert_eq!(s.sql, "a = $1 AND b = $2");
        let s = statement(DbBackend::Sqlite, "a = ?", vec![1.into()]);
        assert_eq!(s.sql, "a = ?");
    }
}
