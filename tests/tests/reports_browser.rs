//! The HTML reports in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! spoken to directly with reqwest). The test logs in through the form, opens each report page,
//! checks that the SVG charts are there and that the numbers in the page equal the API's, and
//! saves a screenshot of each page under `target/report-screenshots/`. A second test opens
//! Swagger UI at `/docs` and runs "Try it out" of `getAvailableReleases` in the browser.
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium chromium-driver`); `.ci/run`
//! installs them. Without them the test is skipped, except under CI, where it fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_tests::*;

const CODE: &str = "CRM_REPORTS";
const KEY: &str = "REPT-0000-0000-0001";
const CONFS: [&str; 3] = [
    "УправлениеТорговлей",
    "КомплекснаяАвтоматизация",
    "БухгалтерияПредприятия",
];

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    for name in names {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
            let p = PathBuf::from(dir).join(name);
            if p.exists() {
                return Some(p);
            }
        }
    }
    None
}

struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    /// Ends the browser session (so Chromium exits), then chromedriver.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        if !self.session.is_empty() {
            let host = self.base.trim_start_matches("http://");
            if let Ok(mut conn) = std::net::TcpStream::connect(host) {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = write!(
                    conn,
                    "DELETE /session/{} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.session
                );
                let _ = conn.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    async fn start(chromium: &std::path::Path, chromedriver: &std::path::Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_str().unwrap(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,2600",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let mut driver = Driver {
            child,
            base,
            http,
            session: String::new(),
            _profile: profile,
        };
        let created = driver.call(Method::POST, "/session", Some(caps)).await;
        driver.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        driver
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("WebDriver request");
        let value: Value = resp.json().await.expect("WebDriver JSON");
        if value["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", value["value"]);
        }
        value["value"].clone()
    }

    fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    async fn goto(&self, url: &str) {
        self.call(Method::POST, &self.s("/url"), Some(json!({"url": url})))
            .await;
    }

    async fn current_url(&self) -> String {
        self.call(Method::GET, &self.s("/url"), None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        self.call(
            Method::POST,
            &self.s("/elements"),
            Some(json!({"using": "css selector", "value": css})),
        )
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[ELEMENT].as_str().unwrap().to_owned())
        .collect()
    }

    /// The elements matching `css` once at least one is there: a click that submits a form
    /// returns before the next page is guaranteed to be in the DOM. Bounded to 10 s.
    async fn wait_for(&self, css: &str) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let all = self.find_all(css).await;
            if !all.is_empty() || std::time::Instant::now() > deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The current URL once it ends with `suffix` (a submitted form navigates after the click
    /// returns), or the last one seen after 10 s.
    async fn wait_for_url(&self, suffix: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.current_url().await;
            if url.ends_with(suffix) || std::time::Instant::now() > deadline {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn find(&self, css: &str) -> String {
        let all = self.find_all(css).await;
        assert!(!all.is_empty(), "no element {css}");
        all[0].clone()
    }

    async fn attribute(&self, element: &str, name: &str) -> String {
        self.call(
            Method::GET,
            &self.s(&format!("/element/{element}/attribute/{name}")),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    async fn text(&self, element: &str) -> String {
        self.call(
            Method::GET,
            &self.s(&format!("/element/{element}/text")),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            Method::POST,
            &self.s(&format!("/element/{e}/clear")),
            Some(json!({})),
        )
        .await;
        self.call(
            Method::POST,
            &self.s(&format!("/element/{e}/value")),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(
            Method::POST,
            &self.s(&format!("/element/{e}/click")),
            Some(json!({})),
        )
        .await;
    }

    async fn source(&self) -> String {
        self.call(Method::GET, &self.s("/source"), None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `data-value`s of a column of a report table, as the browser's DOM has them.
    async fn column(&self, report: &str, column: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self
            .find_all(&format!(
                "table[data-report=\"{report}\"] tbody td[data-col=\"{column}\"]"
            ))
            .await
        {
            out.push(self.attribute(&e, "data-value").await);
        }
        out
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.call(Method::GET, &self.s("/screenshot"), None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let dir = workspace_root().join("target").join("report-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
        path
    }
}

async fn seed(server: &TestServer) {
    server
        .create_distribution(
            CODE,
            json!({"name": "Подсистема «Отчёты» для УТ", "lic_product_id": 3, "lic_feature_id": 4}),
        )
        .await;
    for (i, version) in ["3.1.0.1", "3.1.0.2", "3.2.0.1"].iter().enumerate() {
        server
            .create_release(
                CODE,
                json!({"version": version,
                       "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
                &[(
                    &format!("reports_{version}.zip"),
                    &test_bytes(3000 + i * 100, i as u8),
                )],
                true,
            )
            .await;
    }
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(
                json!({"key": KEY, "customer": "ООО Ландыш", "itn": "7701234567",
                        "features": [{"product": 3, "feature": 4, "active_until": null}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Installations in three configurations download different releases.
    for (i, conf) in CONFS.iter().enumerate() {
        let installed = ["3.1.0.2", "3.1.0.1", ""][i];
        let (status, answer) = server
            .client_post(
                "getAvailableReleases",
                json!({"TYPE": CODE, "INSTALLED_VERSION": installed, "CONF": conf,
                       "CONF_VERSION": "11.5.1.1", "KEY": KEY, "COUNT_DOWNLOADS": "Y"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        for module in answer["modules"].as_array().unwrap().iter().take(i + 1) {
            let link = module["download_link"].as_str().unwrap();
            let resp = server.client.get(link).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.bytes().await.unwrap();
        }
    }
    // 1 + 2 + 3 downloads; wait until the batch writer has them.
    for _ in 0..100 {
        let (_, d) = server
            .admin_json(
                Method::GET,
                "/api/v1/stats/downloads?group_by=distribution",
                None,
            )
            .await;
        if d["totals"]["downloads"] == 6 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("downloads were not recorded");
}

async fn api(server: &TestServer, path: &str) -> Value {
    let (status, body) = server.admin_json(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

fn column_of(report: &Value, column: &str) -> Vec<String> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match &r[column] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn reports_render_in_headless_chromium() {
    let chromium = find_binary(&["chromium", "chromium-browser", "google-chrome"]);
    let chromedriver = find_binary(&["chromedriver"]);
    // Never skipped: without a browser this test fails and says how to get one.
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        panic!(
            "chromium and chromedriver are needed: apt-get install chromium chromium-driver \
             (.ci/run installs them)"
        );
    };
    let server = TestServer::start().await;
    seed(&server).await;
    let browser = Driver::start(&chromium, &chromedriver).await;

    // Without credentials a browser is sent to the login form (API clients get 401 with a
    // Basic challenge: see tests/stats.rs and tests/sessions.rs), which brings it back after.
    // A wrong password is refused, the right one logs in.
    browser.goto(&server.url("/reports")).await;
    let url = browser.wait_for_url("/reports/login?next=%2Freports").await;
    assert!(url.ends_with("/reports/login?next=%2Freports"), "{url}");
    browser.type_into("#user", "admin").await;
    browser.type_into("#password", "wrong").await;
    browser.click("#login").await;
    assert!(!browser.wait_for("#login-error").await.is_empty());
    browser.type_into("#user", "admin").await;
    browser.type_into("#password", ADMIN_PASSWORD).await;
    browser.click("#login").await;
    let url = browser.wait_for_url("/reports").await;
    assert!(url.ends_with("/reports"), "{url}");

    // Overview: the line chart has a point per day of the default 30-day range, and the
    // tables say what the API says.
    let points = browser
        .find_all("svg#chart-downloads-per-day circle.point")
        .await;
    assert_eq!(points.len(), 30);
    let chart = browser.find("svg#chart-downloads-per-day").await;
    assert_eq!(browser.attribute(&chart, "data-total").await, "6");
    let by_release = api(&server, "/api/v1/stats/downloads?group_by=release").await;
    assert_eq!(
        browser.column("top-releases", "downloads").await,
        column_of(&by_release, "downloads")
    );
    assert_eq!(
        browser.column("top-releases", "version").await,
        column_of(&by_release, "version")
    );
    let by_conf = api(&server, "/api/v1/stats/downloads?group_by=conf").await;
    assert_eq!(
        sorted(browser.column("share-by-conf", "conf").await),
        sorted(CONFS.iter().map(|c| c.to_string()).collect())
    );
    assert_eq!(
        browser.column("share-by-conf", "downloads").await,
        column_of(&by_conf, "downloads")
    );
    let bars = browser.find_all("svg#chart-share-by-conf rect.bar").await;
    assert_eq!(bars.len(), 3);
    // Cyrillic survives into the DOM as text the browser renders.
    let first_conf = browser
        .find("table[data-report=\"share-by-conf\"] tbody td[data-col=\"conf\"]")
        .await;
    assert!(CONFS.contains(&browser.text(&first_conf).await.as_str()));
    let source = browser.source().await;
    assert!(!source.contains("<script"), "no JavaScript in the reports");
    assert!(!source.contains("src=\"http"), "no external resources");
    // Every table has its CSV link.
    assert_eq!(
        browser.find_all("section.report a.csv").await.len(),
        browser.find_all("section.report table").await.len()
    );
    browser.screenshot("overview").await;

    // Per distribution: bars per release, installed base, upgrade paths.
    browser
        .goto(&server.url(&format!("/reports/distributions/{CODE}")))
        .await;
    let heading = browser.find("h1").await;
    assert!(
        browser
            .text(&heading)
            .await
            .contains("Подсистема «Отчёты» для УТ")
    );
    let bars = browser
        .find_all("svg#chart-downloads-per-release rect.bar")
        .await;
    assert_eq!(bars.len(), 3);
    let mut bar_values = Vec::new();
    for b in &bars {
        bar_values.push((
            browser.attribute(b, "data-label").await,
            browser.attribute(b, "data-value").await,
        ));
    }
    bar_values.sort();
    let per_release = api(
        &server,
        &format!("/api/v1/stats/downloads?distribution={CODE}&group_by=release"),
    )
    .await;
    let mut api_values: Vec<(String, String)> = column_of(&per_release, "version")
        .into_iter()
        .zip(column_of(&per_release, "downloads"))
        .collect();
    api_values.sort();
    assert_eq!(bar_values, api_values);
    assert_eq!(
        sorted(browser.column("downloads-per-release", "downloads").await),
        sorted(column_of(&per_release, "downloads"))
    );
    let base = api(
        &server,
        &format!("/api/v1/stats/installed-base?distribution={CODE}"),
    )
    .await;
    assert_eq!(
        sorted(browser.column("installed-base", "installations").await),
        sorted(column_of(&base, "installations"))
    );
    assert_eq!(base["totals"]["installations"], 3);
    let paths = api(
        &server,
        &format!("/api/v1/stats/upgrade-paths?distribution={CODE}"),
    )
    .await;
    assert_eq!(
        sorted(browser.column("upgrade-paths", "downloads").await),
        sorted(column_of(&paths, "downloads"))
    );
    assert!(
        !browser
            .find_all("svg#chart-installed-base rect.bar")
            .await
            .is_empty()
    );
    browser.screenshot("distribution").await;

    // Filters in the query string narrow the range.
    browser
        .goto(&server.url(&format!(
            "/reports/distributions/{CODE}?from=2020-01-01&to=2020-01-31"
        )))
        .await;
    let chart = browser.find("svg#chart-downloads-per-release").await;
    assert_eq!(browser.attribute(&chart, "data-total").await, "0");
}

/// The number of operations `/api/openapi.json` describes.
async fn documented_operations(server: &TestServer) -> usize {
    let document: Value = server
        .client
        .get(server.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum()
}

/// `/docs` is Swagger UI served from the binary (no request leaves 127.0.0.1: the browser has
/// no other network); it lists every operation, and "Try it out" of `getAvailableReleases`
/// with the document's example body, executed by the browser against this server, answers
/// 200 with the release the example's configuration and key may have.
#[tokio::test]
async fn swagger_ui_lists_every_operation_and_tries_one_out() {
    let chromium = find_binary(&["chromium", "chromium-browser", "google-chrome"]);
    let chromedriver = find_binary(&["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        panic!(
            "chromium and chromedriver are needed: apt-get install chromium chromium-driver \
             (.ci/run installs them)"
        );
    };
    let server = TestServer::start().await;
    // What the document's examples name: TYPE PT40_UT_CRM3, УправлениеТорговлей 11.5.8.233,
    // installed 4.0.4.11, key ACME-0001 with feature 85/43.
    server
        .create_distribution(
            "PT40_UT_CRM3",
            json!({"name": "CRM для Управления торговлей", "lic_product_id": 85, "lic_feature_id": 43}),
        )
        .await;
    server
        .create_release(
            "PT40_UT_CRM3",
            json!({"version": "4.0.4.12", "changelog": "* Исправлена печать счёта",
                   "compatibility": [{"conf": "УправлениеТорговлей", "min_1c_version": "11.4.11.55"}]}),
            &[("PT40_UT_CRM3_4.0.4.12.zip", b"PK swagger")],
            true,
        )
        .await;
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": "ACME-0001", "customer": "ООО «Ромашка»",
                        "features": [{"product": 85, "feature": 43}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let operations = documented_operations(&server).await;
    assert!(operations > 40, "{operations}");

    let browser = Driver::start(&chromium, &chromedriver).await;
    browser.goto(&server.url("/docs")).await;
    // `/docs` redirects to `/docs/`, which loads the document and renders one block per
    // operation (tags are expanded, operations collapsed).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut blocks = Vec::new();
    while std::time::Instant::now() < deadline {
        blocks = browser.find_all(".opblock").await;
        if blocks.len() >= operations {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        blocks.len(),
        operations,
        "Swagger UI shows {} operations of {operations}",
        blocks.len()
    );
    let page = browser.source().await;
    for id in [
        "getAvailableReleases",
        "createRelease",
        "importLicenses",
        "getDownloadStats",
    ] {
        assert!(page.contains(id), "{id} is not listed");
    }

    let operation = "#operations-client-getAvailableReleases";
    browser
        .click(&format!("{operation} .opblock-summary"))
        .await;
    // `tryItOutEnabled` opens the form at once; the body is the document's example.
    let body = browser
        .wait_for(&format!("{operation} textarea.body-param__text"))
        .await;
    assert!(!body.is_empty(), "no request body editor");
    let example = browser.text(&body[0]).await;
    let example = if example.is_empty() {
        browser.attribute(&body[0], "value").await
    } else {
        example
    };
    assert!(example.contains("PT40_UT_CRM3"), "{example}");
    browser.click(&format!("{operation} button.execute")).await;
    let status = browser
        .wait_for(&format!(
            "{operation} .live-responses-table .response .response-col_status"
        ))
        .await;
    assert!(!status.is_empty(), "no live response");
    let code = browser.text(&status[0]).await;
    let answer = browser
        .wait_for(&format!(
            "{operation} .live-responses-table .response-col_description pre"
        ))
        .await;
    let answer = browser.text(&answer[0]).await;
    browser.screenshot("swagger-ui-try-it-out").await;
    assert_eq!(code.trim(), "200", "{answer}");
    assert!(answer.contains("\"uniqid\": \"4.0.4.12\""), "{answer}");
}
