//! Roll-up arithmetic: a batch of events (plus what the database already knows about their
//! downloads) becomes raw rows to insert or update and deltas to add to the daily tables.
//! Plain functions, so the counting rules are unit-tested without a database.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::capture::{self, CheckEvent, DownloadEvent};

/// Downloads, completed downloads and bytes: what the download roll-ups add up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub downloads: i64,
    pub completed: i64,
    pub bytes: i64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.downloads += other.downloads;
        self.completed += other.completed;
        self.bytes += other.bytes;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DownloadKey {
    pub day: String,
    pub distribution_id: i32,
    pub release_id: i32,
    pub file_id: i32,
    pub conf: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LicenseKey {
    pub day: String,
    pub distribution_id: i32,
    pub release_id: i32,
    /// `""` when the download had no license.
    pub license_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UpgradeKey {
    pub day: String,
    pub distribution_id: i32,
    /// `""` for a fresh install.
    pub installed_version: String,
    pub release_id: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckKey {
    pub day: String,
    pub distribution_id: i32,
    pub conf: String,
    pub installed_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstallationKey {
    pub distribution_id: i32,
    pub installation: String,
    pub conf: String,
}

/// The newest check of an installation within a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationSeen {
    pub installed_version: String,
    pub conf_version: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// A raw check row, with the address already hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRow {
    pub event: CheckEvent,
    pub client_hash: String,
}

/// What the database holds for a download already counted (its first request's attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDownload {
    pub at: DateTime<Utc>,
    pub distribution_id: i32,
    pub release_id: i32,
    pub file_id: i32,
    pub license_key: Option<String>,
    pub conf: String,
    pub installed_version: String,
    pub completed: bool,
}

impl KnownDownload {
    fn from_event(e: &DownloadEvent) -> Self {
        KnownDownload {
            at: e.at,
            distribution_id: e.distribution_id,
            release_id: e.release_id,
            file_id: e.file_id,
            license_key: e.license_key.clone(),
            conf: e.conf.clone(),
            installed_version: e.installed_version.clone(),
            completed: false,
        }
    }
}

/// An existing raw download row gains bytes and maybe becomes completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadUpdate {
    pub dedup_key: String,
    pub add_bytes: i64,
    pub completed: bool,
}

/// Everything one batch writes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub check_rows: Vec<CheckRow>,
    /// New downloads (one per dedup key, later requests of the batch merged in).
    pub download_inserts: Vec<DownloadEvent>,
    pub download_updates: Vec<DownloadUpdate>,
    pub downloads: BTreeMap<DownloadKey, Counts>,
    pub license_downloads: BTreeMap<LicenseKey, Counts>,
    pub upgrades: BTreeMap<UpgradeKey, i64>,
    pub checks: BTreeMap<CheckKey, i64>,
    pub installations: BTreeMap<InstallationKey, InstallationSeen>,
}

/// Checks: one raw row each, +1 per (day, distribution, CONF, installed version), and the
/// newest check per installation.
pub fn plan_checks(plan: &mut Plan, events: Vec<CheckEvent>, salt: &[u8]) {
    for event in events {
        let hash = capture::client_hash(salt, event.client);
        *plan
            .checks
            .entry(CheckKey {
                day: capture::day_of(event.at),
                distribution_id: event.distribution_id,
                conf: event.conf.clone(),
                installed_version: event.installed_version.clone(),
            })
            .or_default() += 1;
        let key = InstallationKey {
            distribution_id: event.distribution_id,
            installation: capture::installation(event.paid, event.license_key.as_deref(), &hash),
            conf: event.conf.clone(),
        };
        let seen = InstallationSeen {
            installed_version: event.installed_version.clone(),
            conf_version: event.conf_version.clone(),
            first_seen: event.at,
            last_seen: event.at,
        };
        plan.installations
            .entry(key)
            .and_modify(|s| {
                s.first_seen = s.first_seen.min(event.at);
                if event.at >= s.last_seen {
                    s.installed_version = seen.installed_version.clone();
                    s.conf_version = seen.conf_version.clone();
                    s.last_seen = event.at;
                }
            })
            .or_insert(seen);
        plan.check_rows.push(CheckRow {
            event,
            client_hash: hash,
        });
    }
}

/// Downloads: the first request of a dedup key counts one download on its day; every request
/// adds its bytes to that day's row; the first request that delivered the last byte counts one
/// completed download. `known` holds the keys the database already has.
pub fn plan_downloads(
    plan: &mut Plan,
    events: Vec<DownloadEvent>,
    mut known: HashMap<String, KnownDownload>,
) {
    let in_database: std::collections::HashSet<String> = known.keys().cloned().collect();
    let mut inserted: HashMap<String, usize> = HashMap::new();
    let mut updated: HashMap<String, usize> = HashMap::new();
    for event in events {
        let bytes = i64::try_from(event.bytes).unwrap_or(i64::MAX);
        let is_new = !known.contains_key(&event.dedup_key);
        let first = known
            .entry(event.dedup_key.clone())
            .or_insert_with(|| KnownDownload::from_event(&event));
        let became_complete = event.completed && !first.completed;
        first.completed |= event.completed;
        let first = first.clone();
        if is_new {
            inserted.insert(event.dedup_key.clone(), plan.download_inserts.len());
            plan.download_inserts.push(event);
        } else if let Some(&i) = inserted.get(&event.dedup_key) {
            let row = &mut plan.download_inserts[i];
            row.bytes = row.bytes.saturating_add(event.bytes);
            row.completed |= event.completed;
        } else if let Some(&i) = updated.get(&event.dedup_key) {
            let row = &mut plan.download_updates[i];
            row.add_bytes = row.add_bytes.saturating_add(bytes);
            row.completed |= event.completed;
        } else {
            debug_assert!(in_database.contains(&event.dedup_key));
            updated.insert(event.dedup_key.clone(), plan.download_updates.len());
            plan.download_updates.push(DownloadUpdate {
                dedup_key: event.dedup_key,
                add_bytes: bytes,
                completed: event.completed,
            });
        }
        let counts = Counts {
            downloads: i64::from(is_new),
            completed: i64::from(became_complete),
            bytes,
        };
        add_download(plan, &first, counts, is_new);
    }
}

fn add_download(plan: &mut Plan, first: &KnownDownload, counts: Counts, is_new: bool) {
    let day = capture::day_of(first.at);
    plan.downloads
        .entry(DownloadKey {
            day: day.clone(),
            distribution_id: first.distribution_id,
            release_id: first.release_id,
            file_id: first.file_id,
            conf: first.conf.clone(),
        })
        .or_default()
        .add(counts);
    plan.license_downloads
        .entry(LicenseKey {
            day: day.clone(),
            distribution_id: first.distribution_id,
            release_id: first.release_id,
            license_key: first.license_key.clone().unwrap_or_default(),
        })
        .or_default()
        .add(counts);
    if is_new {
        *plan
            .upgrades
            .entry(UpgradeKey {
                day,
                distribution_id: first.distribution_id,
                installed_version: first.installed_version.clone(),
                release_id: first.release_id,
            })
            .or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn download(key: &str, when: &str, bytes: u64, completed: bool) -> DownloadEvent {
        DownloadEvent {
            at: at(when),
            distribution_id: 1,
            release_id: 10,
            file_id: 100,
            license_key: Some("K-1".into()),
            conf: "УправлениеТорговлей".into(),
            conf_version: "11.5.1.1".into(),
            installed_version: "1.0".into(),
            bytes,
            completed,
            dedup_key: key.into(),
        }
    }

    fn day_counts(plan: &Plan, day: &str) -> Counts {
        plan.downloads.iter().filter(|(k, _)| k.day == day).fold(
            Counts::default(),
            |mut acc, (_, c)| {
                acc.add(*c);
                acc
            },
        )
    }

    #[test]
    fn a_resumed_download_counts_once_and_adds_bytes() {
        let mut plan = Plan::default();
        plan_downloads(
            &mut plan,
            vec![
                download("a", "2026-11-22T10:00:00Z", 400, false),
                download("a", "2026-11-22T10:05:00Z", 600, true),
                download("b", "2026-11-22T11:00:00Z", 1000, true),
            ],
            HashMap::new(),
        );
        assert_eq!(
            day_counts(&plan, "2026-11-22"),
            Counts {
                downloads: 2,
                completed: 2,
                bytes: 2000
            }
        );
        assert_eq!(plan.download_inserts.len(), 2);
        assert_eq!(plan.download_inserts[0].bytes, 1000);
        assert!(plan.download_inserts[0].completed);
        assert!(plan.download_updates.is_empty());
        assert_eq!(plan.upgrades.values().sum::<i64>(), 2);
        let license: i64 = plan.license_downloads.values().map(|c| c.downloads).sum();
        assert_eq!(license, 2);
    }

    #[test]
    fn a_download_known_to_the_database_adds_to_its_first_day() {
        let mut plan = Plan::default();
        let first = download("a", "2026-11-21T23:59:00Z", 0, false);
        let known = HashMap::from([(
            "a".to_owned(),
            KnownDownload {
                completed: false,
                ..KnownDownload::from_event(&first)
            },
        )]);
        plan_downloads(
            &mut plan,
            vec![
                download("a", "2026-11-22T00:01:00Z", 700, true),
                download("a", "2026-11-22T00:02:00Z", 50, true),
            ],
            known,
        );
        // Nothing new is counted; bytes and the completion go to the first request's day.
        assert_eq!(
            day_counts(&plan, "2026-11-21"),
            Counts {
                downloads: 0,
                completed: 1,
                bytes: 750
            }
        );
        assert_eq!(day_counts(&plan, "2026-11-22"), Counts::default());
        assert!(plan.download_inserts.is_empty());
        assert_eq!(
            plan.download_updates,
            vec![DownloadUpdate {
                dedup_key: "a".into(),
                add_bytes: 750,
                completed: true
            }]
        );
        assert!(plan.upgrades.is_empty());
    }

    #[test]
    fn completion_counts_once() {
        let mut plan = Plan::default();
        let first = download("a", "2026-11-22T10:00:00Z", 0, false);
        let known = HashMap::from([(
            "a".to_owned(),
            KnownDownload {
                completed: true,
                ..KnownDownload::from_event(&first)
            },
        )]);
        plan_downloads(
            &mut plan,
            vec![download("a", "2026-11-22T11:00:00Z", 10, true)],
            known,
        );
        assert_eq!(
            day_counts(&plan, "2026-11-22"),
            Counts {
                downloads: 0,
                completed: 0,
                bytes: 10
            }
        );
    }

    #[test]
    fn keys_split_by_conf_license_and_installed_version() {
        let mut plan = Plan::default();
        let mut other = download("b", "2026-11-22T10:00:00Z", 5, true);
        other.conf = "БухгалтерияПредприятия".into();
        other.license_key = None;
        other.installed_version = String::new();
        plan_downloads(
            &mut plan,
            vec![download("a", "2026-11-22T10:00:00Z", 5, true), other],
            HashMap::new(),
        );
        assert_eq!(plan.downloads.len(), 2);
        assert!(
            plan.license_downloads
                .keys()
                .any(|k| k.license_key.is_empty())
        );
        assert!(plan.upgrades.keys().any(|k| k.installed_version.is_empty()));
    }

    fn check(when: &str, version: &str, key: Option<&str>, ip: &str) -> CheckEvent {
        CheckEvent {
            at: at(when),
            distribution_id: 1,
            paid: key.is_some(),
            installed_version: version.into(),
            conf: "УТ".into(),
            conf_version: "11.5".into(),
            offered_version: "2.0".into(),
            license_key: key.map(Into::into),
            client: ip.parse::<IpAddr>().unwrap(),
        }
    }

    #[test]
    fn checks_count_per_day_and_keep_the_newest_version_per_installation() {
        let mut plan = Plan::default();
        plan_checks(
            &mut plan,
            vec![
                check("2026-11-22T10:00:00Z", "1.0", Some("K-1"), "192.0.2.1"),
                check("2026-11-22T12:00:00Z", "2.0", Some("K-1"), "192.0.2.2"),
                // Out of order: older than what the batch already saw.
                check("2026-11-22T11:00:00Z", "1.5", Some("K-1"), "192.0.2.3"),
                check("2026-11-23T09:00:00Z", "1.0", None, "192.0.2.9"),
            ],
            b"salt",
        );
        assert_eq!(plan.check_rows.len(), 4);
        assert_eq!(plan.checks.values().sum::<i64>(), 4);
        assert_eq!(plan.checks.len(), 4);
        assert_eq!(plan.installations.len(), 2);
        let k1 = plan
            .installations
            .iter()
            .find(|(k, _)| k.installation == "key:K-1")
            .unwrap()
            .1;
        assert_eq!(k1.installed_version, "2.0");
        assert_eq!(k1.first_seen, at("2026-11-22T10:00:00Z"));
        assert_eq!(k1.last_seen, at("2026-11-22T12:00:00Z"));
        assert!(
            plan.installations
                .keys()
                .any(|k| k.installation.starts_with("addr:"))
        );
    }
}
