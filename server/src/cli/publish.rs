//! `vypusk publish`: the vendor's CI uploads a release through the vendor API.
//!
//! Creates the release (or reuses a draft of the same version), sets its changelog,
//! compatibility and metadata, streams every file with a progress bar (never reading a file
//! whole), checks the digests the server computed against its own, and publishes on request.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use futures::StreamExt;
use md5::Md5;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use vypusk_protocol::FileName;

#[derive(Debug, clap::Args)]
#[command(
    about = "Create or reuse a release, upload its files, and optionally publish it (for vendors' CI)",
    after_help = "Example:\n  vypusk publish --server https://updates.example.com --type PT40_UT_CRM3 \\\n    --version 4.0.4.12 --changelog-file CHANGES.md \\\n    --compat 'УправлениеТорговлей>=11.4.11.55' --compat 'БухгалтерияПредприятия>=3.0.100<=3.0.199' \\\n    --metadata extension_hash=abc123 --publish build/crm.cfe\n\nThe API key needs the publish permission."
)]
pub struct PublishArgs {
    /// Base URL of the vypusk server.
    #[arg(long, env = "VYPUSK_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// API key with the publish permission.
    #[arg(long, env = "VYPUSK_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Distribution code (the client's TYPE).
    #[arg(long = "type", value_name = "CODE")]
    pub distribution: String,
    /// Version of the release, in the distribution's version scheme.
    #[arg(long)]
    pub version: String,
    /// Files to upload; each is stored under its file name.
    pub files: Vec<PathBuf>,
    /// Markdown file with the release's changelog.
    #[arg(long)]
    pub changelog_file: Option<PathBuf>,
    /// Compatibility entry `CONF>=MIN` or `CONF>=MIN<=MAX` (`*>=0` = any configuration);
    /// repeatable. Given entries replace the release's list.
    #[arg(long = "compat", value_name = "CONF>=MIN[<=MAX]")]
    pub compat: Vec<String>,
    /// Metadata `key=value`; repeatable. Given entries replace the release's metadata.
    #[arg(long = "metadata", value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
    /// Mark the release as a prerelease (seen only by beta licenses and prerelease networks).
    #[arg(long)]
    pub prerelease: bool,
    /// Name of the main file (the one `download_link` points to); default the first uploaded.
    #[arg(long, value_name = "NAME")]
    pub main: Option<String>,
    /// Publish the release after uploading. Needs a compatibility entry (`--compat`, or one the
    /// reused draft already has); without one nothing is created or uploaded.
    #[arg(long)]
    pub publish: bool,
    /// No progress bars (they are also off when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// Why `--publish` without `--compat` is refused when the release has no entries yet.
pub const NO_COMPAT: &str = "--publish: the release has no compatibility entries, so no client would ever see it; nothing was uploaded. Add a compatibility entry, e.g. --compat '*>=0' (that is {\"conf\": \"*\", \"min_1c_version\": \"0\"}, any configuration) or --compat 'УправлениеТорговлей>=11.4', so clients can see it";

/// `CONF>=MIN` or `CONF>=MIN<=MAX` → a compatibility entry as the API takes it.
pub fn parse_compat(text: &str) -> anyhow::Result<Value> {
    let Some((conf, range)) = text.split_once(">=") else {
        bail!("--compat {text:?}: expected CONF>=MIN or CONF>=MIN<=MAX");
    };
    let conf = conf.trim();
    if conf.is_empty() {
        bail!("--compat {text:?}: the configuration name is empty (use * for any)");
    }
    let (min, max) = match range.split_once("<=") {
        Some((min, max)) => (min.trim(), Some(max.trim())),
        None => (range.trim(), None),
    };
    for v in std::iter::once(min).chain(max) {
        vypusk_protocol::Version::parse_1c(v)
            .map_err(|e| anyhow::anyhow!("--compat {text:?}: {e}"))?;
    }
    let mut entry = json!({"conf": conf, "min_1c_version": min});
    if let Some(max) = max {
        entry["max_1c_version"] = json!(max);
    }
    Ok(entry)
}

pub fn parse_metadata(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items {
        let Some((k, v)) = item.split_once('=') else {
            bail!("--metadata {item:?}: expected KEY=VALUE");
        };
        let k = k.trim();
        if k.is_empty() {
            bail!("--metadata {item:?}: the key is empty");
        }
        if out.insert(k.to_owned(), v.to_owned()).is_some() {
            bail!("--metadata: key {k:?} given twice");
        }
    }
    Ok(out)
}

struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/api{path}", self.base))
            .bearer_auth(&self.key)
    }

    /// Sends and returns the JSON body of a 2xx answer; anything else becomes an error that
    /// carries the server's `Message`.
    async fn send(&self, what: &str, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("{what}: cannot reach {}", self.base))?;
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        Err(server_error(what, status, &value, &body))
    }
}

fn server_error(what: &str, status: StatusCode, value: &Value, body: &[u8]) -> anyhow::Error {
    let message = value["Message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    let hint = match status {
        StatusCode::UNAUTHORIZED => " (check --api-key / VYPUSK_API_KEY)",
        StatusCode::FORBIDDEN => " (the API key needs the publish permission)",
        _ => "",
    };
    anyhow::anyhow!("{what}: the server answered {status}: {message}{hint}")
}

pub async fn run(args: PublishArgs) -> anyhow::Result<()> {
    // Check everything local before talking to the server.
    let compat = args
        .compat
        .iter()
        .map(|c| parse_compat(c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let metadata = parse_metadata(&args.metadata)?;
    let changelog = match &args.changelog_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the changelog {}", path.display()))?,
        ),
        None => None,
    };
    let mut files = Vec::new();
    for path in &args.files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: no usable file name", path.display()))?;
        let name = FileName::parse(name).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if !meta.is_file() {
            bail!("{} is not a regular file", path.display());
        }
        if files
            .iter()
            .any(|(n, _, _): &(FileName, PathBuf, u64)| n == &name)
        {
            bail!("two files named {name}");
        }
        files.push((name, path.clone(), meta.len()));
    }
    if let Some(main) = &args.main
        && !files.iter().any(|(n, _, _)| n.as_str() == main)
    {
        bail!("--main {main:?} is not one of the files given");
    }

    let api = Api {
        client: reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .build()?,
        base: args.server.trim_end_matches('/').to_owned(),
        key: args.api_key.trim().to_owned(),
    };
    let code = &args.distribution;
    let encoded_code = encode(code);

    // Reuse a draft of this version, or create the release.
    let found = api
        .send(
            "looking up the release",
            api.request(
                Method::GET,
                &format!("/v1/distributions/{encoded_code}/releases"),
            )
            .query(&[("version", args.version.as_str())]),
        )
        .await?;
    let existing = found["items"].as_array().and_then(|a| a.first());
    // Publishing needs a compatibility entry (the server refuses otherwise): say so before
    // creating a draft or uploading anything.
    if args.publish
        && compat.is_empty()
        && existing.is_none_or(|r| {
            r["status"] == "draft" && r["compatibility"].as_array().is_none_or(Vec::is_empty)
        })
    {
        bail!("{}", NO_COMPAT);
    }
    let release = match existing {
        Some(existing) => {
            let status = existing["status"].as_str().unwrap_or("");
            if status != "draft" {
                bail!(
                    "release {} of {code} is already {status} (id {}); a published release's files never change, so publish a new version",
                    existing["version"].as_str().unwrap_or(&args.version),
                    existing["id"]
                );
            }
            let id = existing["id"].as_i64().context("release without id")?;
            let mut update = serde_json::Map::new();
            if existing["version"].as_str() != Some(args.version.as_str()) {
                update.insert("version".into(), json!(args.version));
            }
            if args.prerelease {
                update.insert("prerelease".into(), json!(true));
            }
            if let Some(c) = &changelog {
                update.insert("changelog".into(), json!(c));
            }
            if !compat.is_empty() {
                update.insert("compatibility".into(), json!(compat));
            }
            if !metadata.is_empty() {
                update.insert("metadata".into(), json!(metadata));
            }
            eprintln!("reusing draft release {id} ({code} {})", args.version);
            if update.is_empty() {
                existing.clone()
            } else {
                api.send(
                    "updating the draft",
                    api.request(Method::PUT, &format!("/v1/releases/{id}"))
                        .json(&Value::Object(update)),
                )
                .await?
            }
        }
        None => {
            let created = api
                .send(
                    "creating the release",
                    api.request(
                        Method::POST,
                        &format!("/v1/distributions/{encoded_code}/releases"),
                    )
                    .json(&json!({
                        "version": args.version,
                        "changelog": changelog.unwrap_or_default(),
                        "compatibility": compat,
                        "prerelease": args.prerelease,
                        "metadata": metadata,
                    })),
                )
                .await?;
            eprintln!(
                "created draft release {} ({code} {})",
                created["id"], args.version
            );
            created
        }
    };
    let id = release["id"].as_i64().context("release without id")?;

    let show_progress = !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    for (name, path, size) in &files {
        let main = args.main.as_deref() == Some(name.as_str());
        upload(&api, id, name, path, *size, main, show_progress).await?;
    }

    let final_release = if args.publish {
        let published = api
            .send(
                "publishing",
                api.request(Method::POST, &format!("/v1/releases/{id}/publish")),
            )
            .await?;
        eprintln!("published release {id} ({code} {})", args.version);
        published
    } else {
        let current = api
            .send(
                "reading the release",
                api.request(Method::GET, &format!("/v1/releases/{id}")),
            )
            .await?;
        eprintln!(
            "release {id} stays a draft; publish it with --publish or POST /api/v1/releases/{id}/publish"
        );
        current
    };
    println!("{}", serde_json::to_string_pretty(&final_release)?);
    Ok(())
}

#[derive(Default)]
struct Digests {
    md5: Md5,
    sha256: Sha256,
}

async fn upload(
    api: &Api,
    id: i64,
    name: &FileName,
    path: &std::path::Path,
    size: u64,
    main: bool,
    show_progress: bool,
) -> anyhow::Result<()> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let bar = if show_progress {
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(name.to_string());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    // Digests computed while streaming, compared with the server's answer afterwards.
    let digests = Arc::new(Mutex::new(Digests::default()));
    let stream = {
        let digests = digests.clone();
        let bar = bar.clone();
        tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                let mut d = digests.lock().expect("digest lock");
                d.md5.update(chunk);
                d.sha256.update(chunk);
                bar.inc(chunk.len() as u64);
            }
        })
    };
    let mut path_and_query = format!("/v1/releases/{id}/files/{}", encode(name.as_str()));
    if main {
        path_and_query.push_str("?main=true");
    }
    let result = api
        .send(
            &format!("uploading {name}"),
            api.request(Method::PUT, &path_and_query)
                .header(reqwest::header::CONTENT_LENGTH, size)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(reqwest::Body::wrap_stream(stream)),
        )
        .await;
    bar.finish_and_clear();
    let answer = result?;
    let (md5, sha256) = {
        let d = std::mem::take(&mut *digests.lock().expect("digest lock"));
        (
            hex::encode(d.md5.finalize()),
            hex::encode(d.sha256.finalize()),
        )
    };
    if answer["md5"].as_str() != Some(md5.as_str())
        || answer["sha256"].as_str() != Some(sha256.as_str())
    {
        // The file changed while it was read, or the bytes were altered on the way.
        let _ = api
            .send(
                "removing the damaged upload",
                api.request(
                    Method::DELETE,
                    &format!("/v1/releases/{id}/files/{}", encode(name.as_str())),
                ),
            )
            .await;
        bail!(
            "uploading {name}: the server stored md5 {} sha256 {}, but the file read here has md5 {md5} sha256 {sha256}; the upload was removed",
            answer["md5"],
            answer["sha256"]
        );
    }
    eprintln!("uploaded {name} ({size} bytes, sha256 {sha256})");
    Ok(())
}

/// Percent-encodes one path segment.
fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compat_flags() {
        assert_eq!(
            parse_compat("УправлениеТорговлей>=11.4.11.55").unwrap(),
            json!({"conf": "УправлениеТорговлей", "min_1c_version": "11.4.11.55"})
        );
        assert_eq!(
            parse_compat("БП>=3.0<=3.0.199").unwrap(),
            json!({"conf": "БП", "min_1c_version": "3.0", "max_1c_version": "3.0.199"})
        );
        assert_eq!(
            parse_compat("*>=0").unwrap(),
            json!({"conf": "*", "min_1c_version": "0"})
        );
        for bad in ["УТ", ">=1", "УТ>=", "УТ>=1..2", "УТ>=1<=x", "УТ=1"] {
            assert!(parse_compat(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_flags() {
        let m = parse_metadata(&["extension_hash=a=b".into(), "x=".into()]).unwrap();
        assert_eq!(m["extension_hash"], "a=b");
        assert_eq!(m["x"], "");
        assert!(parse_metadata(&["novalue".into()]).is_err());
        assert!(parse_metadata(&["=v".into()]).is_err());
        assert!(parse_metadata(&["a=1".into(), "a=2".into()]).is_err());
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode("a b/c.zip"), "a%20b%2Fc%2Ezip");
    }
}
