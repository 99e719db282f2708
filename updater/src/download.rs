//! Downloading one file: never more than the declared size, md5 and sha256 while streaming
//! (each on its own thread beside the download, see `digest`), resume with `Range` +
//! `If-Range`, start over when the server's file changed, fsync.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{self, ALIGN, Digester, Digests};
use crate::fail::{Failure, IoContext};
use crate::http::Http;

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

    let mut file = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(part)
        .ctx(|| format!("cannot open {}", part.display()))?;
    let mut digester = if offset > 0 {
        // The bytes kept from the interrupted run enter the hashes from disk.
        digest::hash_prefix(&mut file, offset).ctx(|| format!("cannot read {}", part.display()))?
    } else {
        Digester::new()
    };
    file.set_len(offset)
        .ctx(|| format!("cannot truncate {}", part.display()))?;
    file.seek(SeekFrom::Start(offset))
        .ctx(|| format!("cannot seek {}", part.display()))?;
    let mut sink = Sink::new(file, part, offset);

    let mut reader = response.into_body().into_reader().take(remaining);
    let mut got = 0u64;
    progress.set(offset);
    loop {
        // Whole buffers (several reads of the body each): fewer hand-overs to the hash threads
        // and writes of whole blocks. A resume from the middle of a block first reads up to the
        // next block boundary, so that the buffers after it can go to disk directly.
        let mut buf = digester.buffer();
        let misaligned = ((offset + got) % ALIGN as u64) as usize;
        let want = if misaligned == 0 {
            buf.len()
        } else {
            ALIGN - misaligned
        };
        let (n, broke) = fill(&mut reader, &mut buf[..want]);
        if n == 0 && broke.is_none() {
            break;
        }
        // What arrived before a break is kept on disk, for the resume.
        sink.write(&buf[..n])
            .ctx(|| format!("cannot write {}", part.display()))?;
        digester.push(buf, n);
        got += n as u64;
        progress.set(offset + got);
        if let Some(e) = broke {
            let _ = sink.sync_data();
            return Err(Step::Retry(format!(
                "connection broke after {} of {} bytes: {e}",
                offset + got,
                exp.size
            )));
        }
    }
    if got < remaining {
        let _ = sink.sync_data();
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
            drop(sink);
            discard(part);
            return Err(Step::Fatal(Failure::refused(format!(
                "refusing {}: the server sends more than the {} bytes the signed answer \
                 declares; stopped there, nothing was installed",
                exp.name, exp.size
            ))));
        }
    }
    // The fsync runs while the hash threads finish their last buffers.
    sink.sync_all()
        .ctx(|| format!("cannot fsync {}", part.display()))?;
    drop(sink);
    check_digests(exp, part, &digester.finish()).map_err(Step::Fatal)
}

/// Where the download goes: `part`, at increasing offsets from where it resumes. On Linux,
/// whole aligned blocks bypass the page cache (`O_DIRECT`, through a second handle, from the
/// digester's page-aligned buffers): copying a gigabyte into freshly allocated page-cache pages
/// cost the download thread 0.4 to 2.7 CPU-seconds in `bench/updater.sh` (more than sha256),
/// on the cores md5 and sha256 need, and the final fsync then has little left to write back.
/// Everything else (a resumed start inside a block, the last partial block, file systems that
/// refuse direct I/O) goes through the page cache as before.
struct Sink {
    file: File,
    /// Where `file`'s own position is.
    file_pos: u64,
    /// Where the next byte goes.
    pos: u64,
    direct: Option<File>,
}

impl Sink {
    fn new(file: File, path: &Path, pos: u64) -> Sink {
        Sink {
            file,
            file_pos: pos,
            pos,
            direct: direct::open(path),
        }
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        if let Some(direct) = &self.direct
            && self.pos.is_multiple_of(ALIGN as u64)
            && data.len().is_multiple_of(ALIGN)
            && data.as_ptr().align_offset(ALIGN) == 0
        {
            match direct::write_all_at(direct, data, self.pos) {
                Ok(()) => {
                    self.pos += data.len() as u64;
                    return Ok(());
                }
                // Not for this file system after all (alignment, or no direct I/O): the page
                // cache from here on. The positioned write is repeated whole below.
                Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => self.direct = None,
                Err(e) => return Err(e),
            }
        }
        if self.file_pos != self.pos {
            self.file.seek(SeekFrom::Start(self.pos))?;
        }
        self.file.write_all(data)?;
        self.pos += data.len() as u64;
        self.file_pos = self.pos;
        Ok(())
    }

    fn sync_data(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    fn sync_all(&self) -> std::io::Result<()> {
        self.file.sync_all()
    }
}

#[cfg(target_os = "linux")]
mod direct {
    use std::fs::File;
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    use std::path::Path;

    /// `O_DIRECT` (not in std; the value is per architecture, see the kernel's `fcntl.h`).
    #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
    const O_DIRECT: Option<i32> = Some(0o200000);
    #[cfg(any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "riscv64",
        target_arch = "loongarch64",
        target_arch = "s390x"
    ))]
    const O_DIRECT: Option<i32> = Some(0o40000);
    #[cfg(not(any(
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "riscv64",
        target_arch = "loongarch64",
        target_arch = "s390x"
    )))]
    const O_DIRECT: Option<i32> = None;

    /// A second, write-only handle on `path` that bypasses the page cache, if the file system
    /// allows one.
    pub fn open(path: &Path) -> Option<File> {
        File::options()
            .write(true)
            .custom_flags(O_DIRECT?)
            .open(path)
            .ok()
    }

    pub fn write_all_at(file: &File, data: &[u8], pos: u64) -> std::io::Result<()> {
        file.write_all_at(data, pos)
    }
}

#[cfg(not(target_os = "linux"))]
mod direct {
    use std::fs::File;
    use std::path::Path;

    pub fn open(_: &Path) -> Option<File> {
        None
    }

    pub fn write_all_at(_: &File, _: &[u8], _: u64) -> std::io::Result<()> {
        unreachable!("no direct handle is opened here")
    }
}

/// Reads until `buf` is full or the body ends: (bytes read, the error that stopped it early).
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> (usize, Option<std::io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

/// Hashes a file on disk and compares with the declaration (for files complete on disk).
pub fn verify_on_disk(exp: &Expected<'_>, path: &Path) -> Result<(), Failure> {
    let file = File::open(path).ctx(|| format!("cannot open {}", path.display()))?;
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
    drop(file);
    let (len, digests) =
        digest::hash_file(path).ctx(|| format!("cannot read {}", path.display()))?;
    if len != exp.size {
        // It changed under us.
        return Err(Failure::refused(format!(
            "refusing {}: it has {len} bytes where {} were declared",
            exp.name, exp.size
        )));
    }
    check_digests(exp, path, &digests)
}

fn check_digests(exp: &Expected<'_>, path: &Path, digests: &Digests) -> Result<(), Failure> {
    let (md5, sha256) = (&digests.md5, &digests.sha256);
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

    /// Whole aligned blocks through the direct handle (where the file system has one), the rest
    /// through the page cache, each at its place.
    #[test]
    fn sink_writes_every_piece_at_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..5 * ALIGN + 100).map(|i| (i * 7 % 251) as u8).collect();
        for (start, direct) in [(0, true), (1000, true), (0, false), (1000, false)] {
            let path = dir.path().join(format!("f{start}{direct}"));
            let mut file = File::create(&path).unwrap();
            file.write_all(&data[..start]).unwrap();
            let mut sink = Sink::new(file, &path, start as u64);
            if !direct {
                sink.direct = None;
            }
            let mut d = Digester::new();
            let mut pos = start;
            // Up to the next block, then two blocks, then the rest.
            for end in [start.next_multiple_of(ALIGN), pos + 3 * ALIGN, data.len()] {
                let end = end.max(pos).min(data.len());
                let mut buf = d.buffer();
                buf[..end - pos].copy_from_slice(&data[pos..end]);
                sink.write(&buf[..end - pos]).unwrap();
                d.push(buf, end - pos);
                pos = end;
            }
            sink.sync_all().unwrap();
            drop(sink);
            assert!(
                fs::read(&path).unwrap() == data,
                "from {start}, direct {direct}"
            );
        }
    }

    #[test]
    fn content_range() {
        assert_eq!(parse_content_range("bytes 10-99/100"), Some((10, 99, 100)));
        assert_eq!(parse_content_range("bytes 10-99/*"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
