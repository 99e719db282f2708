//! The HTML reports in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! spoken to directly with reqwest). The test logs in through the form, opens each report page,
//! checks that the SVG charts are there and that the numbers in the page equal the API's, and
//! saves a screenshot of each page under `target/report-screenshots/`. A second test opens
//! Swagger UI at `/docs` and runs "Try it out" of `getAvailableReleases` in the browser.
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium chromium-driver`); `.ci/run`
//! installs them. Without them the tests fail, saying so. The WebDriver client is
//! `vypusk_tests::browser`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_tests::browser::*;
use vypusk_tests::*;

const CODE: &str = "CRM_REPORTS";
const KEY: &str = "REPT-0000-0000-0001";
const CONFS: [&str; 3] = [
    "УправлениеТорговлей",
    "КомплекснаяАвтоматизация",
    "БухгалтерияПредприятия",
];

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
