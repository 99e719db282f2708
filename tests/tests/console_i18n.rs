//! The console and the reports in Russian and English (issue 13 item 4): every page is fetched
//! in both languages, and a Russian page may show no English UI string (nor a hard-coded
//! English word), an English page no Russian one. The language comes from `Accept-Language`
//! (a Cyrillic locale gets Russian) until the switch at `/lang/…` remembers a choice.

use reqwest::{Method, StatusCode};
use serde_json::json;
use vypusk_tests::*;

/// `key = value` lines of a catalogue (values without placeables).
fn catalogue(lang: &str) -> Vec<(String, String)> {
    let path = workspace_root().join(format!("server/locales/{lang}/vypusk.ftl"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_lowercase()))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The text a reader sees: no tags, scripts or styles; the few entities askama writes decoded.
fn visible_text(html: &str) -> String {
    let mut s = html.to_owned();
    for tag in ["script", "style", "datalist"] {
        while let Some(start) = s.find(&format!("<{tag}")) {
            let end = s[start..]
                .find(&format!("</{tag}>"))
                .map_or(s.len(), |e| start + e + tag.len() + 3);
            s.replace_range(start..end, " ");
        }
    }
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Latin words a Russian page may show: product and protocol names, permission and role
/// names (they are API values), the CSV's column names, and this test's data.
const LATIN_ALLOWED: &[&str] = &[
    "vypusk",
    "admin",
    "English",
    "Markdown",
    "semver",
    "owner",
    "release",
    "support",
    "viewer",
    "read",
    "publish",
    "licenses",
    "CSV",
    "UTF",
    "Windows",
    "customer",
    "beta",
    "revoked",
    "product",
    "feature",
    "active_until",
    "Bearer",
    "Authorization",
    "LANG",
    "CRM",
    "TYPE",
    "publishRelease",
    "main",
    "cfe",
    "crm",
    "LANG-0001",
    "LANG_CRM",
    "CONF",
    "MD5",
    "md5",
    "itn",
    "key",
];

fn latin_words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| w.chars().filter(|c| c.is_ascii_alphabetic()).count() >= 4)
        .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_console_page_in_russian_and_english_without_the_other_language() {
    let server = TestServer::start().await;
    server
        .create_distribution("LANG_CRM", json!({"name": "ЦРМ", "developer": "Разработчик", "label": "ПТ40", "description": "Сделки и звонки", "promo_link": ""}))
        .await;
    let draft = server
        .create_release(
            "LANG_CRM",
            json!({"version": "1.0.0.1", "changelog": "Исправлено",
                   "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("crm.cfe", b"crm")],
            false,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(
                json!({"key": "LANG-0001", "customer": "ООО Ромашка", "itn": "7701234567",
                        "features": [{"product": 85, "feature": 43}]}),
            ),
        )
        .await;
    server
        .name_feature((85, "Телефония"), (43, "Обновления"), Some(365))
        .await;
    let cookie = reports_login(&server, "admin", ADMIN_PASSWORD).await;
    let pages = [
        "/console".to_owned(),
        "/console/distributions".into(),
        "/console/distributions/new".into(),
        "/console/distributions/LANG_CRM".into(),
        "/console/distributions/LANG_CRM/releases/new".into(),
        format!("/console/releases/{draft}"),
        format!("/console/releases/{draft}/publish"),
        "/console/licenses".into(),
        "/console/licenses/new".into(),
        "/console/licenses/LANG-0001".into(),
        "/console/products".into(),
        "/console/keys".into(),
        "/console/users".into(),
        "/console/audit".into(),
        "/console/account".into(),
        "/console/set-password?token=x".into(),
        "/reports".into(),
        "/reports/distributions/LANG_CRM".into(),
        "/reports/active".into(),
        "/reports/customers".into(),
        "/reports/expiring".into(),
        "/reports/newest".into(),
        "/reports/unknown-keys".into(),
        "/reports/login".into(),
    ];
    let en = catalogue("en");
    let ru = catalogue("ru");
    // Values that differ between the languages and are long enough to be told apart.
    let english_only: Vec<&str> = en
        .iter()
        .filter(|(k, v)| {
            v.chars().count() >= 4
                && !v.contains('{')
                && ru.iter().any(|(rk, rv)| rk == k && rv != v)
        })
        .map(|(_, v)| v.as_str())
        .collect();
    let russian_only: Vec<&str> = ru
        .iter()
        .filter(|(k, v)| {
            v.chars().count() >= 4
                && !v.contains('{')
                && k != "switch-language"
                && en.iter().any(|(ek, ev)| ek == k && ev != v)
        })
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(english_only.len() > 100 && russian_only.len() > 100);
    let data = [
        "ЦРМ",
        "Разработчик",
        "ПТ40",
        "Сделки и звонки",
        "Исправлено",
        "ООО Ромашка",
        "Телефония",
        "Обновления",
        "Русский",
    ];

    let mut problems = Vec::new();
    for path in &pages {
        for lang in ["ru-RU,ru;q=0.9,en;q=0.5", "en-US,en;q=0.9"] {
            let resp = server
                .client
                .get(server.url(path))
                .header("cookie", &cookie)
                .header("accept-language", lang)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let mut html = resp.text().await.unwrap();
            if path == "/console/audit"
                && let (Some(a), Some(b)) = (html.find("<tbody>"), html.find("</tbody>"))
            {
                // The log's rows are data: operation ids, targets, logins.
                html.replace_range(a..b, "");
            }
            let text = visible_text(&html);
            if lang.starts_with("ru") {
                assert!(html.contains("<html lang=\"ru\">"), "{path}");
                let words = latin_words(&text);
                for english in &english_only {
                    // A one-word message counts as a whole word ("active" is not in "active_until").
                    let shown = if english.contains(' ') {
                        text.contains(english)
                    } else {
                        // Column names of the CSV ("beta", "revoked") are allowed words.
                        words.iter().any(|w| w == english) && !LATIN_ALLOWED.contains(english)
                    };
                    if shown {
                        problems.push(format!("{path} (ru) shows English {english:?}"));
                    }
                }
                for word in &words {
                    if !LATIN_ALLOWED.iter().any(|a| a.eq_ignore_ascii_case(word)) {
                        problems.push(format!("{path} (ru) shows the Latin word {word:?}"));
                    }
                }
            } else {
                assert!(html.contains("<html lang=\"en\">"), "{path}");
                for russian in &russian_only {
                    if text.contains(russian) {
                        problems.push(format!("{path} (en) shows Russian {russian:?}"));
                    }
                }
                let mut rest = text.clone();
                for d in data {
                    rest = rest.replace(d, "");
                }
                if rest.chars().any(|c| ('\u{400}'..='\u{4ff}').contains(&c)) {
                    problems.push(format!(
                        "{path} (en) shows Cyrillic outside the data:\n{rest}"
                    ));
                }
            }
        }
    }
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn a_cyrillic_locale_gets_russian_and_the_switch_is_remembered() {
    let server = TestServer::start().await;
    let cookie = reports_login(&server, "admin", ADMIN_PASSWORD).await;
    let page = |extra_cookie: Option<String>, accept: &'static str| {
        let mut c = cookie.clone();
        if let Some(x) = extra_cookie {
            c = format!("{c}; {x}");
        }
        server
            .client
            .get(server.url("/console"))
            .header("cookie", c)
            .header("accept-language", accept)
            .send()
    };
    let ukrainian = page(None, "uk-UA,uk;q=0.9")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ukrainian.contains("<html lang=\"ru\">") && ukrainian.contains("Консоль"));
    let german = page(None, "de-DE").await.unwrap().text().await.unwrap();
    assert!(german.contains("<html lang=\"en\">"));

    // The switch: a cookie for a year, back to the page; then it wins over the browser.
    let resp = server
        .client
        .get(server.url("/lang/ru?next=%2Fconsole%2Fkeys"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/console/keys");
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("vypusk_lang=ru;") && set.contains("Max-Age=31536000"),
        "{set}"
    );
    let chosen = page(Some("vypusk_lang=ru".into()), "en-US")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(chosen.contains("<html lang=\"ru\">"));
    // Unknown languages and foreign `next`s go nowhere.
    let resp = server
        .client
        .get(server.url("/lang/de"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = server
        .client
        .get(server.url("/lang/en?next=https%3A%2F%2Fevil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], "/reports");
}
