//! `vypusk distribution|release|license|api-key …`: the vendor API (SPEC §5) from the command
//! line, over HTTP with an API key. Each command is one request (see [`super::remote`]); the
//! answer is printed as a table or `key: value` lines, or as the server's JSON with `--json`.
//!
//! `api-key …` and `license import` without an API key work on the data directory directly
//! (`super::admin`, the same services the routes call), so the first admin key can be made
//! before there is any key; every other command needs a key.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::publish::{parse_compat, parse_metadata};
use super::remote::{
    Answer, CliError, RemoteArgs, cell, print_json, print_list, print_object, segment,
};

/// `--offset`, `--limit`, `--sort` of the list commands (the API's defaults when left out).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PageArgs {
    /// Skip this many items.
    #[arg(long)]
    pub offset: Option<u64>,
    /// At most this many items (the server's default is 100, its maximum 1000).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Sort by this field; `-field` for descending.
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
}

impl PageArgs {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(o) = self.offset {
            q.push(("offset", o.to_string()));
        }
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        if let Some(s) = &self.sort {
            q.push(("sort", s.clone()));
        }
        q
    }
}

fn usage(message: impl Into<String>) -> anyhow::Error {
    CliError::Usage(message.into()).into()
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v.into());
    }
}

fn nothing_to_change(body: &Map<String, Value>) -> anyhow::Result<()> {
    if body.is_empty() {
        return Err(usage(
            "nothing to change: give at least one field (see --help)",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Distributions

#[derive(Debug, Subcommand)]
pub enum DistributionCommand {
    /// List distributions.
    List(PageArgs),
    /// Show one distribution.
    Show { code: String },
    /// Create a distribution (needs the publish permission).
    Create {
        /// Code (the client's TYPE); default: made from the name.
        #[arg(long)]
        code: Option<String>,
        #[command(flatten)]
        fields: DistributionFields,
    },
    /// Change a distribution: only the fields given change (needs publish).
    Update {
        code: String,
        #[command(flatten)]
        fields: DistributionFields,
        /// Remove the license gate (lic_product_id and lic_feature_id).
        #[arg(long, conflicts_with_all = ["lic_product_id", "lic_feature_id"])]
        no_license_gate: bool,
    },
    /// Delete a distribution without releases (needs publish).
    Delete { code: String },
}

#[derive(Debug, Clone, clap::Args)]
pub struct DistributionFields {
    /// Name shown to users.
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long)]
    pub developer: Option<String>,
    #[arg(long)]
    pub label: Option<String>,
    #[arg(long)]
    pub promo_link: Option<String>,
    /// License gate: product id (with --lic-feature-id).
    #[arg(long)]
    pub lic_product_id: Option<i64>,
    /// License gate: feature id (with --lic-product-id).
    #[arg(long)]
    pub lic_feature_id: Option<i64>,
    /// Whether clients see the distribution (true on creation unless given).
    #[arg(long, value_name = "true|false")]
    pub published: Option<bool>,
    /// Whether clients without a license see nothing of it.
    #[arg(long, value_name = "true|false")]
    pub hide_unlicensed: Option<bool>,
    /// Version scheme: 1c or semver (1c on creation unless given).
    #[arg(long, value_name = "1c|semver")]
    pub scheme: Option<String>,
}

impl DistributionFields {
    fn body(&self) -> Map<String, Value> {
        let mut m = Map::new();
        put(&mut m, "name", self.name.clone());
        put(&mut m, "description", self.description.clone());
        put(&mut m, "developer", self.developer.clone());
        put(&mut m, "label", self.label.clone());
        put(&mut m, "promo_link", self.promo_link.clone());
        put(&mut m, "lic_product_id", self.lic_product_id);
        put(&mut m, "lic_feature_id", self.lic_feature_id);
        put(&mut m, "published", self.published);
        put(&mut m, "hide_unlicensed", self.hide_unlicensed);
        put(&mut m, "version_scheme", self.scheme.clone());
        m
    }
}

const DISTRIBUTION_FIELDS: &[&str] = &[
    "id",
    "code",
    "name",
    "description",
    "developer",
    "label",
    "promo_link",
    "lic_product_id",
    "lic_feature_id",
    "published",
    "hide_unlicensed",
    "version_scheme",
    "created_at",
    "updated_at",
];

fn license_gate(d: &Value) -> String {
    match (d["lic_product_id"].as_i64(), d["lic_feature_id"].as_i64()) {
        (Some(p), Some(f)) => format!("{p}/{f}"),
        _ => String::new(),
    }
}

pub async fn distribution(remote: &RemoteArgs, command: DistributionCommand) -> anyhow::Result<()> {
    let api = remote.client("distribution")?;
    let (answer, done) = match command {
        DistributionCommand::List(page) => {
            let answer = api
                .json(
                    api.request(Method::GET, "/v1/distributions")
                        .query(&page.query()),
                    "read",
                )
                .await?;
            if remote.json {
                print_json(&answer);
            } else {
                print_list(
                    &answer,
                    &[
                        ("id", &|d| cell(&d["id"])),
                        ("code", &|d| cell(&d["code"])),
                        ("name", &|d| cell(&d["name"])),
                        ("scheme", &|d| cell(&d["version_scheme"])),
                        ("published", &|d| cell(&d["published"])),
                        ("license gate", &license_gate),
                        ("developer", &|d| cell(&d["developer"])),
                    ],
                );
            }
            return Ok(());
        }
        DistributionCommand::Show { code } => (
            api.json(
                api.request(
                    Method::GET,
                    &format!("/v1/distributions/{}", segment(&code)),
                ),
                "read",
            )
            .await?,
            None,
        ),
        DistributionCommand::Create { code, fields } => {
            let mut body = fields.body();
            put(&mut body, "code", code);
            if !body.contains_key("name") {
                return Err(usage("distribution create: --name is required"));
            }
            let answer = api
                .json(
                    api.request(Method::POST, "/v1/distributions")
                        .json(&Value::Object(body)),
                    "publish",
                )
                .await?;
            let done = format!("created distribution {}", cell(&answer.value["code"]));
            (answer, Some(done))
        }
        DistributionCommand::Update {
            code,
            fields,
            no_license_gate,
        } => {
            let mut body = fields.body();
            if no_license_gate {
                body.insert("lic_product_id".into(), Value::Null);
                body.insert("lic_feature_id".into(), Value::Null);
            }
            nothing_to_change(&body)?;
            let answer = api
                .json(
                    api.request(
                        Method::PATCH,
                        &format!("/v1/distributions/{}", segment(&code)),
                    )
                    .json(&Value::Object(body)),
                    "publish",
                )
                .await?;
            (answer, Some(format!("updated distribution {code}")))
        }
        DistributionCommand::Delete { code } => {
            api.send(
                api.request(
                    Method::DELETE,
                    &format!("/v1/distributions/{}", segment(&code)),
                ),
                "publish",
            )
            .await?;
            if !remote.json {
                println!("deleted distribution {code}");
            }
            return Ok(());
        }
    };
    show(remote, &answer, done, DISTRIBUTION_FIELDS, &|_, v| cell(v));
    Ok(())
}

/// One object: `--json`, or an optional line saying what was done and `key: value` lines.
fn show(
    remote: &RemoteArgs,
    answer: &Answer,
    done: Option<String>,
    order: &[&str],
    render: &dyn Fn(&str, &Value) -> String,
) {
    if remote.json {
        print_json(answer);
        return;
    }
    if let Some(done) = done {
        println!("{done}");
    }
    print_object(&answer.value, order, render);
}

// ---------------------------------------------------------------------------------------
// Releases

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// List the releases of a distribution, newest first.
    List {
        /// Distribution code.
        #[arg(long = "type", value_name = "CODE")]
        distribution: String,
        /// Only releases with this status.
        #[arg(long, value_name = "draft|published|yanked")]
        status: Option<String>,
        /// Only the release with this version.
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one release with its files.
    Show { id: i32 },
    /// Create a draft release (needs publish). Upload files with `vypusk publish`.
    Create {
        /// Distribution code.
        #[arg(long = "type", value_name = "CODE")]
        distribution: String,
        #[arg(long)]
        version: String,
        #[command(flatten)]
        text: ChangelogArgs,
        /// Compatibility entry `CONF>=MIN` or `CONF>=MIN<=MAX` (`*>=0`: any); repeatable.
        #[arg(long = "compat", value_name = "CONF>=MIN[<=MAX]")]
        compat: Vec<String>,
        /// Metadata `key=value`; repeatable.
        #[arg(long = "metadata", value_name = "KEY=VALUE")]
        metadata: Vec<String>,
        /// Seen only by beta licenses and prerelease networks.
        #[arg(long)]
        prerelease: bool,
    },
    /// Change a release: only the fields given change (needs publish).
    Update {
        id: i32,
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        text: ChangelogArgs,
        /// Replaces the compatibility list; repeatable.
        #[arg(long = "compat", value_name = "CONF>=MIN[<=MAX]")]
        compat: Vec<String>,
        /// Empty the compatibility list.
        #[arg(long, conflicts_with = "compat")]
        no_compat: bool,
        /// Replaces the metadata; repeatable.
        #[arg(long = "metadata", value_name = "KEY=VALUE")]
        metadata: Vec<String>,
        /// Remove all metadata.
        #[arg(long, conflicts_with = "metadata")]
        no_metadata: bool,
        #[arg(long, value_name = "true|false")]
        prerelease: Option<bool>,
    },
    /// Delete a draft release (needs publish).
    Delete { id: i32 },
    /// Publish a draft release: clients see it from now on (needs publish).
    Publish { id: i32 },
    /// Yank a published release: clients are no longer offered it (needs publish).
    Yank {
        id: i32,
        /// Why, shown in the release's answers.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct ChangelogArgs {
    /// Markdown changelog.
    #[arg(long, conflicts_with = "changelog_file")]
    pub changelog: Option<String>,
    /// File with the Markdown changelog.
    #[arg(long, value_name = "FILE")]
    pub changelog_file: Option<PathBuf>,
}

impl ChangelogArgs {
    fn read(&self) -> anyhow::Result<Option<String>> {
        match (&self.changelog, &self.changelog_file) {
            (Some(text), _) => Ok(Some(text.clone())),
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the changelog {}", path.display()))
                .map(Some),
            (None, None) => Ok(None),
        }
    }
}

fn compat_list(items: &[String]) -> anyhow::Result<Vec<Value>> {
    items
        .iter()
        .map(|c| parse_compat(c).map_err(|e| usage(e.to_string())))
        .collect()
}

fn metadata_map(items: &[String]) -> anyhow::Result<Value> {
    Ok(json!(
        parse_metadata(items).map_err(|e| usage(e.to_string()))?
    ))
}

const RELEASE_FIELDS: &[&str] = &[
    "id",
    "distribution",
    "version",
    "status",
    "prerelease",
    "compatibility",
    "metadata",
    "files",
    "changelog",
    "published_at",
    "yank_reason",
    "created_at",
    "updated_at",
];

/// `CONF>=MIN` or `CONF>=MIN<=MAX`, the form `--compat` takes.
fn compat_text(c: &Value) -> String {
    let mut s = format!("{}>={}", cell(&c["conf"]), cell(&c["min_1c_version"]));
    if let Some(max) = c["max_1c_version"].as_str() {
        s.push_str("<=");
        s.push_str(max);
    }
    s
}

fn release_field(key: &str, v: &Value) -> String {
    let lines = |items: Vec<String>| items.join("\n");
    match key {
        "compatibility" => lines(
            v.as_array()
                .map(|a| a.iter().map(compat_text).collect())
                .unwrap_or_default(),
        ),
        "metadata" => lines(
            v.as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={}", cell(v))).collect())
                .unwrap_or_default(),
        ),
        "files" => lines(
            v.as_array()
                .map(|a| {
                    a.iter()
                        .map(|f| {
                            format!(
                                "{}  {} bytes  sha256 {}{}",
                                cell(&f["name"]),
                                cell(&f["size"]),
                                cell(&f["sha256"]),
                                if f["main"] == true { "  (main)" } else { "" }
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => cell(v),
    }
}

pub async fn release(remote: &RemoteArgs, command: ReleaseCommand) -> anyhow::Result<()> {
    let api = remote.client("release")?;
    let by_id = |method: Method, id: i32, tail: &str| {
        api.request(method, &format!("/v1/releases/{id}{tail}"))
    };
    let (answer, done) = match command {
        ReleaseCommand::List {
            distribution,
            status,
            version,
            page,
        } => {
            let mut query = page.query();
            if let Some(s) = status {
                query.push(("status", s));
            }
            if let Some(v) = version {
                query.push(("version", v));
            }
            let answer = api
                .json(
                    api.request(
                        Method::GET,
                        &format!("/v1/distributions/{}/releases", segment(&distribution)),
                    )
                    .query(&query),
                    "read",
                )
                .await?;
            if remote.json {
                print_json(&answer);
            } else {
                print_list(
                    &answer,
                    &[
                        ("id", &|r| cell(&r["id"])),
                        ("version", &|r| cell(&r["version"])),
                        ("status", &|r| cell(&r["status"])),
                        ("prerelease", &|r| cell(&r["prerelease"])),
                        ("compatibility", &|r| {
                            r["compatibility"]
                                .as_array()
                                .map(|a| a.iter().map(compat_text).collect::<Vec<_>>().join(", "))
                                .unwrap_or_default()
                        }),
                        ("files", &|r| {
                            r["files"].as_array().map_or(0, Vec::len).to_string()
                        }),
                        ("published at", &|r| cell(&r["published_at"])),
                    ],
                );
            }
            return Ok(());
        }
        ReleaseCommand::Show { id } => (api.json(by_id(Method::GET, id, ""), "read").await?, None),
        ReleaseCommand::Create {
            distribution,
            version,
            text,
            compat,
            metadata,
            prerelease,
        } => {
            let body = json!({
                "version": version,
                "changelog": text.read()?.unwrap_or_default(),
                "compatibility": compat_list(&compat)?,
                "metadata": metadata_map(&metadata)?,
                "prerelease": prerelease,
            });
            let answer = api
                .json(
                    api.request(
                        Method::POST,
                        &format!("/v1/distributions/{}/releases", segment(&distribution)),
                    )
                    .json(&body),
                    "publish",
                )
                .await?;
            let done = format!(
                "created draft release {} ({distribution} {})",
                cell(&answer.value["id"]),
                cell(&answer.value["version"])
            );
            (answer, Some(done))
        }
        ReleaseCommand::Update {
            id,
            version,
            text,
            compat,
            no_compat,
            metadata,
            no_metadata,
            prerelease,
        } => {
            let mut body = Map::new();
            put(&mut body, "version", version);
            put(&mut body, "changelog", text.read()?);
            if no_compat {
                body.insert("compatibility".into(), json!([]));
            } else if !compat.is_empty() {
                body.insert("compatibility".into(), json!(compat_list(&compat)?));
            }
            if no_metadata {
                body.insert("metadata".into(), json!({}));
            } else if !metadata.is_empty() {
                body.insert("metadata".into(), metadata_map(&metadata)?);
            }
            put(&mut body, "prerelease", prerelease);
            nothing_to_change(&body)?;
            let answer = api
                .json(
                    by_id(Method::PATCH, id, "").json(&Value::Object(body)),
                    "publish",
                )
                .await?;
            (answer, Some(format!("updated release {id}")))
        }
        ReleaseCommand::Delete { id } => {
            api.send(by_id(Method::DELETE, id, ""), "publish").await?;
            if !remote.json {
                println!("deleted release {id}");
            }
            return Ok(());
        }
        ReleaseCommand::Publish { id } => (
            api.json(by_id(Method::POST, id, "/publish"), "publish")
                .await?,
            Some(format!("published release {id}")),
        ),
        ReleaseCommand::Yank { id, reason } => {
            let mut req = by_id(Method::POST, id, "/yank");
            if let Some(reason) = reason {
                req = req.json(&json!({ "reason": reason }));
            }
            (
                api.json(req, "publish").await?,
                Some(format!("yanked release {id}")),
            )
        }
    };
    show(remote, &answer, done, RELEASE_FIELDS, &release_field);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Licenses

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// List licenses (needs the licenses permission).
    List {
        /// Only licenses whose key, customer or ITN contains this text.
        #[arg(long)]
        search: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one license with its features.
    Show { key: String },
    /// Create a license.
    Create {
        #[arg(long)]
        key: String,
        #[command(flatten)]
        fields: LicenseFields,
        /// Sees prereleases.
        #[arg(long)]
        beta: bool,
        /// Revoked: answers as if it did not exist.
        #[arg(long)]
        revoked: bool,
    },
    /// Change a license: only the fields given change.
    Update {
        key: String,
        #[command(flatten)]
        fields: LicenseFields,
        #[arg(long, value_name = "true|false")]
        beta: Option<bool>,
        #[arg(long, value_name = "true|false")]
        revoked: Option<bool>,
        /// Remove every feature.
        #[arg(long, conflicts_with = "feature")]
        no_features: bool,
    },
    /// Delete a license.
    Delete { key: String },
    /// Import licenses from a CSV file (UTF-8, or Windows-1251 as Excel writes it), all or
    /// nothing. With an API key the running server applies them at once; without one, this
    /// works on the data directory directly.
    Import { file: PathBuf },
}

#[derive(Debug, Clone, clap::Args)]
pub struct LicenseFields {
    /// Customer's name.
    #[arg(long)]
    pub customer: Option<String>,
    /// Customer's taxpayer number (ИНН).
    #[arg(long)]
    pub itn: Option<String>,
    /// A feature `PRODUCT/FEATURE` or `PRODUCT/FEATURE:UNTIL` (`YYYY-MM-DD` or RFC 3339);
    /// repeatable. Given features replace the license's.
    #[arg(long, value_name = "PRODUCT/FEATURE[:UNTIL]")]
    pub feature: Vec<String>,
}

impl LicenseFields {
    fn body(&self) -> anyhow::Result<Map<String, Value>> {
        let mut m = Map::new();
        put(&mut m, "customer", self.customer.clone());
        put(&mut m, "itn", self.itn.clone());
        if !self.feature.is_empty() {
            let features = self
                .feature
                .iter()
                .map(|f| parse_feature(f).map_err(usage))
                .collect::<anyhow::Result<Vec<_>>>()?;
            m.insert("features".into(), Value::Array(features));
        }
        Ok(m)
    }
}

/// `PRODUCT/FEATURE[:UNTIL]` → `{"product", "feature", "active_until"}`.
pub fn parse_feature(text: &str) -> Result<Value, String> {
    let (ids, until) = match text.split_once(':') {
        Some((ids, until)) => (ids, Some(until.trim())),
        None => (text, None),
    };
    let bad = || format!("--feature {text:?}: expected PRODUCT/FEATURE or PRODUCT/FEATURE:UNTIL");
    let (product, feature) = ids.split_once('/').ok_or_else(bad)?;
    let product: i64 = product.trim().parse().map_err(|_| bad())?;
    let feature: i64 = feature.trim().parse().map_err(|_| bad())?;
    let mut v = json!({"product": product, "feature": feature});
    if let Some(until) = until {
        if until.is_empty() {
            return Err(bad());
        }
        v["active_until"] = json!(until);
    }
    Ok(v)
}

const LICENSE_FIELDS: &[&str] = &[
    "key",
    "customer",
    "itn",
    "beta",
    "revoked",
    "features",
    "created_at",
    "updated_at",
];

fn feature_text(f: &Value) -> String {
    let mut s = format!("{}/{}", cell(&f["product"]), cell(&f["feature"]));
    if let Some(until) = f["active_until"].as_str() {
        s.push_str(" until ");
        s.push_str(until);
    }
    s
}

fn license_field(key: &str, v: &Value) -> String {
    match key {
        "features" => v
            .as_array()
            .map(|a| a.iter().map(feature_text).collect::<Vec<_>>().join("\n"))
            .unwrap_or_default(),
        _ => cell(v),
    }
}

pub async fn license(remote: &RemoteArgs, command: LicenseCommand) -> anyhow::Result<()> {
    let api = remote.client(match &command {
        LicenseCommand::Import { .. } => "license import",
        _ => "license",
    })?;
    let by_key =
        |method: Method, key: &str| api.request(method, &format!("/v1/licenses/{}", segment(key)));
    let (answer, done) = match command {
        LicenseCommand::List { search, page } => {
            let mut query = page.query();
            if let Some(s) = search {
                query.push(("search", s));
            }
            let answer = api
                .json(
                    api.request(Method::GET, "/v1/licenses").query(&query),
                    "licenses",
                )
                .await?;
            if remote.json {
                print_json(&answer);
            } else {
                print_list(
                    &answer,
                    &[
                        ("key", &|l| cell(&l["key"])),
                        ("customer", &|l| cell(&l["customer"])),
                        ("itn", &|l| cell(&l["itn"])),
                        ("beta", &|l| cell(&l["beta"])),
                        ("revoked", &|l| cell(&l["revoked"])),
                        ("features", &|l| {
                            l["features"]
                                .as_array()
                                .map(|a| a.iter().map(feature_text).collect::<Vec<_>>().join(", "))
                                .unwrap_or_default()
                        }),
                    ],
                );
            }
            return Ok(());
        }
        LicenseCommand::Show { key } => {
            (api.json(by_key(Method::GET, &key), "licenses").await?, None)
        }
        LicenseCommand::Create {
            key,
            fields,
            beta,
            revoked,
        } => {
            let mut body = fields.body()?;
            body.insert("key".into(), json!(&key));
            body.insert("beta".into(), json!(beta));
            body.insert("revoked".into(), json!(revoked));
            let answer = api
                .json(
                    api.request(Method::POST, "/v1/licenses")
                        .json(&Value::Object(body)),
                    "licenses",
                )
                .await?;
            (answer, Some(format!("created license {key}")))
        }
        LicenseCommand::Update {
            key,
            fields,
            beta,
            revoked,
            no_features,
        } => {
            let mut body = fields.body()?;
            put(&mut body, "beta", beta);
            put(&mut body, "revoked", revoked);
            if no_features {
                body.insert("features".into(), json!([]));
            }
            nothing_to_change(&body)?;
            let answer = api
                .json(
                    by_key(Method::PATCH, &key).json(&Value::Object(body)),
                    "licenses",
                )
                .await?;
            (answer, Some(format!("updated license {key}")))
        }
        LicenseCommand::Delete { key } => {
            api.send(by_key(Method::DELETE, &key), "licenses").await?;
            if !remote.json {
                println!("deleted license {key}");
            }
            return Ok(());
        }
        LicenseCommand::Import { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let answer = api
                .json(
                    api.request(Method::POST, "/v1/licenses/import")
                        .header(reqwest::header::CONTENT_TYPE, "text/csv")
                        .body(bytes),
                    "licenses",
                )
                .await?;
            if remote.json {
                print_json(&answer);
            } else {
                println!(
                    "imported {} licenses with {} features from {}; the server at {} applies them at once",
                    cell(&answer.value["imported"]),
                    cell(&answer.value["features"]),
                    file.display(),
                    api.base()
                );
            }
            return Ok(());
        }
    };
    show(remote, &answer, done, LICENSE_FIELDS, &license_field);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// API keys

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key; the key is printed once.
    Create {
        /// A name that says who uses the key, e.g. "ci".
        #[arg(long)]
        name: String,
        /// Comma-separated permissions: read, publish, licenses, admin.
        #[arg(long, default_value = "read")]
        permissions: String,
    },
    /// List API keys (never the keys themselves).
    List(PageArgs),
    /// Revoke an API key by id.
    #[command(visible_alias = "revoke")]
    Delete { id: i32 },
}

/// How `api-key create` prints a created key: its fields, then the key alone on the last line
/// (scripts take the last line).
pub fn print_created_key(json: bool, answer: &Answer) {
    if json {
        print_json(answer);
        return;
    }
    let v = &answer.value;
    println!(
        "Created API key {} ({:?}, permissions: {}). The key, shown only this once:",
        cell(&v["id"]),
        cell(&v["name"]),
        permissions(&v["permissions"])
    );
    println!("{}", cell(&v["key"]));
}

fn permissions(v: &Value) -> String {
    v.as_array()
        .map(|a| a.iter().map(cell).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

pub fn print_keys(json: bool, answer: &Answer) {
    if json {
        print_json(answer);
        return;
    }
    print_list(
        answer,
        &[
            ("id", &|k| cell(&k["id"])),
            ("name", &|k| cell(&k["name"])),
            ("prefix", &|k| format!("{}…", cell(&k["prefix"]))),
            ("permissions", &|k| permissions(&k["permissions"])),
            ("created", &|k| cell(&k["created_at"])),
            ("last used", &|k| cell(&k["last_used_at"])),
        ],
    );
}

/// `api-key …` over HTTP (the caller checked that an API key was given).
pub async fn api_key(remote: &RemoteArgs, command: ApiKeyCommand) -> anyhow::Result<()> {
    let api = remote.client("api-key")?;
    match command {
        ApiKeyCommand::Create { name, permissions } => {
            let permissions =
                super::admin::parse_permissions(&permissions).map_err(|e| usage(e.to_string()))?;
            let answer = api
                .json(
                    api.request(Method::POST, "/v1/api-keys")
                        .json(&json!({"name": name.trim(), "permissions": permissions})),
                    "admin",
                )
                .await?;
            print_created_key(remote.json, &answer);
        }
        ApiKeyCommand::List(page) => {
            let answer = api
                .json(
                    api.request(Method::GET, "/v1/api-keys")
                        .query(&page.query()),
                    "admin",
                )
                .await?;
            print_keys(remote.json, &answer);
        }
        ApiKeyCommand::Delete { id } => {
            api.send(
                api.request(Method::DELETE, &format!("/v1/api-keys/{id}")),
                "admin",
            )
            .await?;
            if !remote.json {
                println!("revoked API key {id}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_flags() {
        assert_eq!(
            parse_feature("1/2").unwrap(),
            json!({"product": 1, "feature": 2})
        );
        assert_eq!(
            parse_feature("10/20:2027-01-31").unwrap(),
            json!({"product": 10, "feature": 20, "active_until": "2027-01-31"})
        );
        assert_eq!(
            parse_feature("1/2:2027-01-31T00:00:00Z").unwrap()["active_until"],
            "2027-01-31T00:00:00Z"
        );
        for bad in ["1", "a/2", "1/b", "1/2:", "/2", "1/2/3"] {
            assert!(parse_feature(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn compat_is_shown_as_given() {
        assert_eq!(
            compat_text(
                &json!({"conf": "БП", "min_1c_version": "3.0", "max_1c_version": "3.0.199"})
            ),
            "БП>=3.0<=3.0.199"
        );
        assert_eq!(
            compat_text(&json!({"conf": "*", "min_1c_version": "0", "max_1c_version": null})),
            "*>=0"
        );
    }

    #[test]
    fn commands_parse() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "vypusk",
            "release",
            "update",
            "7",
            "--prerelease",
            "false",
            "--json",
            "--api-key",
            "k",
        ])
        .unwrap();
        let crate::cli::Command::Release { remote, command } = cli.command else {
            panic!("not release");
        };
        assert!(remote.json);
        assert_eq!(remote.key(), Some("k"));
        assert!(matches!(
            command,
            ReleaseCommand::Update {
                id: 7,
                prerelease: Some(false),
                ..
            }
        ));
        // revoke is delete's alias; --no-features conflicts with --feature.
        let cli = crate::cli::Cli::try_parse_from(["vypusk", "api-key", "revoke", "3"]).unwrap();
        assert!(matches!(
            cli.command,
            crate::cli::Command::ApiKey {
                command: ApiKeyCommand::Delete { id: 3 },
                ..
            }
        ));
        assert!(
            crate::cli::Cli::try_parse_from([
                "vypusk",
                "license",
                "update",
                "K",
                "--feature",
                "1/2",
                "--no-features"
            ])
            .is_err()
        );
    }
}
