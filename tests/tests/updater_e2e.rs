//! The real `vypusk-update` against the real `vypusk`: install, update, rollback, and refusal
//! of bytes tampered in the object store. (Attacks that need a lying server or a proxy are
//! covered with in-test servers in `updater/tests`.)

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use vypusk_tests::*;

const TYPE: &str = "UPD";
const KEY: &str = "UPD-KEY-0001";

async fn seed(server: &TestServer) -> Vec<u8> {
    server
        .create_distribution(TYPE, json!({"lic_product_id": 7, "lic_feature_id": 1}))
        .await;
    let (status, body) = server
        .admin_json(
            reqwest::Method::POST,
            "/api/v1/licenses",
            Some(
                json!({"key": KEY, "customer": "c", "itn": "1", "beta": false,
                        "features": [{"product": 7, "feature": 1, "active_until": null}]}),
            ),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let bytes = test_bytes(300_000, 1);
    publish(server, "1.0.0.1", &bytes).await;
    bytes
}

async fn publish(server: &TestServer, version: &str, bytes: &[u8]) {
    server
        .create_release(
            TYPE,
            json!({"version": version, "changelog": format!("- {version}"),
                   "compatibility": [{"conf": "УправлениеТорговлей", "min_1c_version": "11.4"}]}),
            &[("Расширение.zip", bytes)],
            true,
        )
        .await;
}

fn update(server: &TestServer, dir: &Path, args: &[&str]) -> (i32, Value, Output) {
    let out = std::process::Command::new(updater_bin())
        .arg("--server")
        .arg(&server.base)
        .args([
            "--type",
            TYPE,
            "--conf",
            "управлениеторговлей",
            "--conf-version",
            "11.5.1",
            "--key",
            KEY,
        ])
        .arg("--dir")
        .arg(dir)
        .arg("--public-key")
        .arg(server.public_key_path())
        .args(args)
        .arg("--json")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .output()
        .expect("run vypusk-update");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, out)
}

fn installed_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("current").join("Расширение.zip")).expect("installed file")
}

#[tokio::test]
async fn install_update_and_rollback_against_the_real_server() {
    let server = TestServer::start().await;
    let v1 = seed(&server).await;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("app");

    let (code, out, raw) = update(&server, &dir, &["check", "--exit-code"]);
    assert_eq!(code, 10, "{out} {}", String::from_utf8_lossy(&raw.stderr));
    assert_eq!(out["latest"]["version"], "1.0.0.1");

    let (code, out, raw) = update(&server, &dir, &["install"]);
    assert_eq!(code, 0, "{out} {}", String::from_utf8_lossy(&raw.stderr));
    assert_eq!(out["installed"], "1.0.0.1");
    assert_eq!(installed_bytes(&dir), v1);

    // Nothing newer: exit 0, nothing changes.
    let (code, _, _) = update(&server, &dir, &["check", "--exit-code"]);
    assert_eq!(code, 0);

    let v2 = test_bytes(400_000, 2);
    publish(&server, "1.0.0.2", &v2).await;
    let (code, out, _) = update(&server, &dir, &["install"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["installed"], "1.0.0.2");
    assert_eq!(out["previous"], "1.0.0.1");
    assert_eq!(installed_bytes(&dir), v2);

    let (code, out, _) = update(&server, &dir, &["rollback"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["installed"], "1.0.0.1");
    assert_eq!(installed_bytes(&dir), v1);

    let (code, status, _) = update(&server, &dir, &["status"]);
    assert_eq!(code, 0);
    assert_eq!(status["installed"], "1.0.0.1");
    assert_eq!(status["highest_seen"], "1.0.0.2");

    // An explicit older version is refused by the version rule.
    let (code, out, _) = update(&server, &dir, &["download", "--version", "1.0.0.1"]);
    assert_eq!(code, 4, "{out}");
}

#[tokio::test]
async fn bytes_tampered_in_the_object_store_are_refused() {
    let server = TestServer::start().await;
    let v1 = seed(&server).await;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("app");
    let (code, out, _) = update(&server, &dir, &["install"]);
    assert_eq!(code, 0, "{out}");

    let v2 = test_bytes(200_000, 9);
    publish(&server, "1.0.0.2", &v2).await;
    // Someone with access to the storage swaps the bytes (same length).
    let sha = sha256_hex(&v2);
    let blob = server
        .data_dir
        .path()
        .join("objects/blobs/sha256")
        .join(&sha[..2])
        .join(&sha);
    assert!(blob.exists(), "blob at {}", blob.display());
    let mut evil = v2.clone();
    evil[1000] ^= 0xff;
    std::fs::write(&blob, &evil).unwrap();

    let (code, out, raw) = update(&server, &dir, &["install"]);
    assert_eq!(code, 4, "{out}");
    let message = out["error"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("Расширение.zip"), "{message}");
    assert!(String::from_utf8_lossy(&raw.stderr).contains("Расширение.zip"));
    assert!(
        !dir.join("releases/1.0.0.2").exists(),
        "nothing may become visible"
    );
    assert_eq!(installed_bytes(&dir), v1, "the old install stays intact");
}

#[tokio::test]
async fn wrong_pinned_key_and_unreachable_server_are_refused() {
    let mut server = TestServer::start().await;
    seed(&server).await;
    let other = TestServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("app");

    let out = std::process::Command::new(updater_bin())
        .args([
            "--server",
            &server.base,
            "--type",
            TYPE,
            "--conf",
            "УправлениеТорговлей",
        ])
        .args([
            "--conf-version",
            "11.5",
            "--key",
            KEY,
            "--json",
            "--public-key",
        ])
        .arg(other.public_key_path())
        .arg("--dir")
        .arg(&dir)
        .arg("install")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("current").exists());

    let (code, _, _) = update(&server, &dir, &["install"]);
    assert_eq!(code, 0);
    let state = std::fs::read(dir.join(".vypusk-update/state.json")).unwrap();
    server.kill();
    let (code, out, _) = update(&server, &dir, &["check"]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(
        std::fs::read(dir.join(".vypusk-update/state.json")).unwrap(),
        state
    );
}

/// `vypusk-update` on a machine without network: no `--server`; the pinned key of `server`.
fn update_offline(key: &Path, dir: &Path, args: &[&str]) -> (i32, Value, Output) {
    let out = std::process::Command::new(updater_bin())
        .args([
            "--type",
            TYPE,
            "--conf",
            "УправлениеТорговлей",
            "--conf-version",
            "11.5.1",
        ])
        .arg("--dir")
        .arg(dir)
        .arg("--public-key")
        .arg(key)
        .args(args)
        .arg("--json")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .output()
        .expect("run vypusk-update");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, out)
}

/// Issue 10: a lapsed subscription and a configuration no release fits are not "Up to date".
#[tokio::test]
async fn lapsed_license_and_unfitting_configuration_say_so_against_the_real_server() {
    let server = TestServer::start().await;
    seed(&server).await;
    let (status, body) = server
        .admin_json(
            reqwest::Method::POST,
            "/api/v1/licenses",
            Some(
                json!({"key": "UPD-KEY-LAPSED", "customer": "c", "itn": "2", "beta": false,
                        "features": [{"product": 7, "feature": 1,
                                      "active_until": "2020-01-01T00:00:00Z"}]}),
            ),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("app");
    let (code, out, raw) = update(
        &server,
        &dir,
        &["check", "--exit-code", "--key", "UPD-KEY-LAPSED"],
    );
    let stderr = String::from_utf8_lossy(&raw.stderr);
    assert_eq!(code, 5, "{out} {stderr}");
    assert_eq!(out["status"], "not_entitled");
    assert!(
        out["reason"]
            .as_str()
            .unwrap()
            .contains("subscription ended"),
        "{out}"
    );
    let (code, out, _) = update(&server, &dir, &["install", "--key", "UPD-KEY-LAPSED"]);
    assert_eq!(code, 5, "{out}");
    assert!(!dir.join("current").exists());

    // Another configuration: the release requires УправлениеТорговлей 11.4.
    let (code, out, _) = update(
        &server,
        &dir,
        &[
            "check",
            "--conf",
            "БухгалтерияПредприятия",
            "--conf-version",
            "3.0",
        ],
    );
    assert_eq!(code, 6, "{out}");
    assert_eq!(out["status"], "incompatible");
    let reason = out["reason"].as_str().unwrap();
    assert!(
        reason.contains("УправлениеТорговлей 11.4 or later"),
        "{reason}"
    );
}

/// Issue 10: bundles made by the updater and by the vendor API, installed while the server is
/// stopped.
#[tokio::test]
async fn offline_bundles_from_the_updater_and_the_vendor_api_install_with_the_server_down() {
    let mut server = TestServer::start().await;
    let v1 = seed(&server).await;
    let root = tempfile::tempdir().unwrap();
    let key = root.path().join("vypusk.pem");
    std::fs::copy(server.public_key_path(), &key).unwrap();

    // Made by the updater on a connected machine.
    let from_updater = root.path().join("updater.vypusk-bundle.tar");
    let (code, out, raw) = update(
        &server,
        &root.path().join("connected"),
        &["download", "--bundle", from_updater.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out} {}", String::from_utf8_lossy(&raw.stderr));

    // Made by the vendor for the customer's key.
    let (_, releases) = server
        .admin_json(
            reqwest::Method::GET,
            &format!("/api/v1/distributions/{TYPE}/releases"),
            None,
        )
        .await;
    let id = releases
        .as_array()
        .or_else(|| releases["items"].as_array())
        .and_then(|a| a.iter().find(|r| r["version"] == "1.0.0.1"))
        .and_then(|r| r["id"].as_i64())
        .unwrap_or_else(|| panic!("release id in {releases}"));
    let resp = server
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/releases/{id}/bundle?license={KEY}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let from_vendor = root.path().join("vendor.vypusk-bundle.tar");
    std::fs::write(&from_vendor, resp.bytes().await.unwrap()).unwrap();

    server.kill();
    for bundle in [&from_updater, &from_vendor] {
        let dir = root
            .path()
            .join(bundle.file_stem().unwrap().to_string_lossy().as_ref());
        let (code, out, raw) = update_offline(
            &key,
            &dir,
            &["install", "--from-bundle", bundle.to_str().unwrap()],
        );
        assert_eq!(
            code,
            0,
            "{}: {out} {}",
            bundle.display(),
            String::from_utf8_lossy(&raw.stderr)
        );
        assert_eq!(out["installed"], "1.0.0.1");
        assert_eq!(installed_bytes(&dir), v1);
    }
    // Another server's key: refused, nothing visible.
    let other = TestServer::start().await;
    let dir = root.path().join("wrong-key");
    let (code, out, _) = update_offline(
        &other.public_key_path(),
        &dir,
        &["install", "--from-bundle", from_vendor.to_str().unwrap()],
    );
    assert_eq!(code, 4, "{out}");
    assert!(!dir.join("current").exists());
    assert!(!dir.join("releases/1.0.0.1").exists());
}
