//! Statistics end to end: checks and downloads driven over HTTP against the real `vypusk`,
//! then the stats API (JSON and CSV), the HTML reports and `getModuleInfo` must show exactly
//! that traffic: resumed downloads count once, `COUNT_DOWNLOADS=N` and HEAD do not count, a
//! download that never reached the last byte is not completed. Run on SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_tests::*;

const PAID: &str = "STAT_CRM";
const FREE: &str = "STAT_FREE";
const KEY: &str = "STAT-0000-0000-0001";
const CONF_A: &str = "УправлениеТорговлей";
const CONF_B: &str = "Бухгалтерия предприятия, \"КОРП\"";

pub struct Driven {
    pub size_new: u64,
}

/// Publishes a paid distribution (two releases), a free one and a license.
async fn seed(server: &TestServer) -> Driven {
    server
        .create_distribution(
            PAID,
            json!({"name": "Подсистема статистики", "lic_product_id": 7, "lic_feature_id": 9}),
        )
        .await;
    let old = test_bytes(5_000, 1);
    let new = test_bytes(20_000, 2);
    for (version, bytes) in [("1.0.0.1", &old), ("1.0.0.2", &new)] {
        server
            .create_release(
                PAID,
                json!({
                    "version": version,
                    "changelog": "- Исправления",
                    "compatibility": [{"conf": "*", "min_1c_version": "0"}],
                }),
                &[(&format!("stat_{version}.zip"), bytes)],
                true,
            )
            .await;
    }
    server
        .create_distribution(FREE, json!({"name": "Бесплатная обработка"}))
        .await;
    server
        .create_release(
            FREE,
            json!({"version": "2.0", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("free.zip", b"free bytes")],
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
    Driven {
        size_new: new.len() as u64,
    }
}

async fn check(server: &TestServer, installed: &str, conf: &str, count: &str) -> Value {
    let (status, body) = server
        .client_post(
            "getAvailableReleases",
            json!({"TYPE": PAID, "INSTALLED_VERSION": installed, "CONF": conf,
                   "CONF_VERSION": "11.5.1.1", "KEY": KEY, "COUNT_DOWNLOADS": count}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn link(answer: &Value, version: &str) -> String {
    answer["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["uniqid"] == version)
        .unwrap_or_else(|| panic!("no {version} in {answer}"))["download_link"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn get(server: &TestServer, url: &str, range: Option<&str>) -> (StatusCode, usize) {
    let mut req = server.client.get(url);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let len = resp.bytes().await.unwrap().len();
    (status, len)
}

/// Drives the traffic whose statistics the assertions below expect.
async fn drive(server: &TestServer) -> Driven {
    let driven = seed(server).await;
    let size = driven.size_new as usize;

    // D1: 1.0.0.1 → 1.0.0.2 in CONF_A, downloaded in one go.
    let a = check(server, "1.0.0.1", CONF_A, "Y").await;
    assert_eq!(
        get(server, &link(&a, "1.0.0.2"), None).await,
        (StatusCode::OK, size)
    );
    // A HEAD of a counted link does not count.
    let head = server
        .client
        .head(link(&a, "1.0.0.2"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);

    // D2: fresh install in CONF_B, downloaded in two ranges (a resume): counts once.
    let b = check(server, "", CONF_B, "Y").await;
    let url = link(&b, "1.0.0.2");
    assert_eq!(
        get(server, &url, Some("bytes=0-999")).await,
        (StatusCode::PARTIAL_CONTENT, 1000)
    );
    assert_eq!(
        get(server, &url, Some("bytes=1000-")).await,
        (StatusCode::PARTIAL_CONTENT, size - 1000)
    );

    // COUNT_DOWNLOADS=N: downloaded, not counted (the check itself is still recorded).
    let n = check(server, "1.0.0.1", CONF_A, "N").await;
    assert_eq!(
        get(server, &link(&n, "1.0.0.2"), None).await,
        (StatusCode::OK, size)
    );

    // D3: fresh install in CONF_B takes 1.0.0.1, only its first 100 bytes: not completed.
    let c = check(server, "", CONF_B, "Y").await;
    assert_eq!(
        get(server, &link(&c, "1.0.0.1"), Some("bytes=0-99")).await,
        (StatusCode::PARTIAL_CONTENT, 100)
    );

    // D4: getModuleFile with the key's SHA-256: counted, no CONF known.
    let by_key = server.url(&format!(
        "/releases/v1/1c/getModuleFile/{PAID}/latest/{}",
        sha256_hex(KEY.as_bytes())
    ));
    assert_eq!(get(server, &by_key, None).await, (StatusCode::OK, size));

    // Free distribution: one installation (this address + CONF_A) that upgrades 1.0 → 2.0.
    for installed in ["1.0", "1.0", "2.0"] {
        let (status, body) = server
            .client_post(
                "getLatestRelease",
                json!({"TYPE": FREE, "INSTALLED_VERSION": installed, "CONF": CONF_A,
                       "CONF_VERSION": "11.5.1.1"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    driven
}

async fn api(server: &TestServer, path: &str) -> Value {
    let (status, body) = server.admin_json(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

async fn api_csv(server: &TestServer, path: &str) -> String {
    let resp = server.admin(Method::GET, path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    resp.text().await.unwrap()
}

/// Waits until the batch writer has written everything the traffic produced.
async fn settle(server: &TestServer, downloads: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let p = api(server, "/api/v1/stats/pipeline").await;
        let d = api(
            server,
            &format!("/api/v1/stats/downloads?distribution={PAID}&group_by=distribution"),
        )
        .await;
        if p["queued"] == 0 && d["totals"]["downloads"] == downloads {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "statistics did not settle: {p} {d}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `key column → downloads` of a report's rows.
fn by(rows: &Value, key: &str, value: &str) -> BTreeMap<String, i64> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                match &r[key] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
                r[value].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Parses CSV (RFC 4180) into rows of fields.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

/// The CSV must carry exactly the JSON rows, column by column.
fn assert_csv_equals_json(csv: &str, json: &Value) {
    let rows = parse_csv(csv);
    let columns: Vec<String> = json["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rows[0], columns, "CSV header");
    let json_rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len() - 1, json_rows.len(), "{csv}\n{json}");
    for (csv_row, json_row) in rows[1..].iter().zip(json_rows) {
        let expected: Vec<String> = columns
            .iter()
            .map(|c| match &json_row[c] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        assert_eq!(csv_row, &expected);
    }
}

/// `data-value`s of one column of one report table in an HTML page.
pub fn html_column(html: &str, report: &str, column: &str) -> Vec<String> {
    let start = html
        .find(&format!("data-report=\"{report}\""))
        .unwrap_or_else(|| panic!("no table {report}"));
    let body = &html[start..];
    let body = &body[..body.find("<tfoot>").unwrap()];
    let needle = format!("data-col=\"{column}\" data-value=\"");
    body.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &body[i + needle.len()..];
            html_unescape(&rest[..rest.find('"').unwrap()])
        })
        .collect()
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

async fn report_html(server: &TestServer, path: &str) -> String {
    let resp = server.admin(Method::GET, path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.text().await.unwrap()
}

async fn assert_statistics(server: &TestServer, driven: &Driven) {
    let size = driven.size_new as i64;
    settle(server, 4).await;

    // Totals: D1, D2 (resumed), D3 (partial), D4 (getModuleFile); N and HEAD not counted.
    let total = api(
        server,
        &format!("/api/v1/stats/downloads?distribution={PAID}&group_by=distribution"),
    )
    .await;
    assert_eq!(
        total["totals"],
        json!({"downloads": 4, "completed": 3, "bytes": 3 * size + 100}),
        "{total}"
    );

    let per_release = api(
        server,
        &format!("/api/v1/stats/downloads?distribution={PAID}&group_by=release"),
    )
    .await;
    assert_eq!(
        by(&per_release["rows"], "version", "downloads"),
        BTreeMap::from([("1.0.0.2".into(), 3), ("1.0.0.1".into(), 1)])
    );
    let per_conf = api(
        server,
        &format!("/api/v1/stats/downloads?distribution={PAID}&group_by=conf"),
    )
    .await;
    assert_eq!(
        by(&per_conf["rows"], "conf", "downloads"),
        BTreeMap::from([(CONF_A.into(), 1), (CONF_B.into(), 2), (String::new(), 1)])
    );
    let per_license = api(
        server,
        &format!("/api/v1/stats/downloads?distribution={PAID}&group_by=license"),
    )
    .await;
    assert_eq!(
        by(&per_license["rows"], "license", "downloads"),
        BTreeMap::from([(KEY.into(), 4)])
    );
    let today = chrono_today();
    let per_day = api(
        server,
        &format!("/api/v1/stats/downloads?from={today}&to={today}"),
    )
    .await;
    assert_eq!(
        by(&per_day["rows"], "day", "downloads"),
        BTreeMap::from([(today.clone(), 4)])
    );
    // A release filter by version.
    let one = api(
        server,
        &format!("/api/v1/stats/downloads?distribution={PAID}&release=1.0.0.1&group_by=day"),
    )
    .await;
    assert_eq!(
        one["totals"],
        json!({"downloads": 1, "completed": 0, "bytes": 100})
    );
    // Nothing on other days.
    let before = api(
        server,
        "/api/v1/stats/downloads?from=2020-01-01&to=2020-12-31",
    )
    .await;
    assert_eq!(before["rows"], json!([]));

    let paths = api(
        server,
        &format!("/api/v1/stats/upgrade-paths?distribution={PAID}"),
    )
    .await;
    let mut seen = BTreeMap::new();
    for r in paths["rows"].as_array().unwrap() {
        seen.insert(
            format!(
                "{}→{}",
                r["from_version"].as_str().unwrap(),
                r["to_version"].as_str().unwrap()
            ),
            r["downloads"].as_i64().unwrap(),
        );
    }
    assert_eq!(
        seen,
        BTreeMap::from([
            ("1.0.0.1→1.0.0.2".into(), 1),
            ("→1.0.0.2".into(), 2),
            ("→1.0.0.1".into(), 1),
        ])
    );

    // Installed base: key + CONF_A last reported 1.0.0.1, key + CONF_B nothing installed.
    let base = api(
        server,
        &format!("/api/v1/stats/installed-base?distribution={PAID}&days=30"),
    )
    .await;
    assert_eq!(
        by(&base["rows"], "version", "installations"),
        BTreeMap::from([("1.0.0.1".into(), 1), (String::new(), 1)])
    );
    let base_conf = api(
        server,
        &format!("/api/v1/stats/installed-base?distribution={PAID}&group_by=conf"),
    )
    .await;
    assert_eq!(
        by(&base_conf["rows"], "conf", "installations"),
        BTreeMap::from([(CONF_A.into(), 1), (CONF_B.into(), 1)])
    );
    // The free distribution: one address + CONF, latest version 2.0.
    let free = api(
        server,
        &format!("/api/v1/stats/installed-base?distribution={FREE}"),
    )
    .await;
    assert_eq!(
        by(&free["rows"], "version", "installations"),
        BTreeMap::from([("2.0".into(), 1)])
    );

    // getModuleInfo's downloads come from the roll-ups.
    let (_, info) = server
        .client_post("getModuleInfo", json!({"TYPE": PAID, "KEY": KEY}))
        .await;
    let info_counts = by(&info["module"]["releases"], "version", "downloads");
    assert_eq!(
        info_counts,
        BTreeMap::from([("1.0.0.2".into(), 3), ("1.0.0.1".into(), 1)])
    );

    // CSV = JSON, for every report.
    for path in [
        format!("/api/v1/stats/downloads?distribution={PAID}&group_by=release"),
        format!("/api/v1/stats/downloads?distribution={PAID}&group_by=conf"),
        "/api/v1/stats/downloads?group_by=day".to_owned(),
        "/api/v1/stats/downloads?group_by=license".to_owned(),
        "/api/v1/stats/downloads?group_by=distribution".to_owned(),
        format!("/api/v1/stats/upgrade-paths?distribution={PAID}"),
        format!("/api/v1/stats/installed-base?distribution={PAID}"),
    ] {
        let json = api(server, &path).await;
        let csv = api_csv(server, &format!("{path}&format=csv")).await;
        assert_csv_equals_json(&csv, &json);
    }

    // HTML = JSON: the per-distribution page and the overview.
    let page = report_html(server, &format!("/reports/distributions/{PAID}")).await;
    assert!(page.contains("Подсистема статистики"), "Cyrillic name");
    assert!(page.contains("id=\"chart-downloads-per-release\""));
    assert!(page.contains("id=\"chart-installed-base\""));
    let versions = html_column(&page, "downloads-per-release", "version");
    let counts = html_column(&page, "downloads-per-release", "downloads");
    let html_counts: BTreeMap<String, i64> = versions
        .into_iter()
        .zip(counts.iter().map(|c| c.parse::<i64>().unwrap()))
        .collect();
    assert_eq!(
        html_counts,
        by(&per_release["rows"], "version", "downloads")
    );
    let html_paths: i64 = html_column(&page, "upgrade-paths", "downloads")
        .iter()
        .map(|c| c.parse::<i64>().unwrap())
        .sum();
    assert_eq!(html_paths, 4);
    let overview = report_html(server, &format!("/reports?distribution={PAID}")).await;
    assert!(overview.contains("id=\"chart-downloads-per-day\""));
    let confs = html_column(&overview, "share-by-conf", "conf");
    assert!(confs.contains(&CONF_B.to_owned()), "{confs:?}");
    let html_conf_total: i64 = html_column(&overview, "share-by-conf", "downloads")
        .iter()
        .map(|c| c.parse::<i64>().unwrap())
        .sum();
    assert_eq!(html_conf_total, 4);
    // The CSV link of the reports works with the same credentials.
    let resp = server
        .admin(
            Method::GET,
            &format!("/reports/csv/downloads?distribution={PAID}&group_by=release"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_csv_equals_json(&resp.text().await.unwrap(), &per_release);

    let pipeline = api(server, "/api/v1/stats/pipeline").await;
    assert_eq!(pipeline["dropped_events"], 0, "{pipeline}");
    assert_eq!(pipeline["failed_events"], 0, "{pipeline}");
}

fn chrono_today() -> String {
    // UTC date without pulling chrono into the test crate.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let days = secs.div_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

#[tokio::test]
async fn statistics_match_the_driven_traffic_on_sqlite() {
    let mut server = TestServer::start_with(ServerOptions {
        env: vec![("VYPUSK_STATS_RETENTION_DAYS".into(), "45".into())],
        ..Default::default()
    })
    .await;
    let driven = drive(&server).await;
    // SIGTERM right away: queued events are written on the way out.
    server.restart().await;
    assert_statistics(&server, &driven).await;
    let pipeline = api(&server, "/api/v1/stats/pipeline").await;
    assert_eq!(pipeline["retention_days"], 45);
}

#[tokio::test]
async fn stats_api_needs_read_and_validates_parameters() {
    let server = TestServer::start().await;
    let resp = server
        .client
        .get(server.url("/api/v1/stats/downloads"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = server
        .client
        .get(server.url("/reports"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert!(resp.text().await.unwrap().contains("/reports/login"));
    for (query, status) in [
        ("group_by=week", StatusCode::BAD_REQUEST),
        ("from=2026-13-01", StatusCode::BAD_REQUEST),
        ("from=2026-11-02&to=2026-11-01", StatusCode::BAD_REQUEST),
        ("format=xml", StatusCode::BAD_REQUEST),
        ("distribution=NOPE", StatusCode::NOT_FOUND),
    ] {
        let (got, body) = server
            .admin_json(
                Method::GET,
                &format!("/api/v1/stats/downloads?{query}"),
                None,
            )
            .await;
        assert_eq!(got, status, "{query}: {body}");
        assert!(body["Exception"].is_string(), "{body}");
    }
    let (got, _) = server
        .admin_json(Method::GET, "/api/v1/stats/installed-base?days=0", None)
        .await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    let (_, root) = server.admin_json(Method::GET, "/api", None).await;
    assert!(
        root["Urns"]
            .as_array()
            .unwrap()
            .contains(&json!("/api/v1/stats/downloads"))
    );
}

#[tokio::test]
async fn statistics_match_the_driven_traffic_on_postgres() {
    let db = TempDatabase::create().await;
    let server = TestServer::start_with(ServerOptions {
        database_url: Some(db.url()),
        ..Default::default()
    })
    .await;
    let driven = drive(&server).await;
    assert_statistics(&server, &driven).await;
    drop(server);
}
