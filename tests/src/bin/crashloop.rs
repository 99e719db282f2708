//! Crash loop (issue 7): runs `vypusk serve` (SQLite, local objects, shortened blob grace
//! period) under concurrent uploads, publishes, deletes and license CSV imports, kills it with
//! SIGKILL at a random moment, restarts it, and checks after each restart:
//!
//! - `PRAGMA integrity_check` is `ok`;
//! - every file row has its bytes, with the recorded size and sha256 (so every published
//!   release has all its bytes), and a sample of published releases downloads over HTTP;
//! - no release is half-published: a published release has `published_at` and files, and a
//!   draft has no `published_at`;
//! - `tmp/` is empty (start-up cleans it);
//! - no stored blob without a file row survives the grace period plus a sweep.
//!
//! Usage: `crashloop [--kills N] [--seed S] [--workers W] [--grace-secs G]
//! [--sweep-interval-secs I] [--max-load-ms M]`. Build first: `cargo build --workspace --bins`.
//! Prints the seed (repeat a run with `--seed`), a result table, and exits non-zero on any
//! violation. The interleavings depend on timing, so a seed repeats the plan (operations,
//! contents, kill moments), not the exact schedule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::json;
use vypusk_tests::{ADMIN_PASSWORD, ServerOptions, TestServer, sha256_hex, test_bytes};

struct Options {
    kills: u32,
    seed: u64,
    workers: usize,
    grace_secs: u64,
    sweep_interval_secs: f64,
    max_load_ms: u64,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        kills: 100,
        seed: rand::random(),
        workers: 4,
        grace_secs: 1,
        sweep_interval_secs: 0.2,
        max_load_ms: 500,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--kills" => o.kills = value.parse().map_err(|e| bad(&e))?,
            "--seed" => o.seed = value.parse().map_err(|e| bad(&e))?,
            "--workers" => o.workers = value.parse().map_err(|e| bad(&e))?,
            "--grace-secs" => o.grace_secs = value.parse().map_err(|e| bad(&e))?,
            "--sweep-interval-secs" => {
                o.sweep_interval_secs = value.parse().map_err(|e| bad(&e))?
            }
            "--max-load-ms" => o.max_load_ms = value.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if o.workers == 0 || o.workers > 32 {
        return Err("--workers must be 1..=32".into());
    }
    Ok(o)
}

/// File contents the workers draw from: few enough that uploads, replacements and deletes
/// share blobs all the time; one large enough that kills often land in the middle of it.
fn content_pool() -> Vec<Arc<Vec<u8>>> {
    let mut pool: Vec<Arc<Vec<u8>>> = (0..10u8)
        .map(|i| Arc::new(test_bytes(1024 << (i % 6), i)))
        .collect();
    pool.push(Arc::new(test_bytes(3 << 20, 200)));
    pool
}

#[derive(Default)]
struct Counters {
    /// Requests that got an answer (any status).
    answered: AtomicU64,
    /// Woken on every answer, so the kill can wait for load without polling.
    progress: tokio::sync::Notify,
    /// Requests that failed without an answer (the server was being killed).
    failed: AtomicU64,
}

struct Worker {
    base: String,
    client: reqwest::Client,
    rng: StdRng,
    pool: Arc<Vec<Arc<Vec<u8>>>>,
    counters: Arc<Counters>,
    /// `<round>.<worker>`: versions `<prefix>.<n>` never repeat across rounds.
    prefix: String,
    next: u32,
    drafts: Vec<i64>,
}

impl Worker {
    async fn send(&self, req: reqwest::RequestBuilder) -> Option<(StatusCode, serde_json::Value)> {
        match req.timeout(Duration::from_secs(20)).send().await {
            Ok(resp) => {
                let status = resp.status();
                let body = resp.bytes().await.ok()?;
                self.counters.answered.fetch_add(1, Ordering::Relaxed);
                self.counters.progress.notify_waiters();
                Some((
                    status,
                    serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                ))
            }
            Err(_) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn admin(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
    }

    fn content(&mut self) -> Arc<Vec<u8>> {
        let i = self.rng.random_range(0..self.pool.len());
        self.pool[i].clone()
    }

    async fn create_draft(&mut self, code: &str) -> Option<i64> {
        self.next += 1;
        let body = json!({
            "version": format!("{}.{}", self.prefix, self.next),
            "compatibility": [{"conf": "*", "min_1c_version": "0"}],
        });
        let req = self
            .admin(
                Method::POST,
                &format!("/api/v1/distributions/{code}/releases"),
            )
            .json(&body);
        match self.send(req).await? {
            (StatusCode::CREATED, v) => v["id"].as_i64(),
            _ => None,
        }
    }

    async fn upload(&mut self, id: i64, name: &str) {
        let bytes = self.content();
        let req = self
            .admin(Method::PUT, &format!("/api/v1/releases/{id}/files/{name}"))
            .body(bytes.as_ref().clone());
        self.send(req).await;
    }

    async fn step(&mut self) {
        match self.rng.random_range(0..100) {
            // A release: files, then usually published.
            0..=34 => {
                let Some(id) = self.create_draft("CRASH").await else {
                    return;
                };
                for n in 0..self.rng.random_range(1..=3) {
                    self.upload(id, &format!("file{n}.zip")).await;
                }
                if self.rng.random_bool(0.6) {
                    self.send(self.admin(Method::POST, &format!("/api/v1/releases/{id}/publish")))
                        .await;
                } else {
                    self.drafts.push(id);
                }
            }
            // Replace or add a file of a draft.
            35..=49 => {
                if let Some(&id) = self.drafts.last() {
                    let name = format!("file{}.zip", self.rng.random_range(0..4));
                    self.upload(id, &name).await;
                }
            }
            // Delete a file of a draft.
            50..=62 => {
                if let Some(&id) = self.drafts.last() {
                    let name = format!("file{}.zip", self.rng.random_range(0..4));
                    self.send(self.admin(
                        Method::DELETE,
                        &format!("/api/v1/releases/{id}/files/{name}"),
                    ))
                    .await;
                }
            }
            // Delete a draft.
            63..=74 => {
                if !self.drafts.is_empty() {
                    let i = self.rng.random_range(0..self.drafts.len());
                    let id = self.drafts.swap_remove(i);
                    self.send(self.admin(Method::DELETE, &format!("/api/v1/releases/{id}")))
                        .await;
                }
            }
            // A distribution with a draft, deleted as a whole.
            75..=84 => {
                self.next += 1;
                let code = format!("TMP-{}-{}", self.prefix.replace('.', "-"), self.next);
                let body = json!({"code": code, "name": code, "description": "Crash loop",
                    "developer": "Vendor", "label": "VENDOR",
                    "promo_link": "https://example.com/promo", "published": true});
                if self
                    .send(
                        self.admin(Method::POST, "/api/v1/distributions")
                            .json(&body),
                    )
                    .await
                    .is_none_or(|(s, _)| s != StatusCode::CREATED)
                {
                    return;
                }
                if let Some(id) = self.create_draft(&code).await {
                    self.upload(id, "setup.zip").await;
                }
                self.send(self.admin(Method::DELETE, &format!("/api/v1/distributions/{code}")))
                    .await;
            }
            // The race of issue 7: the same bytes uploaded into one draft while another draft's
            // file with those bytes is deleted.
            85..=92 => {
                let (Some(a), Some(b)) = (
                    self.create_draft("CRASH").await,
                    self.create_draft("CRASH").await,
                ) else {
                    return;
                };
                // Bytes no other file has, so the delete leaves them unreferenced.
                let mut bytes = self.content().as_ref().clone();
                bytes.extend(self.rng.random::<u64>().to_le_bytes());
                let lag = Duration::from_micros(self.rng.random_range(0..3000));
                let put = |id: i64| {
                    self.admin(
                        Method::PUT,
                        &format!("/api/v1/releases/{id}/files/same.zip"),
                    )
                    .body(bytes.clone())
                };
                if self.send(put(a)).await.is_none() {
                    return;
                }
                let delete = self.admin(
                    Method::DELETE,
                    &format!("/api/v1/releases/{a}/files/same.zip"),
                );
                // The delete lands at a random point of the upload.
                tokio::join!(self.send(put(b)), async {
                    tokio::time::sleep(lag).await;
                    self.send(delete).await
                });
                self.drafts.extend([a, b]);
            }
            // A license CSV import of 200 licenses.
            _ => {
                let mut csv =
                    String::from("key,customer,itn,beta,revoked,product,feature,active_until\n");
                let batch: u32 = self.rng.random();
                for i in 0..200 {
                    csv.push_str(&format!(
                        "CRASH-{batch:08X}-{i:04},Customer {i},7700000000,N,N,10,20,2030-01-01\n"
                    ));
                }
                self.send(
                    self.admin(Method::POST, "/api/v1/licenses/import")
                        .header("content-type", "text/csv")
                        .body(csv),
                )
                .await;
            }
        }
    }
}

/// One violation of an invariant, for the report.
type Violations = Vec<String>;

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn stored_blobs(data: &Path) -> BTreeSet<String> {
    files_under(&data.join("objects/blobs/sha256"))
        .into_iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect()
}

/// Checks the database and the objects after a restart; returns how many checks ran.
async fn check_state(
    server: &TestServer,
    rng: &mut StdRng,
    violations: &mut Violations,
) -> anyhow::Result<u64> {
    let data = server.data_dir.path();
    let db = Database::connect(format!(
        "sqlite://{}?mode=ro",
        data.join("vypusk.db").display()
    ))
    .await?;
    let query = |sql: &str| Statement::from_string(DbBackend::Sqlite, sql.to_owned());
    let mut checks = 0;

    let integrity: String = db
        .query_one_raw(query("PRAGMA integrity_check"))
        .await?
        .map(|r| r.try_get_by_index(0))
        .transpose()?
        .unwrap_or_default();
    checks += 1;
    if integrity != "ok" {
        violations.push(format!("integrity_check: {integrity}"));
    }

    for row in db
        .query_all_raw(query(
            "SELECT r.id, r.status, r.published_at IS NOT NULL, \
             (SELECT COUNT(*) FROM files f WHERE f.release_id = r.id) FROM releases r",
        ))
        .await?
    {
        let id: i32 = row.try_get_by_index(0)?;
        let status: String = row.try_get_by_index(1)?;
        let has_published_at: bool = row.try_get_by_index(2)?;
        let files: i64 = row.try_get_by_index(3)?;
        checks += 1;
        let half_published = match status.as_str() {
            "published" | "yanked" => !has_published_at || files == 0,
            _ => has_published_at,
        };
        if half_published {
            violations.push(format!(
                "release {id} is {status} with published_at {has_published_at} and {files} files"
            ));
        }
    }

    let files = db
        .query_all_raw(query("SELECT id, sha256, size FROM files"))
        .await?;
    let mut digests: BTreeMap<String, String> = BTreeMap::new();
    for row in &files {
        let id: i32 = row.try_get_by_index(0)?;
        let sha: String = row.try_get_by_index(1)?;
        let size: i64 = row.try_get_by_index(2)?;
        checks += 1;
        let path = data.join("objects/blobs/sha256").join(&sha[..2]).join(&sha);
        let actual = match digests.get(&sha) {
            Some(d) => Some(d.clone()),
            None => std::fs::read(&path).ok().map(|bytes| {
                let d = format!("{}:{}", bytes.len(), sha256_hex(&bytes));
                digests.insert(sha.clone(), d.clone());
                d
            }),
        };
        if actual.as_deref() != Some(&format!("{size}:{sha}")) {
            violations.push(format!(
                "file {id}: bytes {actual:?}, recorded {size}:{sha}"
            ));
        }
    }

    // A sample of published releases over HTTP, through the catalog the server rebuilt.
    let published = db
        .query_all_raw(query(
            "SELECT r.version, f.sha256 FROM releases r JOIN distributions d \
             ON d.id = r.distribution_id JOIN files f ON f.release_id = r.id \
             WHERE d.code = 'CRASH' AND r.status = 'published' AND f.main",
        ))
        .await?;
    for _ in 0..published.len().min(3) {
        let row = &published[rng.random_range(0..published.len())];
        let version: String = row.try_get_by_index(0)?;
        let sha: String = row.try_get_by_index(1)?;
        checks += 1;
        let resp = server
            .client
            .get(server.url(&format!("/releases/v1/1c/getModuleFile/CRASH/{version}")))
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if status != StatusCode::OK || sha256_hex(&body) != sha {
            violations.push(format!("download of CRASH {version}: {status}"));
        }
    }
    drop(db);

    checks += 1;
    let tmp = files_under(&data.join("objects/tmp"));
    if !tmp.is_empty() {
        violations.push(format!("{} files left under tmp/ after restart", tmp.len()));
    }
    Ok(checks)
}

/// Waits (bounded by `within`) until every stored blob is referenced by a file row.
async fn check_orphans_go(
    server: &TestServer,
    within: Duration,
    violations: &mut Violations,
) -> anyhow::Result<()> {
    let data = server.data_dir.path();
    let deadline = Instant::now() + within;
    loop {
        let db = Database::connect(format!(
            "sqlite://{}?mode=ro",
            data.join("vypusk.db").display()
        ))
        .await?;
        let referenced: BTreeSet<String> = db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT DISTINCT sha256 FROM files",
            ))
            .await?
            .iter()
            .map(|r| r.try_get_by_index(0))
            .collect::<Result<_, _>>()?;
        drop(db);
        let orphans: Vec<String> = stored_blobs(data)
            .into_iter()
            .filter(|s| !referenced.contains(s))
            .collect();
        if orphans.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            violations.push(format!(
                "{} blobs without a file row still stored {within:?} after restart: {:?}",
                orphans.len(),
                &orphans[..orphans.len().min(3)]
            ));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("crashloop: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&options).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("crashloop: {e:#} (seed {})", options.seed);
            ExitCode::FAILURE
        }
    }
}

async fn run(o: &Options) -> anyhow::Result<bool> {
    println!(
        "crashloop: seed {} kills {} workers {} grace {} s sweep every {} s",
        o.seed, o.kills, o.workers, o.grace_secs, o.sweep_interval_secs
    );
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(o.seed);
    let mut server = TestServer::start_with(ServerOptions {
        env: vec![
            ("VYPUSK_BLOB_GRACE_SECS".into(), o.grace_secs.to_string()),
            (
                "VYPUSK_BLOB_SWEEP_INTERVAL_SECS".into(),
                o.sweep_interval_secs.to_string(),
            ),
        ],
        ..Default::default()
    })
    .await;
    server.create_distribution("CRASH", json!({})).await;
    let pool = Arc::new(content_pool());
    let counters = Arc::new(Counters::default());
    let mut violations: Violations = Vec::new();
    let mut checks = 0u64;
    // The sweeper's first run is at start; one more interval for the blob's deadline, and slack
    // for a loaded machine.
    let orphan_deadline =
        Duration::from_secs_f64(o.grace_secs as f64 + 2.0 * o.sweep_interval_secs)
            + Duration::from_secs(10);

    for round in 0..o.kills {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..o.workers)
            .map(|w| {
                let mut worker = Worker {
                    base: server.base.clone(),
                    client: server.client.clone(),
                    rng: StdRng::seed_from_u64(rng.random()),
                    pool: pool.clone(),
                    counters: counters.clone(),
                    prefix: format!("{}.{w}", round + 1),
                    next: 0,
                    drafts: Vec::new(),
                };
                let stop = stop.clone();
                tokio::spawn(async move {
                    // Bounded: each step is a few requests with timeouts.
                    for _ in 0..100_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        worker.step().await;
                    }
                })
            })
            .collect();
        // The kill moment: after a random number of answered requests (so that it lands in the
        // middle of real work however slow the machine is), then a random delay.
        let target = counters.answered.load(Ordering::Relaxed) + rng.random_range(0..=40);
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let notified = counters.progress.notified();
                if counters.answered.load(Ordering::Relaxed) >= target {
                    break;
                }
                notified.await;
            }
        })
        .await;
        let load = Duration::from_millis(rng.random_range(0..=o.max_load_ms));
        tokio::time::sleep(load).await;
        // Workers start nothing new from here; what is in flight is cut by the kill.
        stop.store(true, Ordering::Relaxed);
        server.kill();
        for w in workers {
            w.await?;
        }
        server.kill_and_restart().await;
        let before = violations.len();
        checks += check_state(&server, &mut rng, &mut violations).await?;
        checks += 1;
        check_orphans_go(&server, orphan_deadline, &mut violations).await?;
        for v in &violations[before..] {
            println!("round {}: VIOLATION {v}", round + 1);
        }
        if (round + 1) % 10 == 0 || round + 1 == o.kills {
            println!(
                "after {} kills: {} requests answered, {} checks, {} violations, {:.0} s",
                round + 1,
                counters.answered.load(Ordering::Relaxed),
                checks,
                violations.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    server.terminate();

    println!();
    println!(
        "| seed | kills | operations (answered / cut by a kill) | checks | violations | wall time |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} / {} | {} | {} | {:.0} s |",
        o.seed,
        o.kills,
        counters.answered.load(Ordering::Relaxed),
        counters.failed.load(Ordering::Relaxed),
        checks,
        violations.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(violations.is_empty())
}
