//! On-disk layout of an install root `DIR`:
//!
//! ```text
//! DIR/current                          symlink -> releases/<version> (replaced by rename)
//! DIR/releases/<version>/<name>        verified files; a release directory appears whole
//! DIR/.vypusk-update/state.json        installed, previous, highest seen version
//! DIR/.vypusk-update/lock              held while a command changes anything
//! DIR/.vypusk-update/manifests/<version>.json   what was verified: names, sizes, md5, sha256
//! DIR/.vypusk-update/partial/<version>/<sha256>.part   interrupted download (+ .json: etag)
//! DIR/.vypusk-update/staging/          verified files wait here for the directory rename
//! ```

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vypusk_protocol::{FileName, Version, VersionScheme};

use crate::fail::{Failure, IoContext};

pub const STATE_DIR: &str = ".vypusk-update";

pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
        }
    }
    pub fn meta(&self) -> PathBuf {
        self.dir.join(STATE_DIR)
    }
    pub fn state_file(&self) -> PathBuf {
        self.meta().join("state.json")
    }
    pub fn releases(&self) -> PathBuf {
        self.dir.join("releases")
    }
    /// `version` must have passed `safe_version`.
    pub fn release(&self, version: &str) -> PathBuf {
        self.releases().join(version)
    }
    pub fn manifests(&self) -> PathBuf {
        self.meta().join("manifests")
    }
    pub fn manifest(&self, version: &str) -> PathBuf {
        self.manifests().join(format!("{version}.json"))
    }
    pub fn partial(&self) -> PathBuf {
        self.meta().join("partial")
    }
    pub fn staging(&self) -> PathBuf {
        self.meta().join("staging")
    }
    pub fn current(&self) -> PathBuf {
        self.dir.join("current")
    }

    /// Creates the directories a changing command needs and takes the lock.
    pub fn prepare(&self) -> Result<Lock, Failure> {
        for d in [
            self.meta(),
            self.releases(),
            self.manifests(),
            self.partial(),
            self.staging(),
        ] {
            fs::create_dir_all(&d).ctx(|| format!("cannot create {}", d.display()))?;
        }
        let path = self.meta().join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                // Nobody else holds the lock: whatever waits in staging/ is a stopped run's.
                if let Ok(entries) = fs::read_dir(self.staging()) {
                    for e in entries.flatten() {
                        let _ = fs::remove_dir_all(e.path());
                    }
                }
                Ok(Lock { _file: file })
            }
            Err(fs::TryLockError::WouldBlock) => Err(Failure::local(format!(
                "another vypusk-update is working in {}",
                self.dir.display()
            ))),
            Err(fs::TryLockError::Error(e)) => Err(Failure::local(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }

    /// The version `DIR/current` points at, if it is a link into `releases/`.
    pub fn current_target(&self) -> Option<String> {
        let target = read_current(&self.current())?;
        let name = target.strip_prefix("releases/")?;
        FileName::parse(name).ok().map(|n| n.as_str().to_owned())
    }

    /// Points `DIR/current` at `releases/<version>` atomically: a new link is made beside it and
    /// renamed over the old one.
    pub fn switch_current(&self, version: &str) -> Result<(), Failure> {
        let tmp = self.dir.join(format!(".current.{}", random_hex(6)));
        let target = format!("releases/{version}");
        write_current(&tmp, &target).ctx(|| format!("cannot create {}", tmp.display()))?;
        if let Err(e) = fs::rename(&tmp, self.current()) {
            let _ = fs::remove_file(&tmp);
            return Err(Failure::local(format!(
                "cannot switch {}: {e}",
                self.current().display()
            )));
        }
        sync_dir(&self.dir);
        Ok(())
    }
}

#[cfg(unix)]
fn write_current(path: &Path, target: &str) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, path)
}

#[cfg(unix)]
fn read_current(path: &Path) -> Option<String> {
    fs::read_link(path)
        .ok()
        .and_then(|p| p.to_str().map(str::to_owned))
}

/// Without symlinks `current` is a pointer file holding `releases/<version>`.
#[cfg(not(unix))]
fn write_current(path: &Path, target: &str) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(target.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn read_current(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

pub struct Lock {
    _file: File,
}

/// The state file.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    #[serde(default)]
    pub format: u32,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub distribution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<VersionScheme>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The highest version seen installable (downloadable for this license, fitting this
    /// configuration) in a verified answer, downloaded or installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest_seen: Option<String>,
    /// Installed versions in the order they were switched to, the current one last. `rollback`
    /// pops the current one, so a second rollback goes further back, never forward.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<String>,
    /// `install` (without `--version`) switches to nothing newer than this (`hold`, `rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
}

impl State {
    pub fn load(layout: &Layout) -> Result<State, Failure> {
        let path = layout.state_file();
        let mut state = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<State>(&bytes).map_err(|e| {
                Failure::local(format!("the state file {} is damaged: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => {
                return Err(Failure::local(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        // A state file written before `history` existed.
        if state.history.is_empty() {
            state.history = [state.previous.clone(), state.installed.clone()]
                .into_iter()
                .flatten()
                .collect();
        }
        // `current` is switched before the state is written: if a run stopped in between, the
        // link is the truth.
        if let Some(current) = layout.current_target()
            && state.installed.as_deref() != Some(current.as_str())
        {
            state.switched_to(current);
        }
        Ok(state)
    }

    /// Records that `current` now points at `version`.
    pub fn switched_to(&mut self, version: String) {
        if self.history.last() != Some(&version) {
            self.history.push(version.clone());
        }
        self.installed = Some(version);
        self.sync_previous();
    }

    /// Records a rollback: the current version leaves the history; returns the one before it.
    pub fn roll_back(&mut self) -> Option<String> {
        if self.history.len() < 2 {
            return None;
        }
        self.history.pop();
        let back = self.history.last().cloned();
        self.installed = back.clone();
        self.sync_previous();
        back
    }

    /// Forgets a release that is no longer on disk (pruned).
    pub fn forget(&mut self, version: &str) {
        self.history.retain(|v| v != version);
        self.sync_previous();
    }

    fn sync_previous(&mut self) {
        let n = self.history.len();
        self.previous = (n >= 2).then(|| self.history[n - 2].clone());
    }

    pub fn save(&self, layout: &Layout) -> Result<(), Failure> {
        let mut s = self.clone();
        s.format = 1;
        let bytes = serde_json::to_vec_pretty(&s).expect("state serializes");
        write_atomic(&layout.state_file(), &bytes)
    }

    /// Raises `highest_seen` to `v` if it is higher.
    pub fn see(&mut self, scheme: VersionScheme, v: &Version) {
        let higher = match self
            .highest_seen
            .as_deref()
            .and_then(|h| Version::parse(scheme, h).ok())
        {
            Some(h) => v > &h,
            None => true,
        };
        if higher {
            self.highest_seen = Some(v.to_string());
        }
    }
}

/// What was verified for a downloaded release.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub version: String,
    #[serde(rename = "type")]
    pub distribution: String,
    pub release_id: i64,
    pub published_at: String,
    pub downloaded_at: String,
    pub changelog: String,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestFile {
    pub name: String,
    pub size: u64,
    pub md5: String,
    pub sha256: String,
}

impl Manifest {
    pub fn load(layout: &Layout, version: &str) -> Option<Manifest> {
        let bytes = fs::read(layout.manifest(version)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// A version string from the server or the user that is safe as a directory name: it parses in
/// the scheme and is a plain file name.
pub fn safe_version(scheme: VersionScheme, text: &str) -> Result<Version, String> {
    let v = Version::parse(scheme, text).map_err(|e| e.to_string())?;
    FileName::parse(text).map_err(|e| e.to_string())?;
    if text.starts_with('.') {
        return Err(format!("version {text:?} starts with a dot"));
    }
    Ok(v)
}

/// Writes `bytes` to `path` by a temporary file, fsync and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let dir = path.parent().expect("path has a parent");
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        random_hex(6)
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Failure::local(format!(
            "cannot write {}: {e}",
            path.display()
        )));
    }
    sync_dir(dir);
    Ok(())
}

/// fsync of a directory, so a rename inside it survives a crash. Best effort.
pub fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

pub fn random_hex(bytes: usize) -> String {
    use ring::rand::SecureRandom;
    let mut buf = vec![0u8; bytes];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("the system random generator works");
    hex::encode(buf)
}

/// Now as RFC 3339 UTC, without a date crate.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_that_are_path_tricks_are_refused() {
        for bad in ["..", "../1", "1/2", ".1", "1.2/..", ""] {
            assert!(safe_version(VersionScheme::OneC, bad).is_err(), "{bad}");
        }
        assert!(safe_version(VersionScheme::OneC, "4.0.4.11").is_ok());
        assert!(safe_version(VersionScheme::Semver, "1.2.3-beta.1").is_ok());
    }

    #[test]
    fn rfc3339_shape() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20"));
        assert!(now.ends_with('Z'));
    }
}
