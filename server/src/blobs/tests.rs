//! Reclamation driven through the service functions, on SQLite and on PostgreSQL
//! (127.0.0.1:5432, user postgres, trust — the same server the end-to-end tests use).

use bytes::Bytes;
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Database, DatabaseConnection, Set};
use vypusk_protocol::FileName;
use vypusk_storage::{ExpectedDigests, StagedBlob, StorageError};

use super::*;
use crate::catalog::STATUS_DRAFT;
use crate::entities::{distribution, release};
use crate::services::releases::{record_files, remove_file};

const GRACE: Duration = Duration::from_secs(3600);

/// A database (SQLite file or fresh PostgreSQL database), local storage and one distribution.
struct Fixture {
    db: DatabaseConnection,
    storage: Storage,
    distribution_id: i32,
    _dir: tempfile::TempDir,
    /// PostgreSQL database to drop at the end.
    pg_name: Option<String>,
}

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl Fixture {
    async fn new(backend: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg_name) = match backend {
            "sqlite" => (
                format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
                None,
            ),
            "postgres" => {
                let name = format!("vypusk_blobs_{}", hex::encode(rand::random::<[u8; 6]>()));
                let admin = Database::connect(PG_ADMIN)
                    .await
                    .expect("PostgreSQL must run at 127.0.0.1:5432 (see README: Set up)");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                (
                    format!("postgres://postgres@127.0.0.1:5432/{name}"),
                    Some(name),
                )
            }
            other => panic!("unknown backend {other}"),
        };
        let db = crate::db::connect(&url).await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        let storage = Storage::local(&dir.path().join("objects")).unwrap();
        let now = Utc::now();
        let d = distribution::ActiveModel {
            code: Set("BLOBS".into()),
            name: Set("Blobs".into()),
            description: Set(String::new()),
            developer: Set("Vendor".into()),
            label: Set("VENDOR".into()),
            promo_link: Set(String::new()),
            lic_product_id: Set(None),
            lic_feature_id: Set(None),
            published: Set(true),
            hide_unlicensed: Set(false),
            version_scheme: Set("1c".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
        Fixture {
            db,
            storage,
            distribution_id: d.id,
            _dir: dir,
            pg_name,
        }
    }

    async fn draft(&self, version: &str) -> i32 {
        let now = Utc::now();
        release::ActiveModel {
            distribution_id: Set(self.distribution_id),
            version: Set(version.into()),
            version_norm: Set(version.into()),
            status: Set(STATUS_DRAFT.into()),
            published_at: Set(None),
            prerelease: Set(false),
            changelog: Set(String::new()),
            yank_reason: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .unwrap()
        .id
    }

    /// The first half of an upload: the bytes are verified and staged under `tmp/`.
    async fn stage(&self, bytes: &'static [u8]) -> StagedBlob {
        let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(bytes))]);
        self.storage
            .stage_stream(body, u64::MAX, ExpectedDigests::default())
            .await
            .unwrap()
    }

    /// The second half: the file row, and the bytes under their content key.
    async fn record(&self, release_id: i32, name: &str, staged: StagedBlob) {
        let name = FileName::parse(name).unwrap();
        record_files(&self.db, release_id, vec![(name, staged)], None)
            .await
            .unwrap();
    }

    async fn upload(&self, release_id: i32, name: &str, bytes: &'static [u8]) {
        let staged = self.stage(bytes).await;
        self.record(release_id, name, staged).await;
    }

    async fn sweep_at(&self, now: DateTime<Utc>) -> SweepReport {
        let (_stop, stop_rx) = watch::channel(false);
        sweep(&self.db, &self.storage, now, GRACE, &stop_rx)
            .await
            .unwrap()
    }

    async fn stored(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let key = BlobKey::from_sha256_hex(&sha256_hex(bytes)).unwrap();
        match self.storage.get(&key, None).await {
            Ok(stream) => {
                let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
                Some(chunks.concat())
            }
            Err(StorageError::NotFound) => None,
            Err(e) => panic!("reading {key}: {e}"),
        }
    }

    async fn unreferenced_since(&self, bytes: &[u8]) -> Option<Option<DateTime<Utc>>> {
        blob::Entity::find_by_id(sha256_hex(bytes))
            .one(&self.db)
            .await
            .unwrap()
            .map(|row| row.unreferenced_since)
    }
}

/// Drops the PostgreSQL database also when a test fails (the tempdir goes by itself).
impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name {
            let _ = std::process::Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-c"])
                .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .output();
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn after_grace() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(GRACE).unwrap() + chrono::Duration::seconds(1)
}

/// Issue 7, defect 2: draft A has file X; an upload of X into draft B has streamed its bytes
/// when A's file is deleted and the blob is swept; then B's upload records its row. B's bytes
/// must be there.
async fn upload_racing_a_delete_keeps_its_bytes(backend: &str) {
    const X: &[u8] = b"identical bytes in draft A and draft B";
    let f = Fixture::new(backend).await;
    let a = f.draft("1.0").await;
    let b = f.draft("1.1").await;
    f.upload(a, "setup.zip", X).await;

    let staged_for_b = f.stage(X).await;
    remove_file(&f.db, a, "setup.zip").await.unwrap();
    // Nothing refers to X now, so a sweep (even one long after the delete) may take it...
    let report = f.sweep_at(after_grace()).await;
    assert_eq!(report.reclaimed, 1, "{report:?}");
    assert_eq!(f.stored(X).await, None);
    // ...and B's upload, recorded afterwards, brings its bytes with it.
    f.record(b, "setup.zip", staged_for_b).await;

    assert_eq!(
        f.stored(X).await.as_deref(),
        Some(X),
        "B's file row points at bytes that are missing from storage"
    );
    assert_eq!(f.unreferenced_since(X).await, Some(None));
    assert_eq!(f.sweep_at(after_grace()).await.reclaimed, 0);
    assert_eq!(f.stored(X).await.as_deref(), Some(X));
}

#[tokio::test]
async fn upload_racing_a_delete_keeps_its_bytes_sqlite() {
    upload_racing_a_delete_keeps_its_bytes("sqlite").await;
}

#[tokio::test]
async fn upload_racing_a_delete_keeps_its_bytes_postgres() {
    upload_racing_a_delete_keeps_its_bytes("postgres").await;
}

/// A blob moved into place by an upload that never committed (no row at all) goes once it has
/// been unreferenced for the grace period, counted from the sweep that found it — not before.
async fn crash_leftover_goes_after_the_grace_period(backend: &str) {
    const LEFTOVER: &[u8] = b"bytes of an upload killed before its commit";
    let f = Fixture::new(backend).await;
    f.stage(LEFTOVER).await.publish().await.unwrap();
    // PostgreSQL keeps microseconds.
    let found_at = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    let grace = chrono::Duration::from_std(GRACE).unwrap();

    let report = f.sweep_at(found_at).await;
    assert_eq!((report.registered, report.reclaimed), (1, 0), "{report:?}");
    assert_eq!(f.unreferenced_since(LEFTOVER).await, Some(Some(found_at)));

    let report = f
        .sweep_at(found_at + grace - chrono::Duration::seconds(1))
        .await;
    assert_eq!(report, SweepReport::default());
    assert_eq!(f.stored(LEFTOVER).await.as_deref(), Some(LEFTOVER));

    let report = f.sweep_at(found_at + grace).await;
    assert_eq!(report.reclaimed, 1, "{report:?}");
    assert_eq!(f.stored(LEFTOVER).await, None);
    assert_eq!(f.unreferenced_since(LEFTOVER).await, None);
}

#[tokio::test]
async fn crash_leftover_goes_after_the_grace_period_sqlite() {
    crash_leftover_goes_after_the_grace_period("sqlite").await;
}

#[tokio::test]
async fn crash_leftover_goes_after_the_grace_period_postgres() {
    crash_leftover_goes_after_the_grace_period("postgres").await;
}

/// A blob that became unreferenced and was reused within the grace period stays; when it
/// becomes unreferenced again, the grace period starts again.
async fn reused_blob_is_kept(backend: &str) {
    const X: &[u8] = b"bytes deleted from A, then uploaded into B";
    let f = Fixture::new(backend).await;
    let grace = chrono::Duration::from_std(GRACE).unwrap();
    let a = f.draft("1.0").await;
    let b = f.draft("1.1").await;
    f.upload(a, "setup.zip", X).await;
    remove_file(&f.db, a, "setup.zip").await.unwrap();
    let first = f.unreferenced_since(X).await.flatten().expect("recorded");

    f.upload(b, "other-name.zip", X).await;
    assert_eq!(f.unreferenced_since(X).await, Some(None));
    assert_eq!(f.sweep_at(first + grace).await.reclaimed, 0);
    assert_eq!(f.stored(X).await.as_deref(), Some(X));

    remove_file(&f.db, b, "other-name.zip").await.unwrap();
    let second = f.unreferenced_since(X).await.flatten().expect("recorded");
    assert!(second >= first);
    assert_eq!(
        f.sweep_at(second + grace - chrono::Duration::seconds(1))
            .await
            .reclaimed,
        0
    );
    assert_eq!(f.stored(X).await.as_deref(), Some(X));
    assert_eq!(f.sweep_at(second + grace).await.reclaimed, 1);
    assert_eq!(f.stored(X).await, None);
}

#[tokio::test]
async fn reused_blob_is_kept_sqlite() {
    reused_blob_is_kept("sqlite").await;
}

#[tokio::test]
async fn reused_blob_is_kept_postgres() {
    reused_blob_is_kept("postgres").await;
}

/// Replacing a file by name releases the old bytes, unless the new ones are the same; bytes
/// shared by two files stay while either refers to them; an upload that is refused never
/// publishes its bytes.
async fn references_are_counted(backend: &str) {
    const OLD: &[u8] = b"first version of setup.zip";
    const NEW: &[u8] = b"second version of setup.zip";
    let f = Fixture::new(backend).await;
    let a = f.draft("1.0").await;
    let b = f.draft("1.1").await;
    f.upload(a, "setup.zip", OLD).await;
    f.upload(a, "setup.zip", OLD).await;
    assert_eq!(f.unreferenced_since(OLD).await, Some(None));
    f.upload(b, "copy.zip", OLD).await;
    f.upload(a, "setup.zip", NEW).await;
    // B still refers to OLD.
    assert_eq!(f.unreferenced_since(OLD).await, Some(None));
    remove_file(&f.db, b, "copy.zip").await.unwrap();
    assert!(matches!(f.unreferenced_since(OLD).await, Some(Some(_))));
    let report = f.sweep_at(after_grace()).await;
    assert_eq!(report.reclaimed, 1, "{report:?}");
    assert_eq!(f.stored(OLD).await, None);
    assert_eq!(f.stored(NEW).await.as_deref(), Some(NEW));

    // A file row removed without `release` (a path that forgot it) is found by the sweep.
    file::Entity::delete_many().exec(&f.db).await.unwrap();
    let report = f.sweep_at(Utc::now()).await;
    assert_eq!(report.marked, 1, "{report:?}");

    // Files cannot change once published: the staged bytes never reach their content key.
    const REFUSED: &[u8] = b"bytes for a release that is no longer a draft";
    release::Entity::update_many()
        .col_expr(release::Column::Status, Expr::value("published"))
        .filter(release::Column::Id.eq(a))
        .exec(&f.db)
        .await
        .unwrap();
    let staged = f.stage(REFUSED).await;
    let name = FileName::parse("late.zip").unwrap();
    let err = record_files(&f.db, a, vec![(name, staged)], None)
        .await
        .unwrap_err();
    assert_eq!(err.status, axum::http::StatusCode::CONFLICT);
    assert_eq!(f.stored(REFUSED).await, None);
    assert_eq!(f.unreferenced_since(REFUSED).await, None);
}

#[tokio::test]
async fn references_are_counted_sqlite() {
    references_are_counted("sqlite").await;
}

#[tokio::test]
async fn references_are_counted_postgres() {
    references_are_counted("postgres").await;
}

/// `Sweeper::stop` ends the background task (and the first sweep runs at start).
#[tokio::test]
async fn sweeper_sweeps_at_start_and_stops() {
    const LEFTOVER: &[u8] = b"left by a crash";
    let f = Fixture::new("sqlite").await;
    f.stage(LEFTOVER).await.publish().await.unwrap();
    let sweeper = Sweeper::start(
        f.db.clone(),
        f.storage.clone(),
        SweepOptions {
            grace: Duration::ZERO,
            interval: Duration::from_millis(20),
        },
    );
    // Bounded wait for the event "the blob is gone"; each round yields to the sweeper.
    let mut gone = false;
    for _ in 0..500 {
        if f.stored(LEFTOVER).await.is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "the sweeper did not remove the leftover within 5 s");
    tokio::time::timeout(Duration::from_secs(10), sweeper.stop())
        .await
        .expect("the sweeper stops");
}
