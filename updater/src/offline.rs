//! Offline installs (issue 10): `download --bundle` writes the signed answer and the verified
//! files into one tar (layout: `vypusk_protocol::bundle`); `install --from-bundle` checks it on a
//! machine without network access as an online install checks an answer and its downloads —
//! signature against the pinned keys, TYPE, the answer's age by its signed `server_time`, the
//! configuration, the version rule, every size and digest — and then installs it the same way.
//! A refused bundle leaves nothing visible: files are unpacked under `.vypusk-update/partial/`
//! and only a wholly verified release is renamed into `releases/`.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde_json::json;
use vypusk_protocol::bundle::{
    ANSWER_ENTRY, BundleHeader, EntryPath, FORMAT, HEADER_ENTRY, MAX_ANSWER, MAX_HEADER, file_entry,
};
use vypusk_protocol::wire::ReleasesResponse;
use vypusk_protocol::{Version, compat};

use crate::cli::Settings;
use crate::commands::{
    Local, Outcome, already_there, checked_files, commit_release, configuration,
    incompatible_message, manifest_of, not_entitled_message, offers_from, part_path,
};
use crate::digest::{Buffer, Digester};
use crate::download::Expected;
use crate::fail::{Failure, IoContext};
use crate::http::SignedAnswer;
use crate::rules::{self, Offer};
use crate::state::{Manifest, random_hex, sync_dir};

/// Default `--max-age`.
pub const DEFAULT_MAX_AGE: &str = "30d";

/// Writes the bundle of `offer` (downloaded and verified as `manifest`) to `out`, by a temporary
/// file and a rename. Each file is hashed again on its way in: a file changed on disk since it
/// was verified is refused, not packed.
pub fn write_bundle(
    local: &Local<'_>,
    signed: &SignedAnswer,
    offer: &Offer,
    manifest: &Manifest,
    out: &Path,
) -> Result<(), Failure> {
    let Some(signature) = signed.signature.clone() else {
        return Err(Failure::usage(
            "a bundle carries the server's signature, and this answer has none",
        ));
    };
    let header = BundleHeader {
        format: FORMAT,
        distribution: local.distribution.clone(),
        version: offer.module.uniqid.clone(),
        query_id: signed.query_id.clone(),
        signature,
        made_by: concat!("vypusk-update/", env!("CARGO_PKG_VERSION")).to_owned(),
    };
    let header = serde_json::to_vec_pretty(&header).expect("header serializes");
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Failure::usage(format!("--bundle {}: not a file name", out.display())))?;
    let tmp = dir.join(format!(".{name}.{}.tmp", random_hex(6)));
    let result = pack(local, &header, &signed.body, manifest, &tmp).and_then(|()| {
        fs::rename(&tmp, out).ctx(|| format!("cannot write {}", out.display()))?;
        sync_dir(&dir);
        Ok(())
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn pack(
    local: &Local<'_>,
    header: &[u8],
    answer: &[u8],
    manifest: &Manifest,
    tmp: &Path,
) -> Result<(), Failure> {
    let file = File::create(tmp).ctx(|| format!("cannot create {}", tmp.display()))?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let io = |e: io::Error| Failure::local(format!("cannot write {}: {e}", tmp.display()));
    let append = |tar: &mut tar::Builder<_>, path: &str, size: u64, data: &mut dyn Read| {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(now);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, path, data)
    };
    append(
        &mut tar,
        HEADER_ENTRY,
        header.len() as u64,
        &mut &header[..],
    )
    .map_err(io)?;
    append(
        &mut tar,
        ANSWER_ENTRY,
        answer.len() as u64,
        &mut &answer[..],
    )
    .map_err(io)?;
    let release = local.layout.release(&manifest.version);
    for f in &manifest.files {
        let path = release.join(&f.name);
        let source = File::open(&path).ctx(|| format!("cannot open {}", path.display()))?;
        let mut reader = Hashing::new(source.take(f.size));
        append(&mut tar, &file_entry(&f.name), f.size, &mut reader).map_err(io)?;
        let (len, got) = reader.finish();
        if len != f.size || got.sha256 != f.sha256 || got.md5 != f.md5 {
            return Err(Failure::refused(format!(
                "refusing to pack {}: it changed on disk since it was verified",
                path.display()
            )));
        }
    }
    let file = tar
        .into_inner()
        .map_err(io)?
        .into_inner()
        .map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)
}

/// A reader that hashes what passes through it, collecting it into the digester's buffers.
struct Hashing<R> {
    inner: R,
    digester: Digester,
    pending: Option<(Buffer, usize)>,
    len: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            digester: Digester::new(),
            pending: None,
            len: 0,
        }
    }
    fn finish(mut self) -> (u64, crate::digest::Digests) {
        if let Some((buf, filled)) = self.pending.take() {
            self.digester.push(buf, filled);
        }
        (self.len, self.digester.finish())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        let mut data = &out[..n];
        while !data.is_empty() {
            let (mut buf, filled) = match self.pending.take() {
                Some(p) => p,
                None => (self.digester.buffer(), 0),
            };
            let take = data.len().min(buf.len() - filled);
            buf[filled..filled + take].copy_from_slice(&data[..take]);
            data = &data[take..];
            if filled + take == buf.len() {
                self.digester.push(buf, filled + take);
            } else {
                self.pending = Some((buf, filled + take));
            }
        }
        self.len += n as u64;
        Ok(n)
    }
}

fn damaged(e: impl std::fmt::Display) -> Failure {
    Failure::refused(format!(
        "refusing the bundle: it is truncated or damaged ({e}); nothing was installed"
    ))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Reads the next entry's bytes, at most `cap`, after checking its path.
fn small_entry<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    expected: &str,
    cap: u64,
) -> Result<Vec<u8>, Failure> {
    let mut entry = entries
        .next()
        .ok_or_else(|| damaged(format!("it ends before {expected}")))?
        .map_err(damaged)?;
    let path = entry
        .path()
        .map_err(damaged)?
        .to_string_lossy()
        .into_owned();
    if path != expected {
        return Err(Failure::refused(format!(
            "refusing the bundle: its entry {path:?} stands where {expected} belongs; it is not \
             a vypusk bundle"
        )));
    }
    if entry.size() > cap {
        return Err(Failure::refused(format!(
            "refusing the bundle: {expected} is larger than {cap} bytes"
        )));
    }
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    (&mut entry)
        .take(cap)
        .read_to_end(&mut bytes)
        .map_err(damaged)?;
    Ok(bytes)
}

pub fn install_from_bundle(
    settings: &Settings,
    path: &Path,
    max_age: Option<&str>,
    exec: Option<&str>,
) -> Result<Outcome, Failure> {
    let max_age = rules::parse_age(max_age.unwrap_or(DEFAULT_MAX_AGE)).map_err(Failure::usage)?;
    let keys = settings.pinned()?;
    settings.configuration()?;
    let mut local = Local::open(settings, settings.distribution.as_deref())?;
    let file = File::open(path).ctx(|| format!("cannot open the bundle {}", path.display()))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, file));
    let mut entries = archive.entries().map_err(damaged)?;

    let header = small_entry(&mut entries, HEADER_ENTRY, MAX_HEADER)?;
    let header: BundleHeader = serde_json::from_slice(&header).map_err(|e| {
        Failure::refused(format!(
            "refusing the bundle: its {HEADER_ENTRY} is unreadable: {e}"
        ))
    })?;
    if header.format != FORMAT {
        return Err(Failure::refused(format!(
            "refusing the bundle: format {} is not {FORMAT} (made by a newer version?)",
            header.format
        )));
    }
    if header.distribution != local.distribution {
        return Err(Failure::refused(format!(
            "refusing the bundle: it holds {} {}, not a release of {}",
            header.distribution, header.version, local.distribution
        )));
    }
    let answer = small_entry(&mut entries, ANSWER_ENTRY, MAX_ANSWER)?;
    match keys {
        Some(keys) => keys
            .verify_response(&header.query_id, &answer, Some(&header.signature))
            .map_err(|e| {
                Failure::refused(format!(
                    "refusing the bundle: {e}; it was changed after the server signed it, or \
                     comes from a server that does not hold the pinned key"
                ))
            })?,
        None => eprintln!(
            "warning: --insecure-skip-signature: the bundle's answer is NOT verified; whoever \
             made the file chooses what gets installed"
        ),
    }
    let answer: ReleasesResponse = serde_json::from_slice(&answer).map_err(|e| {
        Failure::refused(format!(
            "refusing the bundle: its answer is not a releases list: {e}"
        ))
    })?;
    let made = rules::parse_rfc3339(&answer.server_time).ok_or_else(|| {
        Failure::refused(format!(
            "refusing the bundle: its answer carries no valid server_time ({:?}), so its age \
             cannot be judged",
            answer.server_time
        ))
    })?;
    let age = now_secs() - made;
    if age > max_age as i64 {
        return Err(Failure::refused(format!(
            "refusing the bundle: the server signed its answer at {}, {} days ago; --max-age \
             allows {} days",
            answer.server_time,
            age / 86_400,
            max_age / 86_400
        )));
    }

    let scheme = local.scheme_of(&answer.modules)?;
    let versions = local.versions_in(scheme)?;
    let offers = offers_from(answer.modules, &local.distribution, scheme)?;
    let Some(offer) = offers.iter().find(|o| o.module.uniqid == header.version) else {
        return Err(Failure::refused(format!(
            "refusing the bundle: its header names {} {}, which its signed answer does not hold",
            header.distribution, header.version
        )));
    };
    let dist = local.distribution.clone();
    if !offer.module.downloadable {
        return Err(Failure::not_entitled(not_entitled_message(&dist, offer)));
    }
    let conf_version = settings
        .conf_version
        .as_deref()
        .and_then(|v| Version::parse_1c(v).ok());
    if !settings.show_untested
        && !compat::fits(
            &offer.module.compatibility,
            settings.conf(),
            conf_version.as_ref(),
        )
    {
        return Err(Failure::incompatible(incompatible_message(
            settings, &dist, offer,
        )));
    }
    if let Some(hold) = &versions.hold
        && &offer.version > hold
    {
        return Err(Failure::usage(format!(
            "{} is held at {hold}: `unhold` first to install {}",
            settings.dir.display(),
            offer.version
        )));
    }
    rules::version_rule(
        &offer.version,
        versions.installed.as_ref(),
        versions.highest_seen.as_ref(),
        versions.hold.as_ref(),
        settings.allow_downgrade,
    )
    .map_err(Failure::refused)?;

    let files = checked_files(&offer.module, false)?;
    let manifest = manifest_of(&offer.module, &dist, &files);
    if already_there(&local.layout, &manifest)?.is_none() {
        let partial = local.layout.partial().join(&manifest.version);
        let unpacked = unpack(&local, &mut entries, &manifest.version, &files);
        if let Err(e) = unpacked {
            let _ = fs::remove_dir_all(&partial);
            return Err(e);
        }
        commit_release(&local.layout, &manifest, &files)?;
    }
    let mut out = crate::lifecycle::switch_to(&mut local, &manifest, scheme, exec, false)?;
    out.json["from_bundle"] = json!(path);
    out.json["server_time"] = json!(answer.server_time);
    out.json["configuration"] = json!(configuration(settings));
    out.text = format!(
        "{}(from the bundle {}, signed by the server at {})\n",
        out.text,
        path.display(),
        answer.server_time
    );
    Ok(out)
}

/// Streams each declared file from its entry into its part file, checking path, size and
/// digests; then checks that nothing follows.
fn unpack<R: Read>(
    local: &Local<'_>,
    entries: &mut tar::Entries<'_, R>,
    version: &str,
    files: &[Expected<'_>],
) -> Result<(), Failure> {
    let partial = local.layout.partial().join(version);
    fs::create_dir_all(&partial).ctx(|| format!("cannot create {}", partial.display()))?;
    for f in files {
        let mut entry = entries
            .next()
            .ok_or_else(|| damaged(format!("it ends before the file {}", f.name)))?
            .map_err(damaged)?;
        let path = entry
            .path()
            .map_err(damaged)?
            .to_string_lossy()
            .into_owned();
        if EntryPath::classify(&path) != EntryPath::File(f.name) {
            return Err(Failure::refused(format!(
                "refusing the bundle: entry {path:?} stands where {} belongs",
                file_entry(f.name)
            )));
        }
        if entry.size() != f.size {
            return Err(Failure::refused(format!(
                "refusing the bundle: {} has {} bytes where the signed answer declares {}",
                f.name,
                entry.size(),
                f.size
            )));
        }
        let part = part_path(&local.layout, version, f);
        let mut out = File::create(&part).ctx(|| format!("cannot create {}", part.display()))?;
        let mut digester = Digester::new();
        let mut got = 0u64;
        loop {
            let mut buf = digester.buffer();
            let n = match entry.read(&mut buf[..]) {
                Ok(n) => n,
                Err(e) => {
                    digester.push(buf, 0);
                    return Err(damaged(e));
                }
            };
            if n == 0 {
                digester.push(buf, 0);
                break;
            }
            got += n as u64;
            if got > f.size {
                return Err(damaged(format!("{} is longer than declared", f.name)));
            }
            out.write_all(&buf[..n])
                .ctx(|| format!("cannot write {}", part.display()))?;
            digester.push(buf, n);
        }
        if got != f.size {
            return Err(damaged(format!(
                "{} ends after {got} of {} bytes",
                f.name, f.size
            )));
        }
        let digests = digester.finish();
        if !digests.sha256.eq_ignore_ascii_case(f.sha256) {
            return Err(Failure::refused(format!(
                "refusing the bundle: {}'s sha256 is {}, the signed answer says {}; nothing was \
                 installed",
                f.name, digests.sha256, f.sha256
            )));
        }
        if !digests.md5.eq_ignore_ascii_case(f.md5) {
            return Err(Failure::refused(format!(
                "refusing the bundle: {}'s md5 is {}, the signed answer says {}; nothing was \
                 installed",
                f.name, digests.md5, f.md5
            )));
        }
        out.sync_all()
            .ctx(|| format!("cannot fsync {}", part.display()))?;
    }
    if let Some(next) = entries.next() {
        let path = next
            .map_err(damaged)?
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Err(Failure::refused(format!(
            "refusing the bundle: it holds {path:?} besides the release's files"
        )));
    }
    Ok(())
}
