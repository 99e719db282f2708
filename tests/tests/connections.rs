//! Slow and stalled clients (issue 7, defect 3) against the real `vypusk serve`: header-read,
//! keep-alive idle and body-progress timeouts, 413 before any body byte, and a flood of stalled
//! connections against a server limited to 1024 open files. Timeouts are configured short
//! (1–2 s); every wait in here is bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vypusk_tests::*;

/// Longest any single wait for the server may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(5);

async fn server_with(env: &[(&str, &str)]) -> TestServer {
    TestServer::start_with(ServerOptions {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
    .await
}

fn host_port(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

async fn connect(server: &TestServer) -> TcpStream {
    tokio::time::timeout(PATIENCE, TcpStream::connect(host_port(server)))
        .await
        .expect("connect timed out")
        .expect("connect")
}

/// Reads and discards until the server closes the connection; the time that took, or `None`
/// when it was still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut sink = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|()| start.elapsed())
}

/// A parsed HTTP/1.1 answer read off a raw socket.
#[derive(Debug)]
struct RawAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Reads one answer (head and `Content-Length` body) within `within`; `None` on timeout or when
/// the connection closes before a whole head arrived.
async fn read_answer(stream: &mut TcpStream, within: Duration) -> Option<RawAnswer> {
    tokio::time::timeout(within, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end..].to_vec();
        while body.len() < length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        Some(RawAnswer {
            status,
            headers,
            body,
        })
    })
    .await
    .ok()
    .flatten()
}

fn basic_auth() -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"));
    format!("Basic {token}")
}

/// A draft release of a new distribution `code`; returns its id.
async fn draft_release(server: &TestServer, code: &str) -> i64 {
    server.create_distribution(code, json!({})).await;
    let release = server
        .create_release(
            code,
            json!({"version": "1", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[],
            false,
        )
        .await;
    release["id"].as_i64().expect("release id")
}

#[tokio::test]
async fn connection_stalled_mid_headers_is_closed_after_header_read_timeout() {
    let server = server_with(&[
        ("VYPUSK_HEADER_READ_TIMEOUT_SECS", "1"),
        ("VYPUSK_IDLE_TIMEOUT_SECS", "30"),
    ])
    .await;
    let mut stalled = connect(&server).await;
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: stalled\r\nX-Slow")
        .await
        .unwrap();
    // A complete request on another connection still gets its answer meanwhile.
    let mut healthy = connect(&server).await;
    healthy
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: healthy\r\n\r\n")
        .await
        .unwrap();
    let answer = read_answer(&mut healthy, PATIENCE)
        .await
        .expect("healthz answer");
    assert_eq!((answer.status, answer.body.as_slice()), (200, &b"ok"[..]));

    let took = closed_within(&mut stalled, PATIENCE)
        .await
        .expect("a connection stalled mid-headers is still open 5 s later (timeout 1 s)");
    assert!(
        took >= Duration::from_millis(500),
        "closed too early: {took:?}"
    );
}

#[tokio::test]
async fn idle_connections_are_closed_after_idle_timeout() {
    let server = server_with(&[
        ("VYPUSK_IDLE_TIMEOUT_SECS", "1"),
        ("VYPUSK_HEADER_READ_TIMEOUT_SECS", "30"),
    ])
    .await;
    // Keep-alive works while the connection is in use: two requests on one connection.
    let mut keep_alive = connect(&server).await;
    for _ in 0..2 {
        keep_alive
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: k\r\n\r\n")
            .await
            .unwrap();
        let answer = read_answer(&mut keep_alive, PATIENCE)
            .await
            .expect("healthz answer on a kept-alive connection");
        assert_eq!(answer.status, 200);
    }
    // A connection that never sends anything is idle too.
    let mut silent = connect(&server).await;

    let took = closed_within(&mut keep_alive, PATIENCE)
        .await
        .expect("an idle keep-alive connection is still open 5 s later (idle timeout 1 s)");
    assert!(
        took >= Duration::from_millis(500),
        "closed too early: {took:?}"
    );
    closed_within(&mut silent, PATIENCE)
        .await
        .expect("a connection that sent nothing is still open 5 s later (idle timeout 1 s)");
}

#[tokio::test]
async fn stalled_upload_is_aborted_while_a_slow_progressing_upload_succeeds() {
    let server = server_with(&[("VYPUSK_BODY_PROGRESS_TIMEOUT_SECS", "2")]).await;
    let id = draft_release(&server, "SLOW").await;

    // Slow but moving: 4 KiB every 500 ms for 4.5 s, more than twice the progress timeout.
    let chunks: Vec<Vec<u8>> = (0..10u8).map(|i| test_bytes(4096, i)).collect();
    let whole = chunks.concat();
    let paced = futures::stream::unfold(0usize, move |i| {
        let chunks = chunks.clone();
        async move {
            let chunk = chunks.get(i)?.clone();
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Some((Ok::<_, std::io::Error>(chunk), i + 1))
        }
    });
    let started = Instant::now();
    let resp = server
        .admin(
            Method::PUT,
            &format!("/api/v1/releases/{id}/files/slow.zip"),
        )
        .body(reqwest::Body::wrap_stream(paced))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("slow upload");
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(started.elapsed() >= Duration::from_secs(4));
    let file: Value = resp.json().await.unwrap();
    assert_eq!(file["md5"], md5_hex(&whole));

    // Stalled: announces 100,000 bytes, sends 1,000, then nothing.
    let mut stalled = connect(&server).await;
    let head = format!(
        "PUT /api/v1/releases/{id}/files/stalled.zip HTTP/1.1\r\nHost: s\r\n\
         Authorization: {}\r\nContent-Length: 100000\r\n\r\n",
        basic_auth()
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&test_bytes(1000, 9)).await.unwrap();
    let answer = read_answer(&mut stalled, PATIENCE)
        .await
        .expect("no answer 5 s after the upload body stalled (progress timeout 2 s)");
    assert_eq!(
        answer.status,
        400,
        "{:?}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json()["Code"], 400);
    closed_within(&mut stalled, PATIENCE)
        .await
        .expect("the stalled upload's connection stays open after its error");

    let (status, release) = server
        .admin_json(Method::GET, &format!("/api/v1/releases/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = release["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files in {release}"))
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["slow.zip"]);
}

#[tokio::test]
async fn oversized_content_length_is_answered_413_before_any_body_byte() {
    let server = server_with(&[("VYPUSK_MAX_UPLOAD_BYTES", "1000000")]).await;
    let id = draft_release(&server, "BIG").await;
    let ten_gib: u64 = 10 << 30;
    let cases = [
        (
            format!("PUT /api/v1/releases/{id}/files/big.zip"),
            ten_gib,
            "vendor",
        ),
        // Over max_upload_bytes (1,000,000 here) but far below 10 GiB.
        (
            format!("PUT /api/v1/releases/{id}/files/big.zip"),
            1_000_001,
            "vendor",
        ),
        ("POST /api/v1/distributions".to_owned(), ten_gib, "vendor"),
        (
            "POST /releases/v1/1c/getAvailableReleases".to_owned(),
            ten_gib,
            "client",
        ),
        (
            "POST /releases/v1/1c/getAvailableReleases".to_owned(),
            (1 << 20) + 1,
            "client",
        ),
        ("POST /reports/login".to_owned(), ten_gib, "reports"),
    ];
    for (request_line, length, family) in cases {
        let mut stream = connect(&server).await;
        let head = format!(
            "{request_line} HTTP/1.1\r\nHost: big\r\nAuthorization: {}\r\n\
             Content-Type: application/json\r\nLicence-QueryID: q-413\r\n\
             Content-Length: {length}\r\n\r\n",
            basic_auth()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // No body byte is ever sent.
        let answer = read_answer(&mut stream, Duration::from_secs(2))
            .await
            .unwrap_or_else(|| {
                panic!("{request_line} with Content-Length {length}: no answer within 2 s")
            });
        assert_eq!(answer.status, 413, "{request_line} {length}: {answer:?}");
        match family {
            "vendor" => {
                let body = answer.json();
                assert_eq!(body["Code"], 413, "{body}");
                assert_eq!(body["Exception"], "PayloadTooLarge", "{body}");
            }
            "client" => {
                let body = answer.json();
                assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
            }
            _ => {}
        }
        if family != "reports" {
            assert!(
                answer.header("Licence-Signature").is_some(),
                "{request_line}: unsigned 413 {answer:?}"
            );
            assert_eq!(answer.header("Licence-QueryID"), Some("q-413"));
        }
    }
    // Under the limits everything still works: an upload bigger than the JSON limit.
    let bytes = test_bytes(999_999, 1);
    let resp = server
        .admin(Method::PUT, &format!("/api/v1/releases/{id}/files/ok.zip"))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

/// Opens `count` connections that each send part of a request head and stall; each one's task
/// counts itself in `closed` when the server closes it.
async fn stalled_flood(
    server: &TestServer,
    count: usize,
    closed: Arc<AtomicUsize>,
    changed: Arc<tokio::sync::Notify>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let mut stream = connect(server).await;
        // Partial heads, some cut in the request line.
        let partial = if i % 2 == 0 {
            "GET /healthz HTTP/1.1\r\nHost: flood\r\nX-Stall: ".to_owned()
        } else {
            format!("POST /releases/v1/1c/getAvail{i}")
        };
        let _ = stream.write_all(partial.as_bytes()).await;
        let closed = closed.clone();
        let changed = changed.clone();
        tasks.push(tokio::spawn(async move {
            let mut sink = [0u8; 256];
            // Ends when the server closes the connection or when the test aborts the task.
            while let Ok(n) = stream.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
            closed.fetch_add(1, Ordering::Relaxed);
            changed.notify_one();
        }));
    }
    tasks
}

/// What a flood run measured.
struct FloodFigures {
    limit: usize,
    shed: usize,
    worst_health: Duration,
    worst_check: Duration,
}

/// Starts a server with `RLIMIT_NOFILE` 1024 and `env`, floods it with 1,100 stalled
/// connections, and checks `/healthz` and a check five times, each within `answer_within`.
async fn flood(label: &str, env: &[(&str, &str)], answer_within: Duration) -> FloodFigures {
    // One flood at a time: two in parallel would measure this machine's two cores, not the
    // server.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    const FLOOD: usize = 1100;
    const SERVER_FILES: u64 = 1024;
    // This process holds the flood's sockets itself.
    let own = rlimit::increase_nofile_limit(4096).expect("raise this test's open-file limit");
    assert!(
        own >= FLOOD as u64 + 200,
        "the test needs {} open files, the hard limit allows {own}",
        FLOOD + 200
    );
    let server = TestServer::start_with(ServerOptions {
        open_file_limit: Some(SERVER_FILES),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
    .await;
    server.create_distribution("FREE", json!({})).await;
    server
        .create_release(
            "FREE",
            json!({"version": "1.0", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("free.zip", b"free bytes")],
            true,
        )
        .await;

    let closed = Arc::new(AtomicUsize::new(0));
    let changed = Arc::new(tokio::sync::Notify::new());
    let flood_started = Instant::now();
    let tasks = tokio::time::timeout(
        Duration::from_secs(60),
        stalled_flood(&server, FLOOD, closed.clone(), changed.clone()),
    )
    .await
    .expect("opening the flood took over 60 s");
    let flood_took = flood_started.elapsed();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(answer_within)
        .build()
        .unwrap();
    let mut worst_health = Duration::ZERO;
    let mut worst_check = Duration::ZERO;
    for round in 0..5 {
        let started = Instant::now();
        let health = client.get(server.url("/healthz")).send().await;
        let took = started.elapsed();
        let health = health.unwrap_or_else(|e| {
            panic!("round {round}: /healthz failed under the flood after {took:?}: {e}")
        });
        assert_eq!(health.status(), StatusCode::OK);
        assert_eq!(health.text().await.unwrap(), "ok");
        assert!(
            took < answer_within,
            "round {round}: /healthz took {took:?}"
        );
        worst_health = worst_health.max(took);

        let started = Instant::now();
        let check = client
            .post(server.url("/releases/v1/1c/getAvailableReleases"))
            .json(&json!({"TYPE": "FREE", "CONF": "c", "CONF_VERSION": "1"}))
            .send()
            .await;
        let took = started.elapsed();
        let check = check.unwrap_or_else(|e| {
            panic!("round {round}: the check failed under the flood after {took:?}: {e}")
        });
        assert_eq!(check.status(), StatusCode::OK);
        let answer: Value = check.json().await.unwrap();
        assert_eq!(answer["modules"][0]["uniqid"], "1.0", "{answer}");
        assert!(
            took < answer_within,
            "round {round}: the check took {took:?}"
        );
        worst_check = worst_check.max(took);
    }

    let limit: usize = server
        .startup_output
        .iter()
        .find_map(|l| l.strip_prefix("at most "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no connection limit in {:?}", server.startup_output));
    // The server cannot hold more than its files allow: the rest of the flood was shed. Wait
    // (bounded) until this side has seen those closes.
    let can_hold = limit.min(SERVER_FILES as usize);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while FLOOD - closed.load(Ordering::Relaxed) > can_hold {
        if tokio::time::timeout_at(deadline, changed.notified())
            .await
            .is_err()
        {
            break;
        }
    }
    let shed = closed.load(Ordering::Relaxed);
    eprintln!(
        "flood ({label}): {FLOOD} stalled connections opened in {flood_took:?} against \
         RLIMIT_NOFILE {SERVER_FILES} (max_connections {limit}); shed {shed}, still open {}; \
         worst /healthz {worst_health:?}, worst check {worst_check:?}",
        FLOOD - shed
    );
    assert!(
        FLOOD - shed <= can_hold,
        "{} flood connections still open, the server can hold {can_hold}",
        FLOOD - shed
    );
    for task in tasks {
        task.abort();
    }
    FloodFigures {
        limit,
        shed,
        worst_health,
        worst_check,
    }
}

#[tokio::test]
async fn flood_of_stalled_connections_leaves_healthz_and_checks_answering() {
    // Long timeouts: what keeps the server answering here is shedding, not the clock.
    let figures = flood(
        "derived limit",
        &[
            ("VYPUSK_HEADER_READ_TIMEOUT_SECS", "120"),
            ("VYPUSK_IDLE_TIMEOUT_SECS", "120"),
        ],
        Duration::from_secs(1),
    )
    .await;
    assert!(figures.limit < 1024, "derived limit {}", figures.limit);
    assert!(figures.shed >= 1100 - figures.limit);
    assert!(figures.worst_health < Duration::from_secs(1));
    assert!(figures.worst_check < Duration::from_secs(1));
}

#[tokio::test]
async fn flood_past_the_open_file_limit_sheds_on_accept_errors() {
    // max_connections above what 1024 files allow: `accept` itself fails (EMFILE), and the
    // server must shed and back off rather than stop answering.
    let figures = flood(
        "max_connections 5000, accept errors",
        &[
            ("VYPUSK_HEADER_READ_TIMEOUT_SECS", "120"),
            ("VYPUSK_IDLE_TIMEOUT_SECS", "120"),
            ("VYPUSK_MAX_CONNECTIONS", "5000"),
        ],
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(figures.limit, 5000);
    assert!(figures.shed > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests_and_closes_stalled_connections() {
    let server = server_with(&[
        ("VYPUSK_HEADER_READ_TIMEOUT_SECS", "120"),
        ("VYPUSK_IDLE_TIMEOUT_SECS", "120"),
    ])
    .await;
    let id = draft_release(&server, "STOP").await;
    let mut stalled = connect(&server).await;
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: stalled\r\nX-Slow")
        .await
        .unwrap();
    let mut idle = connect(&server).await;

    // An upload in flight when SIGTERM arrives. `Expect: 100-continue` makes the server say
    // when the handler starts reading the body, so the signal surely comes mid-request.
    let mut upload = connect(&server).await;
    let head = format!(
        "PUT /api/v1/releases/{id}/files/late.zip HTTP/1.1\r\nHost: u\r\n\
         Authorization: {}\r\nExpect: 100-continue\r\nContent-Length: 2000\r\n\r\n",
        basic_auth()
    );
    upload.write_all(head.as_bytes()).await.unwrap();
    let proceed = read_answer(&mut upload, PATIENCE)
        .await
        .expect("no 100 Continue for the upload");
    assert_eq!(proceed.status, 100);
    upload.write_all(&test_bytes(1000, 1)).await.unwrap();

    let mut server = server;
    let stopping = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        server.terminate();
        (server, started.elapsed())
    });
    // The idle and the stalled connection are closed right away, long before their timeouts.
    closed_within(&mut idle, PATIENCE)
        .await
        .expect("an idle connection is still open 5 s after SIGTERM");
    closed_within(&mut stalled, PATIENCE)
        .await
        .expect("a connection stalled mid-headers is still open 5 s after SIGTERM");
    // The upload in flight still completes.
    upload.write_all(&test_bytes(1000, 2)).await.unwrap();
    let answer = read_answer(&mut upload, PATIENCE)
        .await
        .expect("the in-flight upload got no answer within 5 s of SIGTERM");
    assert_eq!(
        answer.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&answer.body)
    );
    let (_server, took) = tokio::time::timeout(Duration::from_secs(25), stopping)
        .await
        .expect("terminate")
        .unwrap();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}
