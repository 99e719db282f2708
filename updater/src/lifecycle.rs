//! What happens to releases on disk after they are verified: switching `current` (with the
//! `--exec` post-install command), `rollback`, `hold`/`unhold` and `prune`. None of it needs the
//! network.

use std::fs;
use std::process::{Command, Stdio};

use serde_json::json;
use vypusk_protocol::{Version, VersionScheme};

use crate::cli::Settings;
use crate::commands::{Local, Outcome, verify_release};
use crate::fail::{Failure, IoContext, code};
use crate::state::{Layout, Manifest, random_hex, safe_version, sync_dir};

/// Verifies `manifest`'s release on disk, points `current` at it and records it; then runs
/// `exec`, and if that fails switches back and records that too.
pub fn switch_to(
    local: &mut Local<'_>,
    manifest: &Manifest,
    scheme: VersionScheme,
    exec: Option<&str>,
    resumed: bool,
) -> Result<Outcome, Failure> {
    let version = manifest.version.clone();
    verify_release(&local.layout, &version)?;
    let before = local.state.clone();
    local.layout.switch_current(&version)?;
    local.state.switched_to(version.clone());
    if let Ok(v) = Version::parse(scheme, &version) {
        local.state.see(scheme, &v);
    }
    local.state.save(&local.layout)?;
    let path = local.layout.release(&version);
    if let Some(cmd) = exec
        && let Err(why) = run_hook(cmd, local, manifest, before.installed.as_deref())
    {
        // Back to what was current before (or to no `current` at all).
        match before.installed.as_deref() {
            Some(previous) => local.layout.switch_current(previous)?,
            None => {
                let current = local.layout.current();
                fs::remove_file(&current).ctx(|| format!("cannot remove {}", current.display()))?;
                sync_dir(&local.layout.dir);
            }
        }
        local.state = before;
        local.state.save(&local.layout)?;
        return Err(Failure {
            code: code::HOOK_FAILED,
            message: format!(
                "the post-install command failed ({why}); {} points at {} again",
                local.layout.current().display(),
                local.state.installed.as_deref().unwrap_or("nothing")
            ),
        });
    }
    let state = &local.state;
    Ok(Outcome {
        code: code::OK,
        json: json!({
            "command": "install",
            "type": manifest.distribution,
            "installed": version,
            "previous": state.previous,
            "path": path,
            "current": local.layout.current(),
            "resumed": resumed,
            "hold": state.hold,
            "exec": exec,
        }),
        text: format!(
            "Installed {} {version}: {} -> {}{}\n",
            manifest.distribution,
            local.layout.current().display(),
            path.display(),
            state
                .previous
                .as_deref()
                .map(|p| format!(" (previous: {p})"))
                .unwrap_or_default()
        ),
    })
}

/// Runs `cmd` by `sh -c` with the release in its environment; its output goes to stderr, so
/// `--json` stays parseable.
fn run_hook(
    cmd: &str,
    local: &Local<'_>,
    manifest: &Manifest,
    previous: Option<&str>,
) -> Result<(), String> {
    let dir = local.layout.release(&manifest.version);
    let files: Vec<String> = manifest
        .files
        .iter()
        .map(|f| dir.join(&f.name).to_string_lossy().into_owned())
        .collect();
    let (shell, flag) = if cfg!(windows) {
        ("cmd", "/C")
    } else {
        ("sh", "-c")
    };
    let status = Command::new(shell)
        .arg(flag)
        .arg(cmd)
        .env("VYPUSK_VERSION", &manifest.version)
        .env("VYPUSK_PREVIOUS_VERSION", previous.unwrap_or_default())
        .env("VYPUSK_TYPE", &manifest.distribution)
        .env("VYPUSK_DIR", &local.layout.dir)
        .env("VYPUSK_RELEASE_DIR", &dir)
        .env("VYPUSK_CURRENT", local.layout.current())
        .env("VYPUSK_FILES", files.join("\n"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| format!("cannot run {shell}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(match status.code() {
            Some(c) => format!("exit code {c}"),
            None => "killed by a signal".to_owned(),
        })
    }
}

/// Opens the install root for a local command: it must already hold vypusk-update state.
fn open_local(settings: &Settings) -> Result<Local<'_>, Failure> {
    let layout = Layout::new(&settings.dir);
    if !layout.meta().is_dir() {
        return Err(Failure::local(format!(
            "{} has no vypusk-update state (nothing was installed there)",
            settings.dir.display()
        )));
    }
    Local::open(settings, settings.distribution.as_deref())
}

pub fn rollback(settings: &Settings) -> Result<Outcome, Failure> {
    let mut local = open_local(settings)?;
    let scheme = local.state.scheme.unwrap_or_default();
    let mut next = local.state.clone();
    let Some(back) = next.roll_back() else {
        return Err(Failure::local(format!(
            "nothing to roll back to: no release was installed in {} before {}",
            settings.dir.display(),
            local
                .state
                .installed
                .as_deref()
                .unwrap_or("the current one")
        )));
    };
    let from = local.state.installed.clone();
    safe_version(scheme, &back)
        .map_err(|e| Failure::local(format!("the state file's previous version: {e}")))?;
    verify_release(&local.layout, &back)?;
    local.layout.switch_current(&back)?;
    // The hold keeps the next scheduled `install` from undoing the rollback.
    next.hold = Some(back.clone());
    local.state = next;
    local.state.save(&local.layout)?;
    let layout = &local.layout;
    Ok(Outcome {
        code: code::OK,
        json: json!({
            "command": "rollback",
            "type": local.state.distribution,
            "installed": back,
            "rolled_back_from": from,
            "previous": local.state.previous,
            "hold": local.state.hold,
            "path": layout.release(&back),
            "current": layout.current(),
        }),
        text: format!(
            "Rolled back to {back}: {} -> {} (held at {back}: `install` stays there until \
             `unhold`; the release rolled back from stays downloaded)\n",
            layout.current().display(),
            layout.release(&back).display()
        ),
    })
}

pub fn hold(settings: &Settings, version: Option<&str>) -> Result<Outcome, Failure> {
    let mut local = open_local(settings)?;
    let scheme = settings.scheme.or(local.state.scheme).unwrap_or_default();
    let at = match version.map(str::to_owned).or(local.state.installed.clone()) {
        Some(v) => v,
        None => {
            return Err(Failure::usage(
                "nothing is installed: say which version to hold at (`hold VERSION`)",
            ));
        }
    };
    let parsed = safe_version(scheme, &at)
        .map_err(|e| Failure::usage(format!("hold: {e} (scheme {scheme})")))?;
    local.state.hold = Some(parsed.to_string());
    local.state.save(&local.layout)?;
    Ok(Outcome {
        code: code::OK,
        json: json!({"command": "hold", "hold": local.state.hold, "installed": local.state.installed}),
        text: format!("Held at {parsed}: `install` switches to nothing newer until `unhold`\n"),
    })
}

pub fn unhold(settings: &Settings) -> Result<Outcome, Failure> {
    let mut local = open_local(settings)?;
    let was = local.state.hold.take();
    local.state.save(&local.layout)?;
    Ok(Outcome {
        code: code::OK,
        json: json!({"command": "unhold", "was": was}),
        text: match was {
            Some(v) => format!("No longer held at {v}: `install` moves to the newest release\n"),
            None => "Nothing was held\n".to_owned(),
        },
    })
}

pub fn prune(settings: &Settings, keep: usize) -> Result<Outcome, Failure> {
    let mut local = open_local(settings)?;
    let scheme = local.state.scheme.unwrap_or_default();
    let mut downloaded: Vec<(Version, String)> = Vec::new();
    for e in fs::read_dir(local.layout.releases())
        .ctx(|| format!("cannot list {}", local.layout.releases().display()))?
        .flatten()
    {
        if let Some(name) = e.file_name().to_str()
            && let Ok(v) = safe_version(scheme, name)
        {
            downloaded.push((v, name.to_owned()));
        }
    }
    downloaded.sort_by(|a, b| b.0.cmp(&a.0));
    let protected = [
        local.state.installed.clone(),
        local.state.previous.clone(),
        local.state.hold.clone(),
        local.layout.current_target(),
    ];
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for (i, (_, name)) in downloaded.iter().enumerate() {
        if i < keep || protected.iter().flatten().any(|p| p == name) {
            kept.push(name.clone());
            continue;
        }
        remove_release(&local.layout, name)?;
        local.state.forget(name);
        removed.push(name.clone());
    }
    local.state.save(&local.layout)?;
    Ok(Outcome {
        code: code::OK,
        json: json!({"command": "prune", "kept": kept, "removed": removed}),
        text: if removed.is_empty() {
            format!("Nothing to prune (kept: {})\n", kept.join(" "))
        } else {
            format!("Removed {} (kept: {})\n", removed.join(" "), kept.join(" "))
        },
    })
}

/// Takes a release directory out of `releases/` by one rename (so it never looks half
/// there), then deletes it and its manifest.
fn remove_release(layout: &Layout, version: &str) -> Result<(), Failure> {
    let trash = layout
        .staging()
        .join(format!(".pruned.{version}.{}", random_hex(4)));
    fs::rename(layout.release(version), &trash)
        .ctx(|| format!("cannot remove {}", layout.release(version).display()))?;
    sync_dir(&layout.releases());
    let _ = fs::remove_file(layout.manifest(version));
    fs::remove_dir_all(&trash).ctx(|| format!("cannot delete {}", trash.display()))?;
    Ok(())
}
