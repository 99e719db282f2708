//! The reports vendors asked for (issue 13 item 3): who runs what. Each returns a [`Table`]
//! that the JSON API, the CSV export and the HTML page render alike, without internal ids.
//!
//! - Active installations per day: from the `stats_daily_active` roll-up (an installation
//!   counts on each UTC day on which it checked), so the report reads one row per day and
//!   distribution however many events there were.
//! - Per customer: installations identified by a license key (paid distributions), joined to
//!   the license's customer, with the newest release of their distribution. Customer data:
//!   the routes ask for the `licenses` permission.
//! - Subscriptions (license features) ending within N days, on licenses not revoked.
//! - Share of installations seen in the last N days that run the newest release.
//! - Checks naming a license key the server does not know, per day (and per key, which is
//!   what a client typed: `licenses` permission).
//!
//! "Newest release" is a distribution's newest published release that is not a pre-release
//! (the catalog snapshot's); an installation is on it when its installed version is that
//! version or a later one.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{DatabaseConnection, DbErr, Value};
use vypusk_protocol::{Version, VersionScheme};

use super::query::{BaseGroupBy, Cell, Filter, Table, daily_where, days, int, rows, text};
use crate::catalog::Catalog;
use crate::services::products::Names;

/// What each distribution's newest release is, from one catalog snapshot.
#[derive(Debug, Clone, Default)]
pub struct NewestReleases(HashMap<i32, Newest>);

#[derive(Debug, Clone)]
struct Newest {
    code: String,
    name: String,
    scheme: VersionScheme,
    version: Option<Version>,
}

impl NewestReleases {
    pub fn of(catalog: &Catalog) -> NewestReleases {
        NewestReleases(
            catalog
                .distributions()
                .iter()
                .map(|d| {
                    (
                        d.id,
                        Newest {
                            code: d.code.to_string(),
                            name: d.name.to_string(),
                            scheme: d.scheme,
                            version: d.newest_release().map(|r| r.version.clone()),
                        },
                    )
                })
                .collect(),
        )
    }

    /// The newest version's text, `""` when the distribution has no release out.
    fn version_text(&self, distribution_id: i32) -> String {
        self.0
            .get(&distribution_id)
            .and_then(|n| n.version.as_ref())
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// Whether `installed` is the newest release or later. Nothing installed, a version that
    /// does not parse, or a distribution with nothing out: not on the newest.
    pub fn is_current(&self, distribution_id: i32, installed: &str) -> bool {
        let Some(newest) = self.0.get(&distribution_id) else {
            return false;
        };
        match (&newest.version, Version::parse(newest.scheme, installed)) {
            (Some(v), Ok(installed)) => installed >= *v,
            _ => false,
        }
    }
}

/// Day columns cover the whole range, days without data as zeros, so charts and tables show
/// every day.
fn every_day(
    from: NaiveDate,
    to: NaiveDate,
    mut found: HashMap<String, Vec<Cell>>,
    zeros: usize,
) -> Vec<Vec<Cell>> {
    days(from, to)
        .into_iter()
        .map(|day| {
            let counts = found
                .remove(&day)
                .unwrap_or_else(|| vec![Cell::Int(0); zeros]);
            std::iter::once(Cell::Text(day)).chain(counts).collect()
        })
        .collect()
}

/// Installations that checked, per day of the range.
pub async fn active_installations(
    db: &DatabaseConnection,
    filter: &Filter,
) -> Result<Table, DbErr> {
    let (cond, values) = daily_where(filter, false);
    let sql = format!(
        "SELECT t.day, CAST(SUM(t.installations) AS BIGINT) FROM stats_daily_active t \
         WHERE {cond} GROUP BY t.day"
    );
    let mut found = HashMap::new();
    for row in rows(db, &sql, values).await? {
        found.insert(text(&row, 0)?, vec![Cell::Int(int(&row, 1)?)]);
    }
    Ok(Table {
        columns: vec!["day", "installations"],
        rows: every_day(filter.from, filter.to, found, 1),
    })
}

/// Which installations of the per-customer report to list.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    pub distribution_id: Option<i32>,
    /// Part of the key, customer or ITN: the license list's search (`LIKE`, so case-blind
    /// for Latin letters on SQLite and case-sensitive on PostgreSQL, as there).
    pub search: Option<String>,
    /// Only installations not on the newest release.
    pub behind_only: bool,
}

/// `(offset, limit)` of the rows wanted; `None`: every row (the CSV).
pub type Window = Option<(u64, u64)>;

/// The `FROM … WHERE …` every per-customer query shares: installations identified by a key,
/// each joined to its license by the unique key (a scan of the installations' index).
fn customer_scope(filter: &CustomerFilter, newest: &NewestReleases) -> (String, Vec<Value>) {
    let mut values: Vec<Value> = Vec::new();
    let mut sql = String::from(
        "FROM stats_installations t JOIN licenses l ON l.key = substr(t.installation, 5) \
         JOIN distributions d ON d.id = t.distribution_id WHERE t.installation LIKE 'key:%'",
    );
    if let Some(d) = filter.distribution_id {
        sql.push_str(" AND t.distribution_id = ?");
        values.push(d.into());
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let pattern = format!("%{}%", crate::services::common::like_escape(search));
        sql.push_str(
            " AND (l.key LIKE ? ESCAPE '\\' OR l.customer LIKE ? ESCAPE '\\' \
             OR l.itn LIKE ? ESCAPE '\\')",
        );
        values.extend([
            pattern.clone().into(),
            pattern.clone().into(),
            pattern.into(),
        ]);
    }
    if filter.behind_only {
        // Those reporting exactly the newest version are on it; the rest are compared as
        // versions afterwards (a later version is on it too).
        for (id, n) in &newest.0 {
            if let Some(v) = &n.version {
                sql.push_str(" AND NOT (t.distribution_id = ? AND t.installed_version = ?)");
                values.extend([(*id).into(), v.to_string().into()]);
            }
        }
    }
    (sql, values)
}

/// License → customer → configuration → installed version → last seen, by customer, key,
/// distribution and configuration; and how many rows there are in all.
pub async fn customers(
    db: &DatabaseConnection,
    filter: &CustomerFilter,
    newest: &NewestReleases,
    window: Window,
) -> Result<(Table, u64), DbErr> {
    let (scope, values) = customer_scope(filter, newest);
    let mut sql = format!(
        "SELECT l.customer, l.itn, l.key, d.code, t.distribution_id, t.conf, t.conf_version, \
         t.installed_version, t.last_seen {scope} ORDER BY l.customer, l.key, d.code, t.conf"
    );
    // Only the rows shown are read, unless versions must be compared first.
    let paged_in_sql = window.filter(|_| !filter.behind_only);
    let mut all = values.clone();
    if let Some((offset, limit)) = paged_in_sql {
        sql.push_str(" LIMIT ? OFFSET ?");
        all.extend([
            (limit as i64).into(),
            (offset.min(i64::MAX as u64) as i64).into(),
        ]);
    }
    let mut out = Vec::new();
    for row in rows(db, &sql, all).await? {
        let distribution_id = row.try_get_by_index::<i32>(4)?;
        let installed = text(&row, 7)?;
        let current = newest.is_current(distribution_id, &installed);
        if filter.behind_only && current {
            continue;
        }
        let last_seen: DateTime<Utc> = row.try_get_by_index(8)?;
        out.push(vec![
            Cell::Text(text(&row, 0)?),
            Cell::Text(text(&row, 1)?),
            Cell::Text(text(&row, 2)?),
            Cell::Text(text(&row, 3)?),
            Cell::Text(text(&row, 5)?),
            Cell::Text(text(&row, 6)?),
            Cell::Text(installed),
            Cell::Text(newest.version_text(distribution_id)),
            Cell::Bool(current),
            Cell::Text(last_seen.format("%Y-%m-%d %H:%M").to_string()),
        ]);
    }
    let total = match (paged_in_sql, window) {
        (Some(_), _) => {
            let count = rows(
                db,
                &format!("SELECT CAST(COUNT(*) AS BIGINT) {scope}"),
                values,
            )
            .await?;
            count.first().map_or(Ok(0), |r| int(r, 0))? as u64
        }
        (None, Some((offset, limit))) => {
            let total = out.len() as u64;
            out = out
                .into_iter()
                .skip(offset.min(usize::MAX as u64) as usize)
                .take(limit as usize)
                .collect();
            total
        }
        (None, None) => out.len() as u64,
    };
    let table = Table {
        columns: vec![
            "customer",
            "itn",
            "license",
            "distribution",
            "conf",
            "conf_version",
            "version",
            "newest_version",
            "on_newest",
            "last_seen",
        ],
        rows: out,
    };
    Ok((table, total))
}

/// What the per-customer page sums up: installations, how many are not on the newest
/// release, licenses. From one grouped query, however many installations there are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CustomerSummary {
    pub installations: i64,
    pub behind: i64,
    pub licenses: i64,
}

pub async fn customer_summary(
    db: &DatabaseConnection,
    filter: &CustomerFilter,
    newest: &NewestReleases,
) -> Result<CustomerSummary, DbErr> {
    let (scope, values) = customer_scope(filter, newest);
    let mut summary = CustomerSummary::default();
    let grouped = format!(
        "SELECT t.distribution_id, t.installed_version, CAST(COUNT(*) AS BIGINT) {scope} \
         GROUP BY t.distribution_id, t.installed_version"
    );
    for row in rows(db, &grouped, values.clone()).await? {
        let n = int(&row, 2)?;
        let current = newest.is_current(row.try_get_by_index::<i32>(0)?, &text(&row, 1)?);
        if filter.behind_only && current {
            continue;
        }
        summary.installations += n;
        if !current {
            summary.behind += n;
        }
    }
    let licenses = format!("SELECT CAST(COUNT(DISTINCT l.key) AS BIGINT) {scope}");
    summary.licenses = rows(db, &licenses, values)
        .await?
        .first()
        .map_or(Ok(0), |r| int(r, 0))?;
    Ok(summary)
}

/// `Name (number)`, or the number alone when the catalogue has no name.
fn named(name: Option<&str>, number: i64) -> String {
    match name {
        Some(name) => format!("{name} ({number})"),
        None => number.to_string(),
    }
}

/// License features whose subscription ends from `now` to `within_days` days later, on
/// licenses not revoked, soonest first.
pub async fn expiring(
    db: &DatabaseConnection,
    within_days: u32,
    now: DateTime<Utc>,
    names: &Names,
) -> Result<Table, DbErr> {
    let until = now + chrono::Duration::days(i64::from(within_days));
    let sql = "SELECT l.customer, l.itn, l.key, f.product, f.feature, f.active_until \
               FROM license_features f JOIN licenses l ON l.id = f.license_id \
               WHERE l.revoked = ? AND f.active_until IS NOT NULL \
               AND f.active_until >= ? AND f.active_until <= ?";
    let mut out = Vec::new();
    for row in rows(db, sql, vec![false.into(), now.into(), until.into()]).await? {
        let product = row.try_get_by_index::<i64>(3)?;
        let feature = row.try_get_by_index::<i64>(4)?;
        let ends: DateTime<Utc> = row.try_get_by_index(5)?;
        out.push((
            ends,
            vec![
                Cell::Text(text(&row, 0)?),
                Cell::Text(text(&row, 1)?),
                Cell::Text(text(&row, 2)?),
                Cell::Text(named(names.product(product), product)),
                Cell::Text(named(
                    names.feature(product, feature).map(|f| f.name.as_str()),
                    feature,
                )),
                Cell::Text(ends.format("%Y-%m-%d").to_string()),
                Cell::Int((ends.date_naive() - now.date_naive()).num_days()),
            ],
        ));
    }
    out.sort_by(|(a, ra), (b, rb)| a.cmp(b).then_with(|| ra[0].as_text().cmp(&rb[0].as_text())));
    Ok(Table {
        columns: vec![
            "customer",
            "itn",
            "license",
            "product",
            "feature",
            "active_until",
            "days_left",
        ],
        rows: out.into_iter().map(|(_, row)| row).collect(),
    })
}

/// Per distribution: installations seen in the last `days` days, how many run the newest
/// release, and that share in whole percent (rounded down, so 100 means all).
pub async fn newest_share(
    db: &DatabaseConnection,
    distribution_id: Option<i32>,
    days: u32,
    now: DateTime<Utc>,
    newest: &NewestReleases,
) -> Result<Table, DbErr> {
    // The installed base by version, the same installations and window, summed per
    // distribution.
    let base =
        super::query::installed_base(db, distribution_id, days, BaseGroupBy::Version, now).await?;
    let ids: HashMap<&str, i32> = newest
        .0
        .iter()
        .map(|(id, n)| (n.code.as_str(), *id))
        .collect();
    // distribution → (installations, on the newest)
    let mut per: BTreeMap<(String, i32), (i64, i64)> = BTreeMap::new();
    for row in &base.rows {
        let code = row[0].as_text();
        let Some(&id) = ids.get(code.as_str()) else {
            continue;
        };
        let n = row[2].as_int();
        let entry = per.entry((code, id)).or_default();
        entry.0 += n;
        if newest.is_current(id, &row[1].as_text()) {
            entry.1 += n;
        }
    }
    let rows = per
        .into_iter()
        .map(|((code, id), (all, current))| {
            vec![
                Cell::Text(code),
                Cell::Text(
                    newest
                        .0
                        .get(&id)
                        .map(|n| n.name.clone())
                        .unwrap_or_default(),
                ),
                Cell::Text(newest.version_text(id)),
                Cell::Int(all),
                Cell::Int(current),
                Cell::Int(if all > 0 { current * 100 / all } else { 0 }),
            ]
        })
        .collect();
    Ok(Table {
        columns: vec![
            "distribution",
            "name",
            "newest_version",
            "installations",
            "on_newest",
            "share_percent",
        ],
        rows,
    })
}

/// Checks naming an unknown key, per day of the range: attempts and distinct keys.
pub async fn unknown_keys_per_day(
    db: &DatabaseConnection,
    filter: &Filter,
) -> Result<Table, DbErr> {
    let (cond, values) = daily_where(filter, false);
    let sql = format!(
        "SELECT t.day, CAST(SUM(t.attempts) AS BIGINT), CAST(COUNT(DISTINCT t.license_key) AS BIGINT) \
         FROM stats_daily_unknown_keys t WHERE {cond} GROUP BY t.day"
    );
    let mut found = HashMap::new();
    for row in rows(db, &sql, values).await? {
        found.insert(
            text(&row, 0)?,
            vec![Cell::Int(int(&row, 1)?), Cell::Int(int(&row, 2)?)],
        );
    }
    Ok(Table {
        columns: vec!["day", "attempts", "keys"],
        rows: every_day(filter.from, filter.to, found, 2),
    })
}

/// At most this many keys in the per-key table (a guessing client may send many).
pub const MOST_TRIED_KEYS: usize = 1000;

/// The unknown keys tried most in the range: key, attempts, days tried, last day.
pub async fn unknown_keys_per_key(
    db: &DatabaseConnection,
    filter: &Filter,
) -> Result<Table, DbErr> {
    let (cond, values) = daily_where(filter, false);
    let sql = format!(
        "SELECT t.license_key, CAST(SUM(t.attempts) AS BIGINT) AS attempts, \
         CAST(COUNT(DISTINCT t.day) AS BIGINT), MAX(t.day) \
         FROM stats_daily_unknown_keys t WHERE {cond} GROUP BY t.license_key \
         ORDER BY attempts DESC, t.license_key LIMIT {MOST_TRIED_KEYS}"
    );
    let mut out = Vec::new();
    for row in rows(db, &sql, values).await? {
        out.push(vec![
            Cell::Text(text(&row, 0)?),
            Cell::Int(int(&row, 1)?),
            Cell::Int(int(&row, 2)?),
            Cell::Text(text(&row, 3)?),
        ]);
    }
    Ok(Table {
        columns: vec!["license", "attempts", "days", "last_day"],
        rows: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newest(version: Option<&str>) -> NewestReleases {
        NewestReleases(HashMap::from([(
            1,
            Newest {
                code: "CRM".into(),
                name: "CRM".into(),
                scheme: VersionScheme::OneC,
                version: version.map(|v| Version::parse(VersionScheme::OneC, v).unwrap()),
            },
        )]))
    }

    #[test]
    fn current_means_the_newest_release_or_later() {
        let n = newest(Some("1.2.0.10"));
        assert!(n.is_current(1, "1.2.0.10"));
        assert!(n.is_current(1, "1.2.0.11"));
        assert!(!n.is_current(1, "1.2.0.9"));
        assert!(!n.is_current(1, ""));
        assert!(!n.is_current(1, "not a version"));
        assert!(!n.is_current(2, "1.2.0.10"));
        assert!(!newest(None).is_current(1, "1.0.0.1"));
    }

    #[test]
    fn day_tables_show_every_day() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let rows = every_day(
            d("2026-11-28"),
            d("2026-11-30"),
            HashMap::from([("2026-11-29".to_owned(), vec![Cell::Int(4), Cell::Int(2)])]),
            2,
        );
        assert_eq!(
            rows,
            vec![
                vec![Cell::Text("2026-11-28".into()), Cell::Int(0), Cell::Int(0)],
                vec![Cell::Text("2026-11-29".into()), Cell::Int(4), Cell::Int(2)],
                vec![Cell::Text("2026-11-30".into()), Cell::Int(0), Cell::Int(0)],
            ]
        );
    }
}
