//! End-to-end tests of the vendor API (SPEC §5) against the real `vypusk serve`.

use std::path::Path;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_tests::{
    ServerOptions, TestServer, md5_hex, send_json, sha256_hex, test_bytes, vypusk_bin,
};

/// Asserts the `{Code, Text, Message, Exception}` shape and returns the Message.
fn assert_error(status: StatusCode, body: &Value, expected: StatusCode) -> String {
    assert_eq!(status, expected, "body: {body}");
    assert_eq!(body["Code"], json!(expected.as_u16()), "{body}");
    assert!(body["Text"].is_string(), "{body}");
    assert!(body["Exception"].is_string(), "{body}");
    let message = body["Message"].as_str().expect("Message").to_owned();
    assert!(!message.is_empty());
    assert!(
        !message.to_lowercase().contains("sqlx") && !message.contains("SQLITE"),
        "internals leaked: {message}"
    );
    message
}

async fn new_release(server: &TestServer, code: &str, version: &str) -> i64 {
    let (status, body) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/distributions/{code}/releases"),
            Some(json!({"version": version})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_i64().unwrap()
}

async fn put_file(
    server: &TestServer,
    id: i64,
    name: &str,
    bytes: &[u8],
    headers: &[(&str, String)],
) -> (StatusCode, Value) {
    let mut req = server
        .admin(Method::PUT, &format!("/api/v1/releases/{id}/files/{name}"))
        .body(bytes.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    send_json(req).await
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn blobs(server: &TestServer) -> Vec<std::path::PathBuf> {
    files_under(&server.data_dir.path().join("objects").join("blobs"))
}

/// A server that deletes unreferenced bytes at its next sweep (grace period 0, a sweep every
/// 50 ms), for the tests that count stored blobs.
async fn start_reclaiming() -> TestServer {
    TestServer::start_with(ServerOptions {
        env: vec![
            ("VYPUSK_BLOB_GRACE_SECS".into(), "0".into()),
            ("VYPUSK_BLOB_SWEEP_INTERVAL_SECS".into(), "0.05".into()),
        ],
        ..Default::default()
    })
    .await
}

/// The stored blobs once the sweeper had time to remove the unreferenced ones: waits (at most
/// 10 s) until `expected` are left.
async fn blobs_after_sweep(server: &TestServer, expected: usize) -> Vec<std::path::PathBuf> {
    for _ in 0..400 {
        let left = blobs(server);
        if left.len() == expected {
            return left;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    blobs(server)
}

#[tokio::test]
async fn auth_basic_api_keys_and_permissions() {
    let server = TestServer::start().await;
    // No credentials: 401 in the error shape, with a Basic challenge.
    let resp = server
        .client
        .get(server.url("/api/v1/distributions"))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("www-authenticate"));
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    assert_eq!(body["Exception"], "Unauthorized");
    // Wrong password.
    let (status, body) = send_json(
        server
            .client
            .get(server.url("/api/v1/distributions"))
            .basic_auth("admin", Some("wrong")),
    )
    .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    // Unknown key.
    let (status, body) = send_json(
        server
            .client
            .get(server.url("/api/v1/distributions"))
            .bearer_auth("vypk_nope"),
    )
    .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);

    // API keys: create (shown once), list (never shown again).
    let (reader_id, reader) = server.create_api_key(&["read"]).await;
    let (_, publisher) = server.create_api_key(&["publish"]).await;
    let (status, list) = server
        .admin_json(Method::GET, "/api/v1/api-keys", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 2);
    let text = list.to_string();
    assert!(
        !text.contains(&reader) && !text.contains("key_hash"),
        "{text}"
    );
    assert_eq!(list["items"][0]["permissions"], json!(["read"]));
    assert_eq!(list["items"][0]["prefix"].as_str().unwrap(), &reader[..12]);

    // Bearer and x-api-key both work for reading.
    let (status, _) = send_json(
        server
            .client
            .get(server.url("/api/v1/distributions"))
            .bearer_auth(&reader),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send_json(
        server
            .client
            .get(server.url("/api/v1/distributions"))
            .header("x-api-key", &reader),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A read key cannot write: 403.
    let (status, body) = send_json(
        server
            .client
            .post(server.url("/api/v1/distributions"))
            .bearer_auth(&reader)
            .json(&json!({"code": "X1", "name": "x"})),
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    // A publish key can write distributions but not licenses or keys.
    let (status, body) = send_json(
        server
            .client
            .post(server.url("/api/v1/distributions"))
            .header("x-api-key", &publisher)
            .json(&json!({"code": "X1", "name": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = send_json(
        server
            .client
            .post(server.url("/api/v1/licenses"))
            .bearer_auth(&publisher)
            .json(&json!({"key": "ABCD-1234"})),
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = send_json(
        server
            .client
            .get(server.url("/api/v1/api-keys"))
            .bearer_auth(&publisher),
    )
    .await;
    assert_error(status, &body, StatusCode::FORBIDDEN);

    // Bad permission names and empty lists are 400.
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "x", "permissions": ["root"]})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "x", "permissions": []})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    // Revoke: the key stops working at once.
    let (status, _) = server
        .admin_json(
            Method::DELETE,
            &format!("/api/v1/api-keys/{reader_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send_json(
        server
            .client
            .get(server.url("/api/v1/distributions"))
            .bearer_auth(&reader),
    )
    .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = server
        .admin_json(
            Method::DELETE,
            &format!("/api/v1/api-keys/{reader_id}"),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn distribution_crud_and_bad_input() {
    let server = start_reclaiming().await;
    let created = server
        .create_distribution(
            "PT40_UT_CRM3",
            json!({"lic_product_id": 10, "lic_feature_id": 20}),
        )
        .await;
    assert_eq!(created["code"], "PT40_UT_CRM3");
    assert_eq!(created["version_scheme"], "1c");
    assert_eq!(created["hide_unlicensed"], false);
    assert_eq!(created["lic_product_id"], 10);

    // Duplicate code.
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/distributions",
            Some(json!({"code": "PT40_UT_CRM3", "name": "again"})),
        )
        .await;
    let msg = assert_error(status, &body, StatusCode::CONFLICT);
    assert!(msg.contains("PT40_UT_CRM3"), "{msg}");
    // Bad code, half a license gate, unknown scheme, empty name.
    for bad in [
        json!({"code": "bad code", "name": "x"}),
        json!({"code": "Тип", "name": "x"}),
        json!({"code": "x".repeat(65), "name": "x"}),
        json!({"code": "OK1", "name": "x", "lic_product_id": 1}),
        json!({"code": "OK1", "name": "x", "version_scheme": "calver"}),
        json!({"code": "OK1", "name": "  "}),
        json!({"name": "no code"}),
        // Wrong types and unknown fields.
        json!({"code": "OK1", "name": "x", "published": "maybe"}),
        json!({"code": 5, "name": "x"}),
        json!({"code": "OK1", "name": "x", "publshed": true}),
    ] {
        let (status, body) = server
            .admin_json(Method::POST, "/api/v1/distributions", Some(bad.clone()))
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
        assert_eq!(body["Exception"], "BadRequest", "{bad}");
    }
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/distributions",
            Some(json!({"code": "OK1", "name": "x", "publshed": true})),
        )
        .await;
    let msg = assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(msg.contains("publshed"), "{msg}");
    // Malformed JSON.
    let (status, body) = send_json(
        server
            .admin(Method::POST, "/api/v1/distributions")
            .header("content-type", "application/json")
            .body("{\"code\": \"A\", "),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    // Not JSON at all.
    let (status, body) = send_json(
        server
            .admin(Method::POST, "/api/v1/distributions")
            .header("content-type", "text/plain")
            .body("code=A"),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    // Body above the 1 MiB JSON limit.
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/distributions",
            Some(json!({"code": "BIG", "name": "x", "description": "x".repeat(1_100_000)})),
        )
        .await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);

    // Read, list, update.
    let (status, got) = server
        .admin_json(Method::GET, "/api/v1/distributions/PT40_UT_CRM3", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);
    let (status, body) = server
        .admin_json(Method::GET, "/api/v1/distributions/NOPE", None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    server.create_distribution("FREE1", json!({})).await;
    let (status, list) = server
        .admin_json(Method::GET, "/api/v1/distributions?sort=-code", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 2);
    assert_eq!(list["limit"], 100);
    assert_eq!(list["offset"], 0);
    assert_eq!(list["items"][0]["code"], "PT40_UT_CRM3");
    let (status, updated) = server
        .admin_json(
            Method::PUT,
            "/api/v1/distributions/PT40_UT_CRM3",
            Some(json!({"name": "CRM", "label": "MIKO", "hide_unlicensed": true, "version_scheme": "semver"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "CRM");
    assert_eq!(updated["hide_unlicensed"], true);
    assert_eq!(
        updated["lic_product_id"], 10,
        "PUT changes only the fields given"
    );
    assert_eq!(updated["description"], "Test distribution");
    assert_eq!(updated["version_scheme"], "semver");
    let (status, body) = server
        .admin_json(
            Method::PUT,
            "/api/v1/distributions/PT40_UT_CRM3",
            Some(json!({"code": "OTHER", "name": "CRM"})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    // The scheme is fixed once releases exist.
    new_release(&server, "PT40_UT_CRM3", "1.0.0").await;
    let (status, body) = server
        .admin_json(
            Method::PUT,
            "/api/v1/distributions/PT40_UT_CRM3",
            Some(json!({"name": "CRM", "version_scheme": "1c"})),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT);

    // DELETE: refused with a published release, allowed once it is yanked; cascades.
    let published = server
        .create_release(
            "FREE1",
            json!({"version": "1.0", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("a.zip", b"aaa")],
            true,
        )
        .await;
    let draft = server
        .create_release(
            "FREE1",
            json!({"version": "2.0"}),
            &[("b.zip", b"bbb")],
            false,
        )
        .await;
    let (status, body) = server
        .admin_json(Method::DELETE, "/api/v1/distributions/FREE1", None)
        .await;
    assert_error(status, &body, StatusCode::CONFLICT);
    let (status, _) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/releases/{}/yank", published["id"]),
            Some(json!({"reason": "broken"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(blobs(&server).len(), 2);
    let (status, _) = server
        .admin_json(Method::DELETE, "/api/v1/distributions/FREE1", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server
        .admin_json(
            Method::GET,
            &format!("/api/v1/releases/{}", draft["id"]),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let left = blobs_after_sweep(&server, 0).await;
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn release_lifecycle() {
    let server = start_reclaiming().await;
    server.create_distribution("LIFE", json!({})).await;
    let (status, created) = server
        .admin_json(
            Method::POST,
            "/api/v1/distributions/LIFE/releases",
            Some(json!({
                "version": "4.0",
                "changelog": "* first",
                "compatibility": [
                    {"conf": "УправлениеТорговлей", "min_1c_version": "11.4.11.55"},
                    {"conf": "*", "min_1c_version": "0", "max_1c_version": "99"}
                ],
                "metadata": {"extension_hash": "abc"}
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "draft");
    assert_eq!(created["distribution"], "LIFE");
    assert_eq!(created["version"], "4.0");
    assert_eq!(created["files"], json!([]));
    assert_eq!(created["published_at"], Value::Null);
    assert_eq!(created["prerelease"], false);
    assert_eq!(created["metadata"], json!({"extension_hash": "abc"}));
    assert_eq!(
        created["compatibility"],
        json!([
            {"conf": "УправлениеТорговлей", "min_1c_version": "11.4.11.55"},
            {"conf": "*", "min_1c_version": "0", "max_1c_version": "99"}
        ])
    );
    let id = created["id"].as_i64().unwrap();

    // Equal versions are duplicates; invalid versions and compat entries are 400.
    for dup in ["4.0", "4.0.0.0", "4"] {
        let (status, body) = server
            .admin_json(
                Method::POST,
                "/api/v1/distributions/LIFE/releases",
                Some(json!({"version": dup})),
            )
            .await;
        assert_error(status, &body, StatusCode::CONFLICT);
    }
    for bad in [
        json!({"version": "v4.1"}),
        json!({"version": "4..1"}),
        json!({"version": ""}),
        json!({"version": "1.2.3.4.5.6.7.8.9"}),
        json!({"version": "4.1", "compatibility": [{"conf": "", "min_1c_version": "1"}]}),
        json!({"version": "4.1", "compatibility": [{"conf": "УТ", "min_1c_version": "11.x"}]}),
        json!({"version": "4.1", "compatibility": [{"conf": "УТ", "min_1c_version": "2", "max_1c_version": "1"}]}),
        json!({"version": "4.1", "metadata": {"k": 1}}),
        json!({"version": "4.1", "status": "published"}),
    ] {
        let (status, body) = server
            .admin_json(
                Method::POST,
                "/api/v1/distributions/LIFE/releases",
                Some(bad.clone()),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/distributions/LIFE/releases",
            Some(json!({"version": "4.1", "compatibility": [{"conf": "УТ", "min_1c_version": "11.x"}]})),
        )
        .await;
    let msg = assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(msg.contains("compatibility[0].min_1c_version"), "{msg}");
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/distributions/NOPE/releases",
            Some(json!({"version": "1"})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = server
        .admin_json(Method::GET, "/api/v1/releases/abc", None)
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = server
        .admin_json(Method::GET, "/api/v1/releases/999999", None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    // Draft edits: version and prerelease may change.
    let (status, edited) = server
        .admin_json(
            Method::PUT,
            &format!("/api/v1/releases/{id}"),
            Some(json!({"version": "4.0.1", "prerelease": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["version"], "4.0.1");
    assert_eq!(edited["prerelease"], true);
    assert_eq!(edited["changelog"], "* first", "fields left out stay");

    // No publish without files.
    let (status, body) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/releases/{id}/publish"),
            None,
        )
        .await;
    let msg = assert_error(status, &body, StatusCode::CONFLICT);
    assert!(msg.contains("at least one file"), "{msg}");

    let (status, file) = put_file(&server, id, "crm.cfe", b"bytes of crm", &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(file["name"], "crm.cfe");
    assert_eq!(file["size"], 12);
    assert_eq!(file["md5"], md5_hex(b"bytes of crm"));
    assert_eq!(file["sha256"], sha256_hex(b"bytes of crm"));
    assert_eq!(file["main"], true, "the first file is main");

    let (status, published) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/releases/{id}/publish"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{published}");
    assert_eq!(published["status"], "published");
    assert!(published["published_at"].is_string());
    assert_eq!(published["files"][0]["name"], "crm.cfe");

    // Published: files and version are frozen; changelog, compatibility, metadata are not.
    let (status, body) = put_file(&server, id, "other.zip", b"x", &[]).await;
    assert_error(status, &body, StatusCode::CONFLICT);
    let (status, body) = put_file(&server, id, "crm.cfe", b"changed", &[]).await;
    assert_error(status, &body, StatusCode::CONFLICT);
    let (status, body) = server
        .admin_json(
            Method::DELETE,
            &format!("/api/v1/releases/{id}/files/crm.cfe"),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT);
    let (status, body) = server
        .admin_json(
            Method::PUT,
            &format!("/api/v1/releases/{id}"),
            Some(json!({"version": "4.0.2"})),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT);
    let (status, body) = server
        .admin_json(
            Method::PUT,
            &format!("/api/v1/releases/{id}"),
            Some(json!({"prerelease": false})),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT);
    let (status, edited) = server
        .admin_json(
            Method::PUT,
            &format!("/api/v1/releases/{id}"),
            Some(json!({
                "changelog": "* fixed",
                "compatibility": [{"conf": "БП", "min_1c_version": "3.0"}],
                "metadata": {},
                "version": "4.0.1"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["changelog"], "* fixed");
    assert_eq!(edited["metadata"], json!({}));
    assert_eq!(edited["compatibility"][0]["conf"], "БП");
    let (status, body) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/releases/{id}/publish"),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT);
    let (status, body) = server
        .admin_json(Method::DELETE, &format!("/api/v1/releases/{id}"), None)
        .await;
    assert_error(status, &body, StatusCode::CONFLICT);

    // Yank: once; never back.
    let (status, yanked) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/releases/{id}/yank"),
            Some(json!({"reason": "data loss"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{yanked}");
    assert_eq!(yanked["status"], "yanked");
    assert_eq!(yanked["yank_reason"], "data loss");
    for path in ["publish", "yank"] {
        let (status, body) = server
            .admin_json(
                Method::POST,
                &format!("/api/v1/releases/{id}/{path}"),
                Some(json!({"reason": "again"})),
            )
            .await;
        assert_error(status, &body, StatusCode::CONFLICT);
    }
    let (status, body) = server
        .admin_json(Method::DELETE, &format!("/api/v1/releases/{id}"), None)
        .await;
    assert_error(status, &body, StatusCode::CONFLICT);

    // A draft can't be yanked but can be deleted, with its files.
    let draft = new_release(&server, "LIFE", "5.0").await;
    let (status, body) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/releases/{draft}/yank"),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT);
    let (status, _) = put_file(&server, draft, "only-here.zip", b"unique bytes", &[]).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = put_file(&server, draft, "same.cfe", b"bytes of crm", &[]).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(blobs(&server).len(), 2, "equal bytes are stored once");
    let (status, _) = server
        .admin_json(Method::DELETE, &format!("/api/v1/releases/{draft}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The blob shared with the yanked release stays; the other goes.
    let left = blobs_after_sweep(&server, 1).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].ends_with(sha256_hex(b"bytes of crm")));

    // Lists, with filters and paging.
    new_release(&server, "LIFE", "6.0").await;
    let (status, list) = server
        .admin_json(Method::GET, "/api/v1/distributions/LIFE/releases", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"][0]["version"], "6.0", "newest first");
    let (_, list) = server
        .admin_json(
            Method::GET,
            "/api/v1/distributions/LIFE/releases?status=yanked",
            None,
        )
        .await;
    assert_eq!(list["total"], 1);
    let (_, list) = server
        .admin_json(
            Method::GET,
            "/api/v1/distributions/LIFE/releases?version=6.0.0",
            None,
        )
        .await;
    assert_eq!(list["items"][0]["version"], "6.0");
    for bad in [
        "status=gone",
        "version=x.y",
        "limit=0",
        "limit=1001",
        "sort=colour",
        "bogus=1",
    ] {
        let (status, body) = server
            .admin_json(
                Method::GET,
                &format!("/api/v1/distributions/LIFE/releases?{bad}"),
                None,
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn semver_releases_mark_prereleases() {
    let server = TestServer::start().await;
    server
        .create_distribution("SEM", json!({"version_scheme": "semver"}))
        .await;
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/distributions/SEM/releases",
            Some(json!({"version": "1.2.3-beta.1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["prerelease"], true);
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/distributions/SEM/releases",
            Some(json!({"version": "1.2"})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn uploads_digests_names_and_main() {
    let server = start_reclaiming().await;
    server.create_distribution("UP", json!({})).await;
    let id = new_release(&server, "UP", "1.0").await;
    let bytes = test_bytes(200_000, 7);
    let b64 = base64::engine::general_purpose::STANDARD;

    // Content-MD5 mismatch: 422 and nothing kept, neither a row nor a blob.
    let wrong_md5 = b64.encode(hex::decode(md5_hex(b"other bytes")).unwrap());
    let (status, body) =
        put_file(&server, id, "a.zip", &bytes, &[("content-md5", wrong_md5)]).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, release) = server
        .admin_json(Method::GET, &format!("/api/v1/releases/{id}"), None)
        .await;
    assert_eq!(release["files"], json!([]));
    assert!(blobs(&server).is_empty(), "{:?}", blobs(&server));
    assert!(
        files_under(&server.data_dir.path().join("objects")).is_empty(),
        "no temp leftovers: {:?}",
        files_under(&server.data_dir.path().join("objects"))
    );
    // Malformed digests: 400.
    for (h, v) in [
        ("content-md5", "not base64".to_owned()),
        ("content-md5", b64.encode([1u8; 15])),
        ("x-checksum-sha256", "abc".to_owned()),
        ("x-checksum-sha256", "g".repeat(64)),
    ] {
        let (status, body) = put_file(&server, id, "a.zip", &bytes, &[(h, v)]).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    // SHA-256 mismatch: 422.
    let (status, body) = put_file(
        &server,
        id,
        "a.zip",
        &bytes,
        &[("x-checksum-sha256", sha256_hex(b"nope"))],
    )
    .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(blobs(&server).is_empty());

    // Matching digests: 201.
    let md5_b64 = b64.encode(hex::decode(md5_hex(&bytes)).unwrap());
    let (status, file) = put_file(
        &server,
        id,
        "a.zip",
        &bytes,
        &[
            ("x-checksum-sha256", sha256_hex(&bytes).to_uppercase()),
            ("content-md5", md5_b64),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(file["sha256"], sha256_hex(&bytes));
    assert_eq!(file["size"], 200_000);
    assert_eq!(blobs(&server).len(), 1);

    // Names that would leave a directory: 400.
    // (A bare `..` segment would be resolved by the URL parser before it is sent.)
    for name in [
        "..%2Fx",
        "a%5Cb",
        "a%2Fb",
        "..%5C..%5Cx",
        "c%3Aevil",
        "a%00b",
        "%20lead",
        "x%2F..",
    ] {
        let (status, body) = put_file(&server, id, name, b"x", &[]).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    // Unicode and spaces are fine.
    let (status, file) = put_file(&server, id, "Обновление%20CRM.cfe", b"cfe", &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(file["name"], "Обновление CRM.cfe");
    assert_eq!(file["main"], false);

    // ?main=true moves the main flag; replacing a file keeps one row.
    let (status, file) = put_file(&server, id, "b.zip?main=true", b"bbb", &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(file["main"], true);
    let (status, _) = put_file(&server, id, "a.zip", b"replaced", &[]).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, release) = server
        .admin_json(Method::GET, &format!("/api/v1/releases/{id}"), None)
        .await;
    let files = release["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "{release}");
    let mains: Vec<&str> = files
        .iter()
        .filter(|f| f["main"] == true)
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(mains, ["b.zip"]);
    let a = files.iter().find(|f| f["name"] == "a.zip").unwrap();
    assert_eq!(a["md5"], md5_hex(b"replaced"));
    // The replaced 200 kB blob is gone.
    let left = blobs_after_sweep(&server, 3).await;
    assert_eq!(left.len(), 3, "{left:?}");
    let (status, body) = put_file(&server, id, "c.zip?main=maybe", b"c", &[]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    // Deleting the main file makes the oldest remaining one main.
    let (status, _) = server
        .admin_json(
            Method::DELETE,
            &format!("/api/v1/releases/{id}/files/b.zip"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server
        .admin_json(
            Method::DELETE,
            &format!("/api/v1/releases/{id}/files/b.zip"),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (_, release) = server
        .admin_json(Method::GET, &format!("/api/v1/releases/{id}"), None)
        .await;
    let main: Vec<&Value> = release["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["main"] == true)
        .collect();
    assert_eq!(main.len(), 1);
    assert_eq!(main[0]["name"], "Обновление CRM.cfe");

    // Multipart upload for browsers.
    let form = reqwest::multipart::Form::new()
        .text("comment", "ignored")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"multipart one".to_vec()).file_name("m1.zip"),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(test_bytes(3_000_000, 3)).file_name("m2.bin"),
        );
    let (status, body) = send_json(
        server
            .admin(Method::POST, &format!("/api/v1/releases/{id}/files"))
            .multipart(form),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["files"][0]["name"], "m1.zip");
    assert_eq!(body["files"][0]["md5"], md5_hex(b"multipart one"));
    assert_eq!(
        body["files"][1]["size"], 3_000_000,
        "beyond the 1 MiB JSON limit"
    );
    assert_eq!(
        body["files"][1]["sha256"],
        sha256_hex(&test_bytes(3_000_000, 3))
    );
    // A multipart part with a bad name stores nothing.
    let before = blobs(&server).len();
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"fresh bytes".to_vec()).file_name("ok.zip"),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("..\\evil"),
        );
    let (status, body) = send_json(
        server
            .admin(Method::POST, &format!("/api/v1/releases/{id}/files"))
            .multipart(form),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(blobs(&server).len(), before);
    let (status, body) = send_json(
        server
            .admin(Method::POST, &format!("/api/v1/releases/{id}/files"))
            .header("content-type", "application/json")
            .body("{}"),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    // Uploads to a missing release: 404.
    let (status, body) = put_file(&server, 999_999, "x.zip", b"x", &[]).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn upload_size_limit() {
    let server = TestServer::start_with(ServerOptions {
        env: vec![("VYPUSK_MAX_UPLOAD_BYTES".into(), "1000".into())],
        ..Default::default()
    })
    .await;
    server.create_distribution("LIM", json!({})).await;
    let id = new_release(&server, "LIM", "1").await;
    // Declared too large: refused before reading.
    let (status, body) = put_file(&server, id, "big.bin", &test_bytes(1001, 1), &[]).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    // Streamed without a length: refused while reading, nothing kept.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..4).map(|i| Ok(test_bytes(400, i))).collect();
    let (status, body) = send_json(
        server
            .admin(Method::PUT, &format!("/api/v1/releases/{id}/files/big.bin"))
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks))),
    )
    .await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(blobs(&server).is_empty());
    let (status, _) = put_file(&server, id, "ok.bin", &test_bytes(1000, 1), &[]).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn licenses_crud_search_and_import() {
    let server = TestServer::start().await;
    let (status, created) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({
                "key": "MIKO-AAAAA-11111",
                "customer": "ООО Ромашка",
                "itn": "7701234567",
                "beta": true,
                "features": [
                    {"product": 10, "feature": 20, "active_until": "2030-12-31"},
                    {"product": 10, "feature": 21, "active_until": "2031-01-01T12:00:00+03:00"},
                    {"product": 11, "feature": 1}
                ]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["key"], "MIKO-AAAAA-11111");
    assert_eq!(created["revoked"], false);
    assert_eq!(created["beta"], true);
    let features = created["features"].as_array().unwrap();
    assert_eq!(features[0]["active_until"], "2030-12-31T23:59:59Z");
    assert_eq!(features[1]["active_until"], "2031-01-01T09:00:00Z");
    assert_eq!(features[2]["active_until"], Value::Null);

    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": "MIKO-AAAAA-11111"})),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT);
    for bad in [
        json!({"key": "no spaces allowed"}),
        json!({"key": "abc"}),
        json!({"customer": "no key"}),
        json!({"key": "MIKO-B", "features": [{"product": 1, "feature": 1, "active_until": "31.12.2030"}]}),
        json!({"key": "MIKO-B", "features": [{"product": 1, "feature": 1}, {"product": 1, "feature": 1}]}),
        json!({"key": "MIKO-B", "features": [{"product": "x", "feature": 1}]}),
        json!({"key": "MIKO-B", "vip": true}),
    ] {
        let (status, body) = server
            .admin_json(Method::POST, "/api/v1/licenses", Some(bad.clone()))
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }

    // Read, update (full replace), search.
    let (status, got) = server
        .admin_json(Method::GET, "/api/v1/licenses/MIKO-AAAAA-11111", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);
    let (status, updated) = server
        .admin_json(
            Method::PUT,
            "/api/v1/licenses/MIKO-AAAAA-11111",
            Some(
                json!({"customer": "ООО Ромашка", "itn": "7701234567", "revoked": true,
                        "features": [{"product": 10, "feature": 20}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["revoked"], true);
    // Not named, so kept (PUT changes only the fields given).
    assert_eq!(updated["beta"], true);
    assert_eq!(updated["features"].as_array().unwrap().len(), 1);
    let (status, body) = server
        .admin_json(
            Method::PUT,
            "/api/v1/licenses/MIKO-AAAAA-11111",
            Some(json!({"key": "OTHER-KEY"})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = server
        .admin_json(Method::PUT, "/api/v1/licenses/MIKO-NONE", Some(json!({})))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    for (key, customer, itn) in [
        ("MIKO-BBBBB-22222", "ИП Иванов", "500100732259"),
        ("MIKO-CCCCC-33333", "Acme 100%", "1234"),
    ] {
        let (status, _) = server
            .admin_json(
                Method::POST,
                "/api/v1/licenses",
                Some(json!({"key": key, "customer": customer, "itn": itn})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    for (search, expected) in [
        ("Иванов", vec!["MIKO-BBBBB-22222"]),
        ("7701", vec!["MIKO-AAAAA-11111"]),
        ("CCCCC", vec!["MIKO-CCCCC-33333"]),
        ("100%", vec!["MIKO-CCCCC-33333"]),
        ("%", vec!["MIKO-CCCCC-33333"]),
        (
            "MIKO",
            vec!["MIKO-AAAAA-11111", "MIKO-BBBBB-22222", "MIKO-CCCCC-33333"],
        ),
        ("nothing", vec![]),
    ] {
        let url = format!("/api/v1/licenses?search={}", percent(search));
        let (status, list) = server.admin_json(Method::GET, &url, None).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let keys: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, expected, "search {search:?}");
        assert_eq!(list["total"], expected.len());
    }
    let (_, page) = server
        .admin_json(
            Method::GET,
            "/api/v1/licenses?limit=1&offset=1&sort=-key",
            None,
        )
        .await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["limit"], 1);
    assert_eq!(page["offset"], 1);
    assert_eq!(page["items"][0]["key"], "MIKO-BBBBB-22222");
    for bad in [
        "limit=0",
        "limit=1001",
        "offset=-1",
        "sort=password",
        "serch=x",
    ] {
        let (status, body) = server
            .admin_json(Method::GET, &format!("/api/v1/licenses?{bad}"), None)
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }

    // CSV import: one bad line → nothing imported, and every bad line is named.
    let bad_csv = "key,customer,itn,beta,revoked,product,feature,active_until\n\
                   MIKO-NEW-1,New,,Y,,10,20,2030-01-01\n\
                   bad key,x,,,,10,20,\n\
                   MIKO-NEW-2,New2,,maybe,,10,20,\n\
                   MIKO-BBBBB-22222,Changed,,,,10,20,\n";
    let (status, body) = send_json(
        server
            .admin(Method::POST, "/api/v1/licenses/import")
            .header("content-type", "text/csv")
            .body(bad_csv),
    )
    .await;
    let msg = assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(msg.contains("line 3:") && msg.contains("line 4:"), "{msg}");
    assert!(
        !msg.contains("line 2:") && !msg.contains("line 5:"),
        "{msg}"
    );
    let (status, body) = server
        .admin_json(Method::GET, "/api/v1/licenses/MIKO-NEW-1", None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (_, untouched) = server
        .admin_json(Method::GET, "/api/v1/licenses/MIKO-BBBBB-22222", None)
        .await;
    assert_eq!(untouched["customer"], "ИП Иванов");

    // A good file creates and replaces, accumulating features per key.
    let good_csv = "key,customer,itn,beta,revoked,product,feature,active_until\n\
                    MIKO-NEW-1,New,,Y,,10,20,2030-01-01\n\
                    MIKO-NEW-1,,,,,10,21,\n\
                    MIKO-BBBBB-22222,Changed,,,,,,\n";
    let (status, body) = send_json(
        server
            .admin(Method::POST, "/api/v1/licenses/import")
            .header("content-type", "text/csv")
            .body(good_csv),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["imported"], 2);
    let (_, new1) = server
        .admin_json(Method::GET, "/api/v1/licenses/MIKO-NEW-1", None)
        .await;
    assert_eq!(new1["beta"], true);
    assert_eq!(new1["features"].as_array().unwrap().len(), 2);
    assert_eq!(new1["features"][0]["active_until"], "2030-01-01T23:59:59Z");
    let (_, changed) = server
        .admin_json(Method::GET, "/api/v1/licenses/MIKO-BBBBB-22222", None)
        .await;
    assert_eq!(changed["customer"], "Changed");
    assert_eq!(changed["features"], json!([]));
    // Not UTF-8.
    let (status, body) = send_json(
        server
            .admin(Method::POST, "/api/v1/licenses/import")
            .body(vec![0xff, 0xfe, 0x00]),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    // A key named like the import route is still reachable.
    let (status, _) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": "import"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, got) = server
        .admin_json(Method::GET, "/api/v1/licenses/import", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["key"], "import");

    // Delete.
    let (status, _) = server
        .admin_json(Method::DELETE, "/api/v1/licenses/MIKO-NEW-1", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server
        .admin_json(Method::DELETE, "/api/v1/licenses/MIKO-NEW-1", None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

/// The first download link anywhere in a check's answer.
fn first_link(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.contains("/releases/v1/files/") => Some(s.clone()),
        Value::Array(a) => a.iter().find_map(first_link),
        Value::Object(o) => o.values().find_map(first_link),
        _ => None,
    }
}

/// Whether a check with ACME-0001 gets a download link.
async fn downloadable(server: &TestServer) -> bool {
    let (status, answer) = server
        .client_post(
            "getAvailableReleases",
            json!({"TYPE": "ACME_SALES", "KEY": "ACME-0001", "CONF": ""}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    first_link(&answer).is_some()
}

const SUBSCRIPTION_UNTIL: &str = "2030-12-31T23:59:59Z";

/// A paid distribution (feature 85/43) with a published release, and the license ACME-0001
/// with a customer, an ITN and that feature until the end of 2030.
async fn seed_acme() -> TestServer {
    let server = TestServer::start().await;
    server
        .create_distribution(
            "ACME_SALES",
            json!({"name": "Продажи", "lic_product_id": 85, "lic_feature_id": 43}),
        )
        .await;
    server
        .create_release(
            "ACME_SALES",
            json!({"version": "2.1.0.8", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("sales.zip", b"sales bytes")],
            true,
        )
        .await;
    let (status, created) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({
                "key": "ACME-0001",
                "customer": "ООО Ромашка",
                "itn": "7701234567",
                "features": [{"product": 85, "feature": 43, "active_until": "2030-12-31"}]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["features"], subscription());
    assert!(downloadable(&server).await);
    server
}

fn subscription() -> Value {
    json!([{"product": 85, "feature": 43, "active_until": SUBSCRIPTION_UNTIL}])
}

/// Issue 11: `PUT {"beta": true}` on a license with a customer, an ITN and a feature used to
/// answer `{"beta":true,"customer":"","itn":"","features":[]}` and cut the customer off.
#[tokio::test]
async fn a_beta_edit_keeps_customer_itn_and_features() {
    let server = seed_acme().await;
    let (status, edited) = server
        .admin_json(
            Method::PUT,
            "/api/v1/licenses/ACME-0001",
            Some(json!({"beta": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["beta"], true);
    assert_eq!(edited["customer"], "ООО Ромашка");
    assert_eq!(edited["itn"], "7701234567");
    assert_eq!(edited["features"], subscription());
    assert_eq!(edited["revoked"], false);
    assert!(downloadable(&server).await, "the customer lost downloads");
    let (_, shown) = server
        .admin_json(Method::GET, "/api/v1/licenses/ACME-0001", None)
        .await;
    assert_eq!(shown, edited);
}

/// PATCH is the same edit as PUT, on every license route (the key `import` included).
#[tokio::test]
async fn patch_edits_licenses_like_put() {
    let server = seed_acme().await;
    let (status, edited) = server
        .admin_json(
            Method::PATCH,
            "/api/v1/licenses/ACME-0001",
            Some(json!({"customer": "ООО Лютик", "beta": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["customer"], "ООО Лютик");
    assert_eq!(edited["beta"], true);
    assert_eq!(edited["itn"], "7701234567");
    assert_eq!(edited["features"], subscription());
    let (status, body) = server
        .admin_json(
            Method::PATCH,
            "/api/v1/licenses/ACME-NONE",
            Some(json!({"beta": true})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = server
        .admin_json(
            Method::PATCH,
            "/api/v1/licenses/ACME-0001",
            Some(json!({"key": "ACME-0002"})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    // The key called like the import route takes PATCH too.
    let (status, _) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": "import", "itn": "1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, edited) = server
        .admin_json(
            Method::PATCH,
            "/api/v1/licenses/import",
            Some(json!({"beta": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["beta"], true);
    assert_eq!(edited["itn"], "1");
}

/// `null` clears an optional field and only that one; `features`, when given, replaces the
/// list (a feature's `active_until: null` = never lapses, `[]` = none); what cannot be null
/// is refused and nothing changes.
#[tokio::test]
async fn null_clears_optional_license_fields_and_features_replace_the_list() {
    let server = seed_acme().await;
    for method in [Method::PUT, Method::PATCH] {
        let (status, edited) = server
            .admin_json(
                method,
                "/api/v1/licenses/ACME-0001",
                Some(json!({"itn": null})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{edited}");
        assert_eq!(edited["itn"], "");
        assert_eq!(edited["customer"], "ООО Ромашка");
        assert_eq!(edited["features"], subscription());
    }

    let (status, edited) = server
        .admin_json(
            Method::PATCH,
            "/api/v1/licenses/ACME-0001",
            Some(
                json!({"features": [{"product": 85, "feature": 43, "active_until": null},
                                     {"product": 85, "feature": 44}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(
        edited["features"],
        json!([{"product": 85, "feature": 43, "active_until": null},
               {"product": 85, "feature": 44, "active_until": null}])
    );
    assert_eq!(edited["customer"], "ООО Ромашка");

    for bad in [
        json!({"beta": null}),
        json!({"revoked": null}),
        json!({"features": null}),
        json!({"beta": false, "vip": true}),
        json!({"features": [{"product": 85, "feature": 43}, {"product": 85, "feature": 43}]}),
    ] {
        for method in [Method::PUT, Method::PATCH] {
            let (status, body) = server
                .admin_json(method, "/api/v1/licenses/ACME-0001", Some(bad.clone()))
                .await;
            assert_error(status, &body, StatusCode::BAD_REQUEST);
        }
    }
    let (_, unchanged) = server
        .admin_json(Method::GET, "/api/v1/licenses/ACME-0001", None)
        .await;
    assert_eq!(unchanged["features"].as_array().unwrap().len(), 2);
    assert_eq!(unchanged["beta"], false);

    // `[]` removes every feature: the one explicit way to end a subscription by an edit.
    let (status, edited) = server
        .admin_json(
            Method::PUT,
            "/api/v1/licenses/ACME-0001",
            Some(json!({"features": [], "customer": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["features"], json!([]));
    assert_eq!(edited["customer"], "");
    assert!(!downloadable(&server).await);
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn list_paging_limits() {
    let server = TestServer::start().await;
    for i in 0..5 {
        server
            .create_distribution(&format!("D{i}"), json!({}))
            .await;
    }
    let (status, page) = server
        .admin_json(
            Method::GET,
            "/api/v1/distributions?offset=3&limit=1000",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 5);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["code"], "D3");
    for bad in ["limit=0", "limit=1001", "limit=x", "sort=secret", "sort=-"] {
        let (status, body) = server
            .admin_json(Method::GET, &format!("/api/v1/distributions?{bad}"), None)
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    let (status, body) = server
        .admin_json(Method::GET, "/api/v1/api-keys?limit=1001", None)
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, root) = server.admin_json(Method::GET, "/api", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        root["Urns"]
            .as_array()
            .unwrap()
            .contains(&json!("/api/v1/distributions"))
    );
}

#[tokio::test]
async fn cli_api_key_license_import_and_publish() {
    let server = TestServer::start().await;
    server.create_distribution("CLI", json!({})).await;
    let data_dir = server.data_dir.path();
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(vypusk_bin());
        cmd.arg("--data-dir").arg(data_dir).args(args);
        cmd.env_remove("VYPUSK_DATABASE_URL")
            .env("VYPUSK_LOG", "warn");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run vypusk");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // api-key create prints the key once; it works against the running server.
    let (ok, stdout, stderr) = run(
        &[
            "api-key",
            "create",
            "--name",
            "ci",
            "--permissions",
            "publish",
        ],
        &[],
    );
    assert!(ok, "{stdout}{stderr}");
    let key = stdout.lines().last().unwrap().trim().to_owned();
    assert!(key.starts_with("vypk_"), "{stdout}");
    let (ok, stdout, _) = run(&["api-key", "list"], &[]);
    assert!(
        ok && stdout.contains("ci") && !stdout.contains(&key),
        "{stdout}"
    );
    let (ok, _, stderr) = run(
        &["api-key", "create", "--name", "x", "--permissions", "root"],
        &[],
    );
    assert!(!ok && stderr.contains("unknown permission"), "{stderr}");

    // license import: all or nothing, bad lines by number.
    let csv = data_dir.join("licenses.csv");
    std::fs::write(
        &csv,
        "key,customer,product,feature\nMIKO-CLI-1,Cli,1,2\nbad key,x,1,2\n",
    )
    .unwrap();
    let (ok, _, stderr) = run(&["license", "import", csv.to_str().unwrap()], &[]);
    assert!(!ok && stderr.contains("line 3:"), "{stderr}");
    std::fs::write(&csv, "key,customer,product,feature\nMIKO-CLI-1,Cli,1,2\n").unwrap();
    let (ok, stdout, stderr) = run(&["license", "import", csv.to_str().unwrap()], &[]);
    assert!(ok, "{stdout}{stderr}");
    let (status, lic) = server
        .admin_json(Method::GET, "/api/v1/licenses/MIKO-CLI-1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lic["features"][0]["feature"], 2);

    // publish: creates the release, uploads, sets everything, publishes.
    let work = tempfile::tempdir().unwrap();
    let cfe = work.path().join("crm.cfe");
    let zip = work.path().join("docs.zip");
    std::fs::write(&cfe, test_bytes(300_000, 9)).unwrap();
    std::fs::write(&zip, b"docs").unwrap();
    let changelog = work.path().join("CHANGES.md");
    std::fs::write(&changelog, "* Новое").unwrap();
    let base = server.base.clone();
    let env = [
        ("VYPUSK_SERVER", base.as_str()),
        ("VYPUSK_API_KEY", key.as_str()),
    ];
    let (ok, stdout, stderr) = run(
        &[
            "publish",
            "--type",
            "CLI",
            "--version",
            "2.0.1",
            "--changelog-file",
            changelog.to_str().unwrap(),
            "--compat",
            "УправлениеТорговлей>=11.4.11.55",
            "--compat",
            "БП>=3.0<=3.0.199",
            "--metadata",
            "extension_hash=abc",
            "--main",
            "docs.zip",
            cfe.to_str().unwrap(),
            zip.to_str().unwrap(),
        ],
        &env,
    );
    assert!(ok, "{stdout}{stderr}");
    let draft: Value = serde_json::from_str(&stdout).expect("release JSON on stdout");
    assert_eq!(draft["status"], "draft");
    // Running again reuses the draft and publishes.
    let (ok, stdout, stderr) = run(
        &[
            "publish",
            "--type",
            "CLI",
            "--version",
            "2.0.1.0",
            "--publish",
            cfe.to_str().unwrap(),
        ],
        &env,
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("reusing draft"), "{stderr}");
    let release: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(release["id"], draft["id"]);
    assert_eq!(release["status"], "published");
    assert_eq!(release["version"], "2.0.1.0");
    assert_eq!(release["changelog"], "* Новое");
    assert_eq!(release["metadata"], json!({"extension_hash": "abc"}));
    assert_eq!(
        release["compatibility"],
        json!([
            {"conf": "УправлениеТорговлей", "min_1c_version": "11.4.11.55"},
            {"conf": "БП", "min_1c_version": "3.0", "max_1c_version": "3.0.199"}
        ])
    );
    let files = release["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    let cfe_row = files.iter().find(|f| f["name"] == "crm.cfe").unwrap();
    assert_eq!(cfe_row["sha256"], sha256_hex(&test_bytes(300_000, 9)));
    assert_eq!(cfe_row["main"], false);
    // A published version can't be published over; errors carry the server's message.
    let (ok, _, stderr) = run(
        &[
            "publish",
            "--type",
            "CLI",
            "--version",
            "2.0.1",
            cfe.to_str().unwrap(),
        ],
        &env,
    );
    assert!(!ok && stderr.contains("already published"), "{stderr}");
    let (ok, _, stderr) = run(
        &[
            "publish",
            "--type",
            "NOPE",
            "--version",
            "1",
            cfe.to_str().unwrap(),
        ],
        &env,
    );
    assert!(!ok && stderr.contains("not found"), "{stderr}");
    let (ok, _, stderr) = run(
        &[
            "publish",
            "--type",
            "CLI",
            "--version",
            "3",
            "--compat",
            "УТ=1",
            cfe.to_str().unwrap(),
        ],
        &env,
    );
    assert!(!ok && stderr.contains("--compat"), "{stderr}");
    let (ok, _, stderr) = run(
        &[
            "publish",
            "--type",
            "CLI",
            "--version",
            "3",
            cfe.to_str().unwrap(),
        ],
        &[
            ("VYPUSK_SERVER", base.as_str()),
            ("VYPUSK_API_KEY", "vypk_wrong"),
        ],
    );
    assert!(!ok && stderr.contains("401"), "{stderr}");
}

/// A draft of `code` with one compatibility entry (unless `compat` is false) and one file.
async fn release_with_file(server: &TestServer, code: &str, version: &str, compat: bool) -> i64 {
    let mut body = json!({"version": version});
    if compat {
        body["compatibility"] = json!([{"conf": "*", "min_1c_version": "0"}]);
    }
    let created = server.create_release(code, body, &[], false).await;
    let id = created["id"].as_i64().unwrap();
    let (status, file) = put_file(server, id, "a.zip", version.as_bytes(), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    id
}

/// Issue 11: `POST …/publish` and `…/yank` take no body, `{}`, or their fields.
#[tokio::test]
async fn yank_and_publish_accept_an_empty_body() {
    let server = TestServer::start().await;
    server.create_distribution("EMPTY", json!({})).await;
    // No body and no Content-Type at all (`curl -X POST`).
    let bare = |id: i64, action: &str| {
        send_json(server.admin(Method::POST, &format!("/api/v1/releases/{id}/{action}")))
    };
    let a = release_with_file(&server, "EMPTY", "1.0", true).await;
    let (status, body) = bare(a, "publish").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "published");
    let (status, body) = bare(a, "yank").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "yanked");
    assert_eq!(body["yank_reason"], Value::Null);

    // `{}`.
    let b = release_with_file(&server, "EMPTY", "2.0", true).await;
    for action in ["publish", "yank"] {
        let (status, body) = server
            .admin_json(
                Method::POST,
                &format!("/api/v1/releases/{b}/{action}"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }

    // An empty body with a Content-Type, and the reason as before.
    let c = release_with_file(&server, "EMPTY", "3.0", true).await;
    let (status, body) = send_json(
        server
            .admin(Method::POST, &format!("/api/v1/releases/{c}/publish"))
            .header("content-type", "application/json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send_json(
        server
            .admin(Method::POST, &format!("/api/v1/releases/{c}/yank"))
            .header("content-type", "application/json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let d = release_with_file(&server, "EMPTY", "4.0", true).await;
    bare(d, "publish").await;
    let (status, body) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/releases/{d}/yank"),
            Some(json!({"reason": "broken migration"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["yank_reason"], "broken migration");

    // A body that is not JSON, or has unknown fields, is still refused.
    let e = release_with_file(&server, "EMPTY", "5.0", true).await;
    bare(e, "publish").await;
    let (status, body) = send_json(
        server
            .admin(Method::POST, &format!("/api/v1/releases/{e}/yank"))
            .header("content-type", "text/plain")
            .body("because"),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/releases/{e}/yank"),
            Some(json!({"reasn": "typo"})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
}

/// Issue 11: `PUT` and `PATCH` of a release change only the fields given; `null` clears an
/// optional field and is refused for a required one.
#[tokio::test]
async fn release_edits_change_only_the_fields_given() {
    let server = TestServer::start().await;
    server.create_distribution("EDIT", json!({})).await;
    let created = server
        .create_release(
            "EDIT",
            json!({
                "version": "1.0",
                "changelog": "* Исправлено",
                "prerelease": true,
                "compatibility": [{"conf": "УТ", "min_1c_version": "11.4"}],
                "metadata": {"extension_hash": "abc"}
            }),
            &[],
            false,
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    let url = format!("/api/v1/releases/{id}");
    let (status, patched) = server
        .admin_json(Method::PATCH, &url, Some(json!({"changelog": "* Новое"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["changelog"], "* Новое");
    for field in ["version", "prerelease", "compatibility", "metadata"] {
        assert_eq!(patched[field], created[field], "{field} stays");
    }
    // null clears the optional fields.
    let (status, patched) = server
        .admin_json(
            Method::PATCH,
            &url,
            Some(json!({"metadata": null, "changelog": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["metadata"], json!({}));
    assert_eq!(patched["changelog"], "");
    assert_eq!(patched["compatibility"], created["compatibility"]);
    // PUT follows the same rule.
    let (status, put) = server
        .admin_json(Method::PUT, &url, Some(json!({"prerelease": false})))
        .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["prerelease"], false);
    assert_eq!(put["compatibility"], created["compatibility"]);
    assert_eq!(put["version"], "1.0");
    let (status, put) = server
        .admin_json(Method::PUT, &url, Some(json!({"compatibility": null})))
        .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["compatibility"], json!([]), "a draft may have none");
    // Required fields cannot be null.
    for body in [json!({"version": null}), json!({"prerelease": null})] {
        for method in [Method::PUT, Method::PATCH] {
            let (status, err) = server.admin_json(method, &url, Some(body.clone())).await;
            let msg = assert_error(status, &err, StatusCode::BAD_REQUEST);
            assert!(msg.contains("cannot be null"), "{msg}");
        }
    }
    let (_, after) = server.admin_json(Method::GET, &url, None).await;
    assert_eq!(after["version"], "1.0");
}

/// Issue 11: the same rule for distributions (PUT used to replace every field, so a PUT of
/// the label removed the license gate).
#[tokio::test]
async fn distribution_edits_change_only_the_fields_given() {
    let server = TestServer::start().await;
    let created = server
        .create_distribution(
            "DEDIT",
            json!({"lic_product_id": 85, "lic_feature_id": 43, "hide_unlicensed": true}),
        )
        .await;
    let url = "/api/v1/distributions/DEDIT";
    for (method, label) in [(Method::PATCH, "MIKO"), (Method::PUT, "MIKO 2")] {
        let (status, edited) = server
            .admin_json(method, url, Some(json!({"label": label})))
            .await;
        assert_eq!(status, StatusCode::OK, "{edited}");
        assert_eq!(edited["label"], label);
        for field in [
            "name",
            "description",
            "developer",
            "promo_link",
            "lic_product_id",
            "lic_feature_id",
            "published",
            "hide_unlicensed",
            "version_scheme",
        ] {
            assert_eq!(edited[field], created[field], "{field} stays");
        }
    }
    // null clears optional fields: texts to "", the license gate to free.
    let (status, edited) = server
        .admin_json(
            Method::PATCH,
            url,
            Some(json!({"description": null, "lic_product_id": null, "lic_feature_id": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["description"], "");
    assert_eq!(edited["lic_product_id"], Value::Null);
    assert_eq!(edited["lic_feature_id"], Value::Null);
    assert_eq!(edited["label"], "MIKO 2");
    // Half a gate is still refused; required fields cannot be null.
    for body in [
        json!({"lic_product_id": 1}),
        json!({"name": null}),
        json!({"published": null}),
        json!({"version_scheme": null}),
    ] {
        let (status, err) = server
            .admin_json(Method::PATCH, url, Some(body.clone()))
            .await;
        assert_error(status, &err, StatusCode::BAD_REQUEST);
    }
    let (_, after) = server.admin_json(Method::GET, url, None).await;
    assert_eq!(after["name"], created["name"]);
}

/// Issue 11: a release without compatibility entries is invisible to every client, so it
/// cannot be published, and a published release's list cannot become empty.
#[tokio::test]
async fn publishing_needs_a_compatibility_entry() {
    let server = TestServer::start().await;
    server.create_distribution("GUARD", json!({})).await;
    let id = release_with_file(&server, "GUARD", "2.1.0.8", false).await;
    let url = format!("/api/v1/releases/{id}");
    let (status, body) = server
        .admin_json(Method::POST, &format!("{url}/publish"), None)
        .await;
    let msg = assert_error(status, &body, StatusCode::CONFLICT);
    assert!(
        msg.contains(r#"{"conf": "*", "min_1c_version": "0"}"#),
        "the message names the fix: {msg}"
    );
    let (_, release) = server.admin_json(Method::GET, &url, None).await;
    assert_eq!(release["status"], "draft");
    assert_eq!(release["published_at"], Value::Null);

    let (status, body) = server
        .admin_json(
            Method::PATCH,
            &url,
            Some(json!({"compatibility": [{"conf": "*", "min_1c_version": "0"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .admin_json(Method::POST, &format!("{url}/publish"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Emptying the list of the published release: refused either way, nothing changes.
    for body in [json!({"compatibility": []}), json!({"compatibility": null})] {
        for method in [Method::PATCH, Method::PUT] {
            let (status, err) = server.admin_json(method, &url, Some(body.clone())).await;
            let msg = assert_error(status, &err, StatusCode::CONFLICT);
            assert!(msg.contains(r#""conf": "*""#), "{msg}");
        }
    }
    let (_, release) = server.admin_json(Method::GET, &url, None).await;
    assert_eq!(
        release["compatibility"],
        json!([{"conf": "*", "min_1c_version": "0"}])
    );
    // Replacing the list with another non-empty one stays allowed.
    let (status, body) = server
        .admin_json(
            Method::PATCH,
            &url,
            Some(json!({"compatibility": [{"conf": "УТ", "min_1c_version": "11.4"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Issue 11: `vypusk publish --publish` without `--compat` stops before uploading anything
/// and leaves no draft behind; with a reused draft that has entries it goes on.
#[tokio::test]
async fn cli_publish_without_compatibility_is_refused_before_uploading() {
    let server = TestServer::start().await;
    server.create_distribution("ACME_SALES", json!({})).await;
    let (_, key) = server.create_api_key(&["publish"]).await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("sales.cfe");
    std::fs::write(&file, b"sales bytes").unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(vypusk_bin())
            .args(["publish", "--type", "ACME_SALES", "--version", "2.1.0.8"])
            .args(extra)
            .arg(&file)
            .env("VYPUSK_SERVER", &server.base)
            .env("VYPUSK_API_KEY", &key)
            .env("VYPUSK_LOG", "warn")
            .output()
            .expect("run vypusk publish");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stderr) = run(&["--publish"]);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("--compat '*>=0'") && stderr.contains(r#""conf": "*""#),
        "{stderr}"
    );
    let (_, list) = server
        .admin_json(
            Method::GET,
            "/api/v1/distributions/ACME_SALES/releases",
            None,
        )
        .await;
    assert_eq!(list["total"], 0, "no draft left behind: {list}");
    assert!(blobs(&server).is_empty(), "nothing uploaded");

    // With --compat it publishes.
    let (ok, stderr) = run(&["--publish", "--compat", "*>=0"]);
    assert!(ok, "{stderr}");
    let (_, list) = server
        .admin_json(
            Method::GET,
            "/api/v1/distributions/ACME_SALES/releases",
            None,
        )
        .await;
    assert_eq!(list["items"][0]["status"], "published", "{list}");
}
