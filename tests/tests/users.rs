//! Users and roles (issue 12, item 1) against the real `vypusk serve`: an owner makes a user
//! with a role and a one-time set-password token; the user can do what the role allows and no
//! more, and so can the user's API keys; disabling the user stops its password and keys at
//! once; the last owner stays an owner.

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use vypusk_tests::{
    ADMIN_PASSWORD, ServerOptions, TempDatabase, TestServer, send_json, vypusk_bin,
};

/// A user as the API answers it.
#[derive(Debug, Deserialize)]
struct User {
    id: i64,
    login: String,
    roles: Vec<String>,
    permissions: Vec<String>,
    disabled: bool,
    has_password: bool,
}

/// The answer to a user's creation.
#[derive(Debug, Deserialize)]
struct CreatedUser {
    #[serde(flatten)]
    user: User,
    set_password_token: String,
    set_password_expires_at: String,
}

#[derive(Debug, Deserialize)]
struct UserList {
    items: Vec<User>,
    total: u64,
}

#[derive(Debug, Deserialize)]
struct Key {
    id: i64,
    permissions: Vec<String>,
    user_id: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct CreatedKey {
    #[serde(flatten)]
    view: Key,
    key: String,
}

#[derive(Debug, Deserialize)]
struct KeyList {
    items: Vec<Key>,
    total: u64,
}

/// The vendor API's error shape.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiError {
    code: u16,
    message: String,
}

fn typed<T: serde::de::DeserializeOwned>(status: StatusCode, body: Value) -> T {
    serde_json::from_value(body.clone())
        .unwrap_or_else(|e| panic!("{status}: cannot read {body} as expected: {e}"))
}

/// Asserts an error answer of `expected` and returns it.
fn refused(status: StatusCode, body: Value, expected: StatusCode) -> ApiError {
    assert_eq!(status, expected, "{body}");
    let error: ApiError = typed(status, body);
    assert_eq!(error.code, expected.as_u16());
    error
}

enum As<'a> {
    Basic(&'a str, &'a str),
    Key(&'a str),
    Nobody,
}

async fn call(
    server: &TestServer,
    who: As<'_>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = server.client.request(method, server.url(path));
    req = match who {
        As::Basic(user, password) => req.basic_auth(user, Some(password)),
        As::Key(key) => req.bearer_auth(key),
        As::Nobody => req,
    };
    if let Some(body) = body {
        req = req.json(&body);
    }
    send_json(req).await
}

async fn create_user(server: &TestServer, login: &str, roles: &[&str]) -> CreatedUser {
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/users",
            Some(json!({"login": login, "roles": roles})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    typed(status, body)
}

async fn set_password(server: &TestServer, token: &str, password: &str) -> (StatusCode, Value) {
    call(
        server,
        As::Nobody,
        Method::POST,
        "/api/v1/users/set-password",
        Some(json!({"token": token, "password": password})),
    )
    .await
}

async fn patch_user(server: &TestServer, id: i64, body: Value) -> (StatusCode, Value) {
    server
        .admin_json(Method::PATCH, &format!("/api/v1/users/{id}"), Some(body))
        .await
}

const MARIA_PASSWORD: &str = "maria-support-password";

#[tokio::test]
async fn a_support_user_from_token_to_disabled() {
    support_user(TestServer::start().await).await;
}

#[tokio::test]
async fn the_last_owner_stays_an_owner() {
    last_owner(TestServer::start().await).await;
}

async fn on_postgres() -> (TestServer, TempDatabase) {
    let db = TempDatabase::create().await;
    let options = ServerOptions {
        database_url: Some(db.url()),
        ..Default::default()
    };
    (TestServer::start_with(options).await, db)
}

#[tokio::test]
async fn users_on_postgres() {
    let (server, _db) = on_postgres().await;
    support_user(server).await;
    let (server, _db) = on_postgres().await;
    last_owner(server).await;
}

/// A session of the statistics reports, logged in through the form.
async fn reports_session(server: &TestServer, user: &str, password: &str) -> String {
    vypusk_tests::reports_login(server, user, password).await
}

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

async fn support_user(server: TestServer) {
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": "ACME-0001", "customer": "ООО «Ромашка»"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The owner creates a support user: no password yet, a one-time token.
    let created = create_user(&server, "maria", &["support"]).await;
    assert_eq!(created.user.login, "maria");
    assert_eq!(created.user.roles, ["support"]);
    assert_eq!(created.user.permissions, ["licenses"]);
    assert!(!created.user.has_password && !created.user.disabled);
    assert!(created.set_password_token.len() >= 40);
    assert!(created.set_password_expires_at.ends_with('Z'));
    let maria = As::Basic("maria", MARIA_PASSWORD);
    let (status, body) = call(&server, maria, Method::GET, "/api/v1/licenses", None).await;
    refused(status, body, StatusCode::UNAUTHORIZED);

    // The token sets the password once; a short password does not use it up.
    let (status, body) = set_password(&server, &created.set_password_token, "short").await;
    let error = refused(status, body, StatusCode::BAD_REQUEST);
    assert!(error.message.contains("12 characters"), "{}", error.message);
    let (status, body) = set_password(&server, &created.set_password_token, MARIA_PASSWORD).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) =
        set_password(&server, &created.set_password_token, "someone-elses-pw").await;
    refused(status, body, StatusCode::BAD_REQUEST);
    let maria = || As::Basic("maria", MARIA_PASSWORD);
    let (status, body) = call(&server, maria(), Method::GET, "/api/v1/users/me", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let me: User = typed(status, body);
    assert_eq!((me.id, me.has_password), (created.user.id, true));

    // Support reads licenses, but neither publishes nor manages users.
    let (status, body) = call(&server, maria(), Method::GET, "/api/v1/licenses", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 1);
    let (status, body) = call(
        &server,
        maria(),
        Method::GET,
        "/api/v1/licenses/ACME-0001",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        &server,
        maria(),
        Method::POST,
        "/api/v1/distributions",
        Some(json!({"code": "MARIA", "name": "x"})),
    )
    .await;
    let error = refused(status, body, StatusCode::FORBIDDEN);
    assert!(error.message.contains("\"publish\""), "{}", error.message);
    for (method, body) in [
        (Method::GET, None),
        (
            Method::POST,
            Some(json!({"login": "eve", "roles": ["owner"]})),
        ),
    ] {
        let (status, body) = call(&server, maria(), method, "/api/v1/users", body).await;
        refused(status, body, StatusCode::FORBIDDEN);
    }
    let (status, body) = call(
        &server,
        maria(),
        Method::PATCH,
        &format!("/api/v1/users/{}", created.user.id),
        Some(json!({"roles": ["owner"]})),
    )
    .await;
    refused(status, body, StatusCode::FORBIDDEN);

    // Her API keys: never beyond her roles.
    let (status, body) = call(
        &server,
        maria(),
        Method::POST,
        "/api/v1/api-keys",
        Some(json!({"name": "maria-ci", "permissions": ["publish"]})),
    )
    .await;
    let error = refused(status, body, StatusCode::FORBIDDEN);
    assert!(error.message.contains("\"publish\""), "{}", error.message);
    let (status, body) = call(
        &server,
        maria(),
        Method::POST,
        "/api/v1/api-keys",
        Some(json!({"name": "maria-ci", "permissions": ["licenses"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key: CreatedKey = typed(status, body);
    assert_eq!(key.view.user_id, Some(created.user.id));
    assert_eq!(key.view.permissions, ["licenses"]);
    let (_, admin_key) = server.create_api_key(&["read"]).await;
    // She sees her own keys only; the owner sees every key.
    let (status, body) = call(&server, maria(), Method::GET, "/api/v1/api-keys", None).await;
    let mine: KeyList = typed(status, body);
    assert_eq!(mine.total, 1);
    assert_eq!(mine.items[0].id, key.view.id);
    let (status, body) = server
        .admin_json(Method::GET, "/api/v1/api-keys", None)
        .await;
    let all: KeyList = typed(status, body);
    assert_eq!(all.total, 2);
    let (status, body) = call(
        &server,
        As::Key(&key.key),
        Method::GET,
        "/api/v1/licenses",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A key cannot change a password.
    let (status, body) = call(
        &server,
        As::Key(&admin_key),
        Method::POST,
        "/api/v1/users/me/password",
        Some(json!({"current_password": ADMIN_PASSWORD, "new_password": "another-admin-pw"})),
    )
    .await;
    refused(status, body, StatusCode::FORBIDDEN);

    // Demoted to viewer: her key loses licenses at once, keeps read.
    let (status, body) = patch_user(&server, created.user.id, json!({"roles": ["viewer"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let demoted: User = typed(status, body);
    assert_eq!(demoted.permissions, ["read"]);
    let (status, body) = call(
        &server,
        As::Key(&key.key),
        Method::GET,
        "/api/v1/licenses",
        None,
    )
    .await;
    refused(status, body, StatusCode::FORBIDDEN);
    let (status, body) = call(
        &server,
        As::Key(&key.key),
        Method::GET,
        "/api/v1/distributions",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = patch_user(&server, created.user.id, json!({"roles": ["support"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Disabled: her password, her key and her reports session stop at once; enabled again,
    // they work.
    let session = reports_session(&server, "maria", MARIA_PASSWORD).await;
    assert_eq!(reports_status(&server, &session).await, StatusCode::OK);
    let (status, body) = patch_user(&server, created.user.id, json!({"disabled": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let disabled: User = typed(status, body);
    assert!(disabled.disabled);
    assert_eq!(disabled.roles, ["support"]);
    let (status, body) = call(&server, maria(), Method::GET, "/api/v1/licenses", None).await;
    refused(status, body, StatusCode::UNAUTHORIZED);
    let (status, body) = call(
        &server,
        As::Key(&key.key),
        Method::GET,
        "/api/v1/licenses",
        None,
    )
    .await;
    refused(status, body, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reports_status(&server, &session).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = patch_user(&server, created.user.id, json!({"disabled": false})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        &server,
        As::Key(&key.key),
        Method::GET,
        "/api/v1/licenses",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // She changes her own password: the old one stops, the new one works.
    let new_password = "maria-new-password";
    let (status, body) = call(
        &server,
        maria(),
        Method::POST,
        "/api/v1/users/me/password",
        Some(json!({"current_password": "not-her-password", "new_password": new_password})),
    )
    .await;
    refused(status, body, StatusCode::FORBIDDEN);
    let (status, body) = call(
        &server,
        maria(),
        Method::POST,
        "/api/v1/users/me/password",
        Some(json!({"current_password": MARIA_PASSWORD, "new_password": new_password})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = call(&server, maria(), Method::GET, "/api/v1/licenses", None).await;
    refused(status, body, StatusCode::UNAUTHORIZED);
    let (status, body) = call(
        &server,
        As::Basic("maria", new_password),
        Method::GET,
        "/api/v1/licenses",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn last_owner(server: TestServer) {
    // Upgraded data: `admin` is the first owner, and its keys are its own.
    let (key_id, admin_key) = server.create_api_key(&["admin"]).await;
    let (status, body) = server.admin_json(Method::GET, "/api/v1/users", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let users: UserList = typed(status, body);
    assert_eq!(users.total, 1);
    let admin = &users.items[0];
    assert_eq!(admin.login, "admin");
    assert_eq!(admin.roles, ["owner"]);
    assert_eq!(admin.permissions, ["admin"]);
    assert!(admin.has_password && !admin.disabled);
    let admin_id = admin.id;
    let (status, body) = server
        .admin_json(Method::GET, "/api/v1/api-keys", None)
        .await;
    let keys: KeyList = typed(status, body);
    assert_eq!(
        (keys.items[0].id, keys.items[0].user_id),
        (key_id, Some(admin_id))
    );

    // The only owner: neither disabled nor demoted, and still working.
    for patch in [json!({"disabled": true}), json!({"roles": ["viewer"]})] {
        let (status, body) = patch_user(&server, admin_id, patch).await;
        let error = refused(status, body, StatusCode::CONFLICT);
        assert!(
            error.message.contains("last enabled owner"),
            "{}",
            error.message
        );
    }
    let (status, body) = server
        .admin_json(Method::GET, &format!("/api/v1/users/{admin_id}"), None)
        .await;
    let unchanged: User = typed(status, body);
    assert_eq!(unchanged.roles, ["owner"]);
    assert!(!unchanged.disabled);
    // Bad edits: unknown fields, null, no roles, a taken login.
    for patch in [
        json!({"admin": true}),
        json!({"roles": null}),
        json!({"roles": []}),
        json!({"roles": ["root"]}),
    ] {
        let (status, body) = patch_user(&server, admin_id, patch).await;
        refused(status, body, StatusCode::BAD_REQUEST);
    }
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/users",
            Some(json!({"login": "admin", "roles": ["viewer"]})),
        )
        .await;
    refused(status, body, StatusCode::CONFLICT);
    let (status, body) = server
        .admin_json(Method::GET, "/api/v1/users/4242", None)
        .await;
    refused(status, body, StatusCode::NOT_FOUND);

    // A second owner: now the first may be disabled, and its password and key stop.
    let olga = create_user(&server, "olga", &["owner"]).await;
    let olga_password = "olga-owner-password";
    let (status, body) = set_password(&server, &olga.set_password_token, olga_password).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let olga_basic = || As::Basic("olga", olga_password);
    // No owner disables or demotes themself, even with another owner there.
    let (status, body) = patch_user(&server, admin_id, json!({"roles": ["release"]})).await;
    let error = refused(status, body, StatusCode::CONFLICT);
    assert!(error.message.contains("by themself"), "{}", error.message);
    let (status, body) = call(
        &server,
        olga_basic(),
        Method::PATCH,
        &format!("/api/v1/users/{admin_id}"),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .admin_json(Method::GET, "/api/v1/distributions", None)
        .await;
    refused(status, body, StatusCode::UNAUTHORIZED);
    let (status, body) = call(
        &server,
        As::Key(&admin_key),
        Method::GET,
        "/api/v1/distributions",
        None,
    )
    .await;
    refused(status, body, StatusCode::UNAUTHORIZED);
    // Olga is the last enabled owner now.
    let (status, body) = call(
        &server,
        olga_basic(),
        Method::PATCH,
        &format!("/api/v1/users/{}", olga.user.id),
        Some(json!({"roles": ["release"]})),
    )
    .await;
    let error = refused(status, body, StatusCode::CONFLICT);
    assert!(error.message.contains("owner role"), "{}", error.message);
    // Her token is spent.
    let (status, body) = set_password(&server, &olga.set_password_token, "a-third-password").await;
    refused(status, body, StatusCode::BAD_REQUEST);
    let (status, body) = set_password(&server, "vyst_not-a-token", "a-third-password").await;
    refused(status, body, StatusCode::BAD_REQUEST);
}

/// Each role's user, logged in with a password, against one route of each permission.
#[tokio::test]
async fn each_role_may_do_what_its_permission_allows() {
    let server = TestServer::start().await;
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": "ACME-0001"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // (role, may publish, may see licenses, may manage users)
    let roles = [
        ("viewer", false, false, false),
        ("release", true, false, false),
        ("support", false, true, false),
        ("owner", true, true, true),
    ];
    for (role, publish, licenses, users) in roles {
        let created = create_user(&server, &format!("{role}-user"), &[role]).await;
        let password = format!("{role}-password-long");
        let (status, body) = set_password(&server, &created.set_password_token, &password).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let login = format!("{role}-user");
        let who = || As::Basic(&login, &password);
        let expect = |allowed: bool, ok: StatusCode| {
            if allowed { ok } else { StatusCode::FORBIDDEN }
        };
        let (status, body) = call(&server, who(), Method::GET, "/api/v1/distributions", None).await;
        assert_eq!(status, StatusCode::OK, "{role}: {body}");
        let (status, body) = call(
            &server,
            who(),
            Method::POST,
            "/api/v1/distributions",
            Some(json!({"code": format!("D_{role}"), "name": "x"})),
        )
        .await;
        assert_eq!(
            status,
            expect(publish, StatusCode::CREATED),
            "{role}: {body}"
        );
        let (status, body) = call(&server, who(), Method::GET, "/api/v1/licenses", None).await;
        assert_eq!(status, expect(licenses, StatusCode::OK), "{role}: {body}");
        let (status, body) = call(&server, who(), Method::GET, "/api/v1/users", None).await;
        assert_eq!(status, expect(users, StatusCode::OK), "{role}: {body}");
        // A key with the role's own permission: yes; with `admin`: only an owner.
        let own = created.user.permissions[0].clone();
        for (permission, allowed) in [(own.as_str(), true), ("admin", users)] {
            let (status, body) = call(
                &server,
                who(),
                Method::POST,
                "/api/v1/api-keys",
                Some(json!({"name": role, "permissions": [permission]})),
            )
            .await;
            assert_eq!(
                status,
                expect(allowed, StatusCode::CREATED),
                "{role}: {body}"
            );
        }
    }
}

/// `vypusk api-key create` on a data directory no server has started on: the key belongs to
/// the first owner, `admin`, which gets its password when the server starts.
#[tokio::test]
async fn a_key_made_on_a_fresh_data_directory_belongs_to_the_first_owner() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(vypusk_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "api-key",
            "create",
            "--name",
            "first",
            "--permissions",
            "publish",
        ])
        .env_remove("VYPUSK_API_KEY")
        .env_remove("VYPUSK_DATABASE_URL")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let key = stdout.lines().last().unwrap().trim().to_owned();
    assert!(key.starts_with("vypk_"), "{stdout}");
    let server = TestServer::start_in(dir, ServerOptions::default()).await;
    let (status, body) = server
        .admin_json(Method::GET, "/api/v1/users/me", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let admin: User = typed(status, body);
    assert_eq!((admin.login.as_str(), admin.has_password), ("admin", true));
    let (status, body) = call(
        &server,
        As::Key(&key),
        Method::GET,
        "/api/v1/users/me",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let owner: User = typed(status, body);
    assert_eq!(owner.id, admin.id);
    let (status, body) = call(
        &server,
        As::Key(&key),
        Method::POST,
        "/api/v1/distributions",
        Some(json!({"code": "FIRST", "name": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
