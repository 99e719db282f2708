//! A server killed in the middle of an upload never shows a partial file, and cleans up after
//! itself on the next start.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use vypusk_tests::*;

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn killed_during_upload_leaves_no_partial_file() {
    let mut server = TestServer::start().await;
    server.create_distribution("BIG", json!({})).await;
    let release = server
        .create_release(
            "BIG",
            json!({"version": "1.0", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[],
            false,
        )
        .await;
    let id = release["id"].as_i64().unwrap();

    // Stream 64 MiB slowly; the server is killed after about 8 MiB went out.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(2);
    let chunk = bytes::Bytes::from(test_bytes(1 << 20, 3));
    let feeder = tokio::spawn(async move {
        for _ in 0..64 {
            if tx.send(Ok(chunk.clone())).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    });
    let body = reqwest::Body::wrap_stream(tokio_stream(rx));
    let upload = server
        .admin(Method::PUT, &format!("/api/v1/releases/{id}/files/big.zip"))
        .header("Content-Length", (64u64 << 20).to_string())
        .body(body)
        .send();
    let upload = tokio::spawn(upload);
    // Wait until something is being written (bounded, for slow machines), then a bit more.
    let objects = server.data_dir.path().join("objects");
    for _ in 0..200 {
        if !files_under(&objects).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !files_under(&objects).is_empty(),
        "the upload should have started writing"
    );
    server.kill();
    let result = upload.await.unwrap();
    assert!(result.is_err() || !result.unwrap().status().is_success());
    feeder.abort();

    server.kill_and_restart().await;
    let (status, release) = server
        .admin_json(Method::GET, &format!("/api/v1/releases/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        release["files"],
        json!([]),
        "no partial file may show: {release}"
    );
    // The leftovers of the interrupted upload are gone and nothing reached the blob area.
    let left = files_under(&objects);
    assert!(left.is_empty(), "leftovers after restart: {left:?}");
    // Publishing without files is refused; the release stays a draft.
    let (status, _) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/releases/{id}/publish"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The same upload completes after the restart.
    let bytes = test_bytes(3 << 20, 3);
    let resp = server
        .admin(Method::PUT, &format!("/api/v1/releases/{id}/files/big.zip"))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let file: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(file["md5"], md5_hex(&bytes));
    assert_eq!(file["size"], bytes.len() as u64);
}

fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn graceful_shutdown_writes_queued_download_events() {
    let mut server = TestServer::start().await;
    server.create_distribution("F", json!({})).await;
    server
        .create_release(
            "F",
            json!({"version": "1", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("a.zip", b"abc")],
            true,
        )
        .await;
    let (_, a) = server
        .client_post(
            "getAvailableReleases",
            json!({"TYPE": "F", "CONF": "c", "CONF_VERSION": "1", "COUNT_DOWNLOADS": "Y"}),
        )
        .await;
    let link = a["modules"][0]["download_link"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .client
        .get(&link)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    // SIGTERM right away: the queued event must still be written.
    server.restart().await;
    let (_, info) = server
        .client_post("getModuleInfo", json!({"TYPE": "F"}))
        .await;
    assert_eq!(info["module"]["releases"][0]["downloads"], 1, "{info}");
}
