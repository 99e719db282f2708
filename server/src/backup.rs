//! `vypusk backup DIR` and `vypusk restore DIR` for SQLite deployments (issue 8, item 4).
//!
//! A backup is taken while the server runs: the database through `VACUUM INTO` (one read
//! transaction, so a consistent snapshot whatever writers do meanwhile), the objects
//! directory, and the key files of the data directory. Objects are content-addressed and
//! written before the row that names them, so they are copied once before the snapshot and
//! once more after it (only the new ones): every object the snapshot names is then in the copy
//! unless it was deleted in between, which needs its last file deleted during the backup.
//!
//! PostgreSQL and S3 deployments are backed up with their own tools (pg_dump, the bucket's
//! versioning or replication) plus the key files; `backup` says so instead of copying half.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};

use crate::config::Settings;

/// Written last into a backup directory; `restore` requires it, so a half-written backup is
/// never restored.
pub const MANIFEST: &str = "vypusk-backup.json";
/// The database's name inside a backup.
pub const DATABASE_FILE: &str = "vypusk.db";
/// The objects directory's name inside a backup.
pub const OBJECTS_DIR: &str = "objects";

/// Files of the data directory that a deployment cannot be rebuilt without.
pub fn key_files() -> [&'static str; 4] {
    [
        crate::signing::PRIVATE_KEY_FILE,
        crate::signing::PUBLIC_KEY_FILE,
        crate::tokens::SECRET_FILE,
        crate::stats::capture::SALT_FILE,
    ]
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    vypusk_version: String,
    created_at: chrono::DateTime<chrono::Utc>,
    objects: u64,
    object_bytes: u64,
    key_files: Vec<String>,
}

/// Where a SQLite deployment keeps its parts.
struct Layout {
    database: PathBuf,
    objects: PathBuf,
}

fn sqlite_layout(settings: &Settings, command: &str) -> anyhow::Result<Layout> {
    let database_url = settings.database_url();
    let storage_url = settings.storage_url();
    let other = |what: &str| {
        anyhow::anyhow!(
            "`vypusk {command}` applies to SQLite deployments with local objects; this one uses \
             {what}. Back it up with the tools of its parts instead: the database with pg_dump \
             (restore with pg_restore), the object store's bucket with its versioning or \
             replication (or a copy of the bucket), and the key files {} from the data \
             directory {} (see docs/deployment.md)",
            key_files().join(", "),
            settings.data_dir.display()
        )
    };
    let database = sqlite_path(&database_url).ok_or_else(|| {
        other(&format!(
            "the database {}",
            crate::db::redact_url(&database_url)
        ))
    })?;
    let objects = url::Url::parse(&storage_url)
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok())
        .ok_or_else(|| other(&format!("the object store {storage_url}")))?;
    Ok(Layout { database, objects })
}

/// The file of a `sqlite://PATH?…` URL; `None` for other databases or in-memory SQLite.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// `vypusk backup DIR`.
pub async fn backup(settings: &Settings, dir: &Path) -> anyhow::Result<()> {
    let layout = sqlite_layout(settings, "backup")?;
    anyhow::ensure!(
        layout.database.exists(),
        "no database at {}: nothing to back up",
        layout.database.display()
    );
    ensure_empty_dir(dir, false)?;
    let objects_copy = dir.join(OBJECTS_DIR);

    // Before the snapshot: everything that exists now.
    let (mut objects, mut object_bytes) = copy_objects(&layout.objects, &objects_copy).await?;

    let snapshot = dir.join(DATABASE_FILE);
    let db = crate::db::connect(&settings.database_url()).await?;
    let target = snapshot
        .to_str()
        .context("the backup directory's path is not UTF-8")?;
    db.execute_unprepared(&format!("VACUUM INTO '{}'", target.replace('\'', "''")))
        .await
        .map_err(|e| anyhow::anyhow!("copying the database failed: {e}"))?;
    db.close().await.ok();

    // After it: objects uploaded while the first pass ran.
    let (more, more_bytes) = copy_objects(&layout.objects, &objects_copy).await?;
    objects += more;
    object_bytes += more_bytes;

    let mut copied_keys = Vec::new();
    for name in key_files() {
        let from = settings.data_dir.join(name);
        if from.exists() {
            // `fs::copy` keeps the permissions: the private key stays 0600.
            std::fs::copy(&from, dir.join(name))
                .with_context(|| format!("cannot copy {}", from.display()))?;
            copied_keys.push(name.to_owned());
        }
    }
    let manifest = Manifest {
        format: 1,
        vypusk_version: crate::VERSION.to_owned(),
        created_at: chrono::Utc::now(),
        objects,
        object_bytes,
        key_files: copied_keys,
    };
    std::fs::write(
        dir.join(MANIFEST),
        serde_json::to_vec_pretty(&manifest).expect("manifest serializes"),
    )?;
    tracing::info!(
        dir = %dir.display(),
        objects,
        object_bytes,
        "backup written"
    );
    println!(
        "backup written to {}: database, {objects} objects ({object_bytes} bytes), key files {}",
        dir.display(),
        manifest.key_files.join(", ")
    );
    Ok(())
}

/// `vypusk restore DIR [--force]`.
pub async fn restore(settings: &Settings, dir: &Path, force: bool) -> anyhow::Result<()> {
    let layout = sqlite_layout(settings, "restore")?;
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).with_context(|| {
            format!(
                "{} is not a finished `vypusk backup` (no {MANIFEST})",
                dir.display()
            )
        })?)
        .with_context(|| format!("unreadable {}", dir.join(MANIFEST).display()))?;
    anyhow::ensure!(
        manifest.format == 1,
        "backup format {} is not known to this vypusk",
        manifest.format
    );
    ensure_empty_dir(&settings.data_dir, force)?;
    if force {
        // A stale WAL next to the restored file would be replayed into it.
        for suffix in ["", "-wal", "-shm"] {
            remove_if_exists(&PathBuf::from(format!(
                "{}{suffix}",
                layout.database.display()
            )))?;
        }
        if layout.objects.exists() {
            std::fs::remove_dir_all(&layout.objects)
                .with_context(|| format!("cannot remove {}", layout.objects.display()))?;
        }
        for name in key_files() {
            remove_if_exists(&settings.data_dir.join(name))?;
        }
    } else {
        anyhow::ensure!(
            !layout.database.exists(),
            "{} exists; pass --force to replace it",
            layout.database.display()
        );
    }
    if let Some(parent) = layout.database.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(dir.join(DATABASE_FILE), &layout.database)
        .with_context(|| format!("cannot write {}", layout.database.display()))?;
    let (objects, object_bytes) = copy_objects(&dir.join(OBJECTS_DIR), &layout.objects).await?;
    for name in &manifest.key_files {
        anyhow::ensure!(
            key_files().contains(&name.as_str()),
            "unexpected key file {name:?} in the backup"
        );
        std::fs::copy(dir.join(name), settings.data_dir.join(name))
            .with_context(|| format!("cannot restore {name}"))?;
    }
    tracing::info!(dir = %dir.display(), objects, "backup restored");
    println!(
        "restored the backup of {} (vypusk {}) into {}: database, {objects} objects \
         ({object_bytes} bytes), key files {}",
        manifest.created_at.format("%Y-%m-%d %H:%M:%SZ"),
        manifest.vypusk_version,
        settings.data_dir.display(),
        manifest.key_files.join(", ")
    );
    Ok(())
}

/// Creates `dir`, or accepts it when empty (or anything with `force`).
fn ensure_empty_dir(dir: &Path, force: bool) -> anyhow::Result<()> {
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        anyhow::ensure!(
            force || entries.next().is_none(),
            "{} is not empty; use a new or empty directory{}",
            dir.display(),
            if force { "" } else { " (or --force)" }
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

fn remove_if_exists(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Copies the finished objects under `from` that `to` lacks; returns how many and their bytes.
/// Skips `tmp/` (uploads in progress) and object_store's staging files (`name#n`).
async fn copy_objects(from: &Path, to: &Path) -> anyhow::Result<(u64, u64)> {
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let mut copied = (0, 0);
        if from.exists() {
            copy_tree(&from, &to, true, &mut copied)?;
        }
        Ok(copied)
    })
    .await?
}

fn copy_tree(from: &Path, to: &Path, top: bool, copied: &mut (u64, u64)) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if (top && name_str == "tmp") || name_str.contains('#') {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&source, &target, false, copied)?;
        } else if kind.is_file() && !target.exists() {
            match std::fs::copy(&source, &target) {
                Ok(bytes) => {
                    copied.0 += 1;
                    copied.1 += bytes;
                }
                // Deleted since listed: not in the snapshot either (see the module docs).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot copy {}", source.display()));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite:///d/vypusk.db?mode=rwc"),
            Some(PathBuf::from("/d/vypusk.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://u@h/db"), None);
    }

    #[tokio::test]
    async fn postgres_deployments_are_told_what_to_back_up() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().to_path_buf(),
            database_url: Some("postgres://vypusk:secret@db.example/vypusk".into()),
            ..Settings::default()
        };
        let e = backup(&settings, &dir.path().join("b"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("pg_dump") && e.contains("bucket"), "{e}");
        assert!(
            e.contains("signing-key.pem") && e.contains("token-secret"),
            "{e}"
        );
        assert!(!e.contains("secret@"), "{e}");
        assert!(!dir.path().join("b").exists());
    }

    #[tokio::test]
    async fn restore_refuses_a_data_dir_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest {
            format: 1,
            vypusk_version: crate::VERSION.into(),
            created_at: chrono::Utc::now(),
            objects: 0,
            object_bytes: 0,
            key_files: vec![],
        };
        std::fs::write(
            dir.path().join(MANIFEST),
            serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
        let data = tempfile::tempdir().unwrap();
        std::fs::write(data.path().join("vypusk.db"), b"x").unwrap();
        let settings = Settings {
            data_dir: data.path().to_path_buf(),
            ..Settings::default()
        };
        let e = restore(&settings, dir.path(), false).await.unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
        assert_eq!(std::fs::read(data.path().join("vypusk.db")).unwrap(), b"x");
        // Without a manifest: not a finished backup.
        let e = restore(&settings, data.path(), true).await.unwrap_err();
        assert!(e.to_string().contains("not a finished"), "{e}");
    }
}
