//! Roll-up arithmetic: a batch of events (plus what the database already knows about their
//! downloads) becomes raw rows to insert or update and deltas to add to the daily tables.
//! Plain functions, so the counting rules are unit-tested without a database.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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

/// What the database holds for a link already seen: its first request's attributes (to which
/// every later request is attributed) and what its requests so far add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDownload {
    pub at: DateTime<Utc>,
    pub distribution_id: i32,
    pub release_id: i32,
    pub file_id: i32,
    pub license_key: Option<String>,
    pub conf: String,
    pub installed_version: String,
    /// Requests that started at the file's first byte: the downloads counted.
    pub starts: i64,
    /// Responses that delivered the file's last byte.
    pub completions: i64,
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
            starts: 0,
            completions: 0,
        }
    }

    /// Downloads and completed downloads the link counts: every start, and as many
    /// completions as there were starts at most.
    fn counted(&self) -> (i64, i64) {
        (self.starts, self.completions.min(self.starts))
    }
}

/// A new raw download row: the first request of the batch through its link (time and
/// attributes; `bytes` summed over the batch's requests through the link) and what those
/// requests add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadInsert {
    pub event: DownloadEvent,
    pub starts: i64,
    pub completions: i64,
    /// Some download through the link is completed (`min(completions, starts) > 0`).
    pub completed: bool,
}

/// An existing raw download row gains bytes, starts and completions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadUpdate {
    pub dedup_key: String,
    pub add_bytes: i64,
    pub add_starts: i64,
    pub add_completions: i64,
    /// After this batch some download through the link is completed.
    pub completed: bool,
}

/// Everything one batch writes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub check_rows: Vec<CheckRow>,
    /// New links (one per dedup key, later requests of the batch merged in).
    pub download_inserts: Vec<DownloadInsert>,
    pub download_updates: Vec<DownloadUpdate>,
    pub downloads: BTreeMap<DownloadKey, Counts>,
    pub license_downloads: BTreeMap<LicenseKey, Counts>,
    pub upgrades: BTreeMap<UpgradeKey, i64>,
    pub checks: BTreeMap<CheckKey, i64>,
    pub installations: BTreeMap<InstallationKey, InstallationSeen>,
    /// Every (day, installation) that checked: the writer inserts them into
    /// `stats_active_days` and counts, per day and distribution, the ones that were new.
    pub active: BTreeSet<ActiveKey>,
    /// Checks naming a key that is no license.
    pub unknown_keys: BTreeMap<UnknownKeyKey, i64>,
}

/// An installation that checked on a day.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActiveKey {
    pub day: String,
    pub distribution_id: i32,
    pub installation: String,
    pub conf: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnknownKeyKey {
    pub day: String,
    pub distribution_id: i32,
    pub license_key: String,
}

/// Installations new to each (day, distribution): what `stats_daily_active` gains from the
/// `stats_active_days` rows a batch actually inserted (`(day, distribution_id)` of each).
pub fn active_deltas(
    inserted: impl IntoIterator<Item = (String, i32)>,
) -> BTreeMap<(String, i32), i64> {
    let mut out = BTreeMap::new();
    for key in inserted {
        *out.entry(key).or_default() += 1;
    }
    out
}

/// Checks: one raw row each, +1 per (day, distribution, CONF, installed version), the newest
/// check per installation, the (day, installation) pairs that were active, and +1 per
/// (day, distribution, key) for a key that names no license.
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
        let day = capture::day_of(event.at);
        if let Some(unknown) = &event.unknown_key {
            *plan
                .unknown_keys
                .entry(UnknownKeyKey {
                    day: day.clone(),
                    distribution_id: event.distribution_id,
                    license_key: unknown.clone(),
                })
                .or_default() += 1;
            // A paid distribution's installations are its licenses: a key that names none is
            // an attempt, not an installation (a free one's installations are addresses).
            if event.paid {
                plan.check_rows.push(CheckRow {
                    event,
                    client_hash: hash,
                });
                continue;
            }
        }
        let key = InstallationKey {
            distribution_id: event.distribution_id,
            installation: capture::installation(event.paid, event.license_key.as_deref(), &hash),
            conf: event.conf.clone(),
        };
        plan.active.insert(ActiveKey {
            day,
            distribution_id: key.distribution_id,
            installation: key.installation.clone(),
            conf: key.conf.clone(),
        });
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

/// Downloads (SPEC §4.6): every request through a link adds its bytes; a request that
/// started at the file's first byte counts one download; a response that delivered the last
/// byte counts one completed download, but a link never counts more completed downloads than
/// downloads. Raw rows hold each link's running `starts` and `completions`, and a batch adds
/// the difference its events make to `(starts, min(completions, starts))`, so the totals do
/// not depend on the order the requests of a download reach the database in: a resume written
/// (by another instance) before the request it continues adds its bytes, and its completion
/// is counted when that first request comes. Everything is added to the day and attributes of
/// the link's first recorded request. `known` holds the links the database already has.
pub fn plan_downloads(
    plan: &mut Plan,
    events: Vec<DownloadEvent>,
    mut known: HashMap<String, KnownDownload>,
) {
    let mut inserted: HashMap<String, usize> = HashMap::new();
    let mut updated: HashMap<String, usize> = HashMap::new();
    for event in events {
        let bytes = i64::try_from(event.bytes).unwrap_or(i64::MAX);
        let add_starts = i64::from(event.first_byte);
        let add_completions = i64::from(event.completed);
        let seen = known.contains_key(&event.dedup_key);
        let link = known
            .entry(event.dedup_key.clone())
            .or_insert_with(|| KnownDownload::from_event(&event));
        let before = link.counted();
        link.starts += add_starts;
        link.completions += add_completions;
        let after = link.counted();
        let link = link.clone();
        let completed = after.1 > 0;
        if let Some(&i) = inserted.get(&event.dedup_key) {
            let row = &mut plan.download_inserts[i];
            row.event.bytes = row.event.bytes.saturating_add(event.bytes);
            row.starts += add_starts;
            row.completions += add_completions;
            row.completed = completed;
        } else if !seen {
            inserted.insert(event.dedup_key.clone(), plan.download_inserts.len());
            plan.download_inserts.push(DownloadInsert {
                event,
                starts: add_starts,
                completions: add_completions,
                completed,
            });
        } else if let Some(&i) = updated.get(&event.dedup_key) {
            let row = &mut plan.download_updates[i];
            row.add_bytes = row.add_bytes.saturating_add(bytes);
            row.add_starts += add_starts;
            row.add_completions += add_completions;
            row.completed = completed;
        } else {
            updated.insert(event.dedup_key.clone(), plan.download_updates.len());
            plan.download_updates.push(DownloadUpdate {
                dedup_key: event.dedup_key,
                add_bytes: bytes,
                add_starts,
                add_completions,
                completed,
            });
        }
        let counts = Counts {
            downloads: after.0 - before.0,
            completed: after.1 - before.1,
            bytes,
        };
        add_download(plan, &link, counts);
    }
}

fn add_download(plan: &mut Plan, first: &KnownDownload, counts: Counts) {
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
    if counts.downloads > 0 {
        *plan
            .upgrades
            .entry(UpgradeKey {
                day,
                distribution_id: first.distribution_id,
                installed_version: first.installed_version.clone(),
                release_id: first.release_id,
            })
            .or_default() += counts.downloads;
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// One request through link `key`: `first_byte` when it started at byte 0, `completed`
    /// when it delivered the last byte.
    fn download(
        key: &str,
        when: &str,
        bytes: u64,
        first_byte: bool,
        completed: bool,
    ) -> DownloadEvent {
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
            first_byte,
            completed,
            dedup_key: key.into(),
        }
    }

    fn total(map: &BTreeMap<impl Ord, Counts>) -> Counts {
        map.values().fold(Counts::default(), |mut acc, c| {
            acc.add(*c);
            acc
        })
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

    fn counts(downloads: i64, completed: i64, bytes: i64) -> Counts {
        Counts {
            downloads,
            completed,
            bytes,
        }
    }

    /// The raw table across batches, as the recorder keeps it: each batch is planned with the
    /// rows earlier batches wrote, and its inserts and updates are applied.
    #[derive(Default)]
    struct Database {
        rows: HashMap<String, KnownDownload>,
        totals: Counts,
        upgrades: i64,
    }

    impl Database {
        /// Plans and applies one batch; returns what it added to the roll-ups.
        fn batch(&mut self, events: Vec<DownloadEvent>) -> Counts {
            let known = events
                .iter()
                .filter_map(|e| {
                    self.rows
                        .get(&e.dedup_key)
                        .map(|r| (e.dedup_key.clone(), r.clone()))
                })
                .collect();
            let mut plan = Plan::default();
            plan_downloads(&mut plan, events, known);
            for insert in &plan.download_inserts {
                let row = KnownDownload {
                    starts: insert.starts,
                    completions: insert.completions,
                    ..KnownDownload::from_event(&insert.event)
                };
                assert_eq!(insert.completed, row.counted().1 > 0);
                let key = insert.event.dedup_key.clone();
                assert!(self.rows.insert(key, row).is_none());
            }
            for update in &plan.download_updates {
                let row = self.rows.get_mut(&update.dedup_key).unwrap();
                row.starts += update.add_starts;
                row.completions += update.add_completions;
                assert_eq!(update.completed, row.counted().1 > 0);
            }
            let added = total(&plan.downloads);
            assert_eq!(total(&plan.license_downloads), added);
            let upgrades: i64 = plan.upgrades.values().sum();
            assert_eq!(upgrades, added.downloads);
            self.totals.add(added);
            self.upgrades += upgrades;
            added
        }
    }

    #[test]
    fn a_resumed_download_counts_once_and_adds_bytes() {
        let mut plan = Plan::default();
        plan_downloads(
            &mut plan,
            vec![
                download("a", "2026-11-22T10:00:00Z", 400, true, false),
                download("a", "2026-11-22T10:05:00Z", 600, false, true),
                download("b", "2026-11-22T11:00:00Z", 1000, true, true),
            ],
            HashMap::new(),
        );
        assert_eq!(day_counts(&plan, "2026-11-22"), counts(2, 2, 2000));
        assert_eq!(plan.download_inserts.len(), 2);
        let a = &plan.download_inserts[0];
        assert_eq!((a.event.bytes, a.starts, a.completions), (1000, 1, 1));
        assert!(a.completed);
        assert!(plan.download_updates.is_empty());
        assert_eq!(plan.upgrades.values().sum::<i64>(), 2);
        let license: i64 = plan.license_downloads.values().map(|c| c.downloads).sum();
        assert_eq!(license, 2);
    }

    #[test]
    fn separate_downloads_through_one_link_count_separately() {
        let mut plan = Plan::default();
        plan_downloads(
            &mut plan,
            vec![
                download("a", "2026-11-22T10:00:00Z", 1000, true, true),
                download("a", "2026-11-22T10:01:00Z", 1000, true, true),
                download("a", "2026-11-22T10:02:00Z", 1000, true, true),
            ],
            HashMap::new(),
        );
        assert_eq!(day_counts(&plan, "2026-11-22"), counts(3, 3, 3000));
        assert_eq!(plan.download_inserts.len(), 1);
        let a = &plan.download_inserts[0];
        assert_eq!((a.event.bytes, a.starts, a.completions), (3000, 3, 3));
        assert_eq!(plan.upgrades.values().sum::<i64>(), 3);

        // The same three, one per batch: the later ones update the row.
        let mut db = Database::default();
        for minute in 0..3 {
            let when = format!("2026-11-22T10:0{minute}:00Z");
            assert_eq!(
                db.batch(vec![download("a", &when, 1000, true, true)]),
                counts(1, 1, 1000)
            );
        }
        assert_eq!(db.totals, counts(3, 3, 3000));
        assert_eq!(db.upgrades, 3);
        assert_eq!((db.rows["a"].starts, db.rows["a"].completions), (3, 3));
    }

    #[test]
    fn a_download_resumed_in_two_ranges_counts_once_across_batches() {
        let mut db = Database::default();
        let first = download("a", "2026-11-22T10:00:00Z", 400, true, false);
        let rest = download("a", "2026-11-22T10:05:00Z", 600, false, true);
        assert_eq!(db.batch(vec![first]), counts(1, 0, 400));
        assert_eq!(db.batch(vec![rest]), counts(0, 1, 600));
        assert_eq!(db.totals, counts(1, 1, 1000));
        assert_eq!(db.upgrades, 1);
    }

    #[test]
    fn a_range_from_the_middle_alone_counts_no_download_but_its_bytes() {
        let mut db = Database::default();
        // Neither a range in the middle nor one that reaches the end begins a download.
        let middle = download("a", "2026-11-22T10:00:00Z", 100, false, false);
        let to_the_end = download("b", "2026-11-22T10:00:00Z", 500, false, true);
        assert_eq!(db.batch(vec![middle]), counts(0, 0, 100));
        assert_eq!(db.batch(vec![to_the_end]), counts(0, 0, 500));
        assert_eq!(db.totals, counts(0, 0, 600));
        assert_eq!(db.upgrades, 0);
        // The rows exist (their bytes are recorded) with no starts.
        assert_eq!((db.rows["a"].starts, db.rows["a"].completions), (0, 0));
        assert_eq!((db.rows["b"].starts, db.rows["b"].completions), (0, 1));
    }

    #[test]
    fn a_continuation_written_before_its_first_request_counts_once_completed() {
        // Two instances: the resume (which reached the end) is written first, by the other
        // instance's recorder; the first-byte request comes in a later batch.
        let mut db = Database::default();
        let first = download("a", "2026-11-22T10:00:00Z", 400, true, false);
        let resume = download("a", "2026-11-22T10:05:00Z", 600, false, true);
        assert_eq!(db.batch(vec![resume]), counts(0, 0, 600));
        assert_eq!(db.batch(vec![first]), counts(1, 1, 400));
        assert_eq!(db.totals, counts(1, 1, 1000));
        assert_eq!(db.upgrades, 1);
        // Counted on the day of the row, i.e. of the first request recorded.
        assert_eq!(db.rows["a"].at, at("2026-11-22T10:05:00Z"));
    }

    #[test]
    fn completed_never_exceeds_downloads_whatever_the_order_and_batches() {
        // Through one link: a full download, a download interrupted and resumed twice to the
        // end (one completion too many, e.g. a retried last range), and a stray middle range.
        let events = [
            download("a", "2026-11-22T10:00:00Z", 1000, true, true),
            download("a", "2026-11-22T10:01:00Z", 300, true, false),
            download("a", "2026-11-22T10:02:00Z", 700, false, true),
            download("a", "2026-11-22T10:03:00Z", 700, false, true),
            download("a", "2026-11-22T10:04:00Z", 50, false, false),
        ];
        let n = events.len();
        let mut order: Vec<usize> = (0..n).collect();
        let mut cases = 0;
        let mut orders = std::collections::HashSet::new();
        // Every order (Heap's algorithm) and every split of it into consecutive batches.
        let mut c = vec![0; n];
        let mut i = 0;
        loop {
            assert!(orders.insert(order.clone()));
            for split in 0u32..(1 << (n - 1)) {
                let mut db = Database::default();
                let mut batch = Vec::new();
                for (pos, &e) in order.iter().enumerate() {
                    batch.push(events[e].clone());
                    if pos == n - 1 || split & (1 << pos) != 0 {
                        db.batch(std::mem::take(&mut batch));
                        assert!(
                            db.totals.completed <= db.totals.downloads,
                            "{order:?} split {split:b}: {:?}",
                            db.totals
                        );
                    }
                }
                assert_eq!(db.totals, counts(2, 2, 2750), "{order:?} split {split:b}");
                assert_eq!(db.upgrades, 2);
                cases += 1;
            }
            while i < n && c[i] >= i {
                c[i] = 0;
                i += 1;
            }
            if i == n {
                break;
            }
            if i % 2 == 0 {
                order.swap(0, i);
            } else {
                order.swap(c[i], i);
            }
            c[i] += 1;
            i = 0;
        }
        assert_eq!((orders.len(), cases), (120, 120 * 16));
    }

    #[test]
    fn a_download_known_to_the_database_adds_to_its_first_day() {
        let mut plan = Plan::default();
        let first = download("a", "2026-11-21T23:59:00Z", 0, true, false);
        let known = HashMap::from([(
            "a".to_owned(),
            KnownDownload {
                starts: 1,
                ..KnownDownload::from_event(&first)
            },
        )]);
        plan_downloads(
            &mut plan,
            vec![
                download("a", "2026-11-22T00:01:00Z", 700, false, true),
                download("a", "2026-11-22T00:02:00Z", 50, false, true),
            ],
            known,
        );
        // Nothing new is counted; bytes and the completion go to the first request's day.
        assert_eq!(day_counts(&plan, "2026-11-21"), counts(0, 1, 750));
        assert_eq!(day_counts(&plan, "2026-11-22"), Counts::default());
        assert!(plan.download_inserts.is_empty());
        assert_eq!(
            plan.download_updates,
            vec![DownloadUpdate {
                dedup_key: "a".into(),
                add_bytes: 750,
                add_starts: 0,
                add_completions: 2,
                completed: true
            }]
        );
        assert!(plan.upgrades.is_empty());
    }

    #[test]
    fn completion_counts_once() {
        let mut plan = Plan::default();
        let first = download("a", "2026-11-22T10:00:00Z", 0, true, false);
        let known = HashMap::from([(
            "a".to_owned(),
            KnownDownload {
                starts: 1,
                completions: 1,
                ..KnownDownload::from_event(&first)
            },
        )]);
        plan_downloads(
            &mut plan,
            vec![download("a", "2026-11-22T11:00:00Z", 10, false, true)],
            known,
        );
        assert_eq!(day_counts(&plan, "2026-11-22"), counts(0, 0, 10));
    }

    #[test]
    fn keys_split_by_conf_license_and_installed_version() {
        let mut plan = Plan::default();
        let mut other = download("b", "2026-11-22T10:00:00Z", 5, true, true);
        other.conf = "БухгалтерияПредприятия".into();
        other.license_key = None;
        other.installed_version = String::new();
        plan_downloads(
            &mut plan,
            vec![download("a", "2026-11-22T10:00:00Z", 5, true, true), other],
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
            unknown_key: None,
            client: ip.parse::<IpAddr>().unwrap(),
        }
    }

    #[test]
    fn an_installation_is_active_once_a_day_and_unknown_keys_count_per_check() {
        let mut plan = Plan::default();
        let mut guess = check("2026-11-22T13:00:00Z", "1.0", None, "192.0.2.7");
        guess.unknown_key = Some("K-404".into());
        plan_checks(
            &mut plan,
            vec![
                check("2026-11-22T10:00:00Z", "1.0", Some("K-1"), "192.0.2.1"),
                check("2026-11-22T12:00:00Z", "1.0", Some("K-1"), "192.0.2.2"),
                check("2026-11-23T09:00:00Z", "1.0", Some("K-1"), "192.0.2.1"),
                guess.clone(),
                guess.clone(),
                // On a paid distribution an unknown key is an attempt, not an installation.
                CheckEvent {
                    paid: true,
                    client: "192.0.2.8".parse().unwrap(),
                    ..guess
                },
            ],
            b"salt",
        );
        assert_eq!(plan.check_rows.len(), 6);
        assert!(!plan.installations.keys().any(|k| {
            k.installation
                .ends_with(&capture::client_hash(b"salt", "192.0.2.8".parse().unwrap()))
        }));
        let days: Vec<(&str, &str)> = plan
            .active
            .iter()
            .map(|a| (a.day.as_str(), a.installation.as_str()))
            .collect();
        assert_eq!(days.len(), 3, "{days:?}");
        assert!(days.contains(&("2026-11-22", "key:K-1")));
        assert!(days.contains(&("2026-11-23", "key:K-1")));
        assert_eq!(
            plan.unknown_keys.into_iter().collect::<Vec<_>>(),
            vec![(
                UnknownKeyKey {
                    day: "2026-11-22".into(),
                    distribution_id: 1,
                    license_key: "K-404".into()
                },
                3
            )]
        );
        let deltas = active_deltas(vec![
            ("2026-11-22".to_owned(), 1),
            ("2026-11-22".to_owned(), 1),
            ("2026-11-23".to_owned(), 1),
        ]);
        assert_eq!(deltas[&("2026-11-22".to_owned(), 1)], 2);
        assert_eq!(deltas[&("2026-11-23".to_owned(), 1)], 1);
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
