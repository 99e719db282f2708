//! Licenses and named products in the console in a real browser (issue 13 items 1–2): headless
//! Chromium (`vypusk_tests::browser`) driven as a person would. One test, as a `support` user,
//! searches a license by ITN, edits a feature's expiry, revokes the license and imports a CSV
//! with one bad line (its number shown, nothing imported); the other, as the owner, names a
//! product and a feature on the products page and sees the names on the distribution's edit
//! page and on the license pages. Each outcome is checked through the vendor API; a screenshot
//! of each step is saved to `target/console-screenshots/lic-*.png`.

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use vypusk_tests::browser::*;
use vypusk_tests::*;

const SHOTS: &str = "console-screenshots";
const PASSWORD: &str = "sveta's long password";

/// A license as `/api/v1/licenses/{key}` answers it.
#[derive(Debug, Deserialize)]
struct License {
    key: String,
    customer: String,
    itn: String,
    beta: bool,
    revoked: bool,
    features: Vec<Feature>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Feature {
    product: i64,
    feature: i64,
    active_until: Option<String>,
}

/// A product as `/api/v1/products/{number}` answers it.
#[derive(Debug, PartialEq, Deserialize)]
struct Product {
    number: i64,
    name: String,
    features: Vec<NamedFeature>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct NamedFeature {
    number: i64,
    name: String,
    default_days: Option<u32>,
}

/// The license `key` through the vendor API, `None` if there is none.
async fn license(server: &TestServer, key: &str) -> Option<License> {
    let (status, body) = server
        .admin_json(Method::GET, &format!("/api/v1/licenses/{key}"), None)
        .await;
    match status {
        StatusCode::OK => Some(serde_json::from_value(body).expect("a license")),
        StatusCode::NOT_FOUND => None,
        other => panic!("GET license {key}: {other} {body}"),
    }
}

async fn create_license(server: &TestServer, body: serde_json::Value) {
    let (status, created) = server
        .admin_json(Method::POST, "/api/v1/licenses", Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

async fn login(browser: &Driver, server: &TestServer, path: &str, user: &str, password: &str) {
    browser
        .login_through_form(&server.url(path), path, user, password)
        .await;
}

/// The texts of every element matching `css`.
async fn texts(browser: &Driver, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in browser.find_all(css).await {
        out.push(browser.text(&e).await);
    }
    out
}

/// The current value of the form field matching `css` (its `value` property: what is typed).
async fn value_of(browser: &Driver, css: &str) -> String {
    let e = browser.find(css).await;
    browser
        .call(
            Method::GET,
            &browser.s(&format!("/element/{e}/property/value")),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Types a date into the `<input type=date>` matching `css` as a person would: the digits in
/// the order the field shows its parts, which is the browser locale's (month first in en-US,
/// day first in Russian). The order is read from the browser, not assumed.
async fn type_date(browser: &Driver, css: &str, (year, month, day): (&str, &str, &str)) {
    let order = browser
        .call(
            Method::POST,
            &browser.s("/execute/sync"),
            Some(json!({
                "script": "return new Intl.DateTimeFormat(navigator.language)\
                           .formatToParts(new Date(2000, 0, 2))\
                           .map(p => p.type)\
                           .filter(t => t === 'year' || t === 'month' || t === 'day');",
                "args": [],
            })),
        )
        .await;
    let keys: String = order
        .as_array()
        .unwrap_or_else(|| panic!("the date parts' order: {order}"))
        .iter()
        .map(|part| match part.as_str() {
            Some("year") => year,
            Some("month") => month,
            Some("day") => day,
            _ => panic!("a date part: {order}"),
        })
        .collect();
    browser.type_into(css, &keys).await;
}

/// The text of the first element matching `css`, once it is there.
async fn text_of(browser: &Driver, css: &str) -> String {
    let found = browser.wait_for(css).await;
    assert!(!found.is_empty(), "no element {css}");
    browser.text(&found[0]).await
}

#[tokio::test]
async fn a_license_searched_edited_revoked_and_a_bad_import_refused_in_the_browser() {
    let (chromium, chromedriver) = browser_binaries();
    let server = TestServer::start().await;
    user_with_roles(&server, "sveta", &["support"], PASSWORD).await;
    create_license(
        &server,
        json!({"key": "ROMA-0001", "customer": "ООО «Ромашка»", "itn": "7701234567",
        "features": [
            {"product": 85, "feature": 43, "active_until": "2027-12-31"},
            {"product": 85, "feature": 44},
        ]}),
    )
    .await;
    // An ITN one digit away, and another customer: the search must leave both out.
    create_license(
        &server,
        json!({"key": "LUTIK-0002", "customer": "ООО «Лютик»", "itn": "7701234568",
               "features": [{"product": 85, "feature": 43}]}),
    )
    .await;
    create_license(
        &server,
        json!({"key": "IVANOV-0003", "customer": "ИП Иванов", "itn": "500100732259"}),
    )
    .await;
    let browser = Driver::start(&chromium, &chromedriver).await;

    login(&browser, &server, "/console/licenses", "sveta", PASSWORD).await;
    browser.wait_for("#licenses").await;
    let mut all = texts(&browser, "#licenses tbody td:first-child a").await;
    all.sort();
    assert_eq!(all, ["IVANOV-0003", "LUTIK-0002", "ROMA-0001"]);

    // Search by ITN: exactly the matching license is listed.
    browser
        .type_into("#license-search input[name=search]", "7701234567")
        .await;
    browser.click("#license-search button[type=submit]").await;
    let url = browser.wait_for_url("?search=7701234567").await;
    assert!(
        url.ends_with("/console/licenses?search=7701234567"),
        "{url}"
    );
    browser.wait_for("#licenses").await;
    assert_eq!(
        texts(&browser, "#licenses tbody td:first-child a").await,
        ["ROMA-0001"]
    );
    assert_eq!(
        texts(&browser, "#licenses tbody td:nth-child(3)").await,
        ["7701234567"]
    );
    browser.screenshot_in(SHOTS, "lic-01-search-by-itn").await;

    // Open it and move the first feature's expiry; the other fields stay.
    browser
        .click("#licenses a[href='/console/licenses/ROMA-0001']")
        .await;
    let url = browser.wait_for_url("/console/licenses/ROMA-0001").await;
    assert!(url.ends_with("/console/licenses/ROMA-0001"), "{url}");
    browser.wait_for("#license-form").await;
    let until = "#features tbody tr:first-child input[name=until]";
    assert_eq!(value_of(&browser, until).await, "2027-12-31");
    type_date(&browser, until, ("2028", "06", "30")).await;
    assert_eq!(value_of(&browser, until).await, "2028-06-30");
    browser.screenshot_in(SHOTS, "lic-02-edit-expiry").await;
    browser.click("#save-license").await;
    let url = browser.wait_for_url("?done=saved").await;
    assert!(
        url.ends_with("/console/licenses/ROMA-0001?done=saved"),
        "{url}"
    );
    let l = license(&server, "ROMA-0001").await.expect("ROMA-0001");
    assert_eq!(l.key, "ROMA-0001");
    assert_eq!(l.customer, "ООО «Ромашка»");
    assert_eq!(l.itn, "7701234567");
    assert!(!l.beta);
    assert!(!l.revoked);
    assert_eq!(
        l.features,
        [
            Feature {
                product: 85,
                feature: 43,
                active_until: Some("2028-06-30T23:59:59Z".into()),
            },
            Feature {
                product: 85,
                feature: 44,
                active_until: None,
            },
        ]
    );
    assert_eq!(value_of(&browser, until).await, "2028-06-30");

    // Revoke it from its page.
    assert!(browser.find_all("#license-state").await.is_empty());
    browser.click("#revoke").await;
    let url = browser.wait_for_url("?done=revoked-license").await;
    assert!(
        url.ends_with("/console/licenses/ROMA-0001?done=revoked-license"),
        "{url}"
    );
    browser.wait_for("#restore").await;
    assert_eq!(browser.find_all("#license-state").await.len(), 1);
    assert!(browser.find_all("#revoke").await.is_empty());
    browser.screenshot_in(SHOTS, "lic-03-revoked").await;
    let l = license(&server, "ROMA-0001").await.expect("ROMA-0001");
    assert!(l.revoked);
    assert_eq!(
        l.features[0].active_until.as_deref(),
        Some("2028-06-30T23:59:59Z")
    );
    let other = license(&server, "LUTIK-0002").await.expect("LUTIK-0002");
    assert!(!other.revoked, "only the license revoked is");

    // An import with one bad line in the middle: that line's number shown, nothing imported
    // (not the good lines around it, not the replacement of ROMA-0001).
    browser.click("header a[href='/console/licenses']").await;
    browser.wait_for("#import-form").await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("licenses.csv");
    std::fs::write(
        &csv,
        "key,customer,itn,product,feature,active_until\n\
         NEW-0004,ООО «Новая»,7702000000,85,43,31.12.2030\n\
         NEW-0005,ООО «Плохая»,7703000000,85,x,\n\
         ROMA-0001,ООО «Подмена»,7701234567,85,43,\n",
    )
    .unwrap();
    let input = browser.find("#import-file").await;
    browser
        .call(
            Method::POST,
            &browser.s(&format!("/element/{input}/value")),
            Some(json!({"text": csv.display().to_string()})),
        )
        .await;
    browser.click("#import").await;
    browser.wait_for("#import-errors").await;
    // A heading line ("the CSV has 1 bad line; …"), then one item per bad line.
    let errors = texts(&browser, "#import-errors li").await;
    let bad: Vec<&String> = errors.iter().filter(|e| e.starts_with("line ")).collect();
    assert_eq!(bad.len(), 1, "{errors:?}");
    assert!(bad[0].starts_with("line 3: "), "{errors:?}");
    assert!(browser.find_all("#import-summary").await.is_empty());
    browser.screenshot_in(SHOTS, "lic-04-import-refused").await;
    assert!(license(&server, "NEW-0004").await.is_none());
    assert!(license(&server, "NEW-0005").await.is_none());
    let l = license(&server, "ROMA-0001").await.expect("ROMA-0001");
    assert_eq!(l.customer, "ООО «Ромашка»");
    assert!(l.revoked);
    assert_eq!(l.features.len(), 2);
    let (_, list) = server
        .admin_json(Method::GET, "/api/v1/licenses", None)
        .await;
    assert_eq!(list["total"], 3, "{list}");
}

#[tokio::test]
async fn a_product_named_in_the_browser_shows_on_the_distribution_and_license_pages() {
    let (chromium, chromedriver) = browser_binaries();
    let server = TestServer::start().await;
    server
        .create_distribution(
            "NAMED_CRM",
            json!({"lic_product_id": 85, "lic_feature_id": 43}),
        )
        .await;
    create_license(
        &server,
        json!({"key": "NAMED-0001", "customer": "ООО «Ромашка»", "itn": "7701234567",
               "features": [{"product": 85, "feature": 43, "active_until": "2030-01-31"}]}),
    )
    .await;
    let browser = Driver::start(&chromium, &chromedriver).await;
    let named = "Телефония / Обновления (85/43)";

    // Before naming, the distribution's gate is only numbers.
    login(
        &browser,
        &server,
        "/console/distributions/NAMED_CRM",
        "admin",
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(text_of(&browser, "#gate-name strong").await, "85/43");

    // Name product 85 and its feature 43 on the products page.
    browser.click("header a[href='/console/products']").await;
    browser.wait_for("#product-form").await;
    assert!(browser.find_all("#product-85").await.is_empty());
    browser
        .type_into("#product-form input[name=number]", "85")
        .await;
    browser
        .type_into("#product-form input[name=name]", "Телефония")
        .await;
    browser.click("#create-product").await;
    let url = browser.wait_for_url("/console/products?done=saved").await;
    assert!(url.ends_with("/console/products?done=saved"), "{url}");
    browser.wait_for("#product-85").await;
    let features = "#product-85 form[action='/console/products/85/features']";
    browser
        .type_into(&format!("{features} input[name=feature]"), "43")
        .await;
    browser
        .type_into(&format!("{features} input[name=name]"), "Обновления")
        .await;
    browser
        .type_into(&format!("{features} input[name=default_days]"), "365")
        .await;
    browser.screenshot_in(SHOTS, "lic-10-name-feature").await;
    browser
        .click(&format!("{features} button[type=submit]"))
        .await;
    // The page after the submit is the first with a feature row.
    browser.wait_for("#product-85 tbody tr").await;
    assert_eq!(
        texts(&browser, "#product-85 tbody td:nth-child(2)").await,
        ["Обновления"]
    );
    browser.screenshot_in(SHOTS, "lic-11-products").await;
    let (status, p) = server
        .admin_json(Method::GET, "/api/v1/products/85", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    let p: Product = serde_json::from_value(p).unwrap();
    assert_eq!(
        p,
        Product {
            number: 85,
            name: "Телефония".into(),
            features: vec![NamedFeature {
                number: 43,
                name: "Обновления".into(),
                default_days: Some(365),
            }],
        }
    );

    // The distribution's edit page names its gate; the wire keeps the numbers.
    browser
        .click("header a[href='/console/distributions']")
        .await;
    let link = "#distributions a[href='/console/distributions/NAMED_CRM']";
    browser.wait_for(link).await;
    browser.click(link).await;
    browser
        .wait_for_url("/console/distributions/NAMED_CRM")
        .await;
    browser.wait_for("#distribution-form").await;
    assert_eq!(text_of(&browser, "#gate-name strong").await, named);
    assert_eq!(
        value_of(&browser, "#distribution-form input[name=lic_product_id]").await,
        "85"
    );
    browser
        .screenshot_in(SHOTS, "lic-12-distribution-named")
        .await;
    let (_, d) = server
        .admin_json(Method::GET, "/api/v1/distributions/NAMED_CRM", None)
        .await;
    assert_eq!(
        (d["lic_product_id"].as_i64(), d["lic_feature_id"].as_i64()),
        (Some(85), Some(43)),
        "{d}"
    );

    // The license list and the license's page name its feature.
    browser.click("header a[href='/console/licenses']").await;
    browser.wait_for("#licenses").await;
    assert_eq!(
        texts(&browser, "#licenses tbody td:nth-child(4)").await,
        [format!("{named} until 2030-01-31")]
    );
    browser
        .click("#licenses a[href='/console/licenses/NAMED-0001']")
        .await;
    browser.wait_for_url("/console/licenses/NAMED-0001").await;
    browser.wait_for("#license-form").await;
    assert_eq!(
        text_of(&browser, "#features tbody tr:first-child td.feature-name").await,
        named
    );
    browser.screenshot_in(SHOTS, "lic-13-license-named").await;
    let l = license(&server, "NAMED-0001").await.expect("NAMED-0001");
    assert_eq!(
        l.features,
        [Feature {
            product: 85,
            feature: 43,
            active_until: Some("2030-01-31T23:59:59Z".into()),
        }]
    );
}
