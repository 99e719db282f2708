//! What a BSL client (1C's `HTTPСоединение`/`HTTPОтвет`) needs on the wire (SPEC §4, §4.1;
//! issue 9): header names in Title-Case (its header map is case-sensitive), JSON answers
//! declaring `charset=utf-8`, and request bodies that start with a byte-order mark accepted on
//! every JSON route.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vypusk_tests::*;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The raw answer head to a request written by hand.
async fn raw_head(server: &TestServer, request: String) -> String {
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    text[..text.find("\r\n\r\n").expect("an answer head")].to_owned()
}

#[tokio::test]
async fn header_names_are_title_case_and_json_declares_utf8() {
    let server = TestServer::start().await;
    server.create_distribution("FREE_TOOL", json!({})).await;
    let body = json!({"TYPE": "FREE_TOOL", "CONF": "УТ", "CONF_VERSION": "11"}).to_string();
    let head = raw_head(
        &server,
        format!(
            "POST /releases/v1/1c/getAvailableReleases HTTP/1.1\r\nHost: x\r\n\
             Licence-QueryID: q-1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Exactly so: the two names a BSL client reads (seed 000's spelling is Title-Case).
    for line in [
        "\r\nContent-Type: application/json; charset=utf-8\r\n",
        "\r\nLicence-Signature: ",
    ] {
        assert!(
            format!("{head}\r\n").contains(line),
            "{line:?} not in the answer head:\n{head}"
        );
    }
    // hyper's Title-Case writes `Licence-Queryid` and `Licence-Serverversion`: present, and
    // no header name goes out in lower case.
    let lower = format!("{head}\r\n").to_ascii_lowercase();
    assert!(lower.contains("\r\nlicence-queryid: q-1\r\n"), "{head}");
    assert!(lower.contains("\r\nlicence-serverversion: "), "{head}");
    for line in head.lines().skip(1) {
        let name = line.split(':').next().unwrap_or("");
        assert!(
            name.split('-')
                .all(|w| w.starts_with(|c: char| c.is_ascii_uppercase())),
            "{name:?} is not Title-Case:\n{head}"
        );
    }
    // Errors of both families too.
    let head = raw_head(
        &server,
        "GET /api/v1/distributions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: application/json; charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("\r\nLicence-Signature: "), "{head}");
    assert!(head.contains("\r\nWww-Authenticate: "), "{head}");
}

async fn send_bom(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Value,
    admin: bool,
) -> (StatusCode, Value) {
    let mut bytes = BOM.to_vec();
    bytes.extend_from_slice(body.to_string().as_bytes());
    let mut req = server
        .client
        .request(method, server.url(path))
        .header("Content-Type", "application/json; charset=utf-8")
        .body(bytes);
    if admin {
        req = req.basic_auth("admin", Some(ADMIN_PASSWORD));
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let value = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, value)
}

#[tokio::test]
async fn a_byte_order_mark_is_accepted_on_every_json_route() {
    let server = TestServer::start().await;
    macro_rules! api {
        ($m:expr, $p:expr, $b:expr $(,)?) => {
            send_bom(&server, $m, $p, $b, true)
        };
    }
    let (s, b) = api!(
        Method::POST,
        "/api/v1/distributions",
        json!({"code": "BOM", "name": "Имя"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = api!(
        Method::PUT,
        "/api/v1/distributions/BOM",
        json!({"name": "Имя 2", "developer": "Вендор"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, created) = api!(
        Method::POST,
        "/api/v1/distributions/BOM/releases",
        json!({"version": "1.0", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    let (s, b) = api!(
        Method::PUT,
        &format!("/api/v1/releases/{id}"),
        json!({"changelog": "- Исправлено"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let resp = server
        .admin(
            Method::PUT,
            &format!("/api/v1/releases/{id}/files/tool.zip"),
        )
        .body(test_bytes(100, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (s, b) = api!(
        Method::POST,
        &format!("/api/v1/releases/{id}/publish"),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = api!(
        Method::POST,
        "/api/v1/licenses",
        json!({"key": "BOM-0000-0001", "customer": "ООО", "features": []}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = api!(
        Method::PUT,
        "/api/v1/licenses/BOM-0000-0001",
        json!({"beta": true, "customer": "ООО", "features": []}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = api!(
        Method::POST,
        "/api/v1/api-keys",
        json!({"name": "bom", "permissions": ["read"]}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    let check = json!({"TYPE": "BOM", "CONF": "УТ", "CONF_VERSION": "11", "KEY": "BOM-0000-0001"});
    for route in ["getAvailableReleases", "getLatestRelease", "getModuleInfo"] {
        let (s, b) = send_bom(
            &server,
            Method::POST,
            &format!("/releases/v1/1c/{route}"),
            check.clone(),
            false,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{route}: {b}");
        assert_eq!(b["result"], "", "{route}: {b}");
    }
    let (s, b) = api!(
        Method::POST,
        &format!("/api/v1/releases/{id}/yank"),
        json!({"reason": "тест"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}
