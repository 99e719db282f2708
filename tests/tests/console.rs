//! The vendor console over plain HTTP (the browser flows are in `console_browser.rs`): the
//! role matrix of console pages and vendor-API routes, CSRF refusals that change nothing, the
//! upload form without scripts, and a disabled user's session and key stopping at once.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_tests::*;

const PASSWORD: &str = "correct horse battery";

/// A user with `roles` and [`PASSWORD`]; its login.
async fn user_with(server: &TestServer, login: &str, roles: &[&str]) -> String {
    user_with_roles(server, login, roles, PASSWORD).await;
    login.to_owned()
}

type Session = ConsoleSession;

async fn get_page(server: &TestServer, s: &Session, path: &str) -> (StatusCode, String) {
    let resp = server
        .client
        .get(server.url(path))
        .header("cookie", &s.cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn post_form(
    server: &TestServer,
    s: &Session,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    server
        .client
        .post(server.url(path))
        .header("cookie", &s.cookie)
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// A distribution with a draft release (id) and a published one (id).
async fn seed(server: &TestServer) -> (i64, i64) {
    server.create_distribution("CONSOLE_CRM", json!({})).await;
    let published = server
        .create_release(
            "CONSOLE_CRM",
            json!({"version": "1.0.0.1", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("crm.cfe", b"one")],
            true,
        )
        .await;
    let draft = server
        .create_release(
            "CONSOLE_CRM",
            json!({"version": "1.0.0.2", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[],
            false,
        )
        .await;
    (
        draft["id"].as_i64().unwrap(),
        published["id"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn role_matrix_of_console_pages_and_api_routes() {
    let server = TestServer::start().await;
    let (draft, _) = seed(&server).await;
    let roles = ["owner", "release", "support", "viewer"];
    for role in roles {
        let login = user_with(&server, &format!("u-{role}"), &[role]).await;
        let s = console_session(&server, &login, PASSWORD).await;
        let owner = role == "owner";
        let publisher = owner || role == "release";
        let licenses = owner || role == "support";
        let expect = |allowed: bool| {
            if allowed {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            }
        };
        let pages: Vec<(String, bool)> = vec![
            ("/console".into(), true),
            ("/console/distributions".into(), true),
            ("/console/distributions/CONSOLE_CRM".into(), true),
            ("/console/distributions/new".into(), publisher),
            (
                "/console/distributions/CONSOLE_CRM/releases/new".into(),
                publisher,
            ),
            (format!("/console/releases/{draft}"), true),
            (format!("/console/releases/{draft}/publish"), publisher),
            ("/console/keys".into(), true),
            ("/console/account".into(), true),
            ("/console/users".into(), owner),
            ("/console/audit".into(), owner),
            ("/console/audit.csv".into(), owner),
        ];
        for (path, allowed) in &pages {
            let (status, body) = get_page(&server, &s, path).await;
            assert_eq!(status, expect(*allowed), "{role} GET {path}: {body}");
        }
        // Who sees the release forms: only those who may use them.
        let (_, release_page) = get_page(&server, &s, &format!("/console/releases/{draft}")).await;
        assert_eq!(
            release_page.contains("id=\"release-form\""),
            publisher,
            "{role}"
        );
        assert_eq!(
            release_page.contains("id=\"upload-form\""),
            publisher,
            "{role}"
        );
        let (_, list) = get_page(&server, &s, "/console/distributions").await;
        assert_eq!(
            list.contains("id=\"new-distribution\""),
            publisher,
            "{role}"
        );
        let (_, home) = get_page(&server, &s, "/console").await;
        assert_eq!(home.contains("href=\"/console/users\""), owner, "{role}");

        // A refused console action changes nothing.
        let resp = post_form(
            &server,
            &s,
            "/console/distributions",
            &[
                ("csrf", &s.csrf),
                ("code", &format!("BY_{role}")),
                ("name", "x"),
                ("version_scheme", "1c"),
            ],
        )
        .await;
        let created = resp.status() == StatusCode::SEE_OTHER;
        assert_eq!(created, publisher, "{role}: {}", resp.status());
        let (status, _) = server
            .admin_json(
                Method::GET,
                &format!("/api/v1/distributions/BY_{role}"),
                None,
            )
            .await;
        assert_eq!(status == StatusCode::OK, publisher, "{role}");

        // The same rules on the vendor API, with the user's password.
        let api = |method: Method, path: &str| {
            server
                .client
                .request(method, server.url(path))
                .basic_auth(&login, Some(PASSWORD))
        };
        let status = |r: reqwest::RequestBuilder| async move { r.send().await.unwrap().status() };
        assert_eq!(
            status(api(Method::GET, "/api/v1/distributions")).await,
            StatusCode::OK
        );
        assert_eq!(
            status(api(Method::GET, "/api/v1/licenses")).await,
            expect(licenses),
            "{role} licenses"
        );
        assert_eq!(
            status(api(Method::GET, "/api/v1/users")).await,
            expect(owner),
            "{role} users"
        );
        assert_eq!(
            status(api(Method::GET, "/api/v1/audit")).await,
            expect(owner),
            "{role} audit"
        );
        assert_eq!(
            status(api(Method::GET, "/api/v1/products")).await,
            StatusCode::OK,
            "{role} products"
        );
        let publish = status(api(
            Method::POST,
            &format!("/api/v1/releases/{draft}/publish"),
        ))
        .await;
        if publisher {
            // Allowed; the draft is then published by the first publisher, so later ones
            // get 409 (already published), never 403.
            assert_ne!(publish, StatusCode::FORBIDDEN, "{role} publish");
        } else {
            assert_eq!(publish, StatusCode::FORBIDDEN, "{role} publish");
        }
    }
}

#[tokio::test]
async fn console_forms_without_their_csrf_token_change_nothing() {
    let server = TestServer::start().await;
    let (draft, _) = seed(&server).await;
    let s = console_session(&server, "admin", ADMIN_PASSWORD).await;

    // No token, a wrong token: 403, and the distribution does not exist.
    for fields in [
        vec![("code", "NO_CSRF"), ("name", "x")],
        vec![
            ("csrf", "0".repeat(64).leak() as &str),
            ("code", "NO_CSRF"),
            ("name", "x"),
        ],
    ] {
        let resp = post_form(&server, &s, "/console/distributions", &fields).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    let (status, _) = server
        .admin_json(Method::GET, "/api/v1/distributions/NO_CSRF", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Another session's token is not this session's.
    user_with(&server, "other-owner", &["owner"]).await;
    let other = console_session(&server, "other-owner", PASSWORD).await;
    let resp = post_form(
        &server,
        &s,
        &format!("/console/releases/{draft}/publish"),
        &[("csrf", &other.csrf)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (_, release) = server
        .admin_json(Method::GET, &format!("/api/v1/releases/{draft}"), None)
        .await;
    assert_eq!(release["status"], "draft");

    // The upload script's PUT without X-CSRF-Token: 403 before a byte is stored.
    let resp = server
        .client
        .put(server.url(&format!("/console/releases/{draft}/files/a.cfe")))
        .header("cookie", &s.cookie)
        .body(vec![1u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // The multipart form whose first part is not the token: 403.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"bytes".to_vec()).file_name("b.cfe"),
    );
    let resp = server
        .client
        .post(server.url(&format!("/console/releases/{draft}/files")))
        .header("cookie", &s.cookie)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (_, release) = server
        .admin_json(Method::GET, &format!("/api/v1/releases/{draft}"), None)
        .await;
    assert_eq!(release["files"].as_array().unwrap().len(), 0, "{release}");

    // Logging out is a form too.
    let resp = post_form(&server, &s, "/reports/logout", &[]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (status, _) = get_page(&server, &s, "/console").await;
    assert_eq!(status, StatusCode::OK, "still logged in");
}

#[tokio::test]
async fn uploads_without_scripts_and_with_the_upload_script() {
    let server = TestServer::start().await;
    let (draft, _) = seed(&server).await;
    let s = console_session(&server, "admin", ADMIN_PASSWORD).await;

    // Without scripts: multipart, the token first, then the files.
    let one = test_bytes(300_000, 1);
    let form = reqwest::multipart::Form::new()
        .text("csrf", s.csrf.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(one.clone()).file_name("Обработка.epf"),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"readme".to_vec()).file_name("readme.txt"),
        );
    let resp = server
        .client
        .post(server.url(&format!("/console/releases/{draft}/files")))
        .header("cookie", &s.cookie)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    // The script's way: raw PUT with the session's token in a header.
    let two = test_bytes(2_000_000, 2);
    let resp = server
        .client
        .put(server.url(&format!("/console/releases/{draft}/files/crm.cfe")))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .body(two.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let stored: Value = resp.json().await.unwrap();
    assert_eq!(stored["md5"], md5_hex(&two));

    // Choose the main file, then check everything through the vendor API.
    let resp = post_form(
        &server,
        &s,
        &format!("/console/releases/{draft}/main"),
        &[("csrf", &s.csrf), ("name", "crm.cfe")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, release) = server
        .admin_json(Method::GET, &format!("/api/v1/releases/{draft}"), None)
        .await;
    let files = release["files"].as_array().unwrap();
    let by_name = |n: &str| files.iter().find(|f| f["name"] == n).cloned().unwrap();
    assert_eq!(by_name("Обработка.epf")["md5"], md5_hex(&one));
    assert_eq!(by_name("Обработка.epf")["main"], false);
    assert_eq!(by_name("crm.cfe")["main"], true);
    assert_eq!(by_name("readme.txt")["size"], 6);

    // A bad file name is refused in words, nothing stored.
    let resp = server
        .client
        .put(server.url(&format!("/console/releases/{draft}/files/..")))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
}

#[tokio::test]
async fn a_disabled_user_loses_session_and_keys_at_once() {
    let server = TestServer::start().await;
    seed(&server).await;
    let login = user_with(&server, "maria", &["support"]).await;
    let s = console_session(&server, &login, PASSWORD).await;
    // Maria makes herself a key in the console; a key cannot exceed her roles.
    let resp = post_form(
        &server,
        &s,
        "/console/keys",
        &[
            ("csrf", &s.csrf),
            ("name", "maria's script"),
            ("permission", "publish"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = post_form(
        &server,
        &s,
        "/console/keys",
        &[
            ("csrf", &s.csrf),
            ("name", "maria's script"),
            ("permission", "licenses"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let page = resp.text().await.unwrap();
    let key = page
        .split("id=\"new-key\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the new key, shown once")
        .to_owned();
    let with_key = |path: &str| {
        server
            .client
            .get(server.url(path))
            .header("x-api-key", key.clone())
            .send()
    };
    assert_eq!(
        with_key("/api/v1/licenses").await.unwrap().status(),
        StatusCode::OK
    );

    // An owner disables her in the console.
    let owner = console_session(&server, "admin", ADMIN_PASSWORD).await;
    let (_, users) = server.admin_json(Method::GET, "/api/v1/users", None).await;
    let id = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "maria")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let resp = post_form(
        &server,
        &owner,
        &format!("/console/users/{id}"),
        &[
            ("csrf", &owner.csrf),
            ("role", "support"),
            ("disabled", "on"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);

    // Her session is gone (sent to the login form) and her key is refused.
    let (status, _) = get_page(&server, &s, "/console").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        with_key("/api/v1/licenses").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // The owner cannot disable the last owner (themself) either.
    let (_, me) = server
        .admin_json(Method::GET, "/api/v1/users/me", None)
        .await;
    let resp = post_form(
        &server,
        &owner,
        &format!("/console/users/{}", me["id"]),
        &[("csrf", &owner.csrf), ("role", "owner"), ("disabled", "on")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_one_time_link_sets_a_password_once() {
    let server = TestServer::start().await;
    let (status, created) = server
        .admin_json(
            Method::POST,
            "/api/v1/users",
            Some(json!({"login": "ivan", "roles": ["viewer"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = created["set_password_token"].as_str().unwrap().to_owned();
    let page = server
        .client
        .get(server.url(&format!("/console/set-password?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let set = |password: &'static str, repeat: &'static str| {
        server
            .client
            .post(server.url("/console/set-password"))
            .form(&[
                ("token", token.as_str()),
                ("password", password),
                ("repeat", repeat),
            ])
            .send()
    };
    assert_eq!(
        set("long enough pass", "another one!!")
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        set("short", "short").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let resp = set("long enough pass", "long enough pass").await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        set("long enough pass", "long enough pass")
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST,
        "used once"
    );
    let s = console_session(&server, "ivan", "long enough pass").await;
    assert!(!s.csrf.is_empty());
}
