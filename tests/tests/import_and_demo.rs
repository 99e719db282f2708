//! Issue 11, items 7 and 8: the license CSV import takes what a vendor's Excel writes
//! (multipart uploads, `DD.MM.YYYY`, Windows-1251, a byte-order mark, `;`), and `vypusk demo`
//! works against a server that is already running and can be run again.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use vypusk_tests::{TestServer, md5_hex, send_json, vypusk_bin};

/// "ООО Ромашка" in Windows-1251.
const ROMASHKA_CP1251: &[u8] = b"\xce\xce\xce \xd0\xee\xec\xe0\xf8\xea\xe0";

fn run_vypusk(data_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(vypusk_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("VYPUSK_DATABASE_URL")
        .env_remove("VYPUSK_STORAGE_URL")
        .env_remove("VYPUSK_ADMIN_PASSWORD")
        .env("VYPUSK_LOG", "warn")
        .output()
        .expect("run vypusk");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn license(server: &TestServer, key: &str) -> Value {
    let (status, body) = server
        .admin_json(Method::GET, &format!("/api/v1/licenses/{key}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{key}: {body}");
    body
}

fn multipart(field: &str, file_name: Option<&str>, bytes: Vec<u8>) -> reqwest::multipart::Form {
    let mut part = reqwest::multipart::Part::bytes(bytes)
        .mime_str("text/csv")
        .unwrap();
    if let Some(name) = file_name {
        part = part.file_name(name.to_owned());
    }
    reqwest::multipart::Form::new().part(field.to_owned(), part)
}

const IMPORT: &str = "/api/v1/licenses/import";

/// Excel's "CSV (semicolon)" in a Russian locale: Windows-1251, `;`, CRLF, `DD.MM.YYYY`.
fn excel_cp1251(key: &str) -> Vec<u8> {
    let mut csv =
        format!("key;customer;itn;beta;product;feature;active_until\r\n{key};").into_bytes();
    csv.extend_from_slice(ROMASHKA_CP1251);
    csv.extend_from_slice(b";7701234567;N;85;43;01.02.2031\r\n");
    csv
}

#[tokio::test]
async fn import_takes_a_multipart_upload_like_curl_f() {
    let server = TestServer::start().await;
    // `curl -F file=@lic.csv`: a multipart body whose file part is the CSV.
    let csv = "key,customer,product,feature\nXLS-0001,ООО «Альфа»,85,43\nXLS-0001,,85,44\n";
    let (status, body) = send_json(server.admin(Method::POST, IMPORT).multipart(multipart(
        "file",
        Some("lic.csv"),
        csv.as_bytes().to_vec(),
    )))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["imported"].as_u64(), body["features"].as_u64()),
        (Some(1), Some(2))
    );
    let l = license(&server, "XLS-0001").await;
    assert_eq!(l["customer"], "ООО «Альфа»", "{l}");
    assert_eq!(l["features"].as_array().unwrap().len(), 2, "{l}");

    // Any field name works, and text fields next to the file part are ignored.
    let form = multipart(
        "upload",
        Some("x.csv"),
        b"key,product,feature\nXLS-0002,1,1\n".to_vec(),
    )
    .text("comment", "from Excel");
    let (status, body) = send_json(server.admin(Method::POST, IMPORT).multipart(form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    license(&server, "XLS-0002").await;

    // Bad lines of a multipart upload are still named, every one; nothing is imported.
    let bad = "key,product,feature\nXLS-0005,85,x\nbad key,85,44\nXLS-0006,85,43\n";
    let (status, body) = send_json(server.admin(Method::POST, IMPORT).multipart(multipart(
        "file",
        Some("bad.csv"),
        bad.as_bytes().to_vec(),
    )))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["Message"].as_str().unwrap_or_default();
    assert!(
        message.contains("line 2:") && message.contains("line 3:") && !message.contains("line 4:"),
        "{message}"
    );
    let (status, _) = server
        .admin_json(Method::GET, "/api/v1/licenses/XLS-0006", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Two file parts: which one is the CSV is not guessed.
    let form = multipart("a", Some("a.csv"), b"key,product,feature\n".to_vec()).part(
        "b",
        reqwest::multipart::Part::bytes(b"key,product,feature\n".to_vec()).file_name("b.csv"),
    );
    let (status, body) = send_json(server.admin(Method::POST, IMPORT).multipart(form)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["Message"]
            .as_str()
            .unwrap_or_default()
            .contains("-F file=@"),
        "{body}"
    );

    // No credentials: refused before the body is read.
    let resp = server
        .client
        .post(server.url(IMPORT))
        .multipart(multipart("file", Some("lic.csv"), csv.as_bytes().to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn import_takes_dd_mm_yyyy_dates() {
    let server = TestServer::start().await;
    let csv = "key,product,feature,active_until\n\
               DATE-0001,85,43,31.12.2030\n\
               DATE-0001,85,44,1.2.2031\n\
               DATE-0001,85,45,2031-01-31\n";
    let (status, body) = send_json(server.admin(Method::POST, IMPORT).body(csv)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let l = license(&server, "DATE-0001").await;
    let until: Vec<&str> = l["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["active_until"].as_str().unwrap())
        .collect();
    // DD.MM.YYYY, like YYYY-MM-DD, runs through the end of that day (UTC).
    assert_eq!(
        until,
        [
            "2030-12-31T23:59:59Z",
            "2031-02-01T23:59:59Z",
            "2031-01-31T23:59:59Z"
        ],
        "{l}"
    );

    // Impossible dates and other forms are named by line, with the forms that work.
    let bad = "key,product,feature,active_until\n\
               DATE-0002,85,43,31.02.2030\n\
               DATE-0002,85,44,12/31/2030\n\
               DATE-0003,85,43,31.12.2030\n";
    let (status, body) = send_json(server.admin(Method::POST, IMPORT).body(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["Message"].as_str().unwrap_or_default();
    assert!(
        message.contains("line 2:") && message.contains("line 3:") && !message.contains("line 4:"),
        "{message}"
    );
    assert!(message.contains("DD.MM.YYYY"), "{message}");
}

#[tokio::test]
async fn import_takes_windows_1251_from_excel() {
    let server = TestServer::start().await;
    let (status, body) = send_json(
        server
            .admin(Method::POST, IMPORT)
            .header("Content-Type", "text/csv")
            .body(excel_cp1251("XLS-0003")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let l = license(&server, "XLS-0003").await;
    assert_eq!(l["customer"], "ООО Ромашка", "{l}");
    assert_eq!(l["itn"], "7701234567", "{l}");
    assert_eq!(
        l["features"][0]["active_until"], "2031-02-01T23:59:59Z",
        "{l}"
    );

    // Neither UTF-8 nor Windows-1251 (UTF-16, Excel's "Unicode text"): refused with the fix.
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(
            "key,product,feature\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    let (status, body) = send_json(server.admin(Method::POST, IMPORT).body(utf16)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["Message"]
            .as_str()
            .unwrap_or_default()
            .contains("CSV UTF-8"),
        "{body}"
    );

    // `vypusk license import FILE` shares the rules (it says how it read the file), and the
    // running server applies the licenses within a second.
    let file = server.data_dir.path().join("excel.csv");
    std::fs::write(&file, excel_cp1251("XLS-0007")).unwrap();
    let (ok, stdout, stderr) = run_vypusk(
        server.data_dir.path(),
        &["license", "import", file.to_str().unwrap()],
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("Windows-1251"), "{stdout}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (status, l) = server
            .admin_json(Method::GET, "/api/v1/licenses/XLS-0007", None)
            .await;
        if status == StatusCode::OK {
            assert_eq!(l["customer"], "ООО Ромашка", "{l}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status} {l}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn import_takes_a_utf8_bom_in_a_multipart_upload() {
    // Excel's "CSV UTF-8" starts with a byte-order mark (a raw body with one was taken before).
    let server = TestServer::start().await;
    let bom = "\u{feff}key;customer;product;feature\r\nXLS-0004;ИП Иванов;85;43\r\n";
    let (status, body) = send_json(server.admin(Method::POST, IMPORT).multipart(multipart(
        "file",
        Some("bom.csv"),
        bom.as_bytes().to_vec(),
    )))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(license(&server, "XLS-0004").await["customer"], "ИП Иванов");
}

/// The demo API key and the check-request body that `vypusk demo` printed.
fn printed(stdout: &str, base: &str) -> (String, String) {
    let key = stdout
        .split("Bearer ")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no API key in {stdout}"))
        .to_owned();
    let check = stdout
        .lines()
        .find(|l| l.contains("/getAvailableReleases") && !l.contains("python3"))
        .unwrap_or_else(|| panic!("no check command in {stdout}"));
    assert!(
        check.contains(&format!(
            "curl -s {base}/releases/v1/1c/getAvailableReleases"
        )),
        "the printed URL is not the server's {base}: {check}"
    );
    let body = check
        .split("-d '")
        .nth(1)
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or_else(|| panic!("no body in {check}"))
        .to_owned();
    (key, body)
}

#[tokio::test]
async fn demo_runs_twice_against_a_running_server() {
    // The server runs first; the demo is written into its data directory afterwards.
    let server = TestServer::start().await;
    let data_dir = server.data_dir.path();
    let listen = server.base.trim_start_matches("http://").to_owned();
    let demo = || run_vypusk(data_dir, &["--listen", &listen, "demo"]);

    let (ok, first, stderr) = demo();
    assert!(ok, "{first}{stderr}");
    let (first_key, _) = printed(&first, &server.base);

    let (ok, second, stderr) = demo();
    assert!(ok, "{second}{stderr}");
    let (key, body) = printed(&second, &server.base);
    assert_ne!(key, first_key);

    // One demo key: the first run's is revoked, the second's works.
    let (status, keys) = server
        .admin_json(Method::GET, "/api/v1/api-keys?limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    let demo_keys = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["name"] == "demo")
        .count();
    assert_eq!(demo_keys, 1, "{keys}");
    let releases = "/api/v1/distributions/DEMO_CRM/releases";
    let with_key = |k: &str| {
        server
            .client
            .get(server.url(releases))
            .bearer_auth(k.to_owned())
    };
    let (status, _) = send_json(with_key(&first_key)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, list) = send_json(with_key(&key)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 2, "{list}");

    // It found the running server (no restart asked for), and says the data was there already
    // instead of dumping it as JSON.
    assert!(first.contains("no restart needed"), "{first}");
    assert!(second.contains("exist already"), "{second}");
    for out in [&second, &stderr] {
        assert!(!out.contains("\"lic_product_id\""), "{out}");
    }

    // The printed check works on the server that was running all along (no restart) and its
    // download link gives the demo .zip.
    let (status, answer) = send_json(
        server
            .client
            .post(server.url("/releases/v1/1c/getAvailableReleases"))
            .header("Content-Type", "application/json")
            .body(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let module = &answer["modules"][0];
    assert_eq!(module["uniqid"], "1.0.0.2", "{answer}");
    let link = module["download_link"].as_str().expect("download_link");
    let resp = server.client.get(link).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    assert_eq!(module["files"][0]["md5"], md5_hex(&bytes), "{answer}");

    // The console: its URL and a one-time link for the owner's password. The first run's
    // link was replaced by the second's; the second's sets the password once, and the owner
    // logs in to the console with it.
    let console = format!("{}/console", server.base);
    assert!(
        second.contains(&format!("The vendor console: {console}")),
        "{second}"
    );
    let link_of = |out: &str| {
        out.split_whitespace()
            .find(|w| w.starts_with(&format!("{console}/set-password?token=")))
            .unwrap_or_else(|| panic!("no one-time link in {out}"))
            .to_owned()
    };
    let (first_link, link) = (link_of(&first), link_of(&second));
    assert_ne!(first_link, link);
    let token_of = |l: &str| l.split("token=").nth(1).unwrap().to_owned();
    let set = |token: String| {
        server
            .client
            .post(server.url("/console/set-password"))
            .form(&[
                ("token", token.as_str()),
                ("password", "demo owner password"),
                ("repeat", "demo owner password"),
            ])
            .send()
    };
    let page = server.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        set(token_of(&first_link)).await.unwrap().status(),
        StatusCode::BAD_REQUEST,
        "replaced by the second run's"
    );
    assert_eq!(
        set(token_of(&link)).await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        set(token_of(&link)).await.unwrap().status(),
        StatusCode::BAD_REQUEST,
        "used once"
    );
    let cookie = vypusk_tests::reports_login(&server, "admin", "demo owner password").await;
    let resp = server
        .client
        .get(&console)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
