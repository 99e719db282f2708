//! Command line, environment and TOML configuration, merged with precedence flags > env > file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use vypusk_protocol::{PinnedKeys, Version, VersionScheme};

use crate::fail::Failure;

const EXAMPLES: &str = "\
Examples:
  # pin the server's public key once
  curl -fsS https://updates.example.com/releases/v1/signing-key > vypusk.pem

  vypusk-update --server https://updates.example.com --type PT40_UT_CRM3 \\
      --conf UT --conf-version 11.5.18 --key MIKO-XXXXX-XXXXX-XXXXX-XXXXX \\
      --dir /opt/pt40 --public-key vypusk.pem check --exit-code
  vypusk-update --config /etc/vypusk-update.toml install
  vypusk-update --config /etc/vypusk-update.toml download --version 4.0.4.11 --json
  vypusk-update --dir /opt/pt40 rollback
  # a machine without network access
  vypusk-update --config /etc/vypusk-update.toml download --bundle pt40.vypusk-bundle.tar
  vypusk-update --type PT40_UT_CRM3 --conf UT --conf-version 11.5.18 --dir /opt/pt40 \\
      --public-key vypusk.pem install --from-bundle pt40.vypusk-bundle.tar
  vypusk-update --dir /opt/pt40 status --json

Exit codes: 0 done or nothing to do, 1 local error (disk, state, lock, nothing to roll back to),
2 usage, 3 network or server error, 4 verification refused, 5 not entitled (newer releases exist,
the license may not download them), 6 no newer release fits this configuration, 7 the --exec
command failed (current switched back), 10 update available (check --exit-code).

Environment: VYPUSK_CONFIG, VYPUSK_SERVER, VYPUSK_TYPE, VYPUSK_CONF, VYPUSK_CONF_VERSION,
VYPUSK_KEY, VYPUSK_DIR, VYPUSK_PUBLIC_KEY, VYPUSK_CA_FILE, VYPUSK_SCHEME,
VYPUSK_INSTALLED_VERSION, VYPUSK_TIMEOUT, VYPUSK_RETRIES; HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY.";

/// Checks, downloads, verifies, installs and rolls back releases from a vypusk server.
#[derive(Debug, Parser)]
#[command(name = "vypusk-update", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub opts: Opts,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask the server whether a newer release is available (downloads nothing).
    Check {
        /// Exit with 10 when an update is available (0 up to date, 5 not entitled, 6 none fits).
        #[arg(long)]
        exit_code: bool,
    },
    /// Download and verify the newest release (or --version) into DIR/releases/<version>/.
    Download {
        /// Download this version instead of the newest one.
        #[arg(long, value_name = "V")]
        version: Option<String>,
        /// Also write the signed answer and the verified files into one bundle FILE, for
        /// `install --from-bundle` on a machine without network access.
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
    },
    /// Download if needed, verify, and switch DIR/current to the newest release (or --version).
    Install {
        /// Install this version instead of the newest one.
        #[arg(long, value_name = "V")]
        version: Option<String>,
        /// Install from a bundle made by `download --bundle` or the vendor (no network).
        #[arg(long, value_name = "FILE", conflicts_with = "version")]
        from_bundle: Option<PathBuf>,
        /// Oldest bundle answer accepted, by its signed server_time: 30d (default), 12h, 90m.
        #[arg(long, value_name = "AGE", requires = "from_bundle")]
        max_age: Option<String>,
        /// Run CMD (by `sh -c`) after switching DIR/current; if it fails, switch back.
        #[arg(long, value_name = "CMD")]
        exec: Option<String>,
    },
    /// Switch DIR/current back to the release installed before it, and hold there (no network).
    Rollback,
    /// Keep `install` at VERSION (default: the installed one): it installs nothing newer.
    Hold {
        /// The highest version `install` may switch to.
        version: Option<String>,
    },
    /// Let `install` move to the newest release again.
    Unhold,
    /// Delete downloaded releases but the newest N, the current, the previous and the held one.
    Prune {
        /// How many of the newest downloaded releases to keep besides those.
        #[arg(long, value_name = "N")]
        keep: usize,
    },
    /// Show installed, previous and highest seen versions, downloads and partial downloads.
    Status,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Check { .. } => "check",
            Command::Download { .. } => "download",
            Command::Install { .. } => "install",
            Command::Rollback => "rollback",
            Command::Hold { .. } => "hold",
            Command::Unhold => "unhold",
            Command::Prune { .. } => "prune",
            Command::Status => "status",
        }
    }
}

#[derive(Debug, Args)]
pub struct Opts {
    /// TOML configuration file (keys as the long options, with '_' for '-').
    #[arg(long, global = true, env = "VYPUSK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Server base URL, e.g. https://updates.example.com
    #[arg(long, global = true, env = "VYPUSK_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Distribution code (the protocol's TYPE).
    #[arg(long = "type", global = true, env = "VYPUSK_TYPE", value_name = "TYPE")]
    pub distribution: Option<String>,
    /// Host configuration name (CONF).
    #[arg(long, global = true, env = "VYPUSK_CONF")]
    pub conf: Option<String>,
    /// Host configuration version (CONF_VERSION).
    #[arg(
        long,
        global = true,
        env = "VYPUSK_CONF_VERSION",
        value_name = "VERSION"
    )]
    pub conf_version: Option<String>,
    /// License key (KEY); not needed for free distributions.
    #[arg(long, global = true, env = "VYPUSK_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Install root: releases/, current and the updater's state live here.
    #[arg(long, global = true, env = "VYPUSK_DIR")]
    pub dir: Option<PathBuf>,
    /// The server's public key (PEM, SPKI) to verify answers with. Repeat it, or put several
    /// PEM keys in one file, to accept any of them (a vendor rolling its signing key over).
    #[arg(
        long,
        global = true,
        env = "VYPUSK_PUBLIC_KEY",
        value_name = "PEM_FILE",
        action = clap::ArgAction::Append
    )]
    pub public_key: Vec<PathBuf>,
    /// Extra CA certificates (PEM) trusted for HTTPS, added to the system bundle.
    #[arg(long, global = true, env = "VYPUSK_CA_FILE", value_name = "PEM_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Version scheme of the distribution: 1c or semver. Answers of a current server say it;
    /// needed only for an older server (default 1c).
    #[arg(long, global = true, env = "VYPUSK_SCHEME")]
    pub scheme: Option<String>,
    /// Override the installed version recorded in the state file.
    #[arg(
        long,
        global = true,
        env = "VYPUSK_INSTALLED_VERSION",
        value_name = "V"
    )]
    pub installed_version: Option<String>,
    /// Per-step network timeout in seconds (default 30).
    #[arg(long, global = true, env = "VYPUSK_TIMEOUT", value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Retries after a network failure, with exponential backoff (default 3).
    #[arg(long, global = true, env = "VYPUSK_RETRIES", value_name = "N")]
    pub retries: Option<u32>,
    /// Do not verify the server's signature (dangerous; for testing only).
    #[arg(long, global = true)]
    pub insecure_skip_signature: bool,
    /// Allow a version that is not newer than the installed and the highest seen one.
    #[arg(long, global = true)]
    pub allow_downgrade: bool,
    /// Also consider releases not tested with this configuration (SHOW_UNTESTED=Y).
    #[arg(long, global = true)]
    pub show_untested: bool,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Keys of the TOML configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    server: Option<String>,
    #[serde(rename = "type")]
    distribution: Option<String>,
    conf: Option<String>,
    conf_version: Option<String>,
    key: Option<String>,
    dir: Option<PathBuf>,
    public_key: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    scheme: Option<String>,
    timeout: Option<u64>,
    retries: Option<u32>,
    insecure_skip_signature: Option<bool>,
    allow_downgrade: Option<bool>,
    show_untested: Option<bool>,
}

/// Everything a command needs, merged and validated.
pub struct Settings {
    pub dir: PathBuf,
    pub server: Option<String>,
    pub distribution: Option<String>,
    pub conf: Option<String>,
    pub conf_version: Option<String>,
    pub key: String,
    /// `None` only with `--insecure-skip-signature`.
    pub public_key: Option<PinnedKeys>,
    pub insecure: bool,
    pub ca_file: Option<PathBuf>,
    pub scheme: Option<VersionScheme>,
    pub installed_version: Option<String>,
    pub timeout: Duration,
    pub retries: u32,
    pub allow_downgrade: bool,
    pub show_untested: bool,
    /// Machine-readable output (no progress bars).
    pub json: bool,
}

/// What the server-facing commands need besides `Settings`.
pub struct Remote<'a> {
    pub server: &'a str,
    pub distribution: &'a str,
    /// `None` for a non-1C product: the server then matches only `*` entries.
    pub conf: Option<&'a str>,
    pub conf_version: Option<&'a str>,
}

impl Settings {
    pub fn load(opts: &Opts) -> Result<Settings, Failure> {
        let file = match &opts.config {
            Some(path) => read_config(path)?,
            None => FileConfig::default(),
        };
        let base = opts
            .config
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        // Relative paths in the file are relative to the file.
        let rel = |p: Option<PathBuf>| p.map(|p| if p.is_absolute() { p } else { base.join(p) });

        let dir = opts.dir.clone().or(rel(file.dir)).ok_or_else(|| {
            Failure::usage("--dir (or VYPUSK_DIR, or `dir` in the config file) is required")
        })?;
        let insecure = opts.insecure_skip_signature || file.insecure_skip_signature == Some(true);
        let public_key_paths: Vec<PathBuf> = if opts.public_key.is_empty() {
            rel(file.public_key).into_iter().collect()
        } else {
            opts.public_key.clone()
        };
        // --insecure-skip-signature wins over a configured key: nothing is verified then.
        let mut public_key: Option<PinnedKeys> = None;
        for path in public_key_paths.iter().filter(|_| !insecure) {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                Failure::usage(format!(
                    "cannot read the public key {}: {e}",
                    path.display()
                ))
            })?;
            let keys = PinnedKeys::from_pem_bundle(&pem)
                .map_err(|e| Failure::usage(format!("the public key {}: {e}", path.display())))?;
            match public_key.as_mut() {
                Some(all) => all.extend(keys),
                None => public_key = Some(keys),
            }
        }
        let scheme = match opts.scheme.clone().or(file.scheme) {
            Some(s) => Some(
                s.parse::<VersionScheme>()
                    .map_err(|e| Failure::usage(e.to_string()))?,
            ),
            None => None,
        };
        let server = match opts.server.clone().or(file.server) {
            Some(s) => Some(server_url(&s).map_err(Failure::usage)?),
            None => None,
        };
        let conf_version = opts.conf_version.clone().or(file.conf_version);
        if let Some(v) = &conf_version {
            Version::parse_1c(v).map_err(|e| Failure::usage(format!("--conf-version: {e}")))?;
        }
        Ok(Settings {
            dir,
            server,
            distribution: opts.distribution.clone().or(file.distribution),
            conf: opts.conf.clone().or(file.conf),
            conf_version,
            key: opts.key.clone().or(file.key).unwrap_or_default(),
            public_key,
            insecure,
            ca_file: opts.ca_file.clone().or(rel(file.ca_file)),
            scheme,
            installed_version: opts.installed_version.clone(),
            timeout: Duration::from_secs(opts.timeout.or(file.timeout).unwrap_or(30).max(1)),
            retries: opts.retries.or(file.retries).unwrap_or(3).min(10),
            allow_downgrade: opts.allow_downgrade || file.allow_downgrade == Some(true),
            show_untested: opts.show_untested || file.show_untested == Some(true),
            json: opts.json,
        })
    }

    /// The settings every server-facing command needs, or a usage error naming what is missing.
    pub fn remote(&self) -> Result<Remote<'_>, Failure> {
        let (conf, conf_version) = self.configuration()?;
        let remote = Remote {
            server: need(&self.server, "--server")?,
            distribution: self.distribution()?,
            conf,
            conf_version,
        };
        self.pinned()?;
        Ok(remote)
    }

    pub fn distribution(&self) -> Result<&str, Failure> {
        need(&self.distribution, "--type")
    }

    pub fn conf(&self) -> Option<&str> {
        self.conf.as_deref().filter(|s| !s.is_empty())
    }

    /// `CONF` and `CONF_VERSION`: both, neither (a non-1C product), or only the version (it then
    /// bounds the `*` entries); `--conf` without its version is a usage error.
    pub fn configuration(&self) -> Result<(Option<&str>, Option<&str>), Failure> {
        let version = self.conf_version.as_deref().filter(|s| !s.is_empty());
        if self.conf().is_some() && version.is_none() {
            return Err(Failure::usage(
                "--conf-version is required with --conf (the host configuration's version)",
            ));
        }
        Ok((self.conf(), version))
    }

    /// The pinned keys, or a usage error; `None` only with --insecure-skip-signature.
    pub fn pinned(&self) -> Result<Option<&PinnedKeys>, Failure> {
        if self.public_key.is_none() && !self.insecure {
            return Err(Failure::usage(
                "--public-key is required (the server's key: GET /releases/v1/signing-key); \
                 --insecure-skip-signature disables the check",
            ));
        }
        Ok(self.public_key.as_ref())
    }
}

fn need<'s>(v: &'s Option<String>, what: &str) -> Result<&'s str, Failure> {
    v.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
        Failure::usage(format!(
            "{what} is required (flag, VYPUSK_ environment variable or config file)"
        ))
    })
}

/// A server base URL: `http(s)://host[:port][/path]`, checked before anything goes out, so a
/// typo is a usage error and not a retried network failure. Returned without a trailing `/`.
pub fn server_url(text: &str) -> Result<String, String> {
    let bad = |why: &str| {
        Err(format!(
            "--server {text:?} is not a valid server URL: {why}"
        ))
    };
    let Some(rest) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    else {
        return bad("it must start with http:// or https://");
    };
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains whitespace");
    }
    if text.contains(['?', '#']) {
        return bad("a base URL has no query or fragment");
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return bad("credentials do not belong in the URL");
    }
    // `[::1]:8080` or `host:8080` or `host`.
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (authority, None),
    };
    if host.is_empty() || host == "[]" {
        return bad("it names no host");
    }
    if let Some(port) = port
        && (port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().map_or(true, |p| p == 0))
    {
        return bad(&format!("port {port:?} is not a number from 1 to 65535"));
    }
    if text.parse::<ureq::http::Uri>().is_err() {
        return bad("it does not parse as a URL");
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn read_config(path: &Path) -> Result<FileConfig, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
}
