//! Offline bundles (issue 10) end to end: `GET /api/v1/releases/{id}/bundle` of the real
//! `vypusk serve` and `vypusk bundle`, read back with the `tar` crate and checked the way an
//! offline installer checks them (entry order, header, signature, file digests).

use std::io::Read;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_protocol::PinnedKeys;
use vypusk_tests::*;

const PAID: &str = "BUNDLE_CRM";
const FREE: &str = "BUNDLE_FREE";
const KEY: &str = "BNDL-0000-0000-0001";
/// Longer than the 100 bytes of a tar header's name field (GNU long-name entry).
const LONG_NAME: &str = "Расширение для проверки длинных имён файлов в архиве комплекта.cfe";

struct Seeded {
    /// The paid release with two files.
    release: i64,
    files: Vec<(String, Vec<u8>)>,
    free_release: i64,
}

async fn create_license(server: &TestServer, key: &str, features: Value, beta: bool) {
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(
                json!({"key": key, "customer": "ООО Ромашка", "beta": beta, "features": features}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn seed(server: &TestServer) -> Seeded {
    server
        .create_distribution(
            PAID,
            json!({"name": "Комплект CRM", "lic_product_id": 85, "lic_feature_id": 43}),
        )
        .await;
    let files = vec![
        ("crm.zip".to_owned(), test_bytes(70_001, 1)),
        (LONG_NAME.to_owned(), test_bytes(513, 2)),
    ];
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let release = server
        .create_release(
            PAID,
            json!({
                "version": "2.1.0.5",
                "changelog": "- Офлайн-установка.",
                "compatibility": [
                    {"conf": "УправлениеТорговлей", "min_1c_version": "11.4.11.55"},
                    {"conf": "*", "min_1c_version": "2.0", "max_1c_version": "3.0"},
                ],
            }),
            &borrowed,
            true,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    create_license(
        server,
        KEY,
        json!([{"product": 85, "feature": 43, "active_until": null}]),
        false,
    )
    .await;
    server.create_distribution(FREE, json!({})).await;
    let free_release = server
        .create_release(
            FREE,
            json!({"version": "1.0", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("free.zip", b"free bytes")],
            true,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    Seeded {
        release,
        files,
        free_release,
    }
}

fn bundle_url(server: &TestServer, id: impl std::fmt::Display, query: &str) -> String {
    server.url(&format!("/api/v1/releases/{id}/bundle{query}"))
}

/// The `{Code, Text, Message, Exception}` shape of a refusal; returns the Message.
fn api_error(status: StatusCode, body: &Value, expected: StatusCode) -> String {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["Code"], json!(expected.as_u16()), "{body}");
    assert!(
        body["Text"].is_string() && body["Exception"].is_string(),
        "{body}"
    );
    body["Message"].as_str().expect("Message").to_owned()
}

async fn admin_bundle(
    server: &TestServer,
    id: impl std::fmt::Display,
    query: &str,
) -> (StatusCode, Value) {
    send_json(server.admin(Method::GET, &format!("/api/v1/releases/{id}/bundle{query}"))).await
}

/// Every entry of a tar, in order: path and bytes.
fn entries(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar_bytes);
    archive
        .entries()
        .expect("a tar")
        .map(|e| {
            let mut e = e.expect("an entry");
            let path = e
                .path()
                .expect("a path")
                .to_str()
                .expect("UTF-8")
                .to_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).expect("entry bytes");
            (path, bytes)
        })
        .collect()
}

fn pinned(server: &TestServer) -> PinnedKeys {
    PinnedKeys::from_pem_bundle(&std::fs::read_to_string(server.public_key_path()).unwrap())
        .unwrap()
}

/// Checks a bundle the way an offline installer does and returns its header and answer.
fn verify_bundle(server: &TestServer, seeded: &Seeded, tar_bytes: &[u8]) -> (Value, Value) {
    let entries = entries(tar_bytes);
    let paths: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
    let expected: Vec<String> = ["vypusk-bundle.json".to_owned(), "answer.json".to_owned()]
        .into_iter()
        .chain(seeded.files.iter().map(|(n, _)| format!("files/{n}")))
        .collect();
    assert_eq!(paths, expected);

    let header: Value = serde_json::from_slice(&entries[0].1).unwrap();
    assert_eq!(header["format"], 1, "{header}");
    assert_eq!(header["type"], PAID);
    assert_eq!(header["version"], "2.1.0.5");
    assert!(
        header["made_by"].as_str().unwrap().starts_with("vypusk/"),
        "{header}"
    );
    let query_id = header["query_id"].as_str().unwrap();
    assert_eq!(query_id.len(), 32, "{header}");
    assert!(query_id.bytes().all(|b| b.is_ascii_hexdigit()), "{header}");

    // The answer is the server's, signed for the header's QueryID, and for no other.
    let answer_bytes = &entries[1].1;
    let keys = pinned(server);
    let signature = header["signature"].as_str();
    keys.verify_response(query_id, answer_bytes, signature)
        .expect("the answer's signature verifies with the header's QueryID");
    assert!(keys.verify_response("", answer_bytes, signature).is_err());
    let mut tampered = answer_bytes.clone();
    tampered[10] ^= 1;
    assert!(
        keys.verify_response(query_id, &tampered, signature)
            .is_err()
    );

    let answer: Value = serde_json::from_slice(answer_bytes).unwrap();
    let text = String::from_utf8(answer_bytes.clone()).unwrap();
    assert!(
        text.starts_with("{\"modules\":[") && text.contains("],\"result\":\"\",\"server_time\":\""),
        "{text}"
    );
    assert!(answer["server_time"].as_str().unwrap().ends_with('Z'));
    let modules = answer["modules"].as_array().unwrap();
    assert_eq!(modules.len(), 1, "{answer}");
    let m = &modules[0];
    assert_eq!(m["release_id"], seeded.release);
    assert_eq!(m["uniqid"], "2.1.0.5");
    assert_eq!(m["distribution"], PAID);
    assert_eq!(m["version_scheme"], "1c");
    assert_eq!(m["downloadable"], true);
    assert_eq!(m["untested"], false);
    assert_eq!(
        m["compatibility"],
        json!([
            {"conf": "УправлениеТорговлей", "min_1c_version": "11.4.11.55"},
            {"conf": "*", "min_1c_version": "2.0", "max_1c_version": "3.0"},
        ])
    );
    assert!(
        m["download_link"]
            .as_str()
            .unwrap()
            .contains("/releases/v1/files/"),
        "{m}"
    );

    // Each file entry is exactly what the signed module declares, and what was uploaded.
    let declared = m["files"].as_array().unwrap();
    assert_eq!(declared.len(), seeded.files.len());
    for ((d, (path, bytes)), (name, uploaded)) in
        declared.iter().zip(&entries[2..]).zip(&seeded.files)
    {
        assert_eq!(path, &format!("files/{}", d["name"].as_str().unwrap()));
        assert_eq!(d["name"], name.as_str());
        assert_eq!(d["size"], bytes.len() as u64);
        assert_eq!(d["md5"], md5_hex(bytes));
        assert_eq!(d["sha256"], sha256_hex(bytes));
        assert_eq!(bytes, uploaded);
    }
    (header, answer)
}

/// Without the links' tokens (their expiry is rounded to the minute).
fn without_links(mut module: Value) -> Value {
    module["download_link"] = json!("");
    for f in module["files"].as_array_mut().unwrap() {
        f["url"] = json!("");
    }
    module
}

#[tokio::test]
async fn the_bundle_route_needs_the_licenses_permission_before_anything_else() {
    let server = TestServer::start().await;
    let seeded = seed(&server).await;
    let (_, reader) = server.create_api_key(&["read"]).await;
    let (_, publisher) = server.create_api_key(&["publish"]).await;
    let (_, licenser) = server.create_api_key(&["licenses"]).await;

    // No credentials: 401.
    let (status, body) = send_json(server.client.get(bundle_url(
        &server,
        seeded.release,
        &format!("?license={KEY}"),
    )))
    .await;
    api_error(status, &body, StatusCode::UNAUTHORIZED);
    // Without `licenses`: 403 whatever the rest of the request says — a good one, an unknown
    // release, a malformed id, a malformed key, an unknown query parameter.
    for key in [&reader, &publisher] {
        for (id, query) in [
            (seeded.release.to_string(), format!("?license={KEY}")),
            ("999999".to_owned(), String::new()),
            (
                "not-a-number".to_owned(),
                "?license=bad%20key!&bogus=1".to_owned(),
            ),
        ] {
            let (status, body) = send_json(
                server
                    .client
                    .get(bundle_url(&server, &id, &query))
                    .bearer_auth(key),
            )
            .await;
            let message = api_error(status, &body, StatusCode::FORBIDDEN);
            assert!(message.contains("licenses"), "{message}");
        }
    }
    // With it, the request is looked at.
    let (status, body) = send_json(
        server
            .client
            .get(bundle_url(&server, 999999, ""))
            .header("x-api-key", &licenser),
    )
    .await;
    api_error(status, &body, StatusCode::NOT_FOUND);
    let resp = server
        .client
        .get(bundle_url(
            &server,
            seeded.release,
            &format!("?license={KEY}"),
        ))
        .bearer_auth(&licenser)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.bytes().await.unwrap();
    verify_bundle(&server, &seeded, &bytes);
}

#[tokio::test]
async fn refusals_say_why_in_the_vendor_api_error_shape() {
    let server = TestServer::start().await;
    let seeded = seed(&server).await;
    let r = seeded.release;

    // Unknown release, malformed id, unknown query parameter.
    let (status, body) = admin_bundle(&server, 999999, &format!("?license={KEY}")).await;
    let message = api_error(status, &body, StatusCode::NOT_FOUND);
    assert!(message.contains("release 999999 not found"), "{message}");
    let (status, body) = admin_bundle(&server, "abc", "").await;
    api_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = admin_bundle(&server, r, &format!("?license={KEY}&conf=x")).await;
    api_error(status, &body, StatusCode::BAD_REQUEST);

    // A draft and a yanked release are not published.
    let draft = server
        .create_release(
            PAID,
            json!({"version": "3.0", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("d.zip", b"draft")],
            false,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let (status, body) = admin_bundle(&server, draft, &format!("?license={KEY}")).await;
    let message = api_error(status, &body, StatusCode::CONFLICT);
    assert!(message.contains("draft"), "{message}");
    let yanked = server
        .create_release(
            PAID,
            json!({"version": "3.1", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("y.zip", b"yanked")],
            true,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let (status, body) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/releases/{yanked}/yank"),
            Some(json!({"reason": "broken"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = admin_bundle(&server, yanked, &format!("?license={KEY}")).await;
    let message = api_error(status, &body, StatusCode::CONFLICT);
    assert!(message.contains("yanked"), "{message}");

    // A paid distribution needs a license; a malformed key is a 400.
    let (status, body) = admin_bundle(&server, r, "").await;
    let message = api_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(message.contains("license"), "{message}");
    let (status, body) = admin_bundle(&server, r, "?license=bad%20key!").await;
    let message = api_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(message.contains("malformed license key"), "{message}");

    // Not downloadable, in the words of a check answer's `result`.
    create_license(
        &server,
        "BNDL-REVOKED-0001",
        json!([{"product": 85, "feature": 43}]),
        false,
    )
    .await;
    let (status, body) = server
        .admin_json(
            Method::PUT,
            "/api/v1/licenses/BNDL-REVOKED-0001",
            Some(json!({"revoked": true, "features": [{"product": 85, "feature": 43}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    create_license(
        &server,
        "BNDL-OTHER-0001",
        json!([{"product": 85, "feature": 44}]),
        false,
    )
    .await;
    create_license(
        &server,
        "BNDL-LAPSED-0001",
        json!([{"product": 85, "feature": 43, "active_until": "2020-01-01"}]),
        false,
    )
    .await;
    for (key, says) in [
        ("BNDL-UNKNOWN-0001", "not known"),
        ("BNDL-REVOKED-0001", "revoked"),
        ("BNDL-OTHER-0001", "product 85 feature 43"),
        ("BNDL-LAPSED-0001", "subscription ended on 2020-01-01"),
    ] {
        let (status, body) = admin_bundle(&server, r, &format!("?license={key}")).await;
        let message = api_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(message.contains(says), "{key}: {message}");
        // The same sentence a check gives.
        let (_, check) = server
            .client_post("getAvailableReleases", json!({"TYPE": PAID, "KEY": key}))
            .await;
        assert_eq!(check["result"], message.as_str(), "{key}: {check}");
    }

    // A prerelease only for a beta license.
    let pre = server
        .create_release(
            PAID,
            json!({"version": "4.0", "prerelease": true, "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("pre.zip", b"prerelease")],
            true,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let (status, body) = admin_bundle(&server, pre, &format!("?license={KEY}")).await;
    let message = api_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message.contains("prerelease"), "{message}");
    create_license(
        &server,
        "BNDL-BETA-0001",
        json!([{"product": 85, "feature": 43}]),
        true,
    )
    .await;
    let resp = server
        .admin(
            Method::GET,
            &format!("/api/v1/releases/{pre}/bundle?license=BNDL-BETA-0001"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // A free distribution needs no license.
    let resp = server
        .admin(
            Method::GET,
            &format!("/api/v1/releases/{}/bundle", seeded.free_release),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let entries = entries(&resp.bytes().await.unwrap());
    assert_eq!(
        entries[2],
        ("files/free.zip".to_owned(), b"free bytes".to_vec())
    );
}

#[tokio::test]
async fn a_bundle_reads_back_with_tar_and_verifies() {
    let server = TestServer::start().await;
    let seeded = seed(&server).await;
    let resp = server
        .admin(
            Method::GET,
            &format!("/api/v1/releases/{}/bundle?license={KEY}", seeded.release),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "application/x-tar");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"{PAID}-2.1.0.5.vypusk-bundle.tar\"").as_str()
    );
    let declared: u64 = headers["content-length"].to_str().unwrap().parse().unwrap();
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(declared, bytes.len() as u64);
    assert_eq!(bytes.len() % 512, 0);
    let (_, answer) = verify_bundle(&server, &seeded, &bytes);

    // The module is the one a check without CONF renders for that license.
    let (status, check) = server
        .client_post(
            "getAvailableReleases",
            json!({"TYPE": PAID, "KEY": KEY, "INSTALLED_VERSION": "2.1.0.4"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(
        without_links(answer["modules"][0].clone()),
        without_links(check["modules"][0].clone())
    );
    // Its links download the declared bytes.
    let link = answer["modules"][0]["download_link"].as_str().unwrap();
    let got = server.client.get(link).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(
        got.bytes().await.unwrap().as_ref(),
        seeded.files[0].1.as_slice()
    );

    // Each bundle is signed for a fresh QueryID.
    let again = server
        .admin(
            Method::GET,
            &format!("/api/v1/releases/{}/bundle?license={KEY}", seeded.release),
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (h1, _) = verify_bundle(&server, &seeded, &bytes);
    let (h2, _) = verify_bundle(&server, &seeded, &again);
    assert_ne!(h1["query_id"], h2["query_id"]);
}

#[tokio::test]
async fn vypusk_bundle_writes_the_same_bundle_without_http() {
    let server = TestServer::start().await;
    let seeded = seed(&server).await;
    let via_http = server
        .admin(
            Method::GET,
            &format!("/api/v1/releases/{}/bundle?license={KEY}", seeded.release),
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("crm.vypusk-bundle.tar");
    let run = |args: &[&str]| {
        std::process::Command::new(vypusk_bin())
            .arg("--data-dir")
            .arg(server.data_dir.path())
            .args(["--public-url", &server.base])
            .args(args)
            .env_remove("VYPUSK_DATABASE_URL")
            .env_remove("VYPUSK_STORAGE_URL")
            .env("VYPUSK_LOG", "warn")
            .output()
            .unwrap()
    };
    let release = seeded.release.to_string();
    let output = run(&[
        "bundle",
        "--release",
        &release,
        "--license",
        KEY,
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(out.to_str().unwrap()) && stdout.contains("2.1.0.5"),
        "{stdout}"
    );
    // Written atomically: the file and nothing else (no temporary file left).
    let left: Vec<_> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("crm.vypusk-bundle.tar")]);

    let from_cli = std::fs::read(&out).unwrap();
    let (cli_header, cli_answer) = verify_bundle(&server, &seeded, &from_cli);
    let (http_header, http_answer) = verify_bundle(&server, &seeded, &via_http);
    let http_entries = entries(&via_http);
    let cli_entries = entries(&from_cli);
    assert_eq!(
        cli_entries.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        http_entries.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for field in ["format", "type", "version", "made_by"] {
        assert_eq!(cli_header[field], http_header[field], "{field}");
    }
    assert_ne!(cli_header["query_id"], http_header["query_id"]);
    assert_eq!(
        without_links(cli_answer["modules"][0].clone()),
        without_links(http_answer["modules"][0].clone())
    );
    assert_eq!(cli_entries[2..], http_entries[2..]);

    // Refusals are the service's, as an error exit; nothing is written.
    let missing = out_dir.path().join("none.tar");
    let output = run(&[
        "bundle",
        "--release",
        "999999",
        "--out",
        missing.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("release 999999 not found"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(&[
        "bundle",
        "--release",
        &release,
        "--license",
        "BNDL-UNKNOWN-0001",
        "--out",
        missing.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not known"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!missing.exists());
}
