//! Licenses in the console (issue 13 item 1) over plain HTTP: search by key, customer or
//! ITN; create; edit a feature's expiry; revoke and restore; a CSV import with one bad line
//! (its number shown, nothing imported); the export read back by the import; roles without
//! `licenses` refused. Each outcome is checked through the vendor API.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_tests::*;

type Session = ConsoleSession;

async fn session(server: &TestServer, login: &str, password: &str) -> Session {
    console_session(server, login, password).await
}

async fn get(server: &TestServer, s: &Session, path: &str) -> (StatusCode, String) {
    let resp = server
        .client
        .get(server.url(path))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn post(server: &TestServer, s: &Session, path: &str, fields: &[(&str, &str)]) -> StatusCode {
    let mut all = vec![("csrf", s.csrf.as_str())];
    all.extend_from_slice(fields);
    server
        .client
        .post(server.url(path))
        .header("cookie", &s.cookie)
        .form(&all)
        .send()
        .await
        .unwrap()
        .status()
}

async fn license(server: &TestServer, key: &str) -> Value {
    let (status, body) = server
        .admin_json(Method::GET, &format!("/api/v1/licenses/{key}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn import(server: &TestServer, s: &Session, csv: &str) -> (StatusCode, String) {
    let form = reqwest::multipart::Form::new()
        .text("csrf", s.csrf.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("licenses.csv"),
        );
    let resp = server
        .client
        .post(server.url("/console/licenses/import"))
        .header("cookie", &s.cookie)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn licenses_are_searched_edited_revoked_imported_and_exported() {
    let server = TestServer::start().await;
    let s = session(&server, "admin", ADMIN_PASSWORD).await;

    // Create with two features, one with an end date.
    let status = post(
        &server,
        &s,
        "/console/licenses",
        &[
            ("key", "ROMA-0001"),
            ("customer", "ООО «Ромашка»"),
            ("itn", "7701234567"),
            ("beta", "on"),
            ("product", "85"),
            ("feature", "43"),
            ("until", "2027-12-31"),
            ("product", "85"),
            ("feature", "44"),
            ("until", ""),
            ("product", ""),
            ("feature", ""),
            ("until", ""),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let l = license(&server, "ROMA-0001").await;
    assert_eq!(l["customer"], "ООО «Ромашка»");
    assert_eq!(l["beta"], true);
    assert_eq!(
        l["features"][0]["active_until"], "2027-12-31T23:59:59Z",
        "{l}"
    );
    assert_eq!(l["features"][1]["active_until"], Value::Null, "{l}");
    server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": "OTHER-0002", "customer": "ИП Иванов", "itn": "500100732259"})),
        )
        .await;

    // Search by ITN finds one, by a part of the customer the other.
    let (_, page) = get(&server, &s, "/console/licenses?search=7701234567").await;
    assert!(
        page.contains("ROMA-0001") && !page.contains("OTHER-0002"),
        "{page}"
    );
    let (_, page) = get(
        &server,
        &s,
        "/console/licenses?search=%D0%98%D0%B2%D0%B0%D0%BD",
    )
    .await;
    assert!(
        page.contains("OTHER-0002") && !page.contains("ROMA-0001"),
        "{page}"
    );

    // Edit the first feature's expiry; the other fields stay.
    let status = post(
        &server,
        &s,
        "/console/licenses/ROMA-0001",
        &[
            ("customer", "ООО «Ромашка»"),
            ("itn", "7701234567"),
            ("beta", "on"),
            ("product", "85"),
            ("feature", "43"),
            ("until", "2028-06-30"),
            ("product", "85"),
            ("feature", "44"),
            ("until", ""),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let l = license(&server, "ROMA-0001").await;
    assert_eq!(
        l["features"][0]["active_until"], "2028-06-30T23:59:59Z",
        "{l}"
    );
    assert_eq!(l["features"].as_array().unwrap().len(), 2);
    // A bad number is refused in words, nothing changed.
    let status = post(
        &server,
        &s,
        "/console/licenses/ROMA-0001",
        &[("product", "eighty-five"), ("feature", "43"), ("until", "")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        license(&server, "ROMA-0001").await["features"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Revoke, restore.
    assert_eq!(
        post(
            &server,
            &s,
            "/console/licenses/ROMA-0001/revoked",
            &[("revoked", "1")]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(license(&server, "ROMA-0001").await["revoked"], true);
    assert_eq!(
        post(
            &server,
            &s,
            "/console/licenses/ROMA-0001/revoked",
            &[("revoked", "0")]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(license(&server, "ROMA-0001").await["revoked"], false);

    // An import with one bad line: its number shown, nothing imported.
    let (status, page) = import(
        &server,
        &s,
        "key,customer,itn,product,feature,active_until\n\
         NEW-0003,ООО «Новая»,7702000000,85,43,31.12.2030\n\
         NEW-0004,ООО «Плохая»,7703000000,85,x,\n",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("id=\"import-errors\""), "{page}");
    assert!(page.contains("line 3"), "{page}");
    let (status, _) = server
        .admin_json(Method::GET, "/api/v1/licenses/NEW-0003", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The export, read back by the import, changes nothing.
    let (status, csv) = get(&server, &s, "/console/licenses.csv").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        csv.starts_with("key,customer,itn,beta,revoked,product,feature,active_until"),
        "{csv}"
    );
    assert!(
        csv.contains("ROMA-0001,ООО «Ромашка»,7701234567,yes,no,85,43,2028-06-30T23:59:59Z"),
        "{csv}"
    );
    let before = license(&server, "ROMA-0001").await;
    let (status, page) = import(&server, &s, &csv).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Imported 2 licenses with 2 features."),
        "{page}"
    );
    let after = license(&server, "ROMA-0001").await;
    assert_eq!(after["features"], before["features"]);
    assert_eq!(after["customer"], before["customer"]);
    // The search narrows the export too.
    let (_, csv) = get(&server, &s, "/console/licenses.csv?search=OTHER").await;
    assert_eq!(csv.lines().count(), 2, "{csv}");
}

#[tokio::test]
async fn only_support_and_owners_reach_licenses() {
    let server = TestServer::start().await;
    for role in ["release", "viewer", "support"] {
        user_with_roles(&server, role, &[role], "long enough password").await;
        let s = session(&server, role, "long enough password").await;
        let allowed = role == "support";
        for path in [
            "/console/licenses",
            "/console/licenses/new",
            "/console/licenses.csv",
        ] {
            let (status, _) = get(&server, &s, path).await;
            assert_eq!(status == StatusCode::OK, allowed, "{role} {path}: {status}");
        }
        let (_, home) = get(&server, &s, "/console").await;
        assert_eq!(
            home.contains("href=\"/console/licenses\""),
            allowed,
            "{role}"
        );
        let status = post(&server, &s, "/console/licenses", &[("key", "BY-ROLE-1")]).await;
        assert_eq!(status == StatusCode::SEE_OTHER, allowed, "{role}: {status}");
    }
}
