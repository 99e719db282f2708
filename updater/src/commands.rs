//! The commands that ask a server (check, download, install) and `status`; `lifecycle` holds
//! the local ones (rollback, hold, unhold, prune) and `offline` the bundles.

use std::fs;
use std::io::IsTerminal;

use serde_json::{Value, json};
use vypusk_protocol::wire::{CheckRequest, Module, ReleasesResponse};
use vypusk_protocol::{FileName, Version, VersionScheme};

use crate::cli::{Remote, Settings};
use crate::download::{self, Expected, Fetched, Progress};
use crate::fail::{Failure, IoContext, code};
use crate::http::{Http, SignedAnswer};
use crate::rules::{self, Offer, Verdict};
use crate::state::{
    Layout, Lock, Manifest, ManifestFile, State, now_rfc3339, random_hex, safe_version, sync_dir,
    write_atomic,
};

/// What a command prints: a JSON value for `--json`, text otherwise, and the exit code.
pub struct Outcome {
    pub code: i32,
    pub json: Value,
    pub text: String,
}

/// The install root a changing command works on: its lock (held while `Local` lives) and state.
pub struct Local<'a> {
    pub settings: &'a Settings,
    pub layout: Layout,
    pub state: State,
    pub distribution: String,
    _lock: Lock,
}

impl<'a> Local<'a> {
    /// Takes the lock of `--dir` for `distribution` (`None`: the one the state names).
    pub fn open(settings: &'a Settings, distribution: Option<&str>) -> Result<Local<'a>, Failure> {
        let layout = Layout::new(&settings.dir);
        let lock = layout.prepare()?;
        let mut state = State::load(&layout)?;
        let distribution = match (distribution, state.distribution.as_deref()) {
            (Some(asked), Some(held)) if asked != held => {
                return Err(Failure::usage(format!(
                    "{} holds releases of {held}, not of {asked}; use another --dir",
                    settings.dir.display()
                )));
            }
            (Some(asked), _) => asked.to_owned(),
            (None, Some(held)) => held.to_owned(),
            (None, None) => {
                return Err(Failure::usage(
                    "--type is required (flag, VYPUSK_ environment variable or config file)",
                ));
            }
        };
        state.distribution = Some(distribution.clone());
        Ok(Local {
            settings,
            layout,
            state,
            distribution,
            _lock: lock,
        })
    }

    /// The version scheme: what the signed answer says, else --scheme, else the state's, else
    /// 1c. A --scheme the answer contradicts is a usage error.
    pub fn scheme_of(&self, modules: &[Module]) -> Result<VersionScheme, Failure> {
        let mut said: Option<VersionScheme> = None;
        for m in modules.iter().filter(|m| !m.version_scheme.is_empty()) {
            let s = m.version_scheme.parse::<VersionScheme>().map_err(|_| {
                Failure::refused(format!(
                    "refusing the answer: version scheme {:?} is unknown",
                    m.version_scheme
                ))
            })?;
            if said.is_some_and(|prev| prev != s) {
                return Err(Failure::refused(
                    "refusing the answer: its releases disagree on the version scheme",
                ));
            }
            said = Some(s);
        }
        // What the server said now, or said before (kept in the state).
        let known = said.or(self.state.scheme);
        if let (Some(known), Some(flag)) = (known, self.settings.scheme)
            && known != flag
        {
            return Err(Failure::usage(format!(
                "--scheme {flag} contradicts the server, which compares {} versions as {known}",
                self.distribution
            )));
        }
        Ok(known.or(self.settings.scheme).unwrap_or_default())
    }

    /// The installed version as text (--installed-version, else the state's).
    fn installed_text(&self) -> Option<String> {
        self.settings
            .installed_version
            .clone()
            .or_else(|| self.state.installed.clone())
            .filter(|s| !s.is_empty())
    }

    /// The installed version, the highest seen and the hold, in `scheme`.
    pub fn versions_in(&self, scheme: VersionScheme) -> Result<Versions, Failure> {
        let installed = match self.installed_text() {
            Some(t) => Some(Version::parse(scheme, &t).map_err(|e| {
                Failure::usage(format!("installed version: {e} (scheme {scheme})"))
            })?),
            None => None,
        };
        let parse = |s: &Option<String>| s.as_deref().and_then(|h| Version::parse(scheme, h).ok());
        Ok(Versions {
            installed,
            highest_seen: parse(&self.state.highest_seen),
            hold: parse(&self.state.hold),
        })
    }

    /// Raises highest-seen from the installable offers.
    fn remember(&mut self, scheme: VersionScheme, offers: &[Offer]) {
        self.state.scheme = Some(scheme);
        if let Some(h) = rules::highest_installable(offers) {
            self.state.see(scheme, h);
        }
    }
}

/// The versions the rules compare with.
pub struct Versions {
    pub installed: Option<Version>,
    pub highest_seen: Option<Version>,
    pub hold: Option<Version>,
}

/// A verified answer, its offers newest first, and the scheme they are compared in.
pub struct Answer {
    pub offers: Vec<Offer>,
    pub scheme: VersionScheme,
    pub versions: Versions,
    pub signed: SignedAnswer,
}

impl Answer {
    /// The floor of the version rule: the highest seen before or installable now.
    fn highest_seen(&self) -> Option<&Version> {
        self.versions
            .highest_seen
            .as_ref()
            .into_iter()
            .chain(rules::highest_installable(&self.offers))
            .max()
    }

    fn rule(&self, settings: &Settings, v: &Version) -> Result<(), Failure> {
        rules::version_rule(
            v,
            self.versions.installed.as_ref(),
            self.highest_seen(),
            self.versions.hold.as_ref(),
            settings.allow_downgrade,
        )
        .map_err(Failure::refused)
    }
}

/// The modules of a verified answer as offers, newest first: each must be of `distribution`
/// and have a version that is safe as a directory name.
pub fn offers_from(
    modules: Vec<Module>,
    distribution: &str,
    scheme: VersionScheme,
) -> Result<Vec<Offer>, Failure> {
    let mut offers = Vec::with_capacity(modules.len());
    for module in modules {
        if module.distribution != distribution {
            return Err(Failure::refused(format!(
                "refusing the answer: it offers release {:?} of {:?}, but {:?} was asked for",
                module.uniqid, module.distribution, distribution
            )));
        }
        let version = safe_version(scheme, &module.uniqid).map_err(|e| {
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

/// `UT 11.5.18`, or what stands for it for a non-1C product.
pub fn configuration(settings: &Settings) -> String {
    match settings.conf() {
        Some(conf) => format!(
            "{conf} {}",
            settings.conf_version.as_deref().unwrap_or_default()
        ),
        None => "a product without a 1C configuration (no --conf)".to_owned(),
    }
}

/// What a release that does not fit requires, from its compatibility list (or, from an older
/// server, its `min_1c_version`).
pub fn requirement(m: &Module) -> String {
    if m.compatibility.is_empty() && !m.min_1c_version.is_empty() {
        return format!("configuration version {} or later", m.min_1c_version);
    }
    vypusk_protocol::compat::describe(&m.compatibility)
}

pub fn not_entitled_message(distribution: &str, o: &Offer) -> String {
    format!(
        "{distribution} {} is available, but this license may not download it: {}",
        o.version,
        if o.module.result.is_empty() {
            "the server gives no reason"
        } else {
            o.module.result.as_str()
        }
    )
}

pub fn incompatible_message(settings: &Settings, distribution: &str, o: &Offer) -> String {
    format!(
        "{distribution} {} does not fit {}; it requires {} (--show-untested installs it anyway)",
        o.version,
        configuration(settings),
        requirement(&o.module)
    )
}

struct Ctx<'a> {
    local: Local<'a>,
    remote: Remote<'a>,
    http: Http,
}

/// What `download`/`install` act on.
enum Pick {
    Release(Box<Offer>),
    /// Nothing to do: up to date, or held (the message says which).
    Nothing(String),
}

impl<'a> Ctx<'a> {
    fn open(settings: &'a Settings) -> Result<Ctx<'a>, Failure> {
        let remote = settings.remote()?;
        let local = Local::open(settings, Some(remote.distribution))?;
        if settings.public_key.is_none() {
            eprintln!(
                "warning: --insecure-skip-signature: answers are NOT verified; anyone on the \
                 network path can choose what gets installed"
            );
        }
        let http = Http::new(settings)?;
        Ok(Ctx {
            local,
            remote,
            http,
        })
    }

    /// Asks `getAvailableReleases` (always with `SHOW_UNTESTED=Y`, so releases that do not fit
    /// can be named; `--show-untested` decides whether they may be installed).
    fn ask(&mut self, everything: bool, count_downloads: bool) -> Result<Answer, Failure> {
        let flag = |b: bool| if b { "Y" } else { "N" }.to_owned();
        let settings = self.local.settings;
        let request = CheckRequest {
            installed_version: if everything {
                String::new()
            } else {
                self.local.installed_text().unwrap_or_default()
            },
            distribution: self.remote.distribution.to_owned(),
            conf: self.remote.conf.unwrap_or_default().to_owned(),
            conf_version: self.remote.conf_version.unwrap_or_default().to_owned(),
            key: settings.key.clone(),
            show_untested: flag(true),
            count_downloads: flag(count_downloads),
        };
        let url = format!("{}/releases/v1/1c/getAvailableReleases", self.remote.server);
        let signed = self
            .http
            .signed_post(&url, &request, settings.public_key.as_ref())?;
        let answer: ReleasesResponse = serde_json::from_slice(&signed.body).map_err(|e| {
            Failure::network(format!("the server's answer is not a releases list: {e}"))
        })?;
        let scheme = self.local.scheme_of(&answer.modules)?;
        let versions = self.local.versions_in(scheme)?;
        let offers = offers_from(answer.modules, self.remote.distribution, scheme)?;
        self.local.remember(scheme, &offers);
        self.local.state.save(&self.local.layout)?;
        Ok(Answer {
            offers,
            scheme,
            versions,
            signed,
        })
    }

    /// The release `download`/`install` act on: `--version`, else the newest usable offer
    /// within the hold.
    fn pick(&mut self, wanted: Option<&str>, install: bool) -> Result<(Answer, Pick), Failure> {
        let answer = self.ask(wanted.is_some(), true)?;
        let settings = self.local.settings;
        let dist = self.remote.distribution;
        let installed = || {
            answer
                .versions
                .installed
                .as_ref()
                .map_or("none".to_owned(), Version::to_string)
        };
        let chosen = match wanted {
            Some(w) => {
                let w = safe_version(answer.scheme, w).map_err(|e| {
                    Failure::usage(format!("--version: {e} (scheme {})", answer.scheme))
                })?;
                let Some(at) = answer.offers.iter().position(|o| o.version == w) else {
                    return Err(Failure::incompatible(format!(
                        "the server offers no version {w} of {dist} for {}",
                        configuration(settings)
                    )));
                };
                let o = &answer.offers[at];
                if !o.module.downloadable {
                    return Err(Failure::not_entitled(not_entitled_message(dist, o)));
                }
                if !o.fits() && !settings.show_untested {
                    return Err(Failure::incompatible(incompatible_message(
                        settings, dist, o,
                    )));
                }
                if install
                    && let Some(hold) = &answer.versions.hold
                    && &w > hold
                {
                    return Err(Failure::usage(format!(
                        "{} is held at {hold}: `unhold` first to install {w}",
                        settings.dir.display()
                    )));
                }
                at
            }
            None => {
                let verdict = rules::verdict(
                    &answer.offers,
                    answer.versions.installed.as_ref(),
                    answer.versions.hold.as_ref(),
                    settings.show_untested,
                );
                match verdict {
                    Verdict::Available(o) => answer
                        .offers
                        .iter()
                        .position(|x| std::ptr::eq(x, o))
                        .expect("the verdict names an offer"),
                    Verdict::UpToDate => {
                        let text = format!(
                            "Up to date: no newer release of {dist} (installed: {})",
                            installed()
                        );
                        return Ok((answer, Pick::Nothing(text)));
                    }
                    Verdict::Held { hold, newest } => {
                        let text = format!(
                            "Held at {hold}: {dist} {} is available, `unhold` lets install \
                             switch to it (installed: {})",
                            newest.version,
                            installed()
                        );
                        return Ok((answer, Pick::Nothing(text)));
                    }
                    Verdict::NotEntitled(o) => {
                        return Err(Failure::not_entitled(not_entitled_message(dist, o)));
                    }
                    Verdict::Incompatible(o) => {
                        return Err(Failure::incompatible(incompatible_message(
                            settings, dist, o,
                        )));
                    }
                }
            }
        };
        let offer = answer.offers[chosen].clone();
        answer.rule(settings, &offer.version)?;
        Ok((answer, Pick::Release(Box::new(offer))))
    }
}

/// The manifest of what the signed answer declares for `m`.
pub fn manifest_of(m: &Module, distribution: &str, files: &[Expected<'_>]) -> Manifest {
    Manifest {
        version: m.uniqid.clone(),
        distribution: distribution.to_owned(),
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
    }
}

/// Whether `DIR/releases/<version>/` already holds this release (the same declared files):
/// `Some(manifest)` if so, `None` if it is not there, a refusal if it holds other files.
pub fn already_there(layout: &Layout, manifest: &Manifest) -> Result<Option<Manifest>, Failure> {
    let version = manifest.version.as_str();
    let target = layout.release(version);
    if !target.exists() {
        return Ok(None);
    }
    match Manifest::load(layout, version) {
        Some(old) if old.files == manifest.files => Ok(Some(old)),
        _ => Err(Failure::refused(format!(
            "refusing release {version}: {} already holds files that differ from what the signed \
             answer declares",
            target.display()
        ))),
    }
}

/// The partial file of `f` while it is downloaded or unpacked.
pub fn part_path(layout: &Layout, version: &str, f: &Expected<'_>) -> std::path::PathBuf {
    layout
        .partial()
        .join(version)
        .join(format!("{}.part", f.sha256.to_ascii_lowercase()))
}

/// Every file verified at its part path: move them into a staging directory, write the
/// manifest, then rename the directory into place, so a release directory appears whole.
pub fn commit_release(
    layout: &Layout,
    manifest: &Manifest,
    files: &[Expected<'_>],
) -> Result<(), Failure> {
    let version = manifest.version.as_str();
    let staging = layout
        .staging()
        .join(format!("{version}.{}", random_hex(4)));
    fs::create_dir(&staging).ctx(|| format!("cannot create {}", staging.display()))?;
    for f in files {
        fs::rename(part_path(layout, version, f), staging.join(f.name))
            .ctx(|| format!("cannot move {} into place", f.name))?;
    }
    sync_dir(&staging);
    let bytes = serde_json::to_vec_pretty(manifest).expect("manifest serializes");
    write_atomic(&layout.manifest(version), &bytes)?;
    let target = layout.release(version);
    fs::rename(&staging, &target).ctx(|| format!("cannot create {}", target.display()))?;
    sync_dir(&layout.releases());
    let _ = fs::remove_dir_all(layout.partial().join(version));
    Ok(())
}

impl Ctx<'_> {
    /// Makes `DIR/releases/<version>/` hold the verified files of `offer`.
    fn fetch_release(&mut self, offer: &Offer) -> Result<(Manifest, bool, Vec<Fetched>), Failure> {
        let m = &offer.module;
        let files = checked_files(m, true)?;
        let layout = &self.local.layout;
        let manifest = manifest_of(m, self.remote.distribution, &files);
        if let Some(old) = already_there(layout, &manifest)? {
            return Ok((old, true, Vec::new()));
        }
        let partial = layout.partial().join(&manifest.version);
        fs::create_dir_all(&partial).ctx(|| format!("cannot create {}", partial.display()))?;
        let visible = !self.local.settings.json && std::io::stderr().is_terminal();
        let mut reports = Vec::new();
        for f in &files {
            let part = part_path(layout, &manifest.version, f);
            let progress = Progress::new(visible, f.name, f.size);
            reports.push(download::fetch(&self.http, f, &part, &progress)?);
        }
        commit_release(layout, &manifest, &files)?;
        Ok((manifest, false, reports))
    }
}

/// The files of a downloadable module, each checked: a plain name, unique, hex digests of the
/// right length, and (`with_urls`) an absolute URL.
pub fn checked_files(m: &Module, with_urls: bool) -> Result<Vec<Expected<'_>>, Failure> {
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
        if with_urls && !(f.url.starts_with("https://") || f.url.starts_with("http://")) {
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
        "fits": o.fits(),
        "downloadable": m.downloadable,
        "result": m.result,
        "requires": requirement(m),
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
    let mut ctx = Ctx::open(settings)?;
    let answer = ctx.ask(false, false)?;
    let dist = ctx.remote.distribution;
    let v = &answer.versions;
    let installed = opt(&v.installed);
    let installed_text = installed.as_str().unwrap_or("none").to_owned();
    let verdict = rules::verdict(
        &answer.offers,
        v.installed.as_ref(),
        v.hold.as_ref(),
        settings.show_untested,
    );
    if let Verdict::Available(o) = &verdict {
        answer.rule(settings, &o.version)?;
    }
    let mut text = String::new();
    let (status, code, latest, reason) = match &verdict {
        Verdict::Available(o) => {
            text.push_str(&format!(
                "Update available: {dist} {} (installed: {installed_text})\n",
                o.version
            ));
            if !o.module.changelog.is_empty() {
                text.push_str(&format!("\n{}\n", o.module.changelog.trim_end()));
            }
            let code = if exit_code {
                code::UPDATE_AVAILABLE
            } else {
                code::OK
            };
            ("update_available", code, Some(*o), None)
        }
        Verdict::UpToDate => {
            text.push_str(&format!(
                "Up to date: no newer release of {dist} (installed: {installed_text})\n"
            ));
            ("up_to_date", code::OK, None, None)
        }
        Verdict::Held { hold, newest } => {
            let why = format!(
                "held at {hold}: {dist} {} is available; `unhold` lets install switch to it",
                newest.version
            );
            text.push_str(&format!("Held: {why} (installed: {installed_text})\n"));
            ("held", code::OK, None, Some(why))
        }
        Verdict::NotEntitled(o) => {
            let why = not_entitled_message(dist, o);
            text.push_str(&format!(
                "Not entitled: {why} (installed: {installed_text})\n"
            ));
            ("not_entitled", code::NOT_ENTITLED, None, Some(why))
        }
        Verdict::Incompatible(o) => {
            let why = incompatible_message(settings, dist, o);
            text.push_str(&format!(
                "No release fits: {why} (installed: {installed_text})\n"
            ));
            ("incompatible", code::INCOMPATIBLE, None, Some(why))
        }
    };
    // Other newer releases this client cannot have, each with its reason.
    for o in answer.offers.iter().filter(|o| {
        latest.is_none_or(|l| !std::ptr::eq(*o, l))
            && v.installed.as_ref().is_none_or(|i| &o.version > i)
    }) {
        if !o.module.downloadable && (o.fits() || settings.show_untested) {
            text.push_str(&format!(
                "Release {} is listed but not downloadable: {}\n",
                o.version, o.module.result
            ));
        } else if !o.fits() && !settings.show_untested {
            text.push_str(&format!(
                "Release {} does not fit {}: it requires {}\n",
                o.version,
                configuration(settings),
                requirement(&o.module)
            ));
        }
    }
    let json = json!({
        "command": "check",
        "type": dist,
        "status": status,
        "reason": reason,
        "installed": installed,
        "highest_seen": ctx.local.state.highest_seen,
        "hold": ctx.local.state.hold,
        "update_available": latest.is_some(),
        "latest": latest.map(release_json),
        "releases": answer.offers.iter().map(release_json).collect::<Vec<_>>(),
    });
    Ok(Outcome { code, json, text })
}

pub fn download(
    settings: &Settings,
    version: Option<&str>,
    bundle: Option<&std::path::Path>,
) -> Result<Outcome, Failure> {
    let mut ctx = Ctx::open(settings)?;
    let (answer, pick) = ctx.pick(version, false)?;
    let offer = match pick {
        Pick::Release(offer) => offer,
        Pick::Nothing(text) => return Ok(nothing_to_do(&ctx, &answer, "download", text)),
    };
    let (manifest, already, reports) = ctx.fetch_release(&offer)?;
    ctx.local.state.see(answer.scheme, &offer.version);
    ctx.local.state.save(&ctx.local.layout)?;
    let path = ctx.local.layout.release(&manifest.version);
    let bundle_path = match bundle {
        Some(out) => {
            crate::offline::write_bundle(&ctx.local, &answer.signed, &offer, &manifest, out)?;
            Some(out.to_path_buf())
        }
        None => None,
    };
    let resumed = reports.iter().any(|r| r.resumed_from > 0);
    let restarted = reports.iter().any(|r| r.restarted);
    let mut text = if already {
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
    if let Some(b) = &bundle_path {
        text.push_str(&format!(
            "Bundle for an offline install written to {}\n",
            b.display()
        ));
    }
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
            "bundle": bundle_path,
            "files": manifest.files.iter().map(|f| json!({
                "name": f.name, "size": f.size, "md5": f.md5, "sha256": f.sha256,
                "path": path.join(&f.name),
            })).collect::<Vec<_>>(),
        }),
        text,
    })
}

fn nothing_to_do(ctx: &Ctx<'_>, answer: &Answer, command: &str, text: String) -> Outcome {
    Outcome {
        code: code::OK,
        json: json!({
            "command": command,
            "type": ctx.remote.distribution,
            "version": null,
            "installed": opt(&answer.versions.installed),
            "hold": ctx.local.state.hold,
            "message": text,
        }),
        text: format!("{text}\n"),
    }
}

/// Re-hashes a downloaded release against its manifest before it becomes `current`.
pub fn verify_release(layout: &Layout, version: &str) -> Result<Manifest, Failure> {
    let manifest = Manifest::load(layout, version).ok_or_else(|| {
        Failure::local(format!(
            "release {version} is not downloaded in {}",
            layout.dir.display()
        ))
    })?;
    let dir = layout.release(version);
    for f in &manifest.files {
        let path = dir.join(&f.name);
        if !path.is_file() {
            return Err(Failure::refused(format!(
                "refusing to switch to {version}: {} is missing",
                path.display()
            )));
        }
        // A mismatch here must not delete the user's file: only compare.
        let (len, got) =
            crate::digest::hash_file(&path).ctx(|| format!("cannot read {}", path.display()))?;
        let what = if len != f.size {
            Some(format!(
                "size is {len} bytes, {} were verified at download",
                f.size
            ))
        } else if got.sha256 != f.sha256 {
            Some(format!(
                "sha256 is {}, {} was verified at download",
                got.sha256, f.sha256
            ))
        } else if got.md5 != f.md5 {
            Some(format!(
                "md5 is {}, {} was verified at download",
                got.md5, f.md5
            ))
        } else {
            None
        };
        if let Some(what) = what {
            return Err(Failure::refused(format!(
                "refusing to switch to {version}: {}'s {what}; it was changed on disk",
                f.name
            )));
        }
    }
    Ok(manifest)
}

pub fn install(
    settings: &Settings,
    version: Option<&str>,
    exec: Option<&str>,
) -> Result<Outcome, Failure> {
    let mut ctx = Ctx::open(settings)?;
    let (answer, pick) = ctx.pick(version, true)?;
    let offer = match pick {
        Pick::Release(offer) => offer,
        Pick::Nothing(text) => return Ok(nothing_to_do(&ctx, &answer, "install", text)),
    };
    let (manifest, _, reports) = ctx.fetch_release(&offer)?;
    let resumed = reports.iter().any(|r| r.resumed_from > 0);
    crate::lifecycle::switch_to(&mut ctx.local, &manifest, answer.scheme, exec, resumed)
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
        "Directory:    {}\nType:         {}\nInstalled:    {}\nPrevious:     {}\nHighest seen: {}\nHeld at:      {}\n",
        settings.dir.display(),
        state.distribution.as_deref().unwrap_or("-"),
        state.installed.as_deref().unwrap_or("none"),
        state.previous.as_deref().unwrap_or("none"),
        state.highest_seen.as_deref().unwrap_or("none"),
        state.hold.as_deref().unwrap_or("-"),
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
            "hold": state.hold,
            "history": state.history,
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
