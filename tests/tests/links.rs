//! Download links (issue 9): no link in any answer reveals the license key in any encoding (a
//! key, or its hash — itself a `getModuleFile` credential — read from a proxy log must not
//! be usable), and the license named by a link is checked again when it is used.

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;
use vypusk_tests::TestServer;

const KEY: &str = "Acme-0000-Link-0042";

/// Every form of the key that would let a reader of the link recover or use it.
fn encodings(key: &str) -> Vec<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let sha = sha2::Sha256::digest(key.as_bytes()).to_vec();
    let md5 = md5::Md5::digest(key.as_bytes()).to_vec();
    let mut out = Vec::new();
    for raw in [key.as_bytes().to_vec(), sha.clone(), md5.clone()] {
        out.push(hex::encode(&raw).into_bytes());
        out.push(hex::encode_upper(&raw).into_bytes());
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            // Base64 of a prefix long enough to be telling, in any alignment.
            out.push(engine.encode(&raw[..12]).into_bytes());
            out.push(engine.encode(&raw[1..13]).into_bytes());
            out.push(engine.encode(&raw[2..14]).into_bytes());
        }
    }
    out.push(key.as_bytes().to_vec());
    out.push(key.to_ascii_lowercase().into_bytes());
    out.push(key.to_ascii_uppercase().into_bytes());
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn urls(answer: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for m in answer["modules"].as_array().unwrap() {
        out.push(m["download_link"].as_str().unwrap().to_owned());
        for f in m["files"].as_array().unwrap() {
            out.push(f["url"].as_str().unwrap().to_owned());
        }
    }
    out.retain(|u| !u.is_empty());
    out
}

#[tokio::test]
async fn no_link_reveals_the_license_key_and_the_license_is_checked_at_download() {
    let server = TestServer::start().await;
    server
        .create_distribution("PAID", json!({"lic_product_id": 85, "lic_feature_id": 43}))
        .await;
    let any = json!([{"conf": "*", "min_1c_version": "0"}]);
    for (version, prerelease) in [("1.0.0.1", false), ("1.0.0.2", false), ("1.0.0.3", true)] {
        server
            .create_release(
                "PAID",
                json!({"version": version, "compatibility": any, "prerelease": prerelease}),
                &[("ext.cfe", version.as_bytes()), ("readme.txt", b"read me")],
                true,
            )
            .await;
    }
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": KEY, "customer": "ООО Ромашка", "beta": true,
                        "features": [{"product": 85, "feature": 43}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let needles = encodings(KEY);
    let mut seen = Vec::new();
    for route in ["getAvailableReleases", "getLatestRelease"] {
        for count in ["Y", "N"] {
            let (status, answer) = server
                .client_post(
                    route,
                    json!({"TYPE": "PAID", "CONF": "УправлениеТорговлей", "CONF_VERSION": "11.5.1.1",
                           "KEY": KEY, "COUNT_DOWNLOADS": count, "INSTALLED_VERSION": ""}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            seen.extend(urls(&answer));
        }
    }
    // 3 releases × (link + 2 files) × 2, and the latest's 3 × 2.
    assert_eq!(seen.len(), 24, "{seen:#?}");
    for url in &seen {
        // The token is the path segment before the file name; decoded, it must not carry the
        // key's bytes (or their hashes) either.
        let token = url.rsplit('/').nth(1).unwrap();
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .expect("a token is base64url");
        for needle in &needles {
            assert!(
                !contains(url.as_bytes(), needle),
                "{url} contains {:?}",
                String::from_utf8_lossy(needle)
            );
        }
        let sha = sha2::Sha256::digest(KEY.as_bytes());
        for raw in [
            KEY.as_bytes(),
            &sha[..8],
            &md5::Md5::digest(KEY.as_bytes())[..8],
        ] {
            assert!(!contains(&decoded, raw), "{url}: the token carries the key");
        }
    }

    // The license is looked up again when a link is used: revoked, its links stop working.
    // (seen[0..3] are the prerelease's, which a revoked license would not even see: 404.)
    let link = seen[3].clone();
    assert!(link.ends_with("/ext.cfe"));
    assert_eq!(
        server.client.get(&link).send().await.unwrap().status(),
        StatusCode::OK
    );
    let (status, body) = server
        .admin_json(
            Method::PUT,
            &format!("/api/v1/licenses/{KEY}"),
            Some(json!({"revoked": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        server.client.get(&link).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}
