//! The five commands.

use std::fs;
use std::io::IsTerminal;

use serde_json::{Value, json};
use vypusk_protocol::wire::{CheckRequest, Module, ReleasesResponse};
use vypusk_protocol::{FileName, Version, VersionScheme};

use crate::cli::{Remote, Settings};
use crate::download::{self, Expected, Fetched, Progress};
use crate::fail::{Failure, IoContext, code};
use crate::http::Http;
use crate::state::{
    Layout, Manifest, ManifestFile, State, now_rfc3339, random_hex, safe_version, sync_dir,
    write_atomic,
};

/// What a command prints: a JSON value for `--json`, text otherwise, and the exit code.
pub struct Outcome {
    pub code: i32,
    pub json: Value,
    pub text: String,
}

/// A release from a verified answer whose version and file names are safe to use.
struct Offer {
    version: Version,
    module: Module,
}

struct Ctx<'a> {
    settings: &'a Settings,
    remote: Remote<'a>,
    layout: Layout,
    scheme: VersionScheme,
    http: Http,
    state: State,
    /// The installed version the checks compare against (state file or --installed-version).
    installed: Option<Version>,
    highest_seen: Option<Version>,
}

impl<'a> Ctx<'a> {
    fn open(settings: &'a Settings) -> Result<(Ctx<'a>, crate::state::Lock), Failure> {
        let remote = settings.remote()?;
        let layout = Layout::new(&settings.dir);
        let lock = layout.prepare()?;
        let mut state = State::load(&layout)?;
        if let Some(d) = &state.distribution
            && d != remote.distribution
        {
            return Err(Failure::usage(format!(
                "{} holds releases of {d}, not of {}; use another --dir",
                settings.dir.display(),
                remote.distribution
            )));
        }
        let scheme = settings.scheme.or(state.scheme).unwrap_or_default();
        state.distribution = Some(remote.distribution.to_owned());
        state.scheme = Some(scheme);
        let installed_text = settings
            .installed_version
            .clone()
            .or_else(|| state.installed.clone())
            .filter(|s| !s.is_empty());
        let installed = match installed_text {
            Some(t) => Some(Version::parse(scheme, &t).map_err(|e| {
                Failure::usage(format!("installed version: {e} (scheme {scheme})"))
            })?),
            None => None,
        };
        let highest_seen = state
            .highest_seen
            .as_deref()
            .and_then(|h| Version::parse(scheme, h).ok());
        if settings.public_key.is_none() {
            eprintln!(
                "warning: --insecure-skip-signature: answers are NOT verified; anyone on the \
                 network path can choose what gets installed"
            );
        }
        let http = Http::new(settings)?;
        Ok((
            Ctx {
                settings,
                remote,
                layout,
                scheme,
                http,
                state,
                installed,
                highest_seen,
            },
            lock,
        ))
    }

    /// Asks `getAvailableReleases`; returns the verified, validated offers, newest first.
    fn ask(&mut self, everything: bool, count_downloads: bool) -> Result<Vec<Offer>, Failure> {
        let flag = |b: bool| if b { "Y" } else { "N" }.to_owned();
        let request = CheckRequest {
            installed_version: if everything {
                String::new()
            } else {
                self.installed
                    .as_ref()
                    .map(Version::to_string)
                    .unwrap_or_default()
            },
            distribution: self.remote.distribution.to_owned(),
            conf: self.remote.conf.to_owned(),
            conf_version: self.remote.conf_version.to_owned(),
            key: self.settings.key.clone(),
            show_untested: flag(self.settings.show_untested),
            count_downloads: flag(count_downloads),
        };
        let url = format!("{}/releases/v1/1c/getAvailableReleases", self.remote.server);
        let body = self
            .http
            .signed_post(&url, &request, self.settings.public_key.as_ref())?;
        let answer: ReleasesResponse = serde_json::from_slice(&body).map_err(|e| {
            Failure::network(format!("the server's answer is not a releases list: {e}"))
        })?;
        let mut offers = Vec::with_capacity(answer.modules.len());
        for module in answer.modules {
            if module.distribution != self.remote.distribution {
                return Err(Failure::refused(format!(
                    "refusing the answer: it offers release {:?} of {:?}, but {:?} was asked for",
                    module.uniqid, module.distribution, self.remote.distribution
                )));
            }
            let version = safe_version(self.scheme, &module.uniqid).map_err(|e| {
                Failure::refused(format!(
                    "refusing the answer: release version {:?} is unusable: {e}",
                    module.uniqid
                ))
            })?;
            offers.push(Offer { version, module });
        }
        offers.sort_by(|a, b| b.version.cmp(&a.version));
        Ok(offers)
    }

    fn usable(&self, o: &Offer) -> bool {
        o.module.downloadable && (!o.module.untested || self.settings.show_untested)
    }

    /// Raises highest-seen from the downloadable offers and saves the state.
    fn remember(&mut self, offers: &[Offer]) -> Result<(), Failure> {
        for o in offers
            .iter()
            .filter(|o| o.module.downloadable && !o.module.untested)
        {
            self.state.see(self.scheme, &o.version);
        }
        self.state.save(&self.layout)
    }

    /// The version rule: strictly newer than the installed version and not older than the
    /// highest version seen before, unless --allow-downgrade.
    fn rule(&self, v: &Version) -> Result<(), Failure> {
        if self.settings.allow_downgrade {
            return Ok(());
        }
        if let Some(i) = &self.installed
            && v <= i
        {
            return Err(Failure::refused(format!(
                "refusing release {v}: it is not newer than the installed {i} \
                 (--allow-downgrade allows it)"
            )));
        }
        if let Some(h) = &self.highest_seen
            && v < h
        {
            return Err(Failure::refused(format!(
                "refusing release {v}: it is older than {h}, the highest version seen before \
                 (--allow-downgrade allows it)"
            )));
        }
        Ok(())
    }

    /// The release `download`/`install` act on: `--version`, else the newest usable offer.
    fn pick(&mut self, wanted: Option<&str>) -> Result<Option<Offer>, Failure> {
        let wanted =
            match wanted {
                Some(w) => Some(safe_version(self.scheme, w).map_err(|e| {
                    Failure::usage(format!("--version: {e} (scheme {})", self.scheme))
                })?),
                None => None,
            };
        let offers = self.ask(wanted.is_some(), true)?;
        self.remember(&offers)?;
        let chosen = match &wanted {
            Some(w) => {
                let Some(o) = offers.into_iter().find(|o| &o.version == w) else {
                    return Err(Failure::network(format!(
                        "the server does not offer version {w} of {} for {} {}",
                        self.remote.distribution, self.remote.conf, self.remote.conf_version
                    )));
                };
                if !o.module.downloadable {
                    return Err(Failure::network(format!(
                        "version {w} is not downloadable: {}",
                        o.module.result
                    )));
                }
                o
            }
            None => match offers.into_iter().find(|o| self.usable(o)) {
                Some(o) => o,
                None => return Ok(None),
            },
        };
        self.rule(&chosen.version)?;
        Ok(Some(chosen))
    }

    /// Makes `DIR/releases/<version>/` hold the verified files of `offer`.
    fn fetch_release(&mut self, offer: &Offer) -> Result<(Manifest, bool, Vec<Fetched>), Failure> {
        let m = &offer.module;
        let version = m.uniqid.as_str();
        let files = checked_files(m)?;
        let manifest = Manifest {
            version: version.to_owned(),
            distribution: self.remote.distribution.to_owned(),
            release_id: m.release_id,
            published_at: m.published_at.clone(),
            downloaded_at: now_rfc3339(),
            changelog: m.changelog.clone(),
            files: files
                .iter()
                .map(|f| ManifestFile {
                    name: f.name.to_owned(),
                    size: f.size,
                    md5: f.md5.to_ascii_lowercase(),
                    sha256: f.sha256.to_ascii_lowercase(),
                })
                .collect(),
        };
        let target = self.layout.release(version);
        if target.exists() {
            return match Manifest::load(&self.layout, version) {
                Some(old) if old.files == manifest.files => Ok((old, true, Vec::new())),
                _ => Err(Failure::refused(format!(
                    "refusing release {version}: {} already holds files that differ from what \
                     the signed answer declares",
                    target.display()
                ))),
            };
        }
        let partial = self.layout.partial().join(version);
        fs::create_dir_all(&partial).ctx(|| format!("cannot create {}", partial.display()))?;
        let visible = !self.settings.json && std::io::stderr().is_terminal();
        let mut reports = Vec::new();
        for f in &files {
            let part = partial.join(format!("{}.part", f.sha256.to_ascii_lowercase()));
            let progress = Progress::new(visible, f.name, f.size);
            reports.push(download::fetch(&self.http, f, &part, &progress)?);
        }
        // Every file verified: move them into a staging directory, then rename it into place.
        let staging = self
            .layout
            .staging()
            .join(format!("{version}.{}", random_hex(4)));
        fs::create_dir(&staging).ctx(|| format!("cannot create {}", staging.display()))?;
        for f in &files {
            let part = partial.join(format!("{}.part", f.sha256.to_ascii_lowercase()));
            fs::rename(&part, staging.join(f.name))
                .ctx(|| format!("cannot move {} into place", f.name))?;
        }
        sync_dir(&staging);
        let bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
        write_atomic(&self.layout.manifest(version), &bytes)?;
        fs::rename(&staging, &target).ctx(|| format!("cannot create {}", target.display()))?;
        sync_dir(&self.layout.releases());
        let _ = fs::remove_dir_all(&partial);
        Ok((manifest, false, reports))
    }
}

/// The files of a downloadable module, each checked: a plain name, unique, absolute URL, hex
/// digests of the right length.
fn checked_files(m: &Module) -> Result<Vec<Expected<'_>>, Failure> {
    if m.files.is_empty() {
        return Err(Failure::refused(format!(
            "refusing release {}: the answer lists no files",
            m.uniqid
        )));
    }
    // The same rule as the server's (vypusk_protocol::names): what it accepts we install.
    if let Some((a, b)) = vypusk_protocol::case_collision(m.files.iter().map(|f| f.name.as_str())) {
        return Err(Failure::refused(format!(
            "refusing release {}: file names {a:?} and {b:?} differ only in case (or are equal)",
            m.uniqid
        )));
    }
    let mut out = Vec::new();
    for f in &m.files {
        FileName::parse(&f.name).map_err(|e| {
            Failure::refused(format!(
                "refusing release {}: {e}; it would leave the install directory",
                m.uniqid
            ))
        })?;
        let hexlen = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hexlen(&f.md5, 32) || !hexlen(&f.sha256, 64) {
            return Err(Failure::refused(format!(
                "refusing {}: the answer does not declare both its md5 and sha256",
                f.name
            )));
        }
        if !(f.url.starts_with("https://") || f.url.starts_with("http://")) {
            return Err(Failure::refused(format!(
                "refusing {}: its download URL {:?} is not absolute",
                f.name, f.url
            )));
        }
        out.push(Expected {
            name: &f.name,
            url: &f.url,
            size: f.size,
            md5: &f.md5,
            sha256: &f.sha256,
        });
    }
    Ok(out)
}

fn release_json(o: &Offer) -> Value {
    let m = &o.module;
    json!({
        "version": m.uniqid,
        "release_id": m.release_id,
        "published_at": m.published_at,
        "prerelease": m.prerelease,
        "untested": m.untested,
        "downloadable": m.downloadable,
        "result": m.result,
        "size": m.size,
        "changelog": m.changelog,
        "files": m.files.iter().map(|f| json!({
            "name": f.name, "size": f.size, "md5": f.md5, "sha256": f.sha256,
        })).collect::<Vec<_>>(),
    })
}

fn opt(v: &Option<Version>) -> Value {
    v.as_ref()
        .map_or(Value::Null, |v| Value::String(v.to_string()))
}

pub fn check(settings: &Settings, exit_code: bool) -> Result<Outcome, Failure> {
    let (mut ctx, _lock) = Ctx::open(settings)?;
    let offers = ctx.ask(false, false)?;
    ctx.remember(&offers)?;
    let latest = offers.iter().find(|o| ctx.usable(o));
    if let Some(o) = latest {
        ctx.rule(&o.version)?;
    }
    let mut text = String::new();
    match latest {
        Some(o) => {
            text.push_str(&format!(
                "Update available: {} {} (installed: {})\n",
                ctx.remote.distribution,
                o.version,
                opt(&ctx.installed).as_str().unwrap_or("none")
            ));
            if !o.module.changelog.is_empty() {
                text.push_str(&format!("\n{}\n", o.module.changelog.trim_end()));
            }
        }
        None => text.push_str(&format!(
            "Up to date: no newer release of {} (installed: {})\n",
            ctx.remote.distribution,
            opt(&ctx.installed).as_str().unwrap_or("none")
        )),
    }
    for o in offers.iter().filter(|o| !o.module.downloadable) {
        text.push_str(&format!(
            "Release {} is listed but not downloadable: {}\n",
            o.version, o.module.result
        ));
    }
    let json = json!({
        "command": "check",
        "type": ctx.remote.distribution,
        "installed": opt(&ctx.installed),
        "highest_seen": ctx.state.highest_seen,
        "update_available": latest.is_some(),
        "latest": latest.map(release_json),
        "releases": offers.iter().map(release_json).collect::<Vec<_>>(),
    });
    Ok(Outcome {
        code: if exit_code && latest.is_some() {
            code::UPDATE_AVAILABLE
        } else {
            code::OK
        },
        json,
        text,
    })
}

pub fn download(settings: &Settings, version: Option<&str>) -> Result<Outcome, Failure> {
    let (mut ctx, _lock) = Ctx::open(settings)?;
    let Some(offer) = ctx.pick(version)? else {
        return Ok(nothing_newer(&ctx, "download"));
    };
    let (manifest, already, reports) = ctx.fetch_release(&offer)?;
    ctx.state.see(ctx.scheme, &offer.version);
    ctx.state.save(&ctx.layout)?;
    let path = ctx.layout.release(&manifest.version);
    let resumed = reports.iter().any(|r| r.resumed_from > 0);
    let restarted = reports.iter().any(|r| r.restarted);
    let text = if already {
        format!(
            "{} {} is already downloaded in {}\n",
            manifest.distribution,
            manifest.version,
            path.display()
        )
    } else {
        format!(
            "Downloaded and verified {} {} into {}{}\n",
            manifest.distribution,
            manifest.version,
            path.display(),
            if resumed { " (resumed)" } else { "" }
        )
    };
    Ok(Outcome {
        code: code::OK,
        json: json!({
            "command": "download",
            "type": manifest.distribution,
            "version": manifest.version,
            "path": path,
            "already_downloaded": already,
            "resumed": resumed,
            "restarted": restarted,
            "files": manifest.files.iter().map(|f| json!({
                "name": f.name, "size": f.size, "md5": f.md5, "sha256": f.sha256,
                "path": path.join(&f.name),
            })).collect::<Vec<_>>(),
        }),
        text,
    })
}

fn nothing_newer(ctx: &Ctx<'_>, command: &str) -> Outcome {
    Outcome {
        code: code::OK,
        json: json!({
            "command": command,
            "type": ctx.remote.distribution,
            "version": null,
            "installed": opt(&ctx.installed),
            "message": "nothing newer to download",
        }),
        text: format!(
            "Up to date: no newer release of {} (installed: {})\n",
            ctx.remote.distribution,
            opt(&ctx.installed).as_str().unwrap_or("none")
        ),
    }
}

/// Re-hashes a downloaded release against its manifest before it becomes `current`.
fn verify_release(layout: &Layout, version: &str) -> Result<Manifest, Failure> {
    let manifest = Manifest::load(layout, version).ok_or_else(|| {
        Failure::local(format!(
            "release {version} is not downloaded in {}",
            layout.dir.display()
        ))
    })?;
    let dir = layout.release(version);
    for f in &manifest.files {
        let exp = Expected {
            name: &f.name,
            url: "",
            size: f.size,
            md5: &f.md5,
            sha256: &f.sha256,
        };
        let path = dir.join(&f.name);
        if !path.is_file() {
            return Err(Failure::refused(format!(
                "refusing to switch to {version}: {} is missing",
                path.display()
            )));
        }
        // A mismatch here must not delete the user's file: check a copy of the digests.
        check_in_place(&exp, &path, version)?;
    }
    Ok(manifest)
}

fn check_in_place(
    exp: &Expected<'_>,
    path: &std::path::Path,
    version: &str,
) -> Result<(), Failure> {
    use md5::{Digest, Md5};
    use sha2::Sha256;
    use std::io::Read;
    let mut file = fs::File::open(path).ctx(|| format!("cannot open {}", path.display()))?;
    let mut md5 = Md5::new();
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .ctx(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        sha.update(&buf[..n]);
        len += n as u64;
    }
    let (md5, sha) = (hex::encode(md5.finalize()), hex::encode(sha.finalize()));
    let what = if len != exp.size {
        Some(format!(
            "size is {len} bytes, {} were verified at download",
            exp.size
        ))
    } else if sha != exp.sha256 {
        Some(format!(
            "sha256 is {sha}, {} was verified at download",
            exp.sha256
        ))
    } else if md5 != exp.md5 {
        Some(format!(
            "md5 is {md5}, {} was verified at download",
            exp.md5
        ))
    } else {
        None
    };
    match what {
        None => Ok(()),
        Some(what) => Err(Failure::refused(format!(
            "refusing to switch to {version}: {}'s {what}; it was changed on disk",
            exp.name
        ))),
    }
}

pub fn install(settings: &Settings, version: Option<&str>) -> Result<Outcome, Failure> {
    let (mut ctx, _lock) = Ctx::open(settings)?;
    let Some(offer) = ctx.pick(version)? else {
        let mut out = nothing_newer(&ctx, "install");
        out.json["message"] = json!("nothing newer to install");
        return Ok(out);
    };
    let (manifest, _, reports) = ctx.fetch_release(&offer)?;
    verify_release(&ctx.layout, &manifest.version)?;
    ctx.layout.switch_current(&manifest.version)?;
    let previous = ctx
        .state
        .installed
        .take()
        .filter(|p| *p != manifest.version);
    if previous.is_some() {
        ctx.state.previous = previous;
    }
    ctx.state.installed = Some(manifest.version.clone());
    ctx.state.see(ctx.scheme, &offer.version);
    ctx.state.save(&ctx.layout)?;
    let path = ctx.layout.release(&manifest.version);
    Ok(Outcome {
        code: code::OK,
        json: json!({
            "command": "install",
            "type": manifest.distribution,
            "installed": manifest.version,
            "previous": ctx.state.previous,
            "path": path,
            "current": ctx.layout.current(),
            "resumed": reports.iter().any(|r| r.resumed_from > 0),
        }),
        text: format!(
            "Installed {} {}: {} -> {}{}\n",
            manifest.distribution,
            manifest.version,
            ctx.layout.current().display(),
            path.display(),
            ctx.state
                .previous
                .as_deref()
                .map(|p| format!(" (previous: {p})"))
                .unwrap_or_default()
        ),
    })
}

pub fn rollback(settings: &Settings) -> Result<Outcome, Failure> {
    let layout = Layout::new(&settings.dir);
    if !layout.meta().is_dir() {
        return Err(Failure::local(format!(
            "nothing to roll back: {} has no vypusk-update state",
            settings.dir.display()
        )));
    }
    let _lock = layout.prepare()?;
    let mut state = State::load(&layout)?;
    let Some(previous) = state.previous.clone() else {
        return Err(Failure::local(format!(
            "nothing to roll back to: no previous release recorded in {}",
            settings.dir.display()
        )));
    };
    let scheme = state.scheme.unwrap_or_default();
    safe_version(scheme, &previous)
        .map_err(|e| Failure::local(format!("the state file's previous version: {e}")))?;
    verify_release(&layout, &previous)?;
    layout.switch_current(&previous)?;
    state.previous = state.installed.take();
    state.installed = Some(previous.clone());
    state.save(&layout)?;
    Ok(Outcome {
        code: code::OK,
        json: json!({
            "command": "rollback",
            "type": state.distribution,
            "installed": previous,
            "previous": state.previous,
            "path": layout.release(&previous),
            "current": layout.current(),
        }),
        text: format!(
            "Rolled back to {previous}: {} -> {} (the release rolled back from stays downloaded)\n",
            layout.current().display(),
            layout.release(&previous).display()
        ),
    })
}

pub fn status(settings: &Settings) -> Result<Outcome, Failure> {
    let layout = Layout::new(&settings.dir);
    let state = State::load(&layout)?;
    let scheme = settings.scheme.or(state.scheme).unwrap_or_default();
    let mut downloaded: Vec<(Version, Manifest)> = Vec::new();
    if let Ok(entries) = fs::read_dir(layout.releases()) {
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if let (Ok(v), Some(m)) = (safe_version(scheme, &name), Manifest::load(&layout, &name))
            {
                downloaded.push((v, m));
            }
        }
    }
    downloaded.sort_by(|a, b| b.0.cmp(&a.0));
    let mut partial = Vec::new();
    if let Ok(versions) = fs::read_dir(layout.partial()) {
        for v in versions.flatten() {
            let version = v.file_name().to_string_lossy().into_owned();
            for f in fs::read_dir(v.path()).into_iter().flatten().flatten() {
                let path = f.path();
                if path.extension().and_then(|e| e.to_str()) != Some("part") {
                    continue;
                }
                let bytes = f.metadata().map(|m| m.len()).unwrap_or(0);
                let meta: Value = fs::read(path.with_extension("json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(Value::Null);
                partial.push(json!({
                    "version": version, "name": meta["name"], "bytes": bytes, "size": meta["size"],
                }));
            }
        }
    }
    let current = layout.current_target();
    let mut text = format!(
        "Directory:    {}\nType:         {}\nInstalled:    {}\nPrevious:     {}\nHighest seen: {}\n",
        settings.dir.display(),
        state.distribution.as_deref().unwrap_or("-"),
        state.installed.as_deref().unwrap_or("none"),
        state.previous.as_deref().unwrap_or("none"),
        state.highest_seen.as_deref().unwrap_or("none"),
    );
    text.push_str("Downloaded:  ");
    if downloaded.is_empty() {
        text.push_str(" none");
    }
    for (_, m) in &downloaded {
        text.push_str(&format!(" {}", m.version));
    }
    text.push('\n');
    for p in &partial {
        text.push_str(&format!(
            "Partial:      {} {} ({} of {} bytes)\n",
            p["version"].as_str().unwrap_or(""),
            p["name"].as_str().unwrap_or("?"),
            p["bytes"],
            p["size"]
        ));
    }
    Ok(Outcome {
        code: code::OK,
        json: json!({
            "command": "status",
            "dir": settings.dir,
            "type": state.distribution,
            "installed": state.installed,
            "previous": state.previous,
            "highest_seen": state.highest_seen,
            "current": current,
            "downloaded": downloaded.iter().map(|(_, m)| json!({
                "version": m.version,
                "published_at": m.published_at,
                "downloaded_at": m.downloaded_at,
                "files": m.files,
            })).collect::<Vec<_>>(),
            "partial": partial,
        }),
        text,
    })
}
