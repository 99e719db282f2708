//! Several instances on one PostgreSQL database and one S3 bucket, behind nginx (issue 8,
//! items 2 and 3; SPEC §8: instances share the signing key and token secret, and each sees
//! every change within a second).
//!
//! Needs PostgreSQL, nginx and the S3-compatible server that `scripts/test-all.sh` provides;
//! without them these tests fail saying so, they are never skipped.
//!
//! Addresses: nginx connects upstream from 127.0.0.2 (the instances' `trusted_proxies`); the
//! clients behind it connect from 127.0.0.3 and 127.0.0.4; the test talks to each instance
//! directly from 127.0.0.1.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_protocol::signature::PublicKey;
use vypusk_tests::proxy::{Nginx, free_port};
use vypusk_tests::*;

const FREE: &str = "CLUSTER_FREE";
const PAID: &str = "CLUSTER_PAID";
const CONF: &str = "УправлениеТорговлей";
const LICENSE: &str = "CLUSTER-0000-0001";
/// The propagation goal of SPEC §8.
const PROPAGATION: Duration = Duration::from_secs(1);

/// One instance on the shared database and bucket, trusting nginx's address.
async fn instance(database: &TempDatabase, bucket: &str, public_url: &str) -> TestServer {
    TestServer::start_with(ServerOptions {
        database_url: Some(database.url()),
        env: vec![
            ("VYPUSK_STORAGE_URL".into(), bucket.to_owned()),
            ("VYPUSK_TRUSTED_PROXIES".into(), "127.0.0.2/32".into()),
            ("VYPUSK_PUBLIC_URL".into(), public_url.to_owned()),
        ],
        ..Default::default()
    })
    .await
}

/// A client-protocol answer whose signature is checked with the one public key, over a fresh
/// QueryID, whichever instance (or nginx) answered.
async fn signed_post(
    client: &reqwest::Client,
    key: &PublicKey,
    url: String,
    body: &Value,
) -> (StatusCode, Value) {
    let query_id = format!("q-{}", hex::encode(rand::random::<[u8; 8]>()));
    let resp = client
        .post(&url)
        .header("Licence-QueryID", &query_id)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let signature = resp
        .headers()
        .get("Licence-Signature")
        .unwrap_or_else(|| panic!("{url}: no signature"))
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = resp.bytes().await.expect("body");
    key.verify(query_id.as_bytes(), &bytes, &signature)
        .unwrap_or_else(|e| panic!("{url}: the answer does not verify with the shared key: {e}"));
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn check_body(dist: &str, key: Option<&str>, installed: &str) -> Value {
    let mut body = json!({"TYPE": dist, "CONF": CONF, "CONF_VERSION": "11.5.1.1",
                          "INSTALLED_VERSION": installed, "COUNT_DOWNLOADS": "Y"});
    if let Some(k) = key {
        body["KEY"] = json!(k);
    }
    body
}

/// The versions an answer offers for download (a paid release without a known license is
/// listed, but not downloadable).
fn offered(answer: &Value) -> Vec<String> {
    answer["modules"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| m["downloadable"] == true)
                .filter_map(|m| m["uniqid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `server` with `body` until `done` holds for what it offers; returns how long that
/// took, failing once the 1-second goal has passed.
async fn propagated(
    server: &TestServer,
    key: &PublicKey,
    body: &Value,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let (_, answer) = signed_post(
            &server.client,
            key,
            server.url("/releases/v1/1c/getAvailableReleases"),
            body,
        )
        .await;
        if done(&offered(&answer)) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < PROPAGATION,
            "{what}: not seen within {PROPAGATION:?} on {}: {answer}",
            server.base
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn admin_json(server: &TestServer, method: Method, path: &str, body: Value) -> Value {
    let (status, value) = server.admin_json(method, path, Some(body)).await;
    assert!(status.is_success(), "{path}: {status} {value}");
    value
}

/// The link of the first module offered, pointed at `server` instead of the proxy: the
/// download path is the same on every instance.
fn link_on(answer: &Value, nginx: &Nginx, server: &TestServer) -> String {
    let link = answer["modules"][0]["download_link"]
        .as_str()
        .unwrap_or_else(|| panic!("no link in {answer}"));
    assert!(link.starts_with(&nginx.base), "{link}");
    link.replacen(&nginx.base, &server.base, 1)
}

async fn get_range(client: &reqwest::Client, url: &str, range: &str) -> Vec<u8> {
    let resp = client.get(url).header("Range", range).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{url} {range}");
    resp.bytes().await.unwrap().to_vec()
}

async fn stats(server: &TestServer, path: &str) -> Value {
    let (status, value) = server.admin_json(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {value}");
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behind_nginx_agree_on_catalog_identity_and_statistics() {
    let database = TempDatabase::create().await;
    let bucket = fresh_s3_bucket();
    let port = free_port();
    let public_url = Nginx::public_url(port);
    let a = instance(&database, &bucket, &public_url).await;
    let b = instance(&database, &bucket, &public_url).await;
    let nginx = Nginx::start(
        port,
        &[
            a.base.trim_start_matches("http://").to_owned(),
            b.base.trim_start_matches("http://").to_owned(),
        ],
        "127.0.0.2",
    );

    // One identity: both instances publish the same key, and it is the only one used below.
    let pem_a = std::fs::read_to_string(a.public_key_path()).unwrap();
    let pem_b = std::fs::read_to_string(b.public_key_path()).unwrap();
    assert_eq!(pem_a, pem_b, "the instances sign with different keys");
    for server in [&a, &b] {
        let served = server
            .client
            .get(server.url("/releases/v1/signing-key"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(served, pem_a);
    }
    let key = PublicKey::from_pem(&pem_a).unwrap();
    let mut latencies = Vec::new();

    // A release published through A is offered by B within a second.
    a.create_distribution(FREE, json!({})).await;
    let bytes = test_bytes(3 << 20, 11);
    let compat = json!([{"conf": "*", "min_1c_version": "0"}]);
    a.create_release(
        FREE,
        json!({"version": "1.0", "compatibility": compat}),
        &[("free-1.0.zip", &bytes)],
        true,
    )
    .await;
    let free_check = check_body(FREE, None, "0.1");
    latencies.push(
        propagated(&b, &key, &free_check, "publish on A", |v| {
            v == ["1.0".to_owned()]
        })
        .await,
    );
    let newer = a
        .create_release(
            FREE,
            json!({"version": "1.1", "compatibility": compat}),
            &[("free-1.1.zip", &test_bytes(1000, 12))],
            true,
        )
        .await;
    latencies.push(
        propagated(&b, &key, &free_check, "second publish on A", |v| {
            v.first().is_some_and(|v| v == "1.1")
        })
        .await,
    );

    // A yank on B disappears from A within a second.
    admin_json(
        &b,
        Method::POST,
        &format!("/api/v1/releases/{}/yank", newer["id"]),
        json!({"reason": "broken"}),
    )
    .await;
    latencies.push(
        propagated(&a, &key, &free_check, "yank on B", |v| {
            v == ["1.0".to_owned()]
        })
        .await,
    );

    // A license imported with the CLI (against the database, no server involved) is honoured
    // by both within a second.
    a.create_distribution(PAID, json!({"lic_product_id": 85, "lic_feature_id": 43}))
        .await;
    a.create_release(
        PAID,
        json!({"version": "2.0", "compatibility": compat}),
        &[("paid-2.0.zip", &test_bytes(2000, 13))],
        true,
    )
    .await;
    let paid_check = check_body(PAID, Some(LICENSE), "");
    for server in [&a, &b] {
        let (_, answer) = signed_post(
            &server.client,
            &key,
            server.url("/releases/v1/1c/getAvailableReleases"),
            &paid_check,
        )
        .await;
        assert!(
            offered(&answer).is_empty(),
            "offered before the import: {answer}"
        );
    }
    let cli_dir = tempfile::tempdir().unwrap();
    let csv = cli_dir.path().join("licenses.csv");
    std::fs::write(
        &csv,
        format!("key,customer,product,feature\n{LICENSE},ООО Ромашка,85,43\n"),
    )
    .unwrap();
    let out = Command::new(vypusk_bin())
        .arg("--data-dir")
        .arg(cli_dir.path())
        .args(["license", "import"])
        .arg(&csv)
        .env("VYPUSK_DATABASE_URL", database.url())
        .env("VYPUSK_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "license import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let imported = Instant::now();
    for server in [&a, &b] {
        propagated(server, &key, &paid_check, "CLI license import", |v| {
            v == ["2.0".to_owned()]
        })
        .await;
    }
    latencies.push(imported.elapsed());

    // Links issued by one instance download from the other, and resume there with Range.
    let half = bytes.len() / 2;
    let mut downloads = 0;
    for (issuer, first, rest, installed) in [(&a, &b, &b, "0.2"), (&b, &a, &b, "0.3")] {
        let (_, answer) = signed_post(
            &issuer.client,
            &key,
            issuer.url("/releases/v1/1c/getAvailableReleases"),
            &check_body(FREE, None, installed),
        )
        .await;
        let mut whole = get_range(
            &first.client,
            &link_on(&answer, &nginx, first),
            &format!("bytes=0-{}", half - 1),
        )
        .await;
        whole.extend(
            get_range(
                &rest.client,
                &link_on(&answer, &nginx, rest),
                &format!("bytes={half}-"),
            )
            .await,
        );
        assert_eq!(
            sha256_hex(&whole),
            sha256_hex(&bytes),
            "issued by {}",
            issuer.base
        );
        downloads += 1;
    }

    // Checks and a download through the proxy from two clients, spread over both instances.
    let behind = [
        nginx.client_from("127.0.0.3"),
        nginx.client_from("127.0.0.4"),
    ];
    for round in 0..6 {
        for client in &behind {
            let (status, answer) = signed_post(
                client,
                &key,
                nginx.url("/releases/v1/1c/getAvailableReleases"),
                &free_check,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            if round == 0 && std::ptr::eq(client, &behind[0]) {
                let link = answer["modules"][0]["download_link"].as_str().unwrap();
                let body = client
                    .get(link)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                assert_eq!(body.len(), bytes.len());
                downloads += 1;
            }
        }
    }

    // Statistics written by both instances add up exactly: every download once, completed
    // once, with all its bytes; each client one installation (the shared salt).
    let expected = json!({
        "downloads": downloads,
        "completed": downloads,
        "bytes": downloads * bytes.len() as i64,
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let totals = stats(
            &a,
            &format!("/api/v1/stats/downloads?distribution={FREE}&group_by=distribution"),
        )
        .await["totals"]
            .clone();
        let queued = [
            stats(&a, "/api/v1/stats/pipeline").await["queued"].clone(),
            stats(&b, "/api/v1/stats/pipeline").await["queued"].clone(),
        ];
        assert!(
            totals["downloads"].as_i64().unwrap_or(0) <= downloads,
            "downloads counted twice: {totals}"
        );
        if totals == expected && queued == [json!(0), json!(0)] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "statistics did not add up: {totals}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 127.0.0.1 (this test, directly to both instances), 127.0.0.3 and 127.0.0.4 (behind
    // nginx, spread over both). An empty queue does not mean the last batch is committed:
    // poll, bounded, until the check events are in too.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let base = stats(
            &b,
            &format!("/api/v1/stats/installed-base?distribution={FREE}"),
        )
        .await;
        let installations = base["totals"]["installations"].as_i64().unwrap_or(0);
        assert!(installations <= 3, "installations counted twice: {base}");
        if installations == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "installed base never reached 3: {base}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let by_b = stats(
        &b,
        &format!("/api/v1/stats/downloads?distribution={FREE}&group_by=distribution"),
    )
    .await;
    assert_eq!(by_b["totals"], expected, "B reports what A reports");

    let slowest = latencies.iter().max().unwrap();
    eprintln!("propagation between instances: {latencies:?} (slowest {slowest:?})");
    assert!(*slowest < PROPAGATION);
}

/// Instances started at the same moment on a fresh database: one migrates while the others
/// wait (advisory lock), and all of them end up with the one key the first stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once_and_share_one_key() {
    let database = TempDatabase::create().await;
    let options = ServerOptions {
        database_url: Some(database.url()),
        ..Default::default()
    };
    let (one, two, three) = tokio::join!(
        TestServer::start_with(options.clone()),
        TestServer::start_with(options.clone()),
        TestServer::start_with(options),
    );
    let pem = std::fs::read_to_string(one.public_key_path()).unwrap();
    for server in [&two, &three] {
        assert_eq!(
            std::fs::read_to_string(server.public_key_path()).unwrap(),
            pem
        );
        let (status, _) = server
            .admin_json(Method::GET, "/api/v1/distributions", None)
            .await;
        assert_eq!(status, StatusCode::OK, "admin works on {}", server.base);
    }
    // `vypusk signing-key` prints the shared key, from any data directory.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(vypusk_bin())
        .arg("--data-dir")
        .arg(elsewhere.path())
        .arg("signing-key")
        .env("VYPUSK_DATABASE_URL", database.url())
        .env("VYPUSK_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), pem);
}

/// A single-instance data directory from before keeps its key (it becomes the shared one);
/// another data directory with a key of its own refuses to start and says why.
#[tokio::test]
async fn a_data_dir_with_a_different_key_refuses_to_start() {
    let database = TempDatabase::create().await;
    let keys = tempfile::tempdir().unwrap();
    let openssl_key = |name: &str| {
        let path = keys.path().join(name);
        let status = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&path)
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success());
        let public = Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&path)
            .output()
            .expect("openssl");
        (path, String::from_utf8(public.stdout).unwrap())
    };
    let same_text = |a: &str, b: &str| {
        a.split_whitespace().collect::<String>() == b.split_whitespace().collect::<String>()
    };

    // The first data directory's key is migrated into the database, not regenerated.
    let (old_key, old_public) = openssl_key("old.pem");
    let old_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&old_key, old_dir.path().join("signing-key.pem")).unwrap();
    let first = serve_once(&database, old_dir.path());
    let first = first.wait_listening();
    let served = std::fs::read_to_string(old_dir.path().join("signing-key.pub.pem")).unwrap();
    assert!(
        same_text(&served, &old_public),
        "the data dir's key was not kept"
    );
    drop(first);

    // Another data directory with another key is refused with a reason.
    let (other_key, _) = openssl_key("other.pem");
    let other_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&other_key, other_dir.path().join("signing-key.pem")).unwrap();
    let (code, stderr) = serve_once(&database, other_dir.path()).wait_exit();
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("signing-key.pem") && stderr.contains("differs from the one the instances"),
        "unclear refusal: {stderr}"
    );
    assert!(
        !stderr.contains("BEGIN"),
        "the refusal shows key material: {stderr}"
    );
}

/// `vypusk serve` on `data_dir` and the shared database, watched until it listens or exits.
struct Serving {
    child: std::process::Child,
}

fn serve_once(database: &TempDatabase, data_dir: &std::path::Path) -> Serving {
    let child = Command::new(vypusk_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("VYPUSK_DATABASE_URL", database.url())
        .env("VYPUSK_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("VYPUSK_LOG", "warn")
        .env_remove("VYPUSK_STORAGE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vypusk");
    Serving { child }
}

impl Serving {
    /// Reads stdout until "listening"; panics with stderr when the server exits instead.
    fn wait_listening(mut self) -> Serving {
        use std::io::BufRead;
        let stdout = self.child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            if line.unwrap_or_default().contains("listening on") {
                std::thread::spawn(move || for _ in lines {});
                return self;
            }
        }
        let (code, stderr) = self.wait_exit();
        panic!("vypusk exited before listening ({code:?}): {stderr}");
    }

    /// Waits (at most 30 s) for the process to exit; returns its exit code and stderr.
    fn wait_exit(&mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                use std::io::Read;
                self.child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                return (status.code(), stderr);
            }
            assert!(
                Instant::now() < deadline,
                "vypusk neither listened nor exited"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
