//! vypusk behind nginx as the deployment guide configures it (docs/deploy/nginx-vypusk.conf):
//! TLS at the proxy, `trusted_proxies` naming the proxy's address, clients behind it told
//! apart by `X-Forwarded-For`, and a client talking to vypusk directly unable to spoof it.
//!
//! Addresses: nginx listens on 127.0.0.1 and connects upstream from 127.0.0.2; the clients
//! behind it connect from 127.0.0.3 and 127.0.0.4; the direct client from 127.0.0.5.

use reqwest::StatusCode;
use serde_json::{Value, json};
use vypusk_tests::proxy::{Nginx, free_port};
use vypusk_tests::*;

const PAID: &str = "PAID_TOOL";
const CONF: &str = "УправлениеТорговлей";

fn check(key: &str) -> Value {
    json!({"TYPE": PAID, "CONF": CONF, "CONF_VERSION": "11.5.1.1", "KEY": key, "INSTALLED_VERSION": ""})
}

async fn post(client: &reqwest::Client, url: String, body: &Value) -> (StatusCode, Value) {
    send_json(client.post(url).json(body)).await
}

fn versions(answer: &Value) -> Vec<String> {
    answer["modules"]
        .as_array()
        .unwrap_or_else(|| panic!("no modules in {answer}"))
        .iter()
        .map(|m| m["uniqid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn clients_behind_the_proxy_are_told_apart_and_cannot_be_spoofed() {
    let port = free_port();
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            ("VYPUSK_TRUSTED_PROXIES".into(), "127.0.0.2/32".into()),
            ("VYPUSK_PRERELEASE_NETWORKS".into(), "127.0.0.4/32".into()),
            ("VYPUSK_PUBLIC_URL".into(), Nginx::public_url(port)),
        ],
        ..Default::default()
    })
    .await;
    server
        .create_distribution(PAID, json!({"lic_product_id": 85, "lic_feature_id": 43}))
        .await;
    let big = test_bytes(24 << 20, 7);
    for (version, prerelease, bytes) in [
        ("1.0", false, big.clone()),
        ("1.1", true, test_bytes(1000, 2)),
    ] {
        server
            .create_release(
                PAID,
                json!({"version": version, "prerelease": prerelease,
                       "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
                &[(&format!("tool-{version}.zip"), &bytes)],
                true,
            )
            .await;
    }
    let (status, body) = server
        .admin_json(
            reqwest::Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": "GOOD-0000-0001", "features": [{"product": 85, "feature": 43}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let upstream = server.base.trim_start_matches("http://").to_owned();
    let nginx = Nginx::start(port, &[upstream], "127.0.0.2");
    let a = nginx.client_from("127.0.0.3");
    let b = nginx.client_from("127.0.0.4");
    let check_url = nginx.url("/releases/v1/1c/getAvailableReleases");

    // prerelease_networks matches the forwarded address: B (127.0.0.4) sees 1.1, A does not.
    let (status, answer) = post(&a, check_url.clone(), &check("GOOD-0000-0001")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(versions(&answer), ["1.0"]);
    let (_, answer) = post(&b, check_url.clone(), &check("GOOD-0000-0001")).await;
    assert_eq!(versions(&answer), ["1.1", "1.0"]);

    // Links come from public_url (the proxy), and a download resumes through it with Range.
    let (_, answer) = post(&a, check_url.clone(), &check("GOOD-0000-0001")).await;
    let link = answer["modules"][0]["download_link"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(link.starts_with(&nginx.base), "{link}");
    let head = a
        .get(&link)
        .header("Range", "bytes=0-1048575")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::PARTIAL_CONTENT);
    let etag = head.headers()["etag"].to_str().unwrap().to_owned();
    let first = head.bytes().await.unwrap();
    let rest = a
        .get(&link)
        .header("Range", "bytes=1048576-")
        .header("If-Range", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), StatusCode::PARTIAL_CONTENT);
    let mut whole = first.to_vec();
    whole.extend_from_slice(&rest.bytes().await.unwrap());
    assert_eq!(md5_hex(&whole), md5_hex(&big), "bytes through the proxy");

    // A sends 31 unknown keys and is limited; B is not.
    let mut last = StatusCode::OK;
    for i in 0..31 {
        (last, _) = post(&a, check_url.clone(), &check(&format!("BAD-{i:04}-KEY"))).await;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = post(&b, check_url.clone(), &check("BAD-9999-KEY")).await;
    assert_eq!(status, StatusCode::OK, "B was limited for A's failures");

    // A client talking to vypusk directly cannot claim another address.
    let direct = reqwest::Client::builder()
        .local_address("127.0.0.5".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let (status, answer) = send_json(
        direct
            .post(server.url("/releases/v1/1c/getAvailableReleases"))
            .header("X-Forwarded-For", "127.0.0.4")
            .json(&check("GOOD-0000-0001")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        versions(&answer),
        ["1.0"],
        "the forged X-Forwarded-For was believed"
    );
}

/// Uploads through the proxy as the guide configures it: streamed, larger than nginx's
/// default 1 MiB body limit.
#[tokio::test]
async fn uploads_pass_through_the_proxy() {
    let port = free_port();
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            ("VYPUSK_TRUSTED_PROXIES".into(), "127.0.0.2/32".into()),
            ("VYPUSK_PUBLIC_URL".into(), Nginx::public_url(port)),
        ],
        ..Default::default()
    })
    .await;
    server.create_distribution("FREE_TOOL", json!({})).await;
    let upstream = server.base.trim_start_matches("http://").to_owned();
    let nginx = Nginx::start(port, &[upstream], "127.0.0.2");
    let client = nginx.client_from("127.0.0.3");
    let (status, created) = send_json(
        client
            .post(nginx.url("/api/v1/distributions/FREE_TOOL/releases"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&json!({"version": "2.0"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    let bytes = test_bytes(40 << 20, 9);
    let (status, file) = send_json(
        client
            .put(nginx.url(&format!("/api/v1/releases/{id}/files/big.zip")))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .body(bytes.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(file["sha256"], sha256_hex(&bytes));
}
