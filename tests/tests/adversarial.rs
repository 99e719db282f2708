//! The holes adversarial testing found (issue 7), each shown closed against the real
//! `vypusk serve`: prerelease visibility on every route, permissions before bodies, login
//! throttling and the credential cache, key counting on `getModuleInfo`, error shapes for
//! every rejection, capped echoes, safe CSV and report headers, file-name and SemVer rules,
//! and `last_used_at` of API keys.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vypusk_protocol::signature::PublicKey;
use vypusk_tests::*;

const FREE: &str = "FREE_TOOL";
const PAID: &str = "PAID_TOOL";
const CONF: &str = "УправлениеТорговлей";
const KEY: &str = "PAID-0000-0000-0001";
const BETA_KEY: &str = "PAID-0000-0000-BETA";

/// A client whose connections come from `ip` (any 127.0.0.0/8 address works on loopback).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().expect("ip"))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

fn check(code: &str, key: Option<&str>, installed: &str) -> Value {
    let mut body = json!({
        "INSTALLED_VERSION": installed,
        "TYPE": code,
        "CONF": CONF,
        "CONF_VERSION": "11.5.1.1",
        "SHOW_UNTESTED": "N",
        "COUNT_DOWNLOADS": "N",
    });
    if let Some(k) = key {
        body["KEY"] = k.into();
    }
    body
}

async fn create_license(server: &TestServer, key: &str, beta: bool) {
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(
                json!({"key": key, "customer": "ООО Ромашка", "itn": "7701234567", "beta": beta,
                        "features": [{"product": 85, "feature": 43, "active_until": null}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A free and a paid distribution, each with release 1.0 and prerelease 1.1, both with an
/// extension hash.
async fn seed_prereleases(server: &TestServer) {
    server.create_distribution(FREE, json!({})).await;
    server
        .create_distribution(PAID, json!({"lic_product_id": 85, "lic_feature_id": 43}))
        .await;
    for code in [FREE, PAID] {
        for (version, prerelease, seed) in [("1.0", false, 1u8), ("1.1", true, 2u8)] {
            server
                .create_release(
                    code,
                    json!({"version": version, "prerelease": prerelease,
                           "compatibility": [{"conf": "*", "min_1c_version": "0"}],
                           "metadata": {"extension_hash": format!("hash-{version}")}}),
                    &[(&format!("{code}_{version}.zip"), &test_bytes(2000, seed))],
                    true,
                )
                .await;
        }
    }
    create_license(server, KEY, false).await;
    create_license(server, BETA_KEY, true).await;
}

async fn status_of(client: &reqwest::Client, url: String) -> StatusCode {
    client.get(url).send().await.expect("request").status()
}

/// Defect 1: an explicit version the caller may not see is a 404 on every route, and a
/// prerelease link stops working once its license loses `beta`.
#[tokio::test]
async fn prereleases_are_invisible_on_every_route() {
    let server = TestServer::start_with(ServerOptions {
        env: vec![("VYPUSK_PRERELEASE_NETWORKS".into(), "127.0.0.9/32".into())],
        ..Default::default()
    })
    .await;
    seed_prereleases(&server).await;
    let outsider = client_from("127.0.0.1");
    let insider = client_from("127.0.0.9");
    let url = |p: &str| server.url(&format!("/releases/v1/1c/{p}"));

    // The check lists only 1.0 for an outsider.
    let (_, answer) = server
        .client_post("getAvailableReleases", check(FREE, None, ""))
        .await;
    assert_eq!(answer["modules"].as_array().unwrap().len(), 1, "{answer}");

    // Free distribution: no bytes and no hash of 1.1 for an outsider, but for the network.
    for path in [
        format!("getModuleFile/{FREE}/1.1"),
        format!("getExtensionHash/{FREE}/1.1"),
    ] {
        assert_eq!(
            status_of(&outsider, url(&path)).await,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        assert_eq!(
            status_of(&insider, url(&path)).await,
            StatusCode::OK,
            "{path}"
        );
    }
    // Visible releases still work for everybody.
    assert_eq!(
        status_of(&outsider, url(&format!("getModuleFile/{FREE}/1.0"))).await,
        StatusCode::OK
    );

    // Paid distribution, key-hash path: the non-beta key sees no 1.1, the beta key does.
    let hash = sha256_hex(KEY.as_bytes());
    let beta_hash = sha256_hex(BETA_KEY.as_bytes());
    assert_eq!(
        status_of(&outsider, url(&format!("getModuleFile/{PAID}/1.1/{hash}"))).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(
            &outsider,
            url(&format!("getModuleFile/{PAID}/1.1/{beta_hash}"))
        )
        .await,
        StatusCode::OK
    );

    // Download-token path: a token issued to the non-beta key for 1.0 opens no 1.1.
    let (_, answer) = server
        .client_post("getAvailableReleases", check(PAID, Some(KEY), ""))
        .await;
    let link = answer["modules"][0]["download_link"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = link.split('/').rev().nth(1).unwrap().to_owned();
    assert_eq!(
        status_of(&outsider, url(&format!("getModuleFile/{PAID}/1.1/{token}"))).await,
        StatusCode::NOT_FOUND
    );

    // A prerelease link issued to the beta license stops working once it loses `beta`.
    let (_, answer) = server
        .client_post("getAvailableReleases", check(PAID, Some(BETA_KEY), "1.0"))
        .await;
    assert_eq!(answer["modules"][0]["uniqid"], "1.1", "{answer}");
    let link = answer["modules"][0]["download_link"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(status_of(&outsider, link.clone()).await, StatusCode::OK);
    let (status, body) = server
        .admin_json(
            Method::PUT,
            &format!("/api/v1/licenses/{BETA_KEY}"),
            Some(
                json!({"beta": false, "customer": "ООО Ромашка", "itn": "7701234567",
                        "features": [{"product": 85, "feature": 43, "active_until": null}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(status_of(&outsider, link).await, StatusCode::NOT_FOUND);
}

/// Sends only the headers of a request with a huge `Content-Length` and returns the status
/// line of the answer, which must come without any body byte sent.
async fn status_before_body(server: &TestServer, head: &str) -> String {
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(head.as_bytes())
        .await
        .expect("write headers");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("the server answered only after the body (it read the body before checking permissions)")
        .expect("read");
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.lines().next().unwrap_or("").to_owned()
}

/// Defect 4: credentials and permissions are checked before any body byte is read.
#[tokio::test]
async fn permissions_are_checked_before_the_body() {
    let server = TestServer::start().await;
    server.create_distribution(FREE, json!({})).await;
    let (status, created) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/distributions/{FREE}/releases"),
            Some(json!({"version": "1.0"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let release = created["id"].as_i64().unwrap();
    let (_, read_key) = server.create_api_key(&["read"]).await;
    let size = 200u64 << 20;
    for (method, path) in [
        ("POST", "/api/v1/licenses/import".to_owned()),
        ("PUT", format!("/api/v1/releases/{release}/files/big.zip")),
        ("POST", format!("/api/v1/releases/{release}/files")),
        ("POST", "/api/v1/licenses".to_owned()),
    ] {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nx-api-key: {read_key}\r\nContent-Type: text/csv\r\nContent-Length: {size}\r\n\r\n"
        );
        let line = status_before_body(&server, &head).await;
        assert!(
            line.contains(" 403 ") || line.contains(" 413 "),
            "{method} {path}: {line}"
        );
        // Without credentials: 401, also before the body.
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: {size}\r\n\r\n"
        );
        let line = status_before_body(&server, &head).await;
        assert!(
            line.contains(" 401 ") || line.contains(" 413 "),
            "{method} {path}: {line}"
        );
    }
}

/// Defect 5: failed logins are throttled per (user, address) and per address, never per user
/// alone; the owner from another address still gets in; the reports form is throttled too.
#[tokio::test]
async fn failed_logins_are_throttled_per_address() {
    let server = TestServer::start().await;
    let guesser = client_from("127.0.0.1");
    let owner = client_from("127.0.0.2");
    let api = |c: &reqwest::Client| c.get(server.url("/api/v1/distributions"));

    let mut statuses = Vec::new();
    for i in 0..12 {
        let (status, body) =
            send_json(api(&guesser).basic_auth("admin", Some(format!("guess-{i}")))).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body["Exception"], "TooManyRequests", "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses[..10], [StatusCode::UNAUTHORIZED; 10]);
    assert_eq!(
        statuses[10..],
        [StatusCode::TOO_MANY_REQUESTS; 2],
        "{statuses:?}"
    );
    // Even the right password waits out the minute from the guessing address…
    let (status, _) = send_json(api(&guesser).basic_auth("admin", Some(ADMIN_PASSWORD))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // …but the owner elsewhere is not locked out.
    let (status, _) = send_json(api(&owner).basic_auth("admin", Some(ADMIN_PASSWORD))).await;
    assert_eq!(status, StatusCode::OK);

    // API key guessing counts per address (three times the per-user limit).
    let keys = client_from("127.0.0.3");
    let mut last = StatusCode::OK;
    for i in 0..31 {
        last = api(&keys)
            .header("x-api-key", format!("vypk_guess{i}"))
            .send()
            .await
            .unwrap()
            .status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);

    // The reports login form shares the throttle.
    let form = client_from("127.0.0.4");
    let csrf = reports_login_csrf(&server).await;
    let mut last = StatusCode::OK;
    for i in 0..11 {
        last = form
            .post(server.url("/reports/login"))
            .header("cookie", format!("vypusk_csrf={csrf}"))
            .form(&[
                ("user", "admin"),
                ("password", &format!("nope-{i}")),
                ("next", "/reports"),
                ("csrf", &csrf),
            ])
            .send()
            .await
            .unwrap()
            .status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

/// Defect 5: a changed password is forgotten at once by the credential cache and ends the
/// report sessions made with it.
#[tokio::test]
async fn changed_password_is_forgotten_at_once() {
    let server = TestServer::start().await;
    // Verified once, so the old password is in the cache.
    let (status, _) = send_json(server.admin(Method::GET, "/api/v1/distributions")).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = reports_login_csrf(&server).await;
    let login = server
        .client
        .post(server.url("/reports/login"))
        .header("cookie", format!("vypusk_csrf={csrf}"))
        .form(&[
            ("user", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", "/reports"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = |c: String| {
        server
            .client
            .get(server.url("/reports"))
            .header("cookie", c)
            .send()
    };
    assert_eq!(page(cookie.clone()).await.unwrap().status(), StatusCode::OK);

    let new_password = "a-brand-new-admin-password";
    let out = std::process::Command::new(vypusk_bin())
        .arg("--data-dir")
        .arg(server.data_dir.path())
        .arg("admin-password")
        .env("VYPUSK_NEW_ADMIN_PASSWORD", new_password)
        .env_remove("VYPUSK_DATABASE_URL")
        .output()
        .expect("vypusk admin-password");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (status, _) = send_json(server.admin(Method::GET, "/api/v1/distributions")).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old password still worked"
    );
    let (status, _) = send_json(
        server
            .client
            .get(server.url("/api/v1/distributions"))
            .basic_auth("admin", Some(new_password)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(
        page(cookie).await.unwrap().status(),
        StatusCode::OK,
        "a session made with the old password still worked"
    );
}

/// Defect 6: unknown keys count on `getModuleInfo` too, and a blocked address is blocked there.
#[tokio::test]
async fn get_module_info_counts_unknown_keys() {
    let server = TestServer::start().await;
    seed_prereleases(&server).await;
    let info = |key: String| {
        let server = &server;
        async move {
            server
                .client_post("getModuleInfo", json!({"TYPE": PAID, "KEY": key}))
                .await
        }
    };
    for i in 0..30 {
        let (status, body) = info(format!("UNKNOWN-{i:04}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = info("UNKNOWN-9999".to_owned()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // And the other routes see the same count.
    let (status, _) = server
        .client_post(
            "getAvailableReleases",
            check(PAID, Some("UNKNOWN-1234"), ""),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

/// Defect 7: a path segment that is not UTF-8 answers in the family's JSON shape, signed and
/// with the QueryID echoed; a bad `next` on the login form falls back to `/reports`.
#[tokio::test]
async fn every_rejection_has_the_family_shape() {
    let server = TestServer::start().await;
    let key = PublicKey::from_pem(
        &std::fs::read_to_string(server.public_key_path()).expect("public key"),
    )
    .unwrap();
    for path in [
        "/releases/v1/files/%FF/x",
        "/releases/v1/1c/getModuleFile/%FF/latest",
        "/releases/v1/1c/getModuleFile/%FF/latest/abc",
        "/releases/v1/1c/getExtensionHash/%FF%FE/latest",
    ] {
        let resp = server
            .client
            .get(server.url(path))
            .header("Licence-QueryID", "q-123")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        assert_eq!(resp.headers()["licence-queryid"], "q-123", "{path}");
        let sig = resp.headers()["licence-signature"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = resp.bytes().await.unwrap();
        key.verify(b"q-123", &body, &sig).expect("signed");
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert!(value["error"].is_string(), "{path}: {value}");
    }
    let (status, body) = send_json(server.admin(Method::GET, "/api/v1/releases/%FF")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["Code"], 400, "{body}");
    assert!(body["Exception"].is_string(), "{body}");

    let csrf = reports_login_csrf(&server).await;
    let resp = server
        .client
        .post(server.url("/reports/login"))
        .header("cookie", format!("vypusk_csrf={csrf}"))
        .form(&[
            ("user", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", "/reports\r\nX-Evil: 1"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/reports");
    assert!(resp.headers().get("x-evil").is_none());
}

/// Defect 8: errors quote little of what they were given; CSV cells cannot be formulas; the
/// reports send a strict Content-Security-Policy.
#[tokio::test]
async fn echoes_exports_and_report_headers_are_safe() {
    let server = TestServer::start().await;
    seed_prereleases(&server).await;
    let long_type = "T".repeat(300_000);
    let resp = server
        .client
        .post(server.url("/releases/v1/1c/getAvailableReleases"))
        .json(&check(&long_type, None, ""))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.bytes().await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.len() < 2048, "the error echoed {} bytes", body.len());

    // A client-chosen CONF lands in the statistics CSV as text, never as a formula.
    let mut request = check(FREE, None, "");
    request["CONF"] = "=HYPERLINK(\"http://evil.example\",\"click\")".into();
    request["SHOW_UNTESTED"] = "Y".into();
    let (status, _) = server.client_post("getAvailableReleases", request).await;
    assert_eq!(status, StatusCode::OK);
    let mut csv = String::new();
    for _ in 0..100 {
        let resp = server
            .admin(
                Method::GET,
                "/api/v1/stats/installed-base?group_by=conf&format=csv",
            )
            .send()
            .await
            .unwrap();
        csv = resp.text().await.unwrap();
        if csv.contains("HYPERLINK") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        csv.contains("HYPERLINK"),
        "the check was never recorded: {csv}"
    );
    for line in csv.lines().skip(1) {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with(['=', '+', '@', '\t', '\r']),
                "formula cell {cell:?} in {csv}"
            );
        }
    }

    let resp = server
        .client
        .get(server.url("/reports/login"))
        .send()
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
}

/// Defect 9: the server refuses the names the updater refuses, and a second SemVer release
/// equal in precedence.
#[tokio::test]
async fn file_names_and_semver_build_metadata() {
    let server = TestServer::start().await;
    server.create_distribution(FREE, json!({})).await;
    let (_, created) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/distributions/{FREE}/releases"),
            Some(json!({"version": "1.0"})),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    let put = |name: &str| {
        let encoded = name
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>();
        server
            .admin(
                Method::PUT,
                &format!("/api/v1/releases/{id}/files/{encoded}"),
            )
            .body(b"bytes".to_vec())
    };
    for bad in [
        ".hidden",
        "evil\u{202E}piz.exe",
        "a\u{200B}b.zip",
        "a\u{2066}b.zip",
    ] {
        let (status, body) = send_json(put(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
    }
    for (first, second) in [
        ("Setup.zip", "setup.zip"),
        ("Расширение.cfe", "РАСШИРЕНИЕ.CFE"),
    ] {
        let (status, body) = send_json(put(first)).await;
        assert_eq!(status, StatusCode::CREATED, "{first}: {body}");
        let (status, body) = send_json(put(second)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{second}: {body}");
        // The same name again replaces the file, as before.
        let (status, body) = send_json(put(first)).await;
        assert_eq!(status, StatusCode::CREATED, "{first} again: {body}");
    }

    server
        .create_distribution("SEMVER_TOOL", json!({"version_scheme": "semver"}))
        .await;
    let create = |version: &str| {
        server.admin_json(
            Method::POST,
            "/api/v1/distributions/SEMVER_TOOL/releases",
            Some(json!({"version": version})),
        )
    };
    let (status, body) = create("1.2.3+a").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = create("1.2.3+b").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

/// Defect 9: a database that already holds two releases equal in precedence (accepted by
/// earlier servers) still migrates and serves.
#[tokio::test]
async fn legacy_semver_pair_still_migrates_and_serves() {
    use sea_orm::ConnectionTrait;
    let mut server = TestServer::start().await;
    server
        .create_distribution("SEMVER_TOOL", json!({"version_scheme": "semver"}))
        .await;
    for (version, seed) in [("1.2.3+a", 1u8), ("1.2.4", 2u8)] {
        server
            .create_release(
                "SEMVER_TOOL",
                json!({"version": version, "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
                &[(&format!("tool-{seed}.zip"), &test_bytes(100, seed))],
                true,
            )
            .await;
    }
    server.terminate();
    // What an earlier server wrote: build metadata in version_norm, and a second 1.2.3.
    let db_url = format!(
        "sqlite://{}/vypusk.db?mode=rw",
        server.data_dir.path().display()
    );
    let db = sea_orm::Database::connect(&db_url).await.expect("sqlite");
    for sql in [
        "UPDATE releases SET version_norm = '1.2.3+a' WHERE version = '1.2.3+a'",
        "INSERT INTO releases (distribution_id, version, version_norm, status, published_at, prerelease, changelog, created_at, updated_at) \
         SELECT distribution_id, '1.2.3+b', '1.2.3+b', status, published_at, prerelease, changelog, created_at, updated_at FROM releases WHERE version = '1.2.3+a'",
        "INSERT INTO compatibility (release_id, position, conf, min_1c_version) SELECT id, 0, '*', '0' FROM releases WHERE version = '1.2.3+b'",
        "INSERT INTO files (release_id, name, size, md5, sha256, main, created_at) \
         SELECT (SELECT id FROM releases WHERE version = '1.2.3+b'), 'b.zip', size, md5, sha256, 1, created_at FROM files WHERE name = 'tool-1.zip'",
        "DELETE FROM seaql_migrations WHERE version LIKE '%semver_precedence%'",
    ] {
        db.execute_unprepared(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    db.close().await.unwrap();

    server.restart().await;
    let (status, answer) = server
        .client_post(
            "getAvailableReleases",
            json!({"TYPE": "SEMVER_TOOL", "CONF": CONF, "CONF_VERSION": "1", "INSTALLED_VERSION": "1.0.0"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let versions: Vec<&str> = answer["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["uniqid"].as_str().unwrap())
        .collect();
    assert_eq!(versions[0], "1.2.4", "{answer}");
    assert_eq!(versions.len(), 3, "{answer}");
    // And no third 1.2.3 can be added.
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/distributions/SEMVER_TOOL/releases",
            Some(json!({"version": "1.2.3+c"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

/// Defect 10: `last_used_at` is written when a key is used.
#[tokio::test]
async fn api_key_last_use_is_recorded() {
    let server = TestServer::start().await;
    let (id, key) = server.create_api_key(&["read"]).await;
    let (status, _) = send_json(
        server
            .client
            .get(server.url("/api/v1/distributions"))
            .header("x-api-key", &key),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Written off the request path: poll the list, bounded.
    let mut last_used = Value::Null;
    for _ in 0..50 {
        let (_, list) = server
            .admin_json(Method::GET, "/api/v1/api-keys", None)
            .await;
        last_used = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .map(|k| k["last_used_at"].clone())
            .unwrap_or(Value::Null);
        if !last_used.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(last_used.is_string(), "last_used_at was never written");
}

/// A license edited while another request deletes it is a 404 (or the edit wins), never a 500:
/// the edit reads the license, then writes it, and the row may be gone in between
/// (schemathesis's parallel workers found this). Bounded: 60 rounds.
#[tokio::test]
async fn a_license_edited_while_it_is_deleted_is_never_a_server_error() {
    let server = TestServer::start().await;
    for round in 0..60 {
        let key = format!("RACE-{round:04}");
        let (status, _) = server
            .admin_json(
                Method::POST,
                "/api/v1/licenses",
                Some(json!({"key": key, "features": [{"product": 1, "feature": 2}]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let path = format!("/api/v1/licenses/{key}");
        let patch = server.admin_json(
            Method::PATCH,
            &path,
            Some(json!({"beta": true, "customer": "ООО «Ромашка»", "features": [], "itn": null})),
        );
        let delete = server.admin_json(Method::DELETE, &path, None);
        let ((patched, body), (deleted, _)) = tokio::join!(patch, delete);
        assert!(
            patched == StatusCode::OK || patched == StatusCode::NOT_FOUND,
            "round {round}: PATCH {patched} {body}"
        );
        assert_eq!(deleted, StatusCode::NO_CONTENT, "round {round}");
    }
}
