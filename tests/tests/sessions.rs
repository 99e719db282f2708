//! Sessions of the browser pages (issue 12, item 2) against the real `vypusk serve`: the
//! login form sets an HttpOnly, SameSite cookie backed by the database, so a session made on
//! one instance opens `/reports` on another; the login and logout forms need their CSRF
//! token; browsers without credentials are sent to the login form while API clients keep the
//! Basic challenge; only local pages follow a login; disabling a user ends its sessions.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_tests::{
    ADMIN_PASSWORD, ServerOptions, TempDatabase, TestServer, reports_login, reports_login_csrf,
    send_json,
};

const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

async fn reports_status(server: &TestServer, cookie: &str) -> StatusCode {
    server
        .client
        .get(server.url("/reports"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// A login posted with `cookie_csrf` in the cookie and `form_csrf` in the form.
async fn post_login(
    server: &TestServer,
    cookie_csrf: Option<&str>,
    form_csrf: Option<&str>,
    next: &str,
) -> reqwest::Response {
    let mut form = vec![
        ("user", "admin"),
        ("password", ADMIN_PASSWORD),
        ("next", next),
    ];
    if let Some(t) = form_csrf {
        form.push(("csrf", t));
    }
    let mut req = server.client.post(server.url("/reports/login")).form(&form);
    if let Some(t) = cookie_csrf {
        req = req.header("cookie", format!("vypusk_csrf={t}"));
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn login_form_sets_a_session_cookie_and_csrf_guards_it() {
    let server = TestServer::start().await;

    // The form's token comes in an HttpOnly, SameSite=Strict cookie and the hidden field.
    let resp = server
        .client
        .get(server.url("/reports/login"))
        .send()
        .await
        .unwrap();
    let csrf_cookie = set_cookies(&resp)
        .into_iter()
        .find(|c| c.starts_with("vypusk_csrf="))
        .unwrap();
    assert!(csrf_cookie.contains("HttpOnly"), "{csrf_cookie}");
    assert!(csrf_cookie.contains("SameSite=Strict"), "{csrf_cookie}");

    // Without a token, without the cookie, or with a wrong token: 403, no session.
    let csrf = reports_login_csrf(&server).await;
    let wrong = "0".repeat(64);
    for (cookie, field) in [
        (None, None),
        (Some(csrf.as_str()), None),
        (None, Some(csrf.as_str())),
        (Some(csrf.as_str()), Some(wrong.as_str())),
        (Some(wrong.as_str()), Some(csrf.as_str())),
    ] {
        let resp = post_login(&server, cookie, field, "/reports").await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{cookie:?} {field:?}");
        assert!(
            !set_cookies(&resp)
                .iter()
                .any(|c| c.starts_with("vypusk_session=")),
            "{cookie:?} {field:?}"
        );
        assert!(resp.text().await.unwrap().contains("CSRF"));
    }

    // With it: a 303 to the page asked for and an HttpOnly, SameSite cookie for the site.
    let resp = post_login(
        &server,
        Some(&csrf),
        Some(&csrf),
        "/reports/distributions/X",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/reports/distributions/X");
    let cookie = set_cookies(&resp)
        .into_iter()
        .find(|c| c.starts_with("vypusk_session="))
        .unwrap();
    for part in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.split("; ").any(|p| p == part), "{part}: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    assert_eq!(reports_status(&server, &session).await, StatusCode::OK);
    assert_eq!(
        reports_status(&server, "vypusk_session=made-up").await,
        StatusCode::UNAUTHORIZED
    );

    // Only local report pages follow a login.
    for next in [
        "https://evil.example/",
        "//evil.example/",
        "/reports//evil.example",
        "/api/v1/users",
    ] {
        let resp = post_login(&server, Some(&csrf), Some(&csrf), next).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&resp), "/reports", "{next}");
    }
    let resp = server
        .client
        .get(server.url("/reports/login?next=https%3A%2F%2Fevil.example%2F"))
        .send()
        .await
        .unwrap();
    let body = resp.text().await.unwrap();
    assert!(!body.contains("evil.example"), "{body}");
}

#[tokio::test]
async fn browsers_go_to_the_login_form_and_api_clients_keep_basic() {
    let server = TestServer::start().await;
    let get = |path: &str, accept: &str| {
        server
            .client
            .get(server.url(path))
            .header("accept", accept)
            .send()
    };
    let resp = get("/reports", HTML).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/reports/login?next=%2Freports");
    assert!(resp.headers().get("www-authenticate").is_none());
    let resp = get("/reports/distributions/X?from=2026-11-01", HTML)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&resp),
        "/reports/login?next=%2Freports%2Fdistributions%2FX%3Ffrom%3D2026-11-01"
    );

    for accept in ["application/json", "*/*"] {
        let resp = get("/reports", accept).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{accept}");
        assert!(
            resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic"),
            "{accept}"
        );
    }

    // HTTP Basic and API keys keep working, from browsers too.
    let resp = server
        .client
        .get(server.url("/reports"))
        .header("accept", HTML)
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, key) = server.create_api_key(&["read"]).await;
    let resp = server
        .client
        .get(server.url("/reports"))
        .header("accept", HTML)
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // A wrong password is still a 401, not a loop through the login form.
    let resp = server
        .client
        .get(server.url("/reports"))
        .header("accept", HTML)
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// The logout form and its POST: without the session's token 403 and the session lives on;
/// with it, the session ends.
async fn logout(server: &TestServer, session: &str) {
    let resp = server
        .client
        .post(server.url("/reports/logout"))
        .header("cookie", session)
        .form(&[("csrf", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = server
        .client
        .post(server.url("/reports/logout"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(reports_status(server, session).await, StatusCode::OK);

    let page = server
        .client
        .get(server.url("/reports/logout"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let body = page.text().await.unwrap();
    let token = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF field: {body}"))
        .to_owned();
    let resp = server
        .client
        .post(server.url("/reports/logout"))
        .header("cookie", session)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/reports/login");
    assert!(
        set_cookies(&resp)
            .iter()
            .any(|c| c.starts_with("vypusk_session=;") && c.contains("Max-Age=0"))
    );
}

#[tokio::test]
async fn logout_needs_the_sessions_token() {
    let server = TestServer::start().await;
    let session = reports_login(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(reports_status(&server, &session).await, StatusCode::OK);
    logout(&server, &session).await;
    assert_eq!(
        reports_status(&server, &session).await,
        StatusCode::UNAUTHORIZED
    );
    // GET never logs out: without a session it shows the login form's way.
    let resp = server
        .client
        .get(server.url("/reports/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_session_works_on_every_instance_of_one_database() {
    let db = TempDatabase::create().await;
    let options = || ServerOptions {
        database_url: Some(db.url()),
        ..Default::default()
    };
    let a = TestServer::start_with(options()).await;
    let b = TestServer::start_with(options()).await;

    // The login form of one instance posts to the other (no per-process state).
    let csrf = reports_login_csrf(&a).await;
    let resp = post_login(&b, Some(&csrf), Some(&csrf), "/reports").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);

    let session = reports_login(&a, "admin", ADMIN_PASSWORD).await;
    assert_eq!(reports_status(&a, &session).await, StatusCode::OK);
    assert_eq!(reports_status(&b, &session).await, StatusCode::OK);
    // Logged out on B, it is gone on A.
    logout(&b, &session).await;
    assert_eq!(reports_status(&a, &session).await, StatusCode::UNAUTHORIZED);
    drop((a, b));
}

#[tokio::test]
async fn disabling_a_user_ends_its_sessions() {
    let server = TestServer::start().await;
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/users",
            Some(json!({"login": "vera", "roles": ["viewer"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().unwrap();
    let token = body["set_password_token"].as_str().unwrap();
    let password = "vera-password-1234";
    let (status, body) = send_json(
        server
            .client
            .post(server.url("/api/v1/users/set-password"))
            .json(&json!({"token": token, "password": password})),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");

    let first = reports_login(&server, "vera", password).await;
    let second = reports_login(&server, "vera", password).await;
    let admin = reports_login(&server, "admin", ADMIN_PASSWORD).await;
    for s in [&first, &second, &admin] {
        assert_eq!(reports_status(&server, s).await, StatusCode::OK);
    }
    let path = format!("/api/v1/users/{id}");
    let patch = |body: Value| server.admin_json(Method::PATCH, &path, Some(body));
    let (status, body) = patch(json!({"disabled": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for s in [&first, &second] {
        assert_eq!(reports_status(&server, s).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(reports_status(&server, &admin).await, StatusCode::OK);
    // Ended, not just refused: enabled again, the user logs in anew.
    let (status, body) = patch(json!({"disabled": false})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        reports_status(&server, &first).await,
        StatusCode::UNAUTHORIZED
    );
    let again = reports_login(&server, "vera", password).await;
    assert_eq!(reports_status(&server, &again).await, StatusCode::OK);
}
