//! Operations (issue 8, item 4) against the real `vypusk serve`: `/metrics` parsed with a
//! Prometheus text parser counts exactly the requests made, the access log never shows a
//! download token, a license-key hash or an API key, audit lines name vendor actions,
//! `/readyz`, startup failures that name their cause, and a SQLite backup taken while the
//! server serves restores into a server that answers identically.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_tests::*;

const TYPE: &str = "OPS_EXT";
const CONF: &str = "Бухгалтерия";
const KEY: &str = "OPS-AAAAA-BBBBB-CCCCC-DDDDD";

/// A paid distribution with one published release of one file, and a license for it.
async fn seed(server: &TestServer, file: &[u8]) {
    server
        .create_distribution(TYPE, json!({"lic_product_id": 7, "lic_feature_id": 9}))
        .await;
    server
        .create_release(
            TYPE,
            json!({"version": "1.0.0", "compatibility": [{"conf": CONF, "min_1c_version": "3.0.1"}]}),
            &[("ops.cfe", file)],
            true,
        )
        .await;
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(
                json!({"key": KEY, "customer": "ООО Ромашка", "itn": "7701234567",
                        "features": [{"product": 7, "feature": 9, "active_until": null}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn check_request() -> Value {
    json!({"INSTALLED_VERSION": "0.9", "TYPE": TYPE, "CONF": CONF, "CONF_VERSION": "3.0.1",
           "KEY": KEY, "COUNT_DOWNLOADS": "Y"})
}

async fn download_link(server: &TestServer) -> String {
    let (status, answer) = server
        .client_post("getAvailableReleases", check_request())
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["modules"][0]["download_link"]
        .as_str()
        .unwrap_or_else(|| panic!("no link in {answer}"))
        .to_owned()
}

async fn scrape(client: &reqwest::Client, url: &str) -> prometheus_parse::Scrape {
    let resp = client.get(url).send().await.expect("scrape");
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.expect("metrics text");
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("Prometheus text format")
}

/// The sample of `metric` whose labels include `labels`; 0 when absent. Histograms give
/// their observation count (the `+Inf` bucket).
fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let samples: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert!(samples.len() <= 1, "{metric} {labels:?} is ambiguous");
    samples.first().map_or(0.0, |s| match &s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        prometheus_parse::Value::Histogram(buckets) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map_or(0.0, |b| b.count),
        prometheus_parse::Value::Summary(_) => panic!("{metric} is a summary"),
    })
}

#[tokio::test]
async fn metrics_on_their_own_listener_count_exactly_the_requests_made() {
    let server = TestServer::start_with(ServerOptions {
        env: vec![("VYPUSK_METRICS_LISTEN".into(), "127.0.0.1:0".into())],
        ..Default::default()
    })
    .await;
    let metrics_url = server
        .startup_output
        .iter()
        .find_map(|l| l.strip_prefix("metrics on "))
        .unwrap_or_else(|| panic!("no metrics address in {:?}", server.startup_output))
        .to_owned();
    // Only on `metrics_listen`.
    let resp = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let file = test_bytes(20_000, 3);
    let before = scrape(&server.client, &metrics_url).await;
    assert_eq!(
        value(
            &before,
            "vypusk_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    seed(&server, &file).await;

    let link = download_link(&server).await;
    for _ in 0..2 {
        let (status, _) = server
            .client_post("getAvailableReleases", check_request())
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = server.client_post("getAvailableReleases", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for _ in 0..2 {
        let bytes = server
            .client
            .get(&link)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.len(), file.len());
    }
    let resp = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // 404 from the main listener, made above, is the one `other` request before the baseline.

    // Request counts are recorded with the answer's head; download bytes when the body has
    // been sent, which may trail the client's last read a little: wait for those.
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let after = scrape(&server.client, &metrics_url).await;
        if value(&after, "vypusk_download_bytes_total", &[]) >= (2 * file.len()) as f64
            || Instant::now() > deadline
        {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let diff = |metric: &str, labels: &[(&str, &str)]| {
        value(&after, metric, labels) - value(&before, metric, labels)
    };
    let requests = "vypusk_http_requests_total";
    assert_eq!(
        diff(requests, &[("family", "client"), ("status", "200")]),
        3.0
    );
    assert_eq!(
        diff(requests, &[("family", "client"), ("status", "400")]),
        1.0
    );
    assert_eq!(
        diff(requests, &[("family", "download"), ("status", "200")]),
        2.0
    );
    assert_eq!(
        diff(requests, &[("family", "other"), ("status", "200")]),
        1.0
    );
    assert_eq!(
        diff(requests, &[("family", "other"), ("status", "404")]),
        0.0
    );
    // Seeding: distribution, release, upload, publish, license.
    assert_eq!(diff(requests, &[("family", "api"), ("status", "201")]), 4.0);
    assert_eq!(diff(requests, &[("family", "api"), ("status", "200")]), 1.0);
    assert_eq!(
        diff("vypusk_http_response_time_seconds", &[("family", "client")]),
        4.0
    );
    assert_eq!(
        diff("vypusk_checks_total", &[("call", "getAvailableReleases")]),
        3.0
    );
    assert_eq!(diff("vypusk_downloads_total", &[]), 2.0);
    assert_eq!(
        diff("vypusk_download_bytes_total", &[]),
        (2 * file.len()) as f64
    );
    assert_eq!(diff("vypusk_uploads_total", &[]), 1.0);
    assert_eq!(diff("vypusk_upload_bytes_total", &[]), file.len() as f64);
    assert_eq!(value(&after, "vypusk_catalog_distributions", &[]), 1.0);
    assert_eq!(value(&after, "vypusk_catalog_releases", &[]), 1.0);
    assert_eq!(value(&after, "vypusk_catalog_licenses", &[]), 1.0);
    assert!(value(&after, "vypusk_db_pool_connections", &[]) >= 1.0);
    for series in [
        "vypusk_stats_queue_depth",
        "vypusk_stats_events_dropped_total",
        "vypusk_stats_events_written_total",
    ] {
        assert!(
            after.samples.iter().any(|s| s.metric == series),
            "{series} missing"
        );
    }
    assert_eq!(value(&after, "vypusk_stats_events_dropped_total", &[]), 0.0);
}

#[tokio::test]
async fn access_log_redacts_tokens_and_keys_and_audits_vendor_actions() {
    let logs = tempfile::tempdir().unwrap();
    let log_path = logs.path().join("vypusk.log");
    let mut server = TestServer::start_with(ServerOptions {
        env: vec![("VYPUSK_LOG".into(), "info".into())],
        log_file: Some(log_path.clone()),
        ..Default::default()
    })
    .await;
    let file = test_bytes(5_000, 4);
    seed(&server, &file).await;

    let link = download_link(&server).await;
    let token = link
        .split("/releases/v1/files/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("token in link")
        .to_owned();
    let resp = server.client.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().len(), file.len());
    let key_hash = sha256_hex(KEY.as_bytes());
    let resp = server
        .client
        .get(server.url(&format!(
            "/releases/v1/1c/getModuleFile/{TYPE}/latest/{key_hash}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // An offline bundle: a read, but audited (with the license as a fingerprint).
    let resp = server
        .admin(
            Method::GET,
            &format!("/api/v1/releases/1/bundle?license={KEY}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(!resp.bytes().await.unwrap().is_empty());
    // An API key made and used, then a wrong one, then a wrong password.
    let (status, created) = server
        .admin_json(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "ci", "permissions": ["read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let api_key = created["key"].as_str().expect("key").to_owned();
    let resp = server
        .client
        .get(server.url("/api/v1/distributions"))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let wrong_key = format!("{api_key}x");
    let resp = server
        .client
        .get(server.url("/api/v1/distributions"))
        .bearer_auth(&wrong_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = server
        .client
        .get(server.url("/api/v1/distributions"))
        .basic_auth("admin", Some("not-the-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let id = created["id"].as_i64().unwrap();
    let (status, _) = server
        .admin_json(Method::DELETE, &format!("/api/v1/api-keys/{id}"), None)
        .await;
    assert!(status.is_success(), "{status}");

    // SIGTERM: the server writes its buffered lines before it exits.
    server.terminate();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.contains('\u{1b}'), "ANSI colours in a log file");
    for secret in [
        token.as_str(),
        key_hash.as_str(),
        api_key.as_str(),
        wrong_key.as_str(),
        KEY,
        ADMIN_PASSWORD,
    ] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
    let access: Vec<&str> = log.lines().filter(|l| l.contains(" access: ")).collect();
    let line = |route: &str, status: u16| {
        access
            .iter()
            .find(|l| {
                l.contains(&format!("route=\"{route}\"")) && l.contains(&format!("status={status}"))
            })
            .unwrap_or_else(|| panic!("no access line for {route} {status}:\n{log}"))
            .to_string()
    };
    let download = line("/releases/v1/files/{token}/{name}", 200);
    assert!(download.contains("method=GET"), "{download}");
    assert!(
        download.contains(&format!("bytes={}", file.len())),
        "{download}"
    );
    assert!(
        download.contains("duration_ms=") && download.contains("client=127.0.0.1"),
        "{download}"
    );
    line("/releases/v1/1c/getModuleFile/{type}/{version}/{hash}", 200);
    line("/releases/v1/1c/getAvailableReleases", 200);
    line("/api/v1/distributions", 401);

    let audit: Vec<&str> = log.lines().filter(|l| l.contains(" audit: ")).collect();
    let audited = |needle: &str| {
        assert!(
            audit.iter().any(|l| l.contains(needle)),
            "no audit line with {needle}:\n{}",
            audit.join("\n")
        );
    };
    audited("action=POST /api/v1/releases/{id}/publish params=id=\"1\" status=200 actor=\"admin\"");
    audited("action=PUT /api/v1/releases/{id}/files/{name}");
    audited("action=POST /api/v1/api-keys params= status=201 actor=\"admin\"");
    audited(&format!(
        "action=DELETE /api/v1/api-keys/{{id}} params=id=\"{id}\" status=20"
    ));
    audited(&format!(
        "action=GET /api/v1/releases/{{id}}/bundle params=id=\"1\" license_sha256={} status=200 actor=\"admin\"",
        &key_hash[..12]
    ));
    audited("failed login with an unknown or revoked API key");
    audited("failed login client=127.0.0.1 user=\"admin\"");
    assert!(
        log.contains("listening on http://"),
        "startup message not logged"
    );
    assert!(
        !log.contains("Its password"),
        "the admin password notice is stdout only"
    );
}

#[tokio::test]
async fn readyz_answers_when_database_and_storage_answer() {
    let server = TestServer::start().await;
    let resp = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "ok");

    // The object store's directory gone and replaced by a file: storage no longer answers.
    let objects = server.data_dir.path().join("objects");
    std::fs::remove_dir_all(&objects).unwrap();
    std::fs::write(&objects, b"not a directory").unwrap();
    let resp = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = resp.text().await.unwrap();
    assert_eq!(text, "not ready: storage not answering");
}

#[tokio::test]
async fn readyz_names_a_database_that_stopped_answering() {
    let db = TempDatabase::create().await;
    let server = TestServer::start_with(ServerOptions {
        database_url: Some(db.url()),
        ..Default::default()
    })
    .await;
    let resp = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // The database is gone (its connections ended with it).
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-c"])
        .arg(format!("DROP DATABASE {} WITH (FORCE)", db.name))
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resp = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        resp.text().await.unwrap(),
        "not ready: database not answering"
    );
}

/// `vypusk` with `args` on a fresh data dir; its exit status, stderr and how long it took.
fn run_vypusk(args: &[&str], env: &[(&str, &str)]) -> (bool, String, Duration) {
    let data = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = Command::new(vypusk_bin())
        .arg("--data-dir")
        .arg(data.path())
        .args(args)
        .env_remove("VYPUSK_DATABASE_URL")
        .env_remove("VYPUSK_STORAGE_URL")
        .envs(env.iter().copied())
        .output()
        .expect("run vypusk");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn startup_failures_name_their_cause_quickly() {
    let (ok, stderr, took) = run_vypusk(
        &["serve", "--listen", "127.0.0.1:0"],
        &[(
            "VYPUSK_DATABASE_URL",
            "postgres://postgres:hunter2@127.0.0.1:1/x",
        )],
    );
    assert!(!ok);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        stderr.contains("cannot open the database postgres://postgres:***@127.0.0.1:1/x"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI colours off a terminal: {stderr}"
    );

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (ok, stderr, _) = run_vypusk(&["serve", "--listen", &addr], &[]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}: address in use")),
        "{stderr}"
    );

    let (ok, stderr, _) = run_vypusk(&["serve", "--listen", "0.0.0.0:0"], &[]);
    assert!(!ok);
    assert!(stderr.contains("public_url must be set"), "{stderr}");
}

#[test]
fn backup_of_a_postgres_deployment_says_what_to_back_up_instead() {
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("backup");
    let (ok, stderr, _) = run_vypusk(
        &["backup", target.to_str().unwrap()],
        &[(
            "VYPUSK_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        )],
    );
    assert!(!ok);
    assert!(
        stderr.contains("pg_dump") && stderr.contains("bucket"),
        "{stderr}"
    );
    assert!(stderr.contains("signing-key.pem"), "{stderr}");
    assert!(!target.exists());
}

#[tokio::test]
async fn sqlite_backup_taken_while_serving_restores_to_an_identical_server() {
    const PUBLIC: &str = "http://updates.test";
    let options = ServerOptions {
        env: vec![("VYPUSK_PUBLIC_URL".into(), PUBLIC.into())],
        ..Default::default()
    };
    let original = TestServer::start_with(options.clone()).await;
    let file = test_bytes(300_000, 5);
    seed(&original, &file).await;

    // Checks keep arriving (and statistics keep being written) while the backup runs.
    let backups = tempfile::tempdir().unwrap();
    let backup_dir = backups.path().join("b");
    let backup = {
        let data_dir = original.data_dir.path().to_path_buf();
        let backup_dir = backup_dir.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(vypusk_bin())
                .arg("--data-dir")
                .arg(&data_dir)
                .arg("backup")
                .arg(&backup_dir)
                .env_remove("VYPUSK_DATABASE_URL")
                .env_remove("VYPUSK_STORAGE_URL")
                .output()
                .expect("run backup")
        })
    };
    let mut checks_during_backup = 0;
    while !backup.is_finished() && checks_during_backup < 500 {
        let (status, _) = original
            .client_post("getAvailableReleases", check_request())
            .await;
        assert_eq!(status, StatusCode::OK);
        checks_during_backup += 1;
    }
    let out = backup.await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("backup written"));

    let restored_dir = tempfile::tempdir().unwrap();
    let out = Command::new(vypusk_bin())
        .arg("--data-dir")
        .arg(restored_dir.path())
        .arg("restore")
        .arg(&backup_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second restore into the now non-empty data dir is refused without --force.
    let out = Command::new(vypusk_bin())
        .arg("--data-dir")
        .arg(restored_dir.path())
        .arg("restore")
        .arg(&backup_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));

    let restored = TestServer::start_in(restored_dir, options).await;
    assert_eq!(
        std::fs::read(original.public_key_path()).unwrap(),
        std::fs::read(restored.public_key_path()).unwrap()
    );
    // Same request, same answer and signature (links expire on a 60 s grid, so the original
    // is asked on both sides of the restored server's answer).
    let answer = |server: &TestServer| {
        let request = server
            .client
            .post(server.url("/releases/v1/1c/getAvailableReleases"))
            .header("Licence-QueryID", "q-1")
            .json(&check_request());
        async move {
            let resp = request.send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let sig = resp.headers()["Licence-Signature"]
                .to_str()
                .unwrap()
                .to_owned();
            (resp.bytes().await.unwrap(), sig)
        }
    };
    let first = answer(&original).await;
    let from_restored = answer(&restored).await;
    let last = answer(&original).await;
    assert!(
        from_restored == first || from_restored == last,
        "answers differ:\n{:?}\n{:?}",
        String::from_utf8_lossy(&first.0),
        String::from_utf8_lossy(&from_restored.0)
    );
    let answer: Value = serde_json::from_slice(&from_restored.0).unwrap();
    let link = answer["modules"][0]["download_link"].as_str().unwrap();
    assert!(link.starts_with(PUBLIC), "{link}");
    // The link (issued by the restored server's token secret) downloads the same bytes from
    // either server.
    for server in [&restored, &original] {
        let url = link.replacen(PUBLIC, &server.base, 1);
        let resp = server.client.get(url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), file.as_slice());
    }
}
