//! The reports vendors asked for (issue 13 item 3) from real checks: active installations per
//! day, installations per customer, expiring subscriptions, share on the newest release and
//! unknown-key attempts, each through the JSON API, CSV and its page; a `viewer` sees no
//! customer data anywhere. The second test drives the pages in headless Chromium: each shows
//! the numbers the JSON API gives, and no report page scrolls sideways at 375 px.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_tests::browser::*;
use vypusk_tests::*;

const PAID: &str = "AUD_PAID";
const FREE: &str = "AUD_FREE";
const VIEWER: &str = "viewer-vera";
const VIEWER_PASSWORD: &str = "viewer-password-1";

/// RFC 3339 of `days` from now (UTC).
fn rfc3339_in_days(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

async fn check(server: &TestServer, code: &str, installed: &str, conf: &str, key: &str) {
    let (status, body) = server
        .client_post(
            "getAvailableReleases",
            json!({"TYPE": code, "INSTALLED_VERSION": installed, "CONF": conf,
                   "CONF_VERSION": "11.5.1.1", "KEY": key}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn license(server: &TestServer, key: &str, customer: &str, itn: &str, ends: Option<&str>) {
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": key, "customer": customer, "itn": itn,
                        "features": [{"product": 85, "feature": 43, "active_until": ends}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn api(server: &TestServer, path: &str) -> Value {
    let (status, body) = server.admin_json(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// A paid distribution (85/43, named in the catalogue) at 1.0.0.2 and a free one at 2.0.0.1;
/// three licenses (one revoked); checks from three paid installations (one on the newest
/// release), one free one, and three checks with a key nobody issued.
async fn seed(server: &TestServer) {
    server
        .create_distribution(
            PAID,
            json!({"name": "Телефония для УТ", "lic_product_id": 85, "lic_feature_id": 43}),
        )
        .await;
    server
        .create_distribution(FREE, json!({"name": "Бесплатная обработка"}))
        .await;
    for (code, version) in [(PAID, "1.0.0.1"), (PAID, "1.0.0.2"), (FREE, "2.0.0.1")] {
        server
            .create_release(
                code,
                json!({"version": version,
                       "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
                &[(&format!("{code}_{version}.zip"), &test_bytes(500, 1))],
                true,
            )
            .await;
    }
    server
        .name_feature((85, "Телефония"), (43, "Обновления"), None)
        .await;
    license(
        server,
        "K-ANNA",
        "ООО Анна",
        "7700000001",
        Some(&rfc3339_in_days(10)),
    )
    .await;
    license(
        server,
        "K-BORIS",
        "ИП Борис",
        "7700000002",
        Some(&rfc3339_in_days(100)),
    )
    .await;
    license(
        server,
        "K-GONE",
        "АО Ушедшие",
        "7700000003",
        Some(&rfc3339_in_days(5)),
    )
    .await;
    let (status, body) = server
        .admin_json(
            Method::PATCH,
            "/api/v1/licenses/K-GONE",
            Some(json!({"revoked": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    check(server, PAID, "1.0.0.2", "УправлениеТорговлей", "K-ANNA").await;
    check(server, PAID, "1.0.0.2", "УправлениеТорговлей", "K-ANNA").await;
    check(server, PAID, "1.0.0.1", "БухгалтерияПредприятия", "K-ANNA").await;
    check(server, PAID, "1.0.0.1", "УправлениеТорговлей", "K-BORIS").await;
    check(server, FREE, "2.0.0.1", "УправлениеТорговлей", "").await;
    for _ in 0..3 {
        check(server, PAID, "1.0.0.1", "УправлениеТорговлей", "K-TYPO").await;
    }
    // Until the batch writer has every check: 3 + 1 installations active today, 3 attempts.
    let day = today();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let active = api(
            server,
            &format!("/api/v1/stats/active-installations?from={day}"),
        )
        .await;
        let unknown = api(server, &format!("/api/v1/stats/unknown-keys?from={day}")).await;
        if active["rows"][0]["installations"] == 4 && unknown["totals"]["attempts"] == 3 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "checks not recorded: {active} {unknown}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn column(report: &Value, column: &str) -> Vec<Value> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[column].clone())
        .collect()
}

fn texts(report: &Value, name: &str) -> Vec<String> {
    column(report, name)
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect()
}

async fn as_viewer(server: &TestServer, path: &str) -> (StatusCode, String) {
    let resp = server
        .client
        .get(server.url(path))
        .basic_auth(VIEWER, Some(VIEWER_PASSWORD))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn page(server: &TestServer, cookie: &str, path: &str) -> (StatusCode, String) {
    let resp = server
        .client
        .get(server.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn reports_answer_who_runs_what_and_hide_customers_from_viewers() {
    let server = TestServer::start().await;
    who_runs_what(&server).await;
}

#[tokio::test]
async fn the_same_reports_on_postgres() {
    let db = TempDatabase::create().await;
    let server = TestServer::start_with(ServerOptions {
        database_url: Some(db.url()),
        ..Default::default()
    })
    .await;
    who_runs_what(&server).await;
    drop(server);
}

async fn who_runs_what(server: &TestServer) {
    seed(server).await;
    let day = today();

    // Active installations: one per (key or address, configuration) and day, however many
    // checks; every day of the range is a row.
    let active = api(server, "/api/v1/stats/active-installations").await;
    assert_eq!(active["columns"], json!(["day", "installations"]));
    assert_eq!(active["rows"].as_array().unwrap().len(), 30);
    assert_eq!(active["rows"][29], json!({"day": day, "installations": 4}));
    assert_eq!(active["rows"][0]["installations"], 0);
    assert!(active["totals"].get("installations").is_none(), "{active}");
    let paid = api(
        server,
        &format!("/api/v1/stats/active-installations?distribution={PAID}&from={day}"),
    )
    .await;
    assert_eq!(paid["rows"], json!([{"day": day, "installations": 3}]));

    // Per customer: license → customer → configuration → version → last seen, by customer.
    let customers = api(server, "/api/v1/stats/customers").await;
    assert_eq!(
        customers["columns"],
        json!([
            "customer",
            "itn",
            "license",
            "distribution",
            "conf",
            "conf_version",
            "version",
            "newest_version",
            "on_newest",
            "last_seen"
        ])
    );
    assert_eq!(
        texts(&customers, "customer"),
        ["ИП Борис", "ООО Анна", "ООО Анна"]
    );
    assert_eq!(
        texts(&customers, "conf"),
        [
            "УправлениеТорговлей",
            "БухгалтерияПредприятия",
            "УправлениеТорговлей"
        ]
    );
    assert_eq!(
        texts(&customers, "version"),
        ["1.0.0.1", "1.0.0.1", "1.0.0.2"]
    );
    assert_eq!(
        column(&customers, "on_newest"),
        [json!(false), json!(false), json!(true)]
    );
    assert!(
        texts(&customers, "newest_version")
            .iter()
            .all(|v| v == "1.0.0.2")
    );
    assert!(
        texts(&customers, "last_seen")
            .iter()
            .all(|v| v.starts_with(&day))
    );
    assert_eq!(customers["totals"], json!({}));
    let behind = api(server, "/api/v1/stats/customers?behind=true").await;
    assert_eq!(texts(&behind, "license"), ["K-BORIS", "K-ANNA"]);
    let by_itn = api(server, "/api/v1/stats/customers?search=7700000002").await;
    assert_eq!(texts(&by_itn, "customer"), ["ИП Борис"]);
    let by_name = api(
        server,
        "/api/v1/stats/customers?search=%D0%90%D0%BD%D0%BD%D0%B0",
    )
    .await;
    assert_eq!(by_name["search"], "Анна");
    assert_eq!(texts(&by_name, "license"), ["K-ANNA", "K-ANNA"]);
    // A window of the rows, with how many there are in all.
    let second = api(server, "/api/v1/stats/customers?offset=1&limit=1").await;
    assert_eq!(
        (&second["total"], &second["offset"], &second["limit"]),
        (&json!(3), &json!(1), &json!(1))
    );
    assert_eq!(texts(&second, "conf"), ["БухгалтерияПредприятия"]);
    let behind_second = api(server, "/api/v1/stats/customers?behind=true&offset=1").await;
    assert_eq!(behind_second["total"], 2);
    assert_eq!(texts(&behind_second, "license"), ["K-ANNA"]);
    let csv = server
        .admin(Method::GET, "/api/v1/stats/customers?format=csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "customer,itn,license,distribution,conf,conf_version,version,newest_version,on_newest,last_seen"
        )
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("ИП Борис,7700000002,K-BORIS,AUD_PAID,")
    );

    // Subscriptions ending soon: the revoked license's is not one; names from the catalogue.
    let expiring = api(server, "/api/v1/stats/expiring-subscriptions").await;
    assert_eq!(expiring["days"], 30);
    assert_eq!(expiring["rows"].as_array().unwrap().len(), 1, "{expiring}");
    let row = &expiring["rows"][0];
    assert_eq!(row["customer"], "ООО Анна");
    assert_eq!(row["license"], "K-ANNA");
    assert_eq!(row["product"], "Телефония (85)");
    assert_eq!(row["feature"], "Обновления (43)");
    assert_eq!(row["days_left"], 10);
    assert_eq!(row["active_until"], rfc3339_in_days(10)[..10]);
    let year = api(server, "/api/v1/stats/expiring-subscriptions?days=365").await;
    assert_eq!(texts(&year, "license"), ["K-ANNA", "K-BORIS"]);

    // Share on the newest release, per distribution.
    let share = api(server, "/api/v1/stats/newest-share").await;
    assert_eq!(
        share["rows"],
        json!([
            {"distribution": FREE, "name": "Бесплатная обработка", "newest_version": "2.0.0.1",
             "installations": 1, "on_newest": 1, "share_percent": 100},
            {"distribution": PAID, "name": "Телефония для УТ", "newest_version": "1.0.0.2",
             "installations": 3, "on_newest": 1, "share_percent": 33},
        ])
    );
    assert_eq!(share["totals"]["installations"], 4);

    // Unknown keys: per day for readers, per key for those who may see keys.
    let unknown = api(server, &format!("/api/v1/stats/unknown-keys?from={day}")).await;
    assert_eq!(
        unknown["rows"],
        json!([{"day": day, "attempts": 3, "keys": 1}])
    );
    let keys = api(server, "/api/v1/stats/unknown-keys?group_by=key").await;
    assert_eq!(
        keys["rows"],
        json!([{"license": "K-TYPO", "attempts": 3, "days": 1, "last_day": day}])
    );

    // Bad parameters: a 400 in the API's error shape.
    for bad in [
        "/api/v1/stats/customers?behind=maybe",
        "/api/v1/stats/unknown-keys?group_by=license",
        "/api/v1/stats/expiring-subscriptions?days=0",
        "/api/v1/stats/newest-share?days=abc",
        "/api/v1/stats/active-installations?from=2026-13-01",
        "/api/v1/stats/customers?limit=0",
        "/api/v1/stats/customers?offset=-1",
    ] {
        let (status, body) = server.admin_json(Method::GET, bad, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["Code"], 400, "{bad}: {body}");
        assert!(body["Message"].is_string(), "{bad}: {body}");
    }

    // A viewer reads counts, never customers: 403 on the reports naming them, and no page
    // it can open shows a customer, an ITN or a key.
    user_with_roles(server, VIEWER, &["viewer"], VIEWER_PASSWORD).await;
    for path in [
        "/api/v1/stats/customers",
        "/api/v1/stats/expiring-subscriptions",
        "/api/v1/stats/unknown-keys?group_by=key",
        "/api/v1/stats/downloads?group_by=license",
    ] {
        let (status, body) = as_viewer(server, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    for path in [
        "/api/v1/stats/active-installations",
        "/api/v1/stats/newest-share",
        "/api/v1/stats/unknown-keys",
    ] {
        let (status, body) = as_viewer(server, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let cookie = reports_login(server, VIEWER, VIEWER_PASSWORD).await;
    for path in [
        "/reports/customers",
        "/reports/expiring",
        "/reports/csv/customers",
        "/reports/csv/expiring-subscriptions",
        "/reports/csv/unknown-keys?group_by=key",
    ] {
        let (status, _) = page(server, &cookie, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    for path in [
        "/reports".to_owned(),
        "/reports/active".to_owned(),
        "/reports/newest".to_owned(),
        "/reports/unknown-keys".to_owned(),
        format!("/reports/distributions/{PAID}"),
        format!("/reports/csv/downloads?distribution={PAID}"),
        "/reports/csv/unknown-keys".to_owned(),
    ] {
        let (status, body) = page(server, &cookie, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        for secret in [
            "Анна",
            "Борис",
            "7700000001",
            "K-ANNA",
            "K-TYPO",
            "/reports/customers",
        ] {
            assert!(
                !body.contains(secret),
                "{path} shows {secret:?} to a viewer"
            );
        }
    }
    // Every column and message of the five pages comes from the catalogues, in both
    // languages (console_i18n checks the pages without data for the other language's words).
    for (path, russian, english) in [
        (
            "/reports/active",
            "<th>Установки</th>",
            "<th>Installations</th>",
        ),
        ("/reports/customers", "<th>ИНН</th>", "<th>ITN</th>"),
        (
            "/reports/expiring?days=365",
            "<th>Подписка до</th>",
            "<th>Subscription ends</th>",
        ),
        ("/reports/newest", "<th>Доля, %</th>", "<th>Share, %</th>"),
        (
            "/reports/unknown-keys",
            "<th>Попыток</th>",
            "<th>Attempts</th>",
        ),
    ] {
        for (lang, header) in [("ru", russian), ("en", english)] {
            let resp = server
                .client
                .get(server.url(path))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .header("accept-language", lang)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let html = resp.text().await.unwrap();
            assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{path}");
            assert!(html.contains(header), "{path} ({lang}) lacks {header}");
            for id in ["col-", "report-"] {
                assert!(
                    !html.contains(&format!(">{id}")),
                    "{path} ({lang}) shows a message id"
                );
            }
        }
    }
    // The owner's pages do show them.
    let owner = reports_login(server, "admin", ADMIN_PASSWORD).await;
    let (status, body) = page(server, &owner, "/reports/customers?behind=true").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("ИП Борис") && body.contains("class=\"behind\""));
    let (_, body) = page(server, &owner, "/reports/unknown-keys").await;
    assert!(body.contains("K-TYPO"));
}

/// Pages to check at 375 px, with the report ids each must show.
const PAGES: &[(&str, &[&str])] = &[
    ("/reports", &["downloads-per-day"]),
    ("/reports/active", &["active-installations"]),
    ("/reports/customers", &["customers"]),
    ("/reports/expiring?days=365", &["expiring"]),
    ("/reports/newest", &["newest-share"]),
    (
        "/reports/unknown-keys",
        &["unknown-keys-per-day", "unknown-keys-per-key"],
    ),
];

#[tokio::test]
async fn report_pages_show_the_api_numbers_and_fit_a_phone() {
    let (chromium, chromedriver) = browser_binaries();
    let server = TestServer::start().await;
    seed(&server).await;
    let browser = Driver::start(&chromium, &chromedriver).await;
    browser
        .login_through_form(
            &server.url("/reports/active"),
            "/reports/active",
            "admin",
            ADMIN_PASSWORD,
        )
        .await;

    // Each page's table holds what the JSON API answers for the same question.
    let same = |api: &Value, name: &str| texts(api, name);
    let active = api(&server, "/api/v1/stats/active-installations").await;
    assert_eq!(
        browser
            .column("active-installations", "installations")
            .await,
        same(&active, "installations")
    );
    assert_eq!(
        browser
            .find_all("svg#chart-active circle.point")
            .await
            .len(),
        30
    );
    browser.screenshot("active").await;

    browser.goto(&server.url("/reports/customers")).await;
    let customers = api(&server, "/api/v1/stats/customers").await;
    for name in ["customer", "license", "conf", "version", "on_newest"] {
        assert_eq!(
            browser.column("customers", name).await,
            same(&customers, name),
            "{name}"
        );
    }
    assert_eq!(browser.find_all("tr.behind").await.len(), 2);
    // Search by ITN through the form.
    browser.type_into("#search", "7700000002").await;
    browser.click("form.filters button").await;
    browser.wait_for_url("search=7700000002").await;
    assert_eq!(browser.column("customers", "license").await, ["K-BORIS"]);
    browser.screenshot("customers").await;

    browser
        .goto(&server.url("/reports/expiring?days=365"))
        .await;
    let expiring = api(&server, "/api/v1/stats/expiring-subscriptions?days=365").await;
    for name in ["license", "product", "active_until", "days_left"] {
        assert_eq!(
            browser.column("expiring", name).await,
            same(&expiring, name),
            "{name}"
        );
    }
    browser.screenshot("expiring").await;

    browser.goto(&server.url("/reports/newest")).await;
    let share = api(&server, "/api/v1/stats/newest-share").await;
    for name in [
        "distribution",
        "installations",
        "on_newest",
        "share_percent",
    ] {
        assert_eq!(
            browser.column("newest-share", name).await,
            same(&share, name),
            "{name}"
        );
    }
    browser.screenshot("newest").await;

    browser.goto(&server.url("/reports/unknown-keys")).await;
    let per_day = api(&server, "/api/v1/stats/unknown-keys").await;
    assert_eq!(
        browser.column("unknown-keys-per-day", "attempts").await,
        same(&per_day, "attempts")
    );
    let per_key = api(&server, "/api/v1/stats/unknown-keys?group_by=key").await;
    assert_eq!(
        browser.column("unknown-keys-per-key", "license").await,
        same(&per_key, "license")
    );
    browser.screenshot("unknown-keys").await;

    // At 375 px no report page is wider than the screen: wide tables scroll inside their box.
    assert_eq!(browser.set_viewport_width(375).await, 375);
    let mut pages: Vec<(String, Vec<&str>)> = PAGES
        .iter()
        .map(|(p, ids)| ((*p).to_owned(), ids.to_vec()))
        .collect();
    pages.push((
        format!("/reports/distributions/{PAID}"),
        vec!["installed-base"],
    ));
    // The console's lists too (same login session).
    for path in [
        "/console",
        "/console/distributions",
        "/console/licenses",
        "/console/products",
        "/console/keys",
        "/console/users",
        "/console/audit",
    ] {
        pages.push((path.to_owned(), Vec::new()));
    }
    for (path, ids) in &pages {
        browser.goto(&server.url(path)).await;
        for id in ids {
            assert!(
                !browser.find_all(&format!("section#{id}")).await.is_empty(),
                "{path} shows {id}"
            );
        }
        let overflow = browser.horizontal_overflow().await;
        if overflow > 0 {
            browser
                .screenshot(&format!("overflow{}", path.replace(['/', '?', '='], "-")))
                .await;
        }
        assert!(overflow <= 0, "{path} is {overflow} px wider than 375 px");
    }
    browser.screenshot("narrow-last").await;
}
