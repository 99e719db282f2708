//! The server on S3 storage (SPEC §4.6): uploads stream into the bucket, and with
//! `redirect_downloads` a download answers 302 to a short-lived presigned URL that serves the
//! exact bytes. Needs an S3-compatible server: `scripts/test-all.sh` (the README's test
//! command) starts `s3s-fs`; without it the test fails saying so (never skipped).

use reqwest::StatusCode;
use serde_json::json;
use vypusk_tests::*;

#[tokio::test]
async fn downloads_redirect_to_presigned_s3_urls() {
    let bucket = fresh_s3_bucket();
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            ("VYPUSK_STORAGE_URL".into(), bucket),
            ("VYPUSK_REDIRECT_DOWNLOADS".into(), "true".into()),
        ],
        ..Default::default()
    })
    .await;
    server.create_distribution("S3", json!({})).await;
    // Larger than one multipart part, so the multipart path is used.
    let bytes = test_bytes(9 << 20, 5);
    server
        .create_release(
            "S3",
            json!({"version": "1.0", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("s3.zip", &bytes)],
            true,
        )
        .await;
    let (status, answer) = server
        .client_post(
            "getAvailableReleases",
            json!({"TYPE": "S3", "CONF": "c", "CONF_VERSION": "1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let link = answer["modules"][0]["download_link"].as_str().unwrap();

    let redirect = server.client.get(link).send().await.unwrap();
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("X-Amz-Signature"), "{location}");
    let got = reqwest::get(&location).await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    let got = got.bytes().await.unwrap();
    assert_eq!(
        md5_hex(&got),
        answer["modules"][0]["files"][0]["md5"].as_str().unwrap()
    );
    assert_eq!(got.len(), bytes.len());

    // A forged token still gets no redirect.
    let forged = link.replacen("/files/", "/files/x", 1);
    assert_eq!(
        server.client.get(&forged).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}
