//! Downloading one file: never more than the declared size, md5 and sha256 while streaming,
//! resume with `Range` + `If-Range`, start over when the server's file changed, fsync.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::fail::{Failure, IoContext};
use crate::http::Http;

const CHUNK: usize = 256 * 1024;

/// A file as the signed answer declares it.
pub struct Expected<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub size: u64,
    pub md5: &'a str,
    pub sha256: &'a str,
}

/// What the run did, for the report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fetched {
    /// Bytes that were already on disk from an interrupted run and were kept.
    pub resumed_from: u64,
    /// The server's file changed (or it ignored the range): the partial was thrown away.
    pub restarted: bool,
}

/// Sidecar of a partial file.
#[derive(Debug, Serialize, Deserialize)]
struct PartMeta {
    name: String,
    size: u64,
    etag: Option<String>,
}

enum Step {
    /// Worth another attempt (network trouble); what is on disk is kept for resuming.
    Retry(String),
    Fatal(Failure),
}

impl From<Failure> for Step {
    fn from(f: Failure) -> Step {
        Step::Fatal(f)
    }
}

pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    pub fn new(visible: bool, name: &str, size: u64) -> Progress {
        if !visible {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("template is valid")
            .progress_chars("=> "),
        );
        bar.set_message(name.to_owned());
        Progress(Some(bar))
    }
    fn set(&self, pos: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(pos);
        }
    }
    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Downloads `exp` into `part` (inside `DIR/.vypusk-update/partial/…`) and verifies it. On
/// success the verified, fsynced file is at `part`; on a verification failure nothing is left.
pub fn fetch(
    http: &Http,
    exp: &Expected<'_>,
    part: &Path,
    progress: &Progress,
) -> Result<Fetched, Failure> {
    let mut report = Fetched::default();
    let mut attempt = 0;
    let mut restart_budget = 2;
    loop {
        match try_once(http, exp, part, progress, &mut report) {
            Ok(()) => {
                progress.finish();
                return Ok(report);
            }
            Err(Step::Fatal(f)) => {
                progress.finish();
                return Err(f);
            }
            Err(Step::Retry(why)) if why == RESTART && restart_budget > 0 => {
                restart_budget -= 1;
            }
            Err(Step::Retry(why)) => {
                let why = if why == RESTART {
                    "the server kept answering the resumed range wrongly".to_owned()
                } else {
                    why
                };
                if attempt >= http.retries {
                    progress.finish();
                    return Err(Failure::network(format!(
                        "network error downloading {}: {why} ({}; run again to resume)",
                        exp.name,
                        crate::http::attempts(attempt + 1)
                    )));
                }
                std::thread::sleep(Http::backoff(attempt));
                attempt += 1;
            }
        }
    }
}

const RESTART: &str = "restart";

fn meta_path(part: &Path) -> PathBuf {
    part.with_extension("json")
}

fn discard(part: &Path) {
    let _ = fs::remove_file(part);
    let _ = fs::remove_file(meta_path(part));
}

fn try_once(
    http: &Http,
    exp: &Expected<'_>,
    part: &Path,
    progress: &Progress,
    report: &mut Fetched,
) -> Result<(), Step> {
    // What an earlier attempt left, if it can be resumed.
    let meta: Option<PartMeta> = fs::read(meta_path(part))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let etag = match meta {
        Some(m) if m.size == exp.size && m.name == exp.name && have <= exp.size => m.etag,
        _ => None,
    };
    if have > 0 && etag.is_none() {
        discard(part);
        have = 0;
    }

    if have == exp.size && have > 0 {
        // Complete on disk already (an earlier run stopped before verifying).
        return verify_on_disk(exp, part).map_err(Step::Fatal);
    }

    let mut request = http.agent.get(exp.url);
    if have > 0 {
        request = request
            .header("Range", format!("bytes={have}-"))
            .header("If-Range", etag.as_deref().unwrap_or_default());
    }
    let response = request
        .call()
        .map_err(|e| Step::Retry(format!("{}: {e}", exp.url)))?;
    let status = response.status().as_u16();
    let get = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_length = get("Content-Length").and_then(|v| v.trim().parse::<u64>().ok());
    let new_etag = get("ETag");
    let offset = match status {
        200 => {
            if have > 0 {
                report.restarted = true;
                report.resumed_from = 0;
            }
            0
        }
        206 if have > 0 => {
            let range = get("Content-Range").unwrap_or_default();
            if parse_content_range(&range) != Some((have, exp.size - 1, exp.size)) {
                // Not the range asked for: start over rather than guess.
                discard(part);
                report.restarted = true;
                return Err(Step::Retry(RESTART.into()));
            }
            report.resumed_from = have;
            have
        }
        416 => {
            discard(part);
            report.restarted = true;
            return Err(Step::Retry(RESTART.into()));
        }
        429 | 500..=599 => return Err(Step::Retry(format!("{} answered {status}", exp.url))),
        _ => {
            let body = response
                .into_body()
                .with_config()
                .limit(64 * 1024)
                .read_to_vec()
                .unwrap_or_default();
            let reason = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            return Err(Step::Fatal(Failure::network(format!(
                "the server refused the download of {} (HTTP {status}): {reason}",
                exp.name
            ))));
        }
    };
    let remaining = exp.size - offset;
    if let Some(cl) = content_length
        && cl != remaining
    {
        discard(part);
        return Err(Step::Fatal(Failure::refused(format!(
            "refusing {}: the server announced {cl} bytes where the signed answer declares {} \
             (from byte {offset}); nothing was installed",
            exp.name, exp.size
        ))));
    }

    // Remember the validator first, so an interruption below can be resumed next time.
    let meta = PartMeta {
        name: exp.name.to_owned(),
        size: exp.size,
        etag: new_etag.filter(|e| !e.starts_with("W/")),
    };
    fs::write(
        meta_path(part),
        serde_json::to_vec(&meta).expect("meta serializes"),
    )
    .ctx(|| format!("cannot write {}", meta_path(part).display()))?;

    let mut md5 = Md5::new();
    let mut sha = Sha256::new();
    let mut file = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(part)
        .ctx(|| format!("cannot open {}", part.display()))?;
    if offset > 0 {
        // The bytes kept from the interrupted run enter the hashes from disk.
        hash_prefix(&mut file, offset, &mut md5, &mut sha)
            .ctx(|| format!("cannot read {}", part.display()))?;
    }
    file.set_len(offset)
        .ctx(|| format!("cannot truncate {}", part.display()))?;
    file.seek(SeekFrom::Start(offset))
        .ctx(|| format!("cannot seek {}", part.display()))?;

    let mut reader = response.into_body().into_reader().take(remaining);
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    progress.set(offset);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let _ = file.sync_data();
                return Err(Step::Retry(format!(
                    "connection broke after {} of {} bytes: {e}",
                    offset + got,
                    exp.size
                )));
            }
        };
        file.write_all(&buf[..n])
            .ctx(|| format!("cannot write {}", part.display()))?;
        md5.update(&buf[..n]);
        sha.update(&buf[..n]);
        got += n as u64;
        progress.set(offset + got);
    }
    if got < remaining {
        let _ = file.sync_data();
        return Err(Step::Retry(format!(
            "connection closed after {} of {} bytes",
            offset + got,
            exp.size
        )));
    }
    if content_length.is_none() {
        // Without a Content-Length only the end of the stream says the file ended: one more
        // byte means the server sends more than the signed answer declares.
        let mut inner = reader.into_inner();
        let mut probe = [0u8; 1];
        if matches!(inner.read(&mut probe), Ok(1)) {
            drop(file);
            discard(part);
            return Err(Step::Fatal(Failure::refused(format!(
                "refusing {}: the server sends more than the {} bytes the signed answer \
                 declares; stopped there, nothing was installed",
                exp.name, exp.size
            ))));
        }
    }
    file.sync_all()
        .ctx(|| format!("cannot fsync {}", part.display()))?;
    drop(file);
    check_digests(
        exp,
        part,
        &hex::encode(md5.finalize()),
        &hex::encode(sha.finalize()),
    )
    .map_err(Step::Fatal)
}

fn hash_prefix(file: &mut File, len: u64, md5: &mut Md5, sha: &mut Sha256) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = (&mut *file).take(len);
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        sha.update(&buf[..n]);
        total += n as u64;
    }
    if total != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "partial file shrank",
        ));
    }
    Ok(())
}

/// Hashes a file on disk and compares with the declaration (for files complete on disk).
pub fn verify_on_disk(exp: &Expected<'_>, path: &Path) -> Result<(), Failure> {
    let mut file = File::open(path).ctx(|| format!("cannot open {}", path.display()))?;
    let len = file
        .metadata()
        .ctx(|| format!("cannot stat {}", path.display()))?
        .len();
    if len != exp.size {
        return Err(Failure::refused(format!(
            "refusing {}: it has {len} bytes where {} were declared",
            exp.name, exp.size
        )));
    }
    let mut md5 = Md5::new();
    let mut sha = Sha256::new();
    hash_prefix(&mut file, len, &mut md5, &mut sha)
        .ctx(|| format!("cannot read {}", path.display()))?;
    check_digests(
        exp,
        path,
        &hex::encode(md5.finalize()),
        &hex::encode(sha.finalize()),
    )
}

fn check_digests(exp: &Expected<'_>, path: &Path, md5: &str, sha256: &str) -> Result<(), Failure> {
    let what = if !sha256.eq_ignore_ascii_case(exp.sha256) {
        Some(format!(
            "sha256 is {sha256}, the signed answer says {}",
            exp.sha256
        ))
    } else if !md5.eq_ignore_ascii_case(exp.md5) {
        Some(format!("md5 is {md5}, the signed answer says {}", exp.md5))
    } else {
        None
    };
    match what {
        None => Ok(()),
        Some(what) => {
            discard(path);
            Err(Failure::refused(format!(
                "refusing {}: its {what}; nothing was installed",
                exp.name
            )))
        }
    }
}

/// `bytes START-END/TOTAL` → (start, end, total).
fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    Some((
        start.trim().parse().ok()?,
        end.trim().parse().ok()?,
        total.trim().parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(parse_content_range("bytes 10-99/100"), Some((10, 99, 100)));
        assert_eq!(parse_content_range("bytes 10-99/*"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
