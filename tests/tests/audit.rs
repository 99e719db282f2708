//! The audit log kept in the database (issue 12, item 3) against the real `vypusk serve`, on
//! SQLite and on PostgreSQL: vendor-API changes, failed logins (once, not twice), logins and
//! logouts through the form, and CLI actions on the data directory all appear in
//! `GET /api/v1/audit` with who, what, on what, how and the status; its filters narrow them,
//! `format=csv` exports them, and only owners may read it.

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest;
use vypusk_tests::{
    ADMIN_PASSWORD, ServerOptions, TempDatabase, TestServer, reports_login, reports_login_csrf,
    send_json, vypusk_bin,
};

#[derive(Debug, Deserialize, Clone)]
#[allow(dead_code)]
struct Entry {
    id: i64,
    at: String,
    actor: String,
    via: String,
    action: String,
    target: String,
    detail: String,
    status: Option<u16>,
    client: Option<String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct EntryList {
    items: Vec<Entry>,
    total: u64,
    offset: u64,
    limit: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiError {
    code: u16,
    message: String,
    exception: String,
}

/// `GET /api/v1/audit?QUERY` as admin: the page.
async fn audit(server: &TestServer, query: &str) -> EntryList {
    let (status, body) = server
        .admin_json(Method::GET, &format!("/api/v1/audit?{query}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    serde_json::from_value(body).unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// The entries of action `action`.
async fn of_action(server: &TestServer, action: &str) -> Vec<Entry> {
    audit(server, &format!("action={action}&limit=1000"))
        .await
        .items
}

/// The one entry of `action` whose target contains `target`.
async fn one(server: &TestServer, action: &str, target: &str) -> Entry {
    let found: Vec<Entry> = of_action(server, action)
        .await
        .into_iter()
        .filter(|e| e.target.contains(target))
        .collect();
    assert_eq!(found.len(), 1, "{action} {target}: {found:?}");
    found.into_iter().next().unwrap()
}

fn fingerprint(key: &str) -> String {
    hex::encode(sha2::Sha256::digest(key.as_bytes()))[..12].to_owned()
}

/// `vypusk ARGS` on the server's data directory (and database) directly, no API key.
fn cli(server: &TestServer, database_url: Option<&str>, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(vypusk_bin());
    cmd.arg("--data-dir")
        .arg(server.data_dir.path())
        .args(args)
        .env_remove("VYPUSK_API_KEY")
        .env_remove("VYPUSK_DATABASE_URL")
        .env_remove("VYPUSK_STORAGE_URL")
        .env("VYPUSK_LOG", "warn");
    if let Some(url) = database_url {
        cmd.env("VYPUSK_DATABASE_URL", url);
    }
    let out = cmd.output().expect("run vypusk");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

async fn scenario(server: TestServer, database_url: Option<&str>) {
    // (a) Changes through the vendor API, as admin with a password.
    server.create_distribution("AUD", json!({})).await;
    let release = server
        .create_release(
            "AUD",
            json!({"version": "1.0.0.1", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("AUD_1.0.0.1.zip", b"zip bytes".as_slice())],
            true,
        )
        .await;
    let release_id = release["id"].as_i64().unwrap();
    let (status, body) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/releases/{release_id}/yank"),
            Some(json!({"reason": "broken exchange"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": "AUD-SECRET-0001", "customer": "ООО «Аудит»"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (reader_id, reader_key) = server.create_api_key(&["read"]).await;
    let (publisher_id, publisher_key) = server.create_api_key(&["publish"]).await;
    // A key's action names the key.
    let (status, body) = send_json(
        server
            .client
            .post(server.url("/api/v1/distributions"))
            .bearer_auth(&publisher_key)
            .json(&json!({"code": "AUD_KEY", "name": "by key"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A refused one is recorded with its status.
    let (status, _) = send_json(
        server
            .client
            .post(server.url("/api/v1/licenses"))
            .bearer_auth(&publisher_key)
            .json(&json!({"key": "AUD-0002"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let id = format!("id=\"{release_id}\"");
    let entry = one(&server, "createDistribution", "code=\"AUD\"").await;
    assert_eq!(
        (entry.actor.as_str(), entry.via.as_str(), entry.status),
        ("admin", "api", Some(201))
    );
    assert_eq!(entry.client.as_deref(), Some("127.0.0.1"));
    let entry = one(&server, "createRelease", &id).await;
    assert!(entry.target.contains("code=\"AUD\""), "{entry:?}");
    assert!(entry.detail.contains("1.0.0.1"), "{entry:?}");
    let entry = one(&server, "uploadFile", &id).await;
    assert!(
        entry.target.contains("name=\"AUD_1.0.0.1.zip\""),
        "{entry:?}"
    );
    let entry = one(&server, "publishRelease", &id).await;
    assert_eq!(
        (entry.actor.as_str(), entry.via.as_str(), entry.status),
        ("admin", "api", Some(200))
    );
    let entry = one(&server, "yankRelease", &id).await;
    assert!(entry.detail.contains("broken exchange"), "{entry:?}");
    // The license key itself is never written, only its fingerprint.
    let entry = one(
        &server,
        "createLicense",
        &format!("key_sha256={}", fingerprint("AUD-SECRET-0001")),
    )
    .await;
    assert_eq!((entry.actor.as_str(), entry.status), ("admin", Some(201)));
    let entry = one(&server, "createApiKey", &format!("id=\"{reader_id}\"")).await;
    assert_eq!(
        (entry.actor.as_str(), entry.via.as_str(), entry.status),
        ("admin", "api", Some(201))
    );
    assert!(entry.detail.contains("permissions=read"), "{entry:?}");
    let entry = one(&server, "createDistribution", "code=\"AUD_KEY\"").await;
    assert_eq!(entry.actor, format!("api-key:{publisher_id}"));
    let refused: Vec<Entry> = of_action(&server, "createLicense")
        .await
        .into_iter()
        .filter(|e| e.status == Some(403))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].actor, format!("api-key:{publisher_id}"));
    // Reads are not recorded.
    assert!(of_action(&server, "listDistributions").await.is_empty());
    assert!(of_action(&server, "getRelease").await.is_empty());
    // Nothing in the whole log holds the license key.
    let (status, body) = server
        .admin_json(Method::GET, "/api/v1/audit?limit=1000", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.to_string().contains("AUD-SECRET-0001"), "{body}");

    // (b) A wrong password: one `loginFailed`, and the refused POST itself is not recorded.
    let before = of_action(&server, "createDistribution").await.len();
    let resp = server
        .client
        .post(server.url("/api/v1/distributions"))
        .basic_auth("admin", Some("not-the-password"))
        .json(&json!({"code": "NOPE", "name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let failed = of_action(&server, "loginFailed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let entry = &failed[0];
    assert_eq!(
        (
            entry.actor.as_str(),
            entry.via.as_str(),
            entry.status,
            entry.detail.as_str()
        ),
        ("\"admin\"", "api", Some(401), "wrong credentials")
    );
    assert_eq!(
        of_action(&server, "createDistribution").await.len(),
        before,
        "the refused request is not recorded again"
    );
    // An unknown API key: `api-key`, never the key.
    let resp = server
        .client
        .get(server.url("/api/v1/distributions"))
        .bearer_auth("vypk_not-a-real-key-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let failed = of_action(&server, "loginFailed").await;
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0].actor, "api-key");
    // No credentials at all is nobody's login.
    let resp = server
        .client
        .post(server.url("/api/v1/distributions"))
        .json(&json!({"code": "NOPE", "name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(of_action(&server, "loginFailed").await.len(), 2);
    assert!(
        audit(&server, "limit=1000")
            .await
            .items
            .iter()
            .all(|e| e.status != Some(401) || e.action == "loginFailed")
    );

    // (c) The login form: a login, a failed one, a logout.
    let session = reports_login(&server, "admin", ADMIN_PASSWORD).await;
    let logins = of_action(&server, "login").await;
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert_eq!(
        (logins[0].actor.as_str(), logins[0].via.as_str()),
        ("admin", "login")
    );
    let csrf = reports_login_csrf(&server).await;
    let resp = server
        .client
        .post(server.url("/reports/login"))
        .header("cookie", format!("vypusk_csrf={csrf}"))
        .form(&[
            ("user", "mallory"),
            ("password", "guess"),
            ("next", "/reports"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let failed = audit(&server, "action=loginFailed&via=login").await.items;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        (
            failed[0].actor.as_str(),
            failed[0].detail.as_str(),
            failed[0].status
        ),
        ("\"mallory\"", "wrong credentials", Some(401))
    );
    let page = server
        .client
        .get(server.url("/reports/logout"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF field: {page}"))
        .to_owned();
    let resp = server
        .client
        .post(server.url("/reports/logout"))
        .header("cookie", &session)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let logouts = of_action(&server, "logout").await;
    assert_eq!(logouts.len(), 1, "{logouts:?}");
    assert_eq!(
        (logouts[0].actor.as_str(), logouts[0].via.as_str()),
        ("admin", "login")
    );

    // (d) The CLI on the data directory: the same action names, via `cli`.
    let out = cli(
        &server,
        database_url,
        &[
            "api-key",
            "create",
            "--name",
            "from-cli",
            "--permissions",
            "read",
            "--json",
        ],
    );
    let cli_key: Value = serde_json::from_str(&out).unwrap();
    let cli_key_id = cli_key["id"].as_i64().unwrap();
    let entry = one(&server, "createApiKey", &format!("id=\"{cli_key_id}\"")).await;
    assert_eq!(
        (entry.actor.as_str(), entry.via.as_str(), entry.status),
        ("cli", "cli", None)
    );
    assert!(entry.detail.contains("name=\"from-cli\""), "{entry:?}");
    cli(
        &server,
        database_url,
        &["api-key", "delete", &cli_key_id.to_string()],
    );
    let entry = one(&server, "revokeApiKey", &format!("id=\"{cli_key_id}\"")).await;
    assert_eq!(entry.via, "cli");

    // (e) Filters.
    let all = audit(&server, "limit=1000").await;
    assert_eq!(all.total as usize, all.items.len());
    let ats: Vec<&str> = all.items.iter().map(|e| e.at.as_str()).collect();
    let mut newest_first = ats.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(ats, newest_first, "newest first");
    // One action name from the API and the CLI alike.
    let keys = of_action(&server, "createApiKey").await;
    let mut vias: Vec<&str> = keys.iter().map(|e| e.via.as_str()).collect();
    vias.sort();
    vias.dedup();
    assert_eq!(vias, ["api", "cli"]);
    // Actor: a case-insensitive substring.
    let by_admin = audit(&server, "actor=ADM&limit=1000").await.items;
    assert!(!by_admin.is_empty());
    assert!(
        by_admin
            .iter()
            .all(|e| e.actor.to_lowercase().contains("adm")),
        "{by_admin:?}"
    );
    assert!(by_admin.iter().any(|e| e.actor == "\"admin\""));
    let by_key = audit(&server, &format!("actor=api-key:{publisher_id}")).await;
    assert_eq!(by_key.total, 2, "{by_key:?}");
    let via_cli = audit(&server, "via=cli").await.items;
    assert!(via_cli.iter().all(|e| e.via == "cli") && via_cli.len() == 2);
    let target = audit(&server, "target=code%3D%22aud%22").await.items;
    assert!(target.iter().any(|e| e.action == "createRelease"));
    assert!(target.iter().all(|e| e.target.contains("code=\"AUD\"")));
    // Days (UTC): the day of the entries has them all, no other day any.
    let day = &all.items[0].at[..10];
    let same_day = audit(&server, &format!("from={day}&to={day}&limit=1000")).await;
    let last_day = &all.items.last().unwrap().at[..10];
    if day == last_day {
        assert_eq!(same_day.total, all.total);
    }
    assert_eq!(audit(&server, "from=2999-01-01").await.total, 0);
    assert_eq!(audit(&server, "to=2000-01-01").await.total, 0);
    assert_eq!(
        audit(&server, "from=2000-01-01&to=2999-12-31").await.total,
        all.total
    );
    // Failed: status 400 or more.
    let failed = audit(&server, "failed=true&limit=1000").await.items;
    assert!(failed.iter().all(|e| e.status.is_some_and(|s| s >= 400)));
    assert_eq!(failed.len(), 4, "{failed:?}");
    let fine = audit(&server, "failed=false&limit=1000").await;
    assert!(fine.items.iter().all(|e| e.status.is_none_or(|s| s < 400)));
    assert_eq!(fine.total + failed.len() as u64, all.total);
    // Pages.
    let page = audit(&server, "limit=2&offset=1").await;
    assert_eq!((page.items.len(), page.offset, page.limit), (2, 1, 2));
    assert_eq!(page.items[0].id, all.items[1].id);
    // Bad values: 400 in the API's error shape.
    for query in [
        "via=web",
        "from=01.12.2026",
        "to=2026-13-01",
        "from=2026-12-02&to=2026-12-01",
        "failed=maybe",
        "format=xml",
        "limit=0",
        "sort=detail",
    ] {
        let (status, body) = server
            .admin_json(Method::GET, &format!("/api/v1/audit?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let error: ApiError = serde_json::from_value(body).unwrap();
        assert_eq!((error.code, error.exception.as_str()), (400, "BadRequest"));
        assert!(!error.message.is_empty());
    }

    // (e) CSV: every matching entry with a header row, as an attachment.
    for accept_csv in [false, true] {
        let mut req = server.admin(
            Method::GET,
            if accept_csv {
                "/api/v1/audit?action=publishRelease"
            } else {
                "/api/v1/audit?format=csv&action=publishRelease"
            },
        );
        if accept_csv {
            req = req.header("accept", "text/csv");
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        assert_eq!(
            resp.headers()["content-disposition"],
            "attachment; filename=\"vypusk-audit.csv\""
        );
        let text = resp.text().await.unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(
            reader.headers().unwrap(),
            vec![
                "id", "at", "actor", "via", "action", "target", "detail", "status", "client"
            ]
        );
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1, "{text}");
        let row = &rows[0];
        assert_eq!(
            (&row[2], &row[3], &row[4], &row[5], &row[7], &row[8]),
            (
                "admin",
                "api",
                "publishRelease",
                id.as_str(),
                "200",
                "127.0.0.1"
            )
        );
    }
    let resp = server
        .admin(Method::GET, "/api/v1/audit?format=csv")
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    let rows = csv::Reader::from_reader(text.as_bytes()).records().count();
    let all_now = audit(&server, "limit=1").await.total;
    assert_eq!(rows as u64, all_now);

    // (f) Only owners: a key without `admin` gets 403, also for the CSV.
    for (key, path) in [
        (&reader_key, "/api/v1/audit"),
        (&publisher_key, "/api/v1/audit?format=csv"),
    ] {
        let (status, body) = send_json(server.client.get(server.url(path)).bearer_auth(key)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, _) = send_json(server.client.get(server.url("/api/v1/audit"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn audit_log_on_sqlite() {
    scenario(TestServer::start().await, None).await;
}

#[tokio::test]
async fn audit_log_on_postgres() {
    let db = TempDatabase::create().await;
    let options = ServerOptions {
        database_url: Some(db.url()),
        ..Default::default()
    };
    let server = TestServer::start_with(options).await;
    scenario(server, Some(&db.url())).await;
}

/// A guesser throttled after too many failures makes one `loginFailed … throttled` entry a
/// minute, not one per request.
#[tokio::test]
async fn throttled_logins_are_recorded_once_a_minute() {
    let server = TestServer::start_with(ServerOptions {
        env: vec![(
            "VYPUSK_LOGIN_FAILURES_PER_MINUTE".to_owned(),
            "2".to_owned(),
        )],
        ..Default::default()
    })
    .await;
    // Read with a key: admin's password is throttled from this address after the guesses.
    let (_, key) = server.create_api_key(&["admin"]).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let resp = server
            .client
            .get(server.url("/api/v1/distributions"))
            .basic_auth("admin", Some("wrong"))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status());
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let (status, body) = send_json(
        server
            .client
            .get(server.url("/api/v1/audit?action=loginFailed"))
            .bearer_auth(&key),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let failed: EntryList = serde_json::from_value(body).unwrap();
    let failed = failed.items;
    let throttled: Vec<&Entry> = failed.iter().filter(|e| e.detail == "throttled").collect();
    assert_eq!(throttled.len(), 1, "{failed:?}");
    assert_eq!(throttled[0].status, Some(429));
    let wrong = failed
        .iter()
        .filter(|e| e.detail == "wrong credentials")
        .count();
    assert_eq!(
        wrong,
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count()
    );
}
