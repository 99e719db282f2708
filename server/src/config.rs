//! Settings: TOML file < `VYPUSK_*` environment < command-line flags (SPEC §8).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything `vypusk serve` needs. Every field has a default, so no configuration is needed.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: String,
    /// Base of absolute links in answers; default `http://<listen>`.
    pub public_url: Option<String>,
    /// `sqlite://…` or `postgres://…`; default the SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// `file://…`, `s3://bucket?endpoint=…&region=…`, `memory://`; default `data_dir/objects`.
    pub storage_url: Option<String>,
    /// With S3 storage, answer downloads with a redirect to a presigned URL.
    pub redirect_downloads: bool,
    /// Client addresses that see prereleases without a beta license, as CIDRs.
    pub prerelease_networks: Vec<String>,
    /// Peers (CIDRs) whose `X-Forwarded-For` / `Forwarded` is believed; empty trusts nobody.
    pub trusted_proxies: Vec<String>,
    /// Lifetime of download links.
    pub token_ttl_secs: u64,
    /// Password of `admin`, used only when the admin user is first created.
    pub admin_password: Option<String>,
    /// Largest accepted file upload.
    pub max_upload_bytes: u64,
    /// Failed license lookups allowed per client address per minute before 429.
    pub license_failures_per_minute: u32,
    /// Failed logins allowed per (user name, client address) per minute before 429; a client
    /// address gets three times this over all the names and API keys it tries.
    pub login_failures_per_minute: u32,
    /// Raw statistics events older than this many days are deleted (roll-ups stay); 0 keeps
    /// them forever.
    pub stats_retention_days: u32,
    /// A session of the browser pages not used for this many minutes ends (at least 1).
    pub session_idle_minutes: u32,
    /// A request head must arrive completely within this many seconds of its first byte
    /// (issue 7 defect 3: slowloris).
    pub header_read_timeout_secs: u64,
    /// A connection with no request in flight and nothing of a next request received is closed
    /// after this many seconds (also the first request of a new connection).
    pub idle_timeout_secs: u64,
    /// A request body that delivers no bytes, or an answer the client reads nothing of, for this
    /// many seconds is aborted. Progress-based, so slow but moving uploads never hit it.
    pub body_progress_timeout_secs: u64,
    /// Open connections at most; default derived from the open-file limit (`RLIMIT_NOFILE`).
    pub max_connections: Option<usize>,
    /// Seconds a stored blob stays after no file refers to it any more (or after a sweep found
    /// it without any record, e.g. left by a crash) before it is deleted.
    pub blob_grace_secs: u64,
    /// Seconds between two sweeps for unreferenced blobs (fractions allowed).
    pub blob_sweep_interval_secs: f64,
    /// Serve `GET /metrics` only on this address (e.g. 127.0.0.1:9090) instead of `listen`.
    pub metrics_listen: Option<String>,
    /// PEM private key (PKCS#8 or PKCS#1 RSA) that signs answers, instead of the one the
    /// instances keep in the database; it must equal the database's once that has one (see
    /// `identity`).
    pub signing_key_file: Option<PathBuf>,
    /// File whose bytes (at least 32) are the download-token secret, instead of the database's.
    pub token_secret_file: Option<PathBuf>,
    /// The download-token secret itself (at least 32 bytes), usually from `VYPUSK_TOKEN_SECRET`.
    pub token_secret: Option<SecretText>,
}

/// A secret from the configuration: never shown by `Debug`, so settings can be logged.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(…)")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("vypusk-data"),
            listen: "127.0.0.1:8080".to_owned(),
            public_url: None,
            database_url: None,
            storage_url: None,
            redirect_downloads: false,
            prerelease_networks: Vec::new(),
            trusted_proxies: Vec::new(),
            token_ttl_secs: 24 * 3600,
            admin_password: None,
            max_upload_bytes: 4 << 30,
            license_failures_per_minute: 30,
            login_failures_per_minute: 10,
            stats_retention_days: 400,
            session_idle_minutes: 480,
            header_read_timeout_secs: 30,
            idle_timeout_secs: 60,
            body_progress_timeout_secs: 60,
            max_connections: None,
            blob_grace_secs: 3600,
            blob_sweep_interval_secs: 600.0,
            metrics_listen: None,
            signing_key_file: None,
            token_secret_file: None,
            token_secret: None,
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SettingsFlags {
    /// TOML configuration file.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite file, objects, signing key, token secret).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, global = true)]
    pub listen: Option<String>,
    /// Public base URL used in download links.
    #[arg(long, global = true)]
    pub public_url: Option<String>,
    /// Database URL (sqlite://… or postgres://…).
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Object storage URL (file://…, s3://…, memory://).
    #[arg(long, global = true)]
    pub storage_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid value of {key}: {why}")]
    Value { key: String, why: String },
}

impl Settings {
    /// File, then environment (`env` lets tests pass their own), then flags.
    pub fn load(
        flags: &SettingsFlags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingsError> {
        let mut settings = match &flags.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| SettingsError::Parse {
                    path: path.clone(),
                    source: Box::new(source),
                })?
            }
            None => Settings::default(),
        };
        settings.apply_env(env)?;
        if let Some(v) = &flags.data_dir {
            settings.data_dir = v.clone();
        }
        if let Some(v) = &flags.listen {
            settings.listen = v.clone();
        }
        if let Some(v) = &flags.public_url {
            settings.public_url = Some(v.clone());
        }
        if let Some(v) = &flags.database_url {
            settings.database_url = Some(v.clone());
        }
        if let Some(v) = &flags.storage_url {
            settings.storage_url = Some(v.clone());
        }
        settings.validate()?;
        Ok(settings)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), SettingsError> {
        fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, SettingsError>
        where
            T::Err: std::fmt::Display,
        {
            value
                .trim()
                .parse()
                .map_err(|e: T::Err| SettingsError::Value {
                    key: key.to_owned(),
                    why: e.to_string(),
                })
        }
        let get = |key: &str| env(key).filter(|v| !v.is_empty());
        if let Some(v) = get("VYPUSK_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("VYPUSK_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = get("VYPUSK_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = get("VYPUSK_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = get("VYPUSK_STORAGE_URL") {
            self.storage_url = Some(v);
        }
        if let Some(v) = get("VYPUSK_REDIRECT_DOWNLOADS") {
            self.redirect_downloads = parse("VYPUSK_REDIRECT_DOWNLOADS", &v)?;
        }
        if let Some(v) = get("VYPUSK_PRERELEASE_NETWORKS") {
            self.prerelease_networks = comma_list(&v);
        }
        if let Some(v) = get("VYPUSK_TRUSTED_PROXIES") {
            self.trusted_proxies = comma_list(&v);
        }
        if let Some(v) = get("VYPUSK_TOKEN_TTL_SECS") {
            self.token_ttl_secs = parse("VYPUSK_TOKEN_TTL_SECS", &v)?;
        }
        if let Some(v) = get("VYPUSK_ADMIN_PASSWORD") {
            self.admin_password = Some(v);
        }
        if let Some(v) = get("VYPUSK_MAX_UPLOAD_BYTES") {
            self.max_upload_bytes = parse("VYPUSK_MAX_UPLOAD_BYTES", &v)?;
        }
        if let Some(v) = get("VYPUSK_LICENSE_FAILURES_PER_MINUTE") {
            self.license_failures_per_minute = parse("VYPUSK_LICENSE_FAILURES_PER_MINUTE", &v)?;
        }
        if let Some(v) = get("VYPUSK_LOGIN_FAILURES_PER_MINUTE") {
            self.login_failures_per_minute = parse("VYPUSK_LOGIN_FAILURES_PER_MINUTE", &v)?;
        }
        if let Some(v) = get("VYPUSK_STATS_RETENTION_DAYS") {
            self.stats_retention_days = parse("VYPUSK_STATS_RETENTION_DAYS", &v)?;
        }
        if let Some(v) = get("VYPUSK_SESSION_IDLE_MINUTES") {
            self.session_idle_minutes = parse("VYPUSK_SESSION_IDLE_MINUTES", &v)?;
        }
        if let Some(v) = get("VYPUSK_HEADER_READ_TIMEOUT_SECS") {
            self.header_read_timeout_secs = parse("VYPUSK_HEADER_READ_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = get("VYPUSK_IDLE_TIMEOUT_SECS") {
            self.idle_timeout_secs = parse("VYPUSK_IDLE_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = get("VYPUSK_BODY_PROGRESS_TIMEOUT_SECS") {
            self.body_progress_timeout_secs = parse("VYPUSK_BODY_PROGRESS_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = get("VYPUSK_MAX_CONNECTIONS") {
            self.max_connections = Some(parse("VYPUSK_MAX_CONNECTIONS", &v)?);
        }
        if let Some(v) = get("VYPUSK_BLOB_GRACE_SECS") {
            self.blob_grace_secs = parse("VYPUSK_BLOB_GRACE_SECS", &v)?;
        }
        if let Some(v) = get("VYPUSK_BLOB_SWEEP_INTERVAL_SECS") {
            self.blob_sweep_interval_secs = parse("VYPUSK_BLOB_SWEEP_INTERVAL_SECS", &v)?;
        }
        if let Some(v) = get("VYPUSK_METRICS_LISTEN") {
            self.metrics_listen = Some(v);
        }
        if let Some(v) = get("VYPUSK_SIGNING_KEY_FILE") {
            self.signing_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("VYPUSK_TOKEN_SECRET_FILE") {
            self.token_secret_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("VYPUSK_TOKEN_SECRET") {
            self.token_secret = Some(SecretText(v));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let listen = self.listen_addr()?;
        self.metrics_listen_addr()?;
        // Issue 8, item 4: without `public_url` links would point at the listening address,
        // which off loopback is an interface (or 0.0.0.0) clients may not reach.
        if self.public_url.is_none() && !listen.ip().is_loopback() {
            return Err(SettingsError::Value {
                key: "public_url".into(),
                why: format!(
                    "listen = {listen} is not a loopback address, so public_url must be set \
                     (VYPUSK_PUBLIC_URL or --public-url) to the base URL clients use, e.g. \
                     https://updates.example.com; links are never built from the listening \
                     address or a request's Host header"
                ),
            });
        }
        self.prerelease_networks()?;
        self.trusted_proxies()?;
        if self.token_ttl_secs == 0 {
            return Err(SettingsError::Value {
                key: "token_ttl_secs".into(),
                why: "must be positive".into(),
            });
        }
        for (key, secs) in [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            (
                "body_progress_timeout_secs",
                self.body_progress_timeout_secs,
            ),
        ] {
            if secs == 0 {
                return Err(SettingsError::Value {
                    key: key.into(),
                    why: "must be positive".into(),
                });
            }
        }
        if self.max_connections == Some(0) {
            return Err(SettingsError::Value {
                key: "max_connections".into(),
                why: "must be positive".into(),
            });
        }
        // Between a millisecond and a day: `Duration::from_secs_f64` panics on what is outside.
        if !(0.001..=86_400.0).contains(&self.blob_sweep_interval_secs) {
            return Err(SettingsError::Value {
                key: "blob_sweep_interval_secs".into(),
                why: "must be between 0.001 and 86400".into(),
            });
        }
        if let Some(url) = &self.public_url {
            url::Url::parse(url).map_err(|e| SettingsError::Value {
                key: "public_url".into(),
                why: e.to_string(),
            })?;
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, SettingsError> {
        self.listen.parse().map_err(|_| SettingsError::Value {
            key: "listen".into(),
            why: format!("{:?} is not an address like 127.0.0.1:8080", self.listen),
        })
    }

    /// `metrics_listen` parsed; `None` serves `/metrics` on `listen`.
    pub fn metrics_listen_addr(&self) -> Result<Option<SocketAddr>, SettingsError> {
        self.metrics_listen
            .as_deref()
            .map(|v| {
                v.parse().map_err(|_| SettingsError::Value {
                    key: "metrics_listen".into(),
                    why: format!("{v:?} is not an address like 127.0.0.1:9090"),
                })
            })
            .transpose()
    }

    pub fn prerelease_networks(&self) -> Result<Vec<ipnet::IpNet>, SettingsError> {
        cidrs("prerelease_networks", &self.prerelease_networks)
    }

    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, SettingsError> {
        cidrs("trusted_proxies", &self.trusted_proxies)
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                absolute(&self.data_dir).join("vypusk.db").display()
            )
        })
    }

    pub fn storage_url(&self) -> String {
        self.storage_url.clone().unwrap_or_else(|| {
            format!(
                "file://{}",
                absolute(&self.data_dir).join("objects").display()
            )
        })
    }

    /// The public URL once the real listening address is known (port 0 resolved).
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
            .trim_end_matches('/')
            .to_owned()
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn comma_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// CIDRs (a bare address is a /32 or /128).
fn cidrs(key: &str, list: &[String]) -> Result<Vec<ipnet::IpNet>, SettingsError> {
    list.iter()
        .map(|n| {
            n.parse::<ipnet::IpNet>()
                .or_else(|_| n.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| SettingsError::Value {
                    key: key.into(),
                    why: format!("{n:?} is not a CIDR like 10.0.0.0/8"),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vypusk.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1\"\ntoken_ttl_secs = 60\npublic_url = \"http://file\"\n",
        )
        .unwrap();
        let flags = SettingsFlags {
            config: Some(file),
            public_url: Some("http://flag".into()),
            ..Default::default()
        };
        let env = |k: &str| match k {
            "VYPUSK_LISTEN" => Some("127.0.0.1:2".to_owned()),
            "VYPUSK_PUBLIC_URL" => Some("http://env".to_owned()),
            _ => None,
        };
        let s = Settings::load(&flags, env).unwrap();
        assert_eq!(s.token_ttl_secs, 60); // file
        assert_eq!(s.listen, "127.0.0.1:2"); // env beats file
        assert_eq!(s.public_url.as_deref(), Some("http://flag")); // flag beats env
    }

    #[test]
    fn rejects_bad_values() {
        let env = |k: &str| (k == "VYPUSK_TOKEN_TTL_SECS").then(|| "soon".to_owned());
        assert!(Settings::load(&SettingsFlags::default(), env).is_err());
        let env = |k: &str| (k == "VYPUSK_PRERELEASE_NETWORKS").then(|| "10.0.0.0/99".to_owned());
        assert!(Settings::load(&SettingsFlags::default(), env).is_err());
        let env = |k: &str| {
            (k == "VYPUSK_PRERELEASE_NETWORKS").then(|| "10.0.0.0/8, 192.168.1.7".to_owned())
        };
        let s = Settings::load(&SettingsFlags::default(), env).unwrap();
        assert_eq!(s.prerelease_networks().unwrap().len(), 2);
        let env = |k: &str| match k {
            "VYPUSK_BLOB_GRACE_SECS" => Some("0".to_owned()),
            "VYPUSK_BLOB_SWEEP_INTERVAL_SECS" => Some("0.05".to_owned()),
            _ => None,
        };
        let s = Settings::load(&SettingsFlags::default(), env).unwrap();
        assert_eq!((s.blob_grace_secs, s.blob_sweep_interval_secs), (0, 0.05));
        for bad in ["0", "-1", "NaN", "inf", "soon"] {
            let env = |k: &str| (k == "VYPUSK_BLOB_SWEEP_INTERVAL_SECS").then(|| bad.to_owned());
            assert!(
                Settings::load(&SettingsFlags::default(), env).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn connection_settings_from_env() {
        let env = |k: &str| match k {
            "VYPUSK_IDLE_TIMEOUT_SECS" => Some("5".to_owned()),
            "VYPUSK_MAX_CONNECTIONS" => Some("300".to_owned()),
            _ => None,
        };
        let s = Settings::load(&SettingsFlags::default(), env).unwrap();
        assert_eq!(s.idle_timeout_secs, 5);
        assert_eq!(s.max_connections, Some(300));
        assert_eq!(s.header_read_timeout_secs, 30);
        for key in [
            "VYPUSK_HEADER_READ_TIMEOUT_SECS",
            "VYPUSK_IDLE_TIMEOUT_SECS",
            "VYPUSK_BODY_PROGRESS_TIMEOUT_SECS",
            "VYPUSK_MAX_CONNECTIONS",
        ] {
            let env = |k: &str| (k == key).then(|| "0".to_owned());
            assert!(
                Settings::load(&SettingsFlags::default(), env).is_err(),
                "{key}=0"
            );
        }
    }

    #[test]
    fn non_loopback_listen_needs_public_url() {
        for listen in ["0.0.0.0:8080", "[::]:8080", "192.0.2.10:8080"] {
            let env = |k: &str| (k == "VYPUSK_LISTEN").then(|| listen.to_owned());
            let e = Settings::load(&SettingsFlags::default(), env).unwrap_err();
            assert!(
                e.to_string().contains("public_url must be set"),
                "{listen}: {e}"
            );
        }
        for listen in ["127.0.0.1:8080", "127.0.0.5:1", "[::1]:8080"] {
            let env = |k: &str| (k == "VYPUSK_LISTEN").then(|| listen.to_owned());
            assert!(
                Settings::load(&SettingsFlags::default(), env).is_ok(),
                "{listen}"
            );
        }
        let env = |k: &str| match k {
            "VYPUSK_LISTEN" => Some("0.0.0.0:8080".to_owned()),
            "VYPUSK_PUBLIC_URL" => Some("https://updates.example.com".to_owned()),
            _ => None,
        };
        assert!(Settings::load(&SettingsFlags::default(), env).is_ok());
    }

    #[test]
    fn metrics_listen_from_env() {
        let env = |k: &str| (k == "VYPUSK_METRICS_LISTEN").then(|| "127.0.0.1:9090".to_owned());
        let s = Settings::load(&SettingsFlags::default(), env).unwrap();
        assert_eq!(
            s.metrics_listen_addr().unwrap(),
            Some("127.0.0.1:9090".parse().unwrap())
        );
        let env = |k: &str| (k == "VYPUSK_METRICS_LISTEN").then(|| "nine".to_owned());
        assert!(Settings::load(&SettingsFlags::default(), env).is_err());
    }

    #[test]
    fn defaults_need_no_configuration() {
        let s = Settings::load(&SettingsFlags::default(), |_| None).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert!(s.database_url().starts_with("sqlite://"));
        assert!(s.storage_url().starts_with("file://"));
    }
}
