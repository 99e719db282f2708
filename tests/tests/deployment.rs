//! The deployment guide's files (docs/deploy/) are what the tests run, so the guide cannot
//! rot: the systemd unit's `ExecStart` and environment with the example configuration file
//! start a server whose links come from `public_url`. (nginx-vypusk.conf is exercised by
//! tests/tests/proxy.rs.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use vypusk_tests::*;

fn guide_file(name: &str) -> String {
    std::fs::read_to_string(workspace_root().join("docs/deploy").join(name))
        .unwrap_or_else(|e| panic!("docs/deploy/{name}: {e}"))
}

/// `ExecStart` split into words, and the `Environment=` assignments of the unit.
fn unit_command(unit: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut exec = Vec::new();
    let mut env = Vec::new();
    for line in unit.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("ExecStart=") {
            exec = rest.split_whitespace().map(str::to_owned).collect();
        } else if let Some(rest) = line.strip_prefix("Environment=") {
            let (k, v) = rest.split_once('=').expect("Environment=KEY=VALUE");
            env.push((k.to_owned(), v.to_owned()));
        }
    }
    assert!(!exec.is_empty(), "the unit has no ExecStart");
    (exec, env)
}

#[tokio::test]
async fn systemd_unit_and_example_configuration_start_a_server() {
    let (exec, env) = unit_command(&guide_file("vypusk.service"));
    assert_eq!(exec[0], "/usr/local/bin/vypusk");
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // The example configuration, with this test's data directory and a free port.
    let config = guide_file("vypusk.toml")
        .replace("/var/lib/vypusk", data_dir.to_str().unwrap())
        .replace("127.0.0.1:8080", "127.0.0.1:0");
    let config_path = dir.path().join("vypusk.toml");
    std::fs::write(&config_path, config).unwrap();
    let args: Vec<String> = exec[1..]
        .iter()
        .map(|a| {
            if a == "/etc/vypusk/vypusk.toml" {
                config_path.to_str().unwrap().to_owned()
            } else {
                a.clone()
            }
        })
        .collect();
    let mut child = Command::new(vypusk_bin())
        .args(&args)
        .envs(env)
        .env_remove("VYPUSK_DATABASE_URL")
        .env_remove("VYPUSK_STORAGE_URL")
        .env("VYPUSK_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start vypusk as the unit does");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("vypusk exited before listening")
            .unwrap();
        if let Some(at) = line.find("listening on ") {
            break line[at + "listening on ".len()..].trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let client = reqwest::Client::new();
    let admin = |m: reqwest::Method, p: &str| {
        client
            .request(m, format!("{base}{p}"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
    };
    let resp = admin(reqwest::Method::POST, "/api/v1/distributions")
        .json(&json!({"code": "TOOL", "name": "Tool"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = admin(reqwest::Method::POST, "/api/v1/distributions/TOOL/releases")
        .json(&json!({"version": "1.0", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    let resp = admin(
        reqwest::Method::PUT,
        &format!("/api/v1/releases/{id}/files/tool.zip"),
    )
    .body(test_bytes(100, 1))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = admin(
        reqwest::Method::POST,
        &format!("/api/v1/releases/{id}/publish"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = client
        .post(format!("{base}/releases/v1/1c/getAvailableReleases"))
        .json(&json!({"TYPE": "TOOL", "CONF": "x", "CONF_VERSION": "1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = answer["modules"][0]["download_link"].as_str().unwrap();
    assert!(
        link.starts_with("https://updates.example.com/releases/v1/files/"),
        "{answer}"
    );
    assert!(
        data_dir.join("vypusk.db").exists(),
        "the data directory of the configuration"
    );
    let _ = child.kill();
    let _ = child.wait();
}
