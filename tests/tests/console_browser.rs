//! The vendor console in a real browser (issue 12): headless Chromium driven as a person would
//! (`vypusk_tests::browser`). One test walks the release side, from login to a yanked release,
//! checking each outcome through the vendor API and the client protocol; the other creates a
//! `support` user through its one-time link and shows what that user can and cannot do, then
//! disables it. Every page is saved to `target/console-screenshots/`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_tests::browser::*;
use vypusk_tests::*;

const SHOTS: &str = "console-screenshots";
const CODE: &str = "CRM_CONSOLE";
const CONF: &str = "УправлениеТорговлей";

async fn login(browser: &Driver, server: &TestServer, path: &str, user: &str, password: &str) {
    browser
        .login_through_form(&server.url(path), path, user, password)
        .await;
}

async fn logout(browser: &Driver) {
    browser.click("header form button").await;
    browser.wait_for("#login").await;
}

/// The text of the first element matching `css`.
async fn text_of(browser: &Driver, css: &str) -> String {
    let e = browser.find(css).await;
    browser.text(&e).await
}

async fn available(server: &TestServer, installed: &str) -> Value {
    let (status, body) = server
        .client_post(
            "getAvailableReleases",
            json!({"INSTALLED_VERSION": installed, "TYPE": CODE, "CONF": CONF,
                   "CONF_VERSION": "11.5.20.73", "KEY": "", "SHOW_UNTESTED": "N"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn a_release_from_login_to_yank_in_the_browser() {
    let (chromium, chromedriver) = browser_binaries();
    let server = TestServer::start().await;
    let browser = Driver::start(&chromium, &chromedriver).await;

    // A console page sends a browser to the login form and brings it back after.
    login(&browser, &server, "/console", "admin", ADMIN_PASSWORD).await;
    browser.screenshot_in(SHOTS, "01-home").await;

    // A distribution, every SPEC §3 field through the form.
    browser
        .click("header a[href='/console/distributions']")
        .await;
    browser.wait_for("#new-distribution").await;
    browser.screenshot_in(SHOTS, "02-distributions").await;
    browser.click("#new-distribution").await;
    browser.wait_for("#distribution-form").await;
    browser.type_into("input[name=code]", CODE).await;
    browser
        .type_into("input[name=name]", "CRM для Управления торговлей")
        .await;
    browser
        .type_into("textarea[name=description]", "Сделки и звонки")
        .await;
    browser
        .type_into("input[name=developer]", "ООО «Пример»")
        .await;
    browser.type_into("input[name=label]", "PT40").await;
    browser
        .type_into("input[name=promo_link]", "https://example.com/crm")
        .await;
    browser.screenshot_in(SHOTS, "03-new-distribution").await;
    browser.click("#save-distribution").await;
    let url = browser.wait_for_url("?done=created").await;
    assert!(
        url.ends_with(&format!("/console/distributions/{CODE}?done=created")),
        "{url}"
    );
    let (status, d) = server
        .admin_json(Method::GET, &format!("/api/v1/distributions/{CODE}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(d["name"], "CRM для Управления торговлей");
    assert_eq!(d["developer"], "ООО «Пример»");
    assert_eq!(d["label"], "PT40");
    assert_eq!(d["published"], true);

    // A release: Markdown preview first (raw HTML shown as text), then the draft.
    browser.click("#new-release").await;
    browser.wait_for("#release-form").await;
    browser.type_into("input[name=version]", "4.0.4.12").await;
    browser
        .type_into(
            "textarea[name=changelog]",
            "* Исправлена **печать** счёта\n* <script>alert(1)</script>",
        )
        .await;
    browser.click("#preview").await;
    browser.wait_for("#changelog-preview strong").await;
    let preview = text_of(&browser, "#changelog-preview").await;
    assert!(preview.contains("Исправлена печать счёта"), "{preview}");
    assert!(
        preview.contains("<script>alert(1)</script>"),
        "shown as text: {preview}"
    );
    browser.screenshot_in(SHOTS, "04-new-release-preview").await;
    browser.click("#create-release").await;
    let url = browser.wait_for_url("?done=created").await;
    let id: i64 = url
        .rsplit("/console/releases/")
        .next()
        .and_then(|rest| rest.split('?').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("release URL: {url}"));

    // A file through the upload script (progress bar), then the compatibility rows.
    let dir = tempfile::tempdir().unwrap();
    let bytes = test_bytes(3 << 20, 7);
    let path = dir.path().join("crm_4.0.4.12.cfe");
    std::fs::write(&path, &bytes).unwrap();
    let input = browser.find("#upload-input").await;
    browser
        .call(
            Method::POST,
            &browser.s(&format!("/element/{input}/value")),
            Some(json!({"text": path.display().to_string()})),
        )
        .await;
    browser.click("#upload-button").await;
    let url = browser.wait_for_url("?done=uploaded").await;
    assert!(url.ends_with("?done=uploaded"), "{url}");
    let files = text_of(&browser, "#files").await;
    assert!(files.contains("crm_4.0.4.12.cfe"), "{files}");
    assert!(files.contains(&md5_hex(&bytes)), "{files}");
    browser.type_into("input[name=conf]", CONF).await;
    browser.type_into("input[name=min]", "11.4.0.0").await;
    browser.type_into("input[name=max]", "11.5.99.999").await;
    browser.click("#save-release").await;
    browser.wait_for_url("?done=saved").await;
    browser.screenshot_in(SHOTS, "05-release-draft").await;
    let (_, release) = server
        .admin_json(Method::GET, &format!("/api/v1/releases/{id}"), None)
        .await;
    assert_eq!(release["compatibility"][0]["conf"], CONF, "{release}");
    assert_eq!(release["compatibility"][0]["max_1c_version"], "11.5.99.999");
    assert_eq!(release["files"][0]["main"], true);
    assert_eq!(available(&server, "4.0.0.1").await["modules"], json!([]));

    // Publish after seeing what clients will see.
    browser.click("#publish").await;
    browser.wait_for("#client-view").await;
    let view = text_of(&browser, "#client-view").await;
    assert!(view.contains("crm_4.0.4.12.cfe"), "{view}");
    assert!(
        view.contains(&format!("{CONF} 11.4.0.0 – 11.5.99.999")),
        "{view}"
    );
    assert!(view.contains("Исправлена печать счёта"), "{view}");
    browser.screenshot_in(SHOTS, "06-publish-confirm").await;
    browser.click("#confirm").await;
    browser.wait_for_url("?done=published").await;
    assert_eq!(text_of(&browser, "#release-status").await, "published");
    browser.screenshot_in(SHOTS, "07-release-published").await;
    let answer = available(&server, "4.0.0.1").await;
    let module = &answer["modules"][0];
    assert_eq!(module["uniqid"], "4.0.4.12", "{answer}");
    assert_eq!(module["files"][0]["md5"], md5_hex(&bytes), "{answer}");
    assert_eq!(module["version"], "PT40", "the label, as MIKO's field");

    // Yank it, with a reason; clients are no longer offered it.
    browser.click("#yank").await;
    browser.wait_for("#client-view").await;
    let view = text_of(&browser, "#client-view").await;
    assert!(
        view.contains("No other published release remains"),
        "{view}"
    );
    browser
        .type_into("input[name=reason]", "Ошибка в обмене с банком")
        .await;
    browser.screenshot_in(SHOTS, "08-yank-confirm").await;
    browser.click("#confirm").await;
    browser.wait_for_url("?done=yanked").await;
    assert_eq!(text_of(&browser, "#release-status").await, "yanked");
    let (_, release) = server
        .admin_json(Method::GET, &format!("/api/v1/releases/{id}"), None)
        .await;
    assert_eq!(release["status"], "yanked");
    assert_eq!(release["yank_reason"], "Ошибка в обмене с банком");
    assert_eq!(available(&server, "4.0.0.1").await["modules"], json!([]));

    // The distribution's list filters by status.
    browser
        .goto(&server.url(&format!("/console/distributions/{CODE}?status=draft")))
        .await;
    browser.wait_for("#releases").await;
    assert!(!text_of(&browser, "#releases").await.contains("4.0.4.12"));
    browser
        .goto(&server.url(&format!("/console/distributions/{CODE}?status=yanked")))
        .await;
    browser.wait_for("#releases").await;
    assert!(text_of(&browser, "#releases").await.contains("4.0.4.12"));
    browser.screenshot_in(SHOTS, "09-distribution").await;

    // Unpublish the distribution.
    browser.click("#unpublish").await;
    browser.wait_for_url("?done=unpublished").await;
    let (_, d) = server
        .admin_json(Method::GET, &format!("/api/v1/distributions/{CODE}"), None)
        .await;
    assert_eq!(d["published"], false);

    // An API key, shown once, works on the vendor API.
    browser.click("header a[href='/console/keys']").await;
    browser.wait_for("#key-form").await;
    browser.type_into("#key-form input[name=name]", "ci").await;
    browser.click("#create-key").await;
    browser.wait_for("#new-key").await;
    let key = text_of(&browser, "#new-key").await;
    browser.screenshot_in(SHOTS, "10-api-key-created").await;
    let resp = server
        .client
        .get(server.url("/api/v1/distributions"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // The audit log shows what the console did, by whom.
    browser
        .goto(&server.url("/console/audit?action=publishRelease"))
        .await;
    browser.wait_for("#audit").await;
    let log = text_of(&browser, "#audit").await;
    assert!(
        log.contains("publishRelease") && log.contains("admin"),
        "{log}"
    );
    assert!(log.contains(&format!("id=\"{id}\"")), "{log}");
    browser.screenshot_in(SHOTS, "11-audit").await;
    browser.goto(&server.url("/console/account")).await;
    browser.wait_for("#password-form").await;
    browser.screenshot_in(SHOTS, "12-account").await;
}

#[tokio::test]
async fn a_support_user_from_its_one_time_link_to_disabled() {
    let (chromium, chromedriver) = browser_binaries();
    let server = TestServer::start().await;
    server.create_distribution(CODE, json!({})).await;
    let draft = server
        .create_release(
            CODE,
            json!({"version": "1.0.0.1", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("crm.cfe", b"crm")],
            false,
        )
        .await;
    let draft = draft["id"].as_i64().unwrap();
    let browser = Driver::start(&chromium, &chromedriver).await;

    // The owner creates maria (support) and gets her one-time link.
    login(&browser, &server, "/console/users", "admin", ADMIN_PASSWORD).await;
    browser
        .type_into("#user-form input[name=login]", "maria")
        .await;
    browser.click("#user-form input[value=support]").await;
    browser.click("#create-user").await;
    browser.wait_for("#set-password-link").await;
    browser.screenshot_in(SHOTS, "20-user-created").await;
    let link_element = browser.find("#set-password-link").await;
    let link = browser.attribute(&link_element, "href").await;
    assert!(link.contains("/console/set-password?token=vyst_"), "{link}");
    logout(&browser).await;

    // Maria sets her password through the link and logs in.
    browser.goto(&link).await;
    browser.wait_for("#set-password-form").await;
    browser.screenshot_in(SHOTS, "21-set-password").await;
    browser
        .type_into("input[name=password]", "maria's long password")
        .await;
    browser
        .type_into("input[name=repeat]", "maria's long password")
        .await;
    browser.click("#set-password").await;
    browser.wait_for("#login").await;
    browser.type_into("#user", "maria").await;
    browser
        .type_into("#password", "maria's long password")
        .await;
    browser.click("#login").await;
    browser.wait_for_url("/console").await;

    // She sees the catalog but no release form, and cannot publish.
    browser
        .goto(&server.url(&format!("/console/releases/{draft}")))
        .await;
    browser.wait_for("#files").await;
    assert!(browser.find_all("#release-form").await.is_empty());
    assert!(browser.find_all("#upload-form").await.is_empty());
    assert!(browser.find_all("#publish").await.is_empty());
    browser.screenshot_in(SHOTS, "22-release-as-support").await;
    browser
        .goto(&server.url(&format!("/console/releases/{draft}/publish")))
        .await;
    let page = browser.source().await;
    assert!(page.contains("403"), "{page}");
    browser.goto(&server.url("/console/distributions")).await;
    browser.wait_for("#distributions").await;
    assert!(browser.find_all("#new-distribution").await.is_empty());
    // Users and the audit log are not in her navigation.
    assert!(
        browser
            .find_all("header a[href='/console/users']")
            .await
            .is_empty()
    );

    // Her API key: licenses yes, publishing no (checked through the vendor API).
    browser.goto(&server.url("/console/keys")).await;
    browser.wait_for("#key-form").await;
    browser
        .type_into("#key-form input[name=name]", "support script")
        .await;
    browser.click("#key-form input[value=licenses]").await;
    browser.click("#create-key").await;
    browser.wait_for("#new-key").await;
    let key = text_of(&browser, "#new-key").await;
    let with_key = |method: Method, path: &str| {
        server
            .client
            .request(method, server.url(path))
            .header("x-api-key", key.clone())
            .send()
    };
    assert_eq!(
        with_key(Method::GET, "/api/v1/licenses")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        with_key(Method::POST, &format!("/api/v1/releases/{draft}/publish"))
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let resp = server
        .client
        .post(server.url(&format!("/api/v1/releases/{draft}/publish")))
        .basic_auth("maria", Some("maria's long password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // Her session as a cookie for a plain client, to see it end below.
    let cookie = reports_login(&server, "maria", "maria's long password").await;

    // The owner disables her in the console; her session and key stop at once.
    logout(&browser).await;
    login(&browser, &server, "/console/users", "admin", ADMIN_PASSWORD).await;
    browser.click("#user-maria input[name=disabled]").await;
    browser.click("#user-maria button[type=submit]").await;
    browser.wait_for_url("?done=saved").await;
    browser.screenshot_in(SHOTS, "23-users").await;
    let (_, users) = server.admin_json(Method::GET, "/api/v1/users", None).await;
    let maria = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "maria")
        .cloned()
        .unwrap();
    assert_eq!(maria["disabled"], true);
    let resp = server
        .client
        .get(server.url("/console"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        with_key(Method::GET, "/api/v1/licenses")
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}
