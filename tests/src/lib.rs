//! Harness for end-to-end tests: builds the real binaries once, starts `vypusk serve` on
//! 127.0.0.1:0 with its own temporary data directory, and talks to it over HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub mod browser;
pub mod proxy;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// Directory of the built binaries (`target/debug`). The README's test command builds them
/// first (`cargo build --workspace --bins && cargo test --workspace`); cargo holds its build
/// lock while tests run, so a test cannot build them itself.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // target/debug/deps/<test> → target/debug; a binary of this crate (crashloop) lives in
        // target/debug itself.
        let exe = std::env::current_exe().expect("test executable path");
        let parent = exe.parent().expect("target/debug");
        let dir = if parent.join("vypusk").exists() {
            parent.to_path_buf()
        } else {
            parent.parent().expect("target/debug").to_path_buf()
        };
        for bin in ["vypusk", "vypusk-update"] {
            assert!(
                dir.join(bin).exists(),
                "{} is missing: run `cargo build --workspace --bins` before the tests \
                 (the README's test command does)",
                dir.join(bin).display()
            );
        }
        dir
    })
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn vypusk_bin() -> PathBuf {
    bin_dir().join("vypusk")
}

pub fn updater_bin() -> PathBuf {
    bin_dir().join("vypusk-update")
}

/// Options for a test server; the default is the embedded default (SQLite + local files).
#[derive(Default, Clone)]
pub struct ServerOptions {
    /// Extra environment, e.g. `("VYPUSK_PRERELEASE_NETWORKS", "127.0.0.0/8")`.
    pub env: Vec<(String, String)>,
    pub database_url: Option<String>,
    /// Start the server with this `RLIMIT_NOFILE` (soft and hard), through `sh -c 'ulimit -n'`.
    pub open_file_limit: Option<u64>,
    /// Write the server's stderr (its log) to this file instead of the test's stderr.
    pub log_file: Option<PathBuf>,
}

/// A running `vypusk serve`. Killed on drop.
pub struct TestServer {
    pub base: String,
    pub data_dir: tempfile::TempDir,
    pub client: reqwest::Client,
    options: ServerOptions,
    child: Option<Child>,
    /// What the server printed on stdout up to "listening".
    pub startup_output: Vec<String>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(ServerOptions::default()).await
    }

    pub async fn start_with(options: ServerOptions) -> TestServer {
        TestServer::start_in(tempfile::tempdir().expect("temp dir"), options).await
    }

    /// Starts on an existing data directory (e.g. one restored from a backup).
    pub async fn start_in(data_dir: tempfile::TempDir, options: ServerOptions) -> TestServer {
        let mut server = TestServer {
            base: String::new(),
            data_dir,
            // No idle connections: after an answer to an oversized body the server closes the
            // connection, and a pooled client could send the next request into it.
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
            options,
            child: None,
            startup_output: Vec::new(),
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let bin = vypusk_bin();
        let data_dir = self.data_dir.path().to_path_buf();
        let options = self.options.clone();
        let (child, base, lines) = tokio::task::spawn_blocking(move || {
            let mut cmd = match options.open_file_limit {
                // `exec` keeps the process id, so kill and SIGTERM still reach the server.
                Some(limit) => {
                    let mut cmd = Command::new("sh");
                    cmd.arg("-c")
                        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                        .arg(bin);
                    cmd
                }
                None => Command::new(bin),
            };
            cmd.arg("--data-dir")
                .arg(&data_dir)
                .args(["serve", "--listen", "127.0.0.1:0"])
                .env_remove("VYPUSK_DATABASE_URL")
                .env_remove("VYPUSK_STORAGE_URL")
                .env("VYPUSK_ADMIN_PASSWORD", ADMIN_PASSWORD)
                .env("VYPUSK_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            if let Some(path) = &options.log_file {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("log file");
                cmd.stderr(file);
            }
            if let Some(url) = &options.database_url {
                cmd.env("VYPUSK_DATABASE_URL", url);
            }
            for (k, v) in &options.env {
                cmd.env(k, v);
            }
            // The child is handed to `TestServer`, which kills and waits for it on drop.
            #[allow(clippy::zombie_processes)]
            let mut child = cmd.spawn().expect("start vypusk");
            let stdout = child.stdout.take().expect("stdout");
            let mut reader = BufReader::new(stdout);
            let mut lines = Vec::new();
            let mut line = String::new();
            loop {
                line.clear();
                let n = reader.read_line(&mut line).unwrap_or(0);
                if n == 0 {
                    let status = child.wait();
                    panic!("vypusk exited before listening ({status:?}): {lines:?}");
                }
                lines.push(line.trim_end().to_owned());
                if let Some(at) = line.find("listening on ") {
                    let base = line[at + "listening on ".len()..].trim().to_owned();
                    // Keep draining stdout so the server never blocks on a full pipe.
                    std::thread::spawn(move || {
                        let mut sink = String::new();
                        while reader.read_line(&mut sink).unwrap_or(0) > 0 {
                            sink.clear();
                        }
                    });
                    return (child, base, lines);
                }
            }
        })
        .await
        .expect("spawn task");
        self.child = Some(child);
        self.base = base;
        self.startup_output = lines;
    }

    /// Stops the server with SIGKILL (no graceful shutdown) and starts it again on the same
    /// data directory. The port changes.
    pub async fn kill_and_restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Graceful stop (SIGTERM) and start again.
    pub async fn restart(&mut self) {
        self.terminate();
        self.spawn().await;
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for exit.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn public_key_path(&self) -> PathBuf {
        self.data_dir.path().join("signing-key.pub.pem")
    }

    /// A request to the vendor API as `admin`.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
    }

    /// Admin JSON request; returns status and parsed body (Value::Null when not JSON).
    pub async fn admin_json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.admin(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        send_json(req).await
    }

    /// A new vendor-API key with `permissions`, created as admin: its id and the key.
    pub async fn create_api_key(&self, permissions: &[&str]) -> (i64, String) {
        let (status, body) = self
            .admin_json(
                Method::POST,
                "/api/v1/api-keys",
                Some(serde_json::json!({"name": "test", "permissions": permissions})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["id"].as_i64().expect("key id"),
            body["key"].as_str().expect("key").to_owned(),
        )
    }

    /// POST to a client-protocol route; returns status and parsed body.
    pub async fn client_post(&self, route: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(self.url(&format!("/releases/v1/1c/{route}")))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Names product `product` and its feature `feature` in the catalogue (a feature's
    /// `default_days` when given), through the vendor API.
    pub async fn name_feature(
        &self,
        (product, product_name): (i64, &str),
        (feature, feature_name): (i64, &str),
        default_days: Option<u32>,
    ) {
        let (status, body) = self
            .admin_json(
                Method::POST,
                "/api/v1/products",
                Some(serde_json::json!({"number": product, "name": product_name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let mut named = serde_json::json!({"name": feature_name});
        if let Some(days) = default_days {
            named["default_days"] = days.into();
        }
        let (status, body) = self
            .admin_json(
                Method::PUT,
                &format!("/api/v1/products/{product}/features/{feature}"),
                Some(named),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Creates a distribution with the given JSON fields merged over sensible defaults.
    pub async fn create_distribution(&self, code: &str, extra: Value) -> Value {
        let mut body = serde_json::json!({
            "code": code,
            "name": format!("{code} name"),
            "description": "Test distribution",
            "developer": "Vendor",
            "label": "VENDOR",
            "promo_link": "https://example.com/promo",
            "published": true,
        });
        merge(&mut body, extra);
        let (status, value) = self
            .admin_json(Method::POST, "/api/v1/distributions", Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "create distribution: {value}");
        value
    }

    /// Creates a draft release, uploads `files` (name, bytes), and publishes it unless
    /// `publish` is false. Returns the release JSON after the last step.
    pub async fn create_release(
        &self,
        code: &str,
        release: Value,
        files: &[(&str, &[u8])],
        publish: bool,
    ) -> Value {
        let (status, created) = self
            .admin_json(
                Method::POST,
                &format!("/api/v1/distributions/{code}/releases"),
                Some(release),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create release: {created}");
        let id = created["id"].as_i64().expect("release id");
        for (name, bytes) in files {
            let resp = self
                .admin(Method::PUT, &format!("/api/v1/releases/{id}/files/{name}"))
                .body(bytes.to_vec())
                .send()
                .await
                .expect("upload");
            assert_eq!(resp.status(), StatusCode::CREATED, "upload {name}");
        }
        if !publish {
            return created;
        }
        let (status, published) = self
            .admin_json(
                Method::POST,
                &format!("/api/v1/releases/{id}/publish"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "publish: {published}");
        published
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `req`; returns status and parsed body (Value::Null when not JSON).
pub async fn send_json(req: RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Shallow merge of JSON objects.
pub fn merge(base: &mut Value, extra: Value) {
    if let (Value::Object(b), Value::Object(e)) = (base, extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
}

pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Deterministic pseudo-random bytes for test files.
pub fn test_bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x & 0xff) as u8
        })
        .collect()
}

/// A fresh database on the local PostgreSQL server (127.0.0.1:5432, user postgres, trust
/// auth), dropped at the end.
pub struct TempDatabase {
    pub name: String,
}

impl TempDatabase {
    pub async fn create() -> TempDatabase {
        use sea_orm::ConnectionTrait;
        let name = format!("vypusk_test_{}", hex::encode(rand::random::<[u8; 6]>()));
        let admin = sea_orm::Database::connect("postgres://postgres@127.0.0.1:5432/postgres")
            .await
            .expect("PostgreSQL must run at 127.0.0.1:5432 (see README: Set up)");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        TempDatabase { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// A fresh, empty bucket on the S3-compatible server that `scripts/test-all.sh` starts
/// (`s3s-fs`, which keeps each bucket as a directory under VYPUSK_TEST_S3_ROOT), as the
/// `s3://` storage URL of vypusk. Panics with what to run when the server is not there.
pub fn fresh_s3_bucket() -> String {
    let (Ok(endpoint), Ok(root)) = (
        std::env::var("VYPUSK_TEST_S3_ENDPOINT"),
        std::env::var("VYPUSK_TEST_S3_ROOT"),
    ) else {
        panic!(
            "no S3 server: run the tests with scripts/test-all.sh, which starts s3s-fs and sets \
             VYPUSK_TEST_S3_ENDPOINT and VYPUSK_TEST_S3_ROOT"
        );
    };
    let bucket = format!("test-{}", hex::encode(rand::random::<[u8; 6]>()));
    std::fs::create_dir_all(Path::new(&root).join(&bucket)).expect("create the bucket directory");
    format!("s3://{bucket}?endpoint={endpoint}&access_key_id=test&secret_access_key=test-secret")
}

/// The CSRF token of the reports' login form (issue 12): `GET /reports/login` sets it in the
/// `vypusk_csrf` cookie and in the form's hidden `csrf` field, and a login posts both.
pub async fn reports_login_csrf(server: &TestServer) -> String {
    let resp = server
        .client
        .get(server.url("/reports/login"))
        .send()
        .await
        .expect("GET /reports/login");
    assert_eq!(resp.status(), StatusCode::OK);
    let token = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("vypusk_csrf="))
        .and_then(|c| c.split(';').next())
        .expect("the login form sets vypusk_csrf")
        .to_owned();
    let body = resp.text().await.expect("login form");
    assert!(
        body.contains(&format!("name=\"csrf\" value=\"{token}\"")),
        "{body}"
    );
    token
}

/// Logs in to the reports through the form with its CSRF token; the `vypusk_session=…` pair
/// for a `Cookie` header.
pub async fn reports_login(server: &TestServer, user: &str, password: &str) -> String {
    let csrf = reports_login_csrf(server).await;
    let resp = server
        .client
        .post(server.url("/reports/login"))
        .header("cookie", format!("vypusk_csrf={csrf}"))
        .form(&[
            ("user", user),
            ("password", password),
            ("next", "/reports"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .expect("POST /reports/login");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("vypusk_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// A user with `roles` made through `/api/v1/users`, its password set with the one-time token.
pub async fn user_with_roles(server: &TestServer, login: &str, roles: &[&str], password: &str) {
    let (status, created) = server
        .admin_json(
            Method::POST,
            "/api/v1/users",
            Some(serde_json::json!({"login": login, "roles": roles})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let resp = server
        .client
        .post(server.url("/api/v1/users/set-password"))
        .json(&serde_json::json!({"token": created["set_password_token"], "password": password}))
        .send()
        .await
        .expect("set the password");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

/// A logged-in console user: the session cookie and the session's CSRF token (read from a
/// console page, as a browser has it).
pub struct ConsoleSession {
    pub cookie: String,
    pub csrf: String,
}

pub async fn console_session(server: &TestServer, login: &str, password: &str) -> ConsoleSession {
    let cookie = reports_login(server, login, password).await;
    let resp = server
        .client
        .get(server.url("/console"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("GET /console");
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.expect("console page");
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries the session's CSRF token")
        .to_owned();
    ConsoleSession { cookie, csrf }
}
