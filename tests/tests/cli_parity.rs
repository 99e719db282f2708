//! Issue 11, item 6: the vendor API from the command line. `vypusk distribution|release|
//! license|api-key …` go over HTTP with an API key (`--json` prints the server's answer, else a
//! table or `key  value` lines); `api-key …` and `license import` without a key work on the data
//! directory directly; errors exit non-zero with the server's message (2 usage, 3 unreachable,
//! 4 refused).

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_tests::{TestServer, vypusk_bin};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `vypusk ARGS` against `server` (`--server`), with `key` in `VYPUSK_API_KEY`, on
/// `data_dir` (for the commands that work on it without a key).
fn vypusk(server: &str, key: Option<&str>, data_dir: Option<&Path>, args: &[&str]) -> Out {
    let mut cmd = std::process::Command::new(vypusk_bin());
    if let Some(dir) = data_dir {
        cmd.arg("--data-dir").arg(dir);
    }
    cmd.args(args)
        .args(["--server", server])
        .env_remove("VYPUSK_API_KEY")
        .env_remove("VYPUSK_SERVER")
        .env_remove("VYPUSK_DATABASE_URL")
        .env_remove("VYPUSK_STORAGE_URL")
        .env("VYPUSK_LOG", "warn");
    if let Some(key) = key {
        cmd.env("VYPUSK_API_KEY", key);
    }
    let out = cmd.output().expect("run vypusk");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A command with `--json` that must succeed: its answer.
fn json_of(server: &TestServer, key: &str, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = vypusk(&server.base, Some(key), None, &args);
    assert_eq!(out.code, 0, "{args:?}: {out}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// A command without `--json` that must succeed: its standard output.
fn text_of(server: &TestServer, key: &str, args: &[&str]) -> String {
    let out = vypusk(&server.base, Some(key), None, args);
    assert_eq!(out.code, 0, "{args:?}: {out}");
    out.stdout
}

/// The `id`s of a list answer's items.
fn ids(list: &Value) -> Vec<i64> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_i64().expect("id"))
        .collect()
}

#[tokio::test]
async fn distributions_and_releases_round_trip() {
    let server = TestServer::start().await;
    let (_, key) = server.create_api_key(&["publish"]).await;

    // distribution: create → list → show → update (only what is given) → delete.
    let d = json_of(
        &server,
        &key,
        &[
            "distribution",
            "create",
            "--code",
            "CLI1",
            "--name",
            "Расширение CRM",
            "--developer",
            "Вендор",
            "--scheme",
            "semver",
            "--lic-product-id",
            "5",
            "--lic-feature-id",
            "6",
        ],
    );
    assert_eq!(d["code"], "CLI1");
    assert_eq!(d["name"], "Расширение CRM");
    assert_eq!(d["developer"], "Вендор");
    assert_eq!(d["description"], "");
    assert_eq!(d["version_scheme"], "semver");
    assert_eq!(d["published"], true);
    assert_eq!(d["hide_unlicensed"], false);
    assert_eq!(d["lic_product_id"], 5);
    assert_eq!(d["lic_feature_id"], 6);
    let id = d["id"].as_i64().expect("id");

    let list = json_of(&server, &key, &["distribution", "list"]);
    assert_eq!(ids(&list), vec![id]);
    assert_eq!(list["total"], 1);
    let table = text_of(&server, &key, &["distribution", "list"]);
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.contains("code") && header.contains("name") && header.contains("scheme"),
        "{table}"
    );
    assert!(
        table.contains("Расширение CRM") && table.contains("5/6"),
        "{table}"
    );

    let shown = json_of(&server, &key, &["distribution", "show", "CLI1"]);
    assert_eq!(shown, d);
    let lines = text_of(&server, &key, &["distribution", "show", "CLI1"]);
    assert!(
        lines
            .lines()
            .any(|l| l.starts_with("name") && l.ends_with("Расширение CRM")),
        "{lines}"
    );

    let updated = json_of(
        &server,
        &key,
        &[
            "distribution",
            "update",
            "CLI1",
            "--description",
            "Новое описание",
            "--published",
            "false",
        ],
    );
    assert_eq!(updated["description"], "Новое описание");
    assert_eq!(updated["published"], false);
    for kept in [
        "name",
        "developer",
        "version_scheme",
        "lic_product_id",
        "id",
    ] {
        assert_eq!(updated[kept], d[kept], "{kept}");
    }
    let cleared = json_of(
        &server,
        &key,
        &["distribution", "update", "CLI1", "--no-license-gate"],
    );
    assert_eq!(cleared["lic_product_id"], Value::Null);
    assert_eq!(cleared["lic_feature_id"], Value::Null);
    assert_eq!(cleared["description"], "Новое описание");
    let nothing = vypusk(
        &server.base,
        Some(&key),
        None,
        &["distribution", "update", "CLI1"],
    );
    assert_eq!(nothing.code, 2, "{nothing}");

    // release: create → list → show → update → publish → yank; a draft is deleted.
    let changelog = server.data_dir.path().join("CHANGES.md");
    std::fs::write(&changelog, "# 1.0.1\n\n- исправлено").unwrap();
    let r = json_of(
        &server,
        &key,
        &[
            "release",
            "create",
            "--type",
            "CLI1",
            "--version",
            "1.0.1",
            "--changelog-file",
            changelog.to_str().unwrap(),
            "--compat",
            "УправлениеТорговлей>=11.4<=11.5.99",
            "--metadata",
            "extension_hash=abc",
        ],
    );
    assert_eq!(r["distribution"], "CLI1");
    assert_eq!(r["version"], "1.0.1");
    assert_eq!(r["status"], "draft");
    assert_eq!(r["prerelease"], false);
    assert_eq!(r["changelog"], "# 1.0.1\n\n- исправлено");
    assert_eq!(
        r["compatibility"],
        json!([{"conf": "УправлениеТорговлей", "min_1c_version": "11.4", "max_1c_version": "11.5.99"}])
    );
    assert_eq!(r["metadata"], json!({"extension_hash": "abc"}));
    assert_eq!(r["files"], json!([]));
    let rid = r["id"].as_i64().expect("release id");
    let rid_s = rid.to_string();

    let list = json_of(&server, &key, &["release", "list", "--type", "CLI1"]);
    assert_eq!(ids(&list), vec![rid]);
    let drafts = json_of(
        &server,
        &key,
        &["release", "list", "--type", "CLI1", "--status", "published"],
    );
    assert_eq!(drafts["total"], 0);

    let updated = json_of(
        &server,
        &key,
        &["release", "update", &rid_s, "--prerelease", "true"],
    );
    assert_eq!(updated["prerelease"], true);
    for kept in [
        "version",
        "changelog",
        "compatibility",
        "metadata",
        "status",
    ] {
        assert_eq!(updated[kept], r[kept], "{kept}");
    }

    let resp = server
        .admin(
            Method::PUT,
            &format!("/api/v1/releases/{rid}/files/crm.cfe"),
        )
        .body(b"cfe bytes".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let shown = text_of(&server, &key, &["release", "show", &rid_s]);
    assert!(
        shown.contains("crm.cfe  9 bytes")
            && shown.contains("УправлениеТорговлей>=11.4<=11.5.99")
            && shown.contains("extension_hash=abc"),
        "{shown}"
    );

    let published = json_of(&server, &key, &["release", "publish", &rid_s]);
    assert_eq!(published["status"], "published");
    assert!(published["published_at"].is_string(), "{published}");
    assert_eq!(published["files"][0]["name"], "crm.cfe");

    // A distribution with a published release is refused: the server's message, exit 4.
    let refused = vypusk(
        &server.base,
        Some(&key),
        None,
        &["distribution", "delete", "CLI1"],
    );
    assert_eq!(refused.code, 4, "{refused}");
    assert!(
        refused.stderr.contains("409") && refused.stderr.contains("yank them first"),
        "{refused}"
    );

    let yanked = json_of(
        &server,
        &key,
        &["release", "yank", &rid_s, "--reason", "ломает проведение"],
    );
    assert_eq!(yanked["status"], "yanked");
    assert_eq!(yanked["yank_reason"], "ломает проведение");
    let text = text_of(&server, &key, &["release", "show", &rid_s]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("status") && l.ends_with("yanked")),
        "{text}"
    );

    let draft = json_of(
        &server,
        &key,
        &["release", "create", "--type", "CLI1", "--version", "1.0.2"],
    );
    let draft_id = draft["id"].as_i64().unwrap().to_string();
    let out = vypusk(
        &server.base,
        Some(&key),
        None,
        &["release", "delete", &draft_id],
    );
    assert_eq!(out.code, 0, "{out}");
    let gone = vypusk(
        &server.base,
        Some(&key),
        None,
        &["release", "show", &draft_id],
    );
    assert_eq!(gone.code, 4, "{gone}");
    assert!(gone.stderr.contains("404"), "{gone}");

    // Without published releases (only a yanked one now) the distribution is deleted.
    let out = vypusk(
        &server.base,
        Some(&key),
        None,
        &["distribution", "delete", "CLI1"],
    );
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout.trim(), "deleted distribution CLI1");
    let gone = vypusk(
        &server.base,
        Some(&key),
        None,
        &["distribution", "show", "CLI1"],
    );
    assert_eq!(gone.code, 4, "{gone}");

    // A key the server does not know: refused, and the message says to check the key.
    let wrong = vypusk(
        &server.base,
        Some("vypk_not_a_key"),
        None,
        &["distribution", "list"],
    );
    assert_eq!(wrong.code, 4, "{wrong}");
    assert!(
        wrong.stderr.contains("401") && wrong.stderr.contains("--api-key"),
        "{wrong}"
    );
}

#[tokio::test]
async fn licenses_round_trip_and_import_applies_at_once() {
    let server = TestServer::start().await;
    let (_, key) = server.create_api_key(&["licenses"]).await;

    let created = json_of(
        &server,
        &key,
        &[
            "license",
            "create",
            "--key",
            "CLI-LIC-1",
            "--customer",
            "ООО Ромашка",
            "--itn",
            "7701234567",
            "--feature",
            "1/2",
            "--feature",
            "3/4:2030-01-31",
        ],
    );
    assert_eq!(created["key"], "CLI-LIC-1");
    assert_eq!(created["customer"], "ООО Ромашка");
    assert_eq!(created["itn"], "7701234567");
    assert_eq!(created["beta"], false);
    assert_eq!(created["revoked"], false);
    let features = created["features"].as_array().expect("features");
    assert_eq!(features.len(), 2, "{created}");
    assert_eq!(
        (&features[0]["product"], &features[0]["feature"]),
        (&json!(1), &json!(2))
    );
    assert_eq!(features[0]["active_until"], Value::Null);
    assert!(
        features[1]["active_until"]
            .as_str()
            .is_some_and(|u| u.starts_with("2030-01-31")),
        "{created}"
    );

    let list = json_of(&server, &key, &["license", "list"]);
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["key"], "CLI-LIC-1");
    let found = json_of(&server, &key, &["license", "list", "--search", "Ромаш"]);
    assert_eq!(found["total"], 1);
    let none = json_of(
        &server,
        &key,
        &["license", "list", "--search", "нет такого"],
    );
    assert_eq!(none["total"], 0);
    let table = text_of(&server, &key, &["license", "list"]);
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.contains("key") && header.contains("customer") && header.contains("features"),
        "{table}"
    );
    assert!(
        table.contains("ООО Ромашка") && table.contains("1/2, 3/4 until 2030-01-31"),
        "{table}"
    );

    // Only the fields given change.
    let updated = json_of(
        &server,
        &key,
        &["license", "update", "CLI-LIC-1", "--beta", "true"],
    );
    assert_eq!(updated["beta"], true);
    for kept in ["customer", "itn", "features", "revoked", "created_at"] {
        assert_eq!(updated[kept], created[kept], "{kept}");
    }
    let shown = json_of(&server, &key, &["license", "show", "CLI-LIC-1"]);
    assert_eq!(shown, updated);
    let text = text_of(&server, &key, &["license", "show", "CLI-LIC-1"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("customer") && l.ends_with("ООО Ромашка")),
        "{text}"
    );

    // Import over HTTP: the running server has the licenses as soon as the command returns.
    let csv = server.data_dir.path().join("licenses.csv");
    std::fs::write(
        &csv,
        "key,customer,itn,product,feature\nCLI-IMP-1,ИП Иванов,500100732259,7,8\nCLI-IMP-2,Второй,,7,8\n",
    )
    .unwrap();
    let out = vypusk(
        &server.base,
        Some(&key),
        Some(Path::new("/nonexistent-data-dir")),
        &["license", "import", csv.to_str().unwrap(), "--json"],
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(!out.stderr.contains("data directory"), "{out}");
    let summary: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(summary, json!({"imported": 2, "features": 2}));
    let imported = json_of(&server, &key, &["license", "show", "CLI-IMP-1"]);
    assert_eq!(imported["customer"], "ИП Иванов");
    assert_eq!(imported["itn"], "500100732259");
    assert_eq!(
        imported["features"],
        json!([{"product": 7, "feature": 8, "active_until": null}])
    );
    // A bad line: nothing imported, the server's message names the line.
    std::fs::write(&csv, "key,product,feature\nCLI-IMP-3,7,8\nbad key,7,8\n").unwrap();
    let bad = vypusk(
        &server.base,
        Some(&key),
        None,
        &["license", "import", csv.to_str().unwrap()],
    );
    assert_eq!(bad.code, 4, "{bad}");
    assert!(bad.stderr.contains("line 3"), "{bad}");
    let missing = vypusk(
        &server.base,
        Some(&key),
        None,
        &["license", "show", "CLI-IMP-3"],
    );
    assert_eq!(missing.code, 4, "{missing}");

    let out = vypusk(
        &server.base,
        Some(&key),
        None,
        &["license", "delete", "CLI-LIC-1"],
    );
    assert_eq!(out.code, 0, "{out}");
    let gone = vypusk(
        &server.base,
        Some(&key),
        None,
        &["license", "show", "CLI-LIC-1"],
    );
    assert_eq!(gone.code, 4, "{gone}");

    // A publish key may not read licenses: refused, naming the permission.
    let (_, publisher) = server.create_api_key(&["publish"]).await;
    let refused = vypusk(&server.base, Some(&publisher), None, &["license", "list"]);
    assert_eq!(refused.code, 4, "{refused}");
    assert!(
        refused.stderr.contains("403") && refused.stderr.contains("licenses permission"),
        "{refused}"
    );
    assert!(refused.stdout.is_empty(), "{refused}");
}

#[tokio::test]
async fn api_keys_over_http_and_on_the_data_directory() {
    let server = TestServer::start().await;
    let data_dir = server.data_dir.path();

    // Without a key: the data directory, as the very first key is made.
    let boot = vypusk(
        &server.base,
        None,
        Some(data_dir),
        &[
            "api-key",
            "create",
            "--name",
            "boot",
            "--permissions",
            "admin",
        ],
    );
    assert_eq!(boot.code, 0, "{boot}");
    assert!(
        boot.stderr.contains("working on the data directory"),
        "{boot}"
    );
    let admin_key = boot.stdout.lines().last().unwrap().trim().to_owned();
    assert!(admin_key.starts_with("vypk_"), "{boot}");

    // With it: over HTTP (a data directory that does not exist is never touched).
    let nowhere = Some(Path::new("/nonexistent-data-dir"));
    let out = vypusk(
        &server.base,
        Some(&admin_key),
        nowhere,
        &[
            "api-key",
            "create",
            "--name",
            "ci",
            "--permissions",
            "read,publish",
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(!out.stderr.contains("data directory"), "{out}");
    let created: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(created["name"], "ci");
    assert_eq!(created["permissions"], json!(["read", "publish"]));
    let ci_key = created["key"].as_str().expect("key");
    assert!(ci_key.starts_with(created["prefix"].as_str().unwrap()));
    let ci_id = created["id"].as_i64().expect("id");
    // The new key works.
    let (status, _) = vypusk_tests::send_json(
        server
            .client
            .get(server.url("/api/v1/distributions"))
            .bearer_auth(ci_key),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let list = json_of(&server, &admin_key, &["api-key", "list"]);
    assert_eq!(list["total"], 2);
    let ci = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == ci_id)
        .expect("ci listed");
    assert_eq!(ci["name"], "ci");
    assert_eq!(ci["permissions"], json!(["read", "publish"]));
    assert!(ci.get("key").is_none(), "{list}");
    let table = text_of(&server, &admin_key, &["api-key", "list"]);
    assert!(
        table
            .lines()
            .next()
            .unwrap_or_default()
            .contains("permissions")
            && table.contains("read,publish")
            && !table.contains(ci_key),
        "{table}"
    );

    // revoke is delete's alias; a key that is gone is a refusal.
    let out = vypusk(
        &server.base,
        Some(&admin_key),
        None,
        &["api-key", "revoke", &ci_id.to_string()],
    );
    assert_eq!(out.code, 0, "{out}");
    let again = vypusk(
        &server.base,
        Some(&admin_key),
        None,
        &["api-key", "delete", &ci_id.to_string()],
    );
    assert_eq!(again.code, 4, "{again}");

    // The data directory answers in the same shape.
    let out = vypusk(
        &server.base,
        None,
        Some(data_dir),
        &["api-key", "list", "--json"],
    );
    assert_eq!(out.code, 0, "{out}");
    let direct: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(direct["total"], 1);
    assert_eq!(direct["items"][0]["name"], "boot");
    assert_eq!(direct["items"][0]["permissions"], json!(["admin"]));

    // A publish key cannot manage keys.
    let (_, publisher) = server.create_api_key(&["publish"]).await;
    let refused = vypusk(&server.base, Some(&publisher), None, &["api-key", "list"]);
    assert_eq!(refused.code, 4, "{refused}");
    assert!(refused.stderr.contains("admin permission"), "{refused}");
}

#[tokio::test]
async fn without_a_server_or_a_key_the_error_is_clear() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = vypusk(&url, Some("vypk_x"), None, &["distribution", "list"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr.contains("cannot reach the vypusk server") && out.stderr.contains(&url),
        "{out}"
    );
    assert!(out.stdout.is_empty(), "{out}");

    for args in [
        &["distribution", "list"][..],
        &["release", "show", "1"],
        &["license", "list"],
    ] {
        let out = vypusk(&url, None, None, args);
        assert_eq!(out.code, 2, "{args:?}: {out}");
        assert!(
            out.stderr.contains("needs an API key") && out.stderr.contains("VYPUSK_API_KEY"),
            "{args:?}: {out}"
        );
    }

    // Bad flag values are usage errors, before any request.
    let out = vypusk(
        &url,
        Some("vypk_x"),
        None,
        &["license", "create", "--key", "K", "--feature", "1-2"],
    );
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("PRODUCT/FEATURE"), "{out}");
}
