//! Issue 10: the traps a customer and an administrator fell into, each against the real
//! `vypusk-update` binary and the in-test signing server: outcomes a script can act on, resume
//! that resumes, hold/prune/--exec, non-1C products, clear failures and offline bundles.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;

use common::*;
use serde_json::{Value, json};
use vypusk_protocol::VersionScheme;

fn rel(version: &str, files: &[(&str, Vec<u8>)]) -> Release {
    Release {
        version: version.to_owned(),
        files: files
            .iter()
            .map(|(n, b)| (n.to_string(), b.clone()))
            .collect(),
    }
}

const LAPSED: &str = "subscription ended on 2026-10-01";

/// The server's answer for a key whose subscription lapsed before `versions` were published.
fn not_downloadable(versions: &'static [&'static str]) -> AnswerHook {
    Box::new(move |v: &mut Value| {
        for m in v["modules"].as_array_mut().unwrap() {
            if versions.contains(&m["uniqid"].as_str().unwrap()) {
                m["downloadable"] = json!(false);
                m["result"] = json!(LAPSED);
                m["download_link"] = json!("");
                for f in m["files"].as_array_mut().unwrap() {
                    f["url"] = json!("");
                }
            }
        }
    })
}

/// `versions` do not fit the client's configuration: the server shows them only because the
/// client asks SHOW_UNTESTED=Y, and says what they require.
fn not_fitting(versions: &'static [&'static str]) -> AnswerHook {
    Box::new(move |v: &mut Value| {
        for m in v["modules"].as_array_mut().unwrap() {
            if versions.contains(&m["uniqid"].as_str().unwrap()) {
                m["untested"] = json!(true);
                m["compatibility"] = json!([{"conf": "UT", "min_1c_version": "11.5.20"}]);
            }
        }
    })
}

#[test]
fn lapsed_key_is_not_entitled_never_up_to_date() {
    let server = Server::start(vec![rel("2.1.0.6", &[("a.zip", content(6, 1000))])]);
    server.world().answer_hook = Some(not_downloadable(&["2.1.0.6"]));
    let c = Client::new(&server.url());

    let r = c.run(&["check"]);
    assert_eq!(r.code, 5, "{r}");
    assert!(r.stdout.contains("Not entitled"), "{r}");
    assert!(r.stdout.contains(LAPSED), "{r}");
    assert!(!r.stdout.contains("Up to date"), "{r}");
    let r = c.run(&["check", "--exit-code", "--json"]);
    assert_eq!(r.code, 5, "{r}");
    assert_eq!(r.json()["status"], "not_entitled");
    assert!(r.json()["reason"].as_str().unwrap().contains(LAPSED), "{r}");
    assert_eq!(r.json()["update_available"], false);

    for args in [
        &["download"][..],
        &["install"],
        &["download", "--version", "2.1.0.6"],
    ] {
        let r = c.run(&[args, &["--json"]].concat());
        assert_eq!(r.code, 5, "{args:?}: {r}");
        assert!(r.stderr.contains(LAPSED), "{r}");
        assert_eq!(r.json()["exit_code"], 5);
    }
    assert!(c.visible_files().is_empty());
    // What may not be installed does not count as seen.
    assert_eq!(c.state().unwrap().get("highest_seen"), None);
}

#[test]
fn lapsed_key_still_installs_the_last_release_it_is_entitled_to() {
    let server = Server::start(vec![
        rel("2.1.0.5", &[("a.zip", content(5, 1000))]),
        rel("2.1.0.6", &[("a.zip", content(6, 1000))]),
    ]);
    server.world().answer_hook = Some(not_downloadable(&["2.1.0.6"]));
    let c = Client::new(&server.url());
    let r = c.run(&["check", "--exit-code"]);
    assert_eq!(r.code, 10, "{r}");
    assert!(
        r.stdout.contains("Update available: PT40_UT 2.1.0.5"),
        "{r}"
    );
    assert!(
        r.stdout.contains("2.1.0.6 is listed but not downloadable"),
        "{r}"
    );
    let r = c.run(&["install", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["installed"], "2.1.0.5");
    assert_eq!(c.state().unwrap()["highest_seen"], "2.1.0.5");
    // Now only the release it may not have is newer.
    let r = c.run(&["check", "--exit-code"]);
    assert_eq!(r.code, 5, "{r}");
}

#[test]
fn release_that_does_not_fit_is_named_with_what_it_requires() {
    let server = Server::start(vec![rel("3.0", &[("a.zip", content(3, 1000))])]);
    server.world().answer_hook = Some(not_fitting(&["3.0"]));
    let c = Client::new(&server.url());
    let r = c.run(&["check", "--exit-code"]);
    assert_eq!(r.code, 6, "{r}");
    assert!(r.stdout.contains("No release fits"), "{r}");
    assert!(r.stdout.contains("does not fit UT 11.5.18"), "{r}");
    assert!(r.stdout.contains("requires UT 11.5.20 or later"), "{r}");
    let r = c.run(&["install", "--json"]);
    assert_eq!(r.code, 6, "{r}");
    assert!(r.stderr.contains("UT 11.5.20 or later"), "{r}");
    assert!(c.visible_files().is_empty());
    // The check asked with SHOW_UNTESTED=Y, so the server could name the release at all.
    let post = server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert!(String::from_utf8_lossy(&post.body).contains(r#""SHOW_UNTESTED":"Y""#));
    // The customer may insist.
    let r = c.run(&["install", "--show-untested"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(c.current().as_deref(), Some("releases/3.0"));
}

/// An interrupted `download --version` used to be refused on the re-run ("older than the highest
/// version seen") although the first run was allowed. Both runs now decide alike: refused
/// without --allow-downgrade, and with it the re-run resumes the partial file.
#[test]
fn interrupted_explicit_version_resumes_on_the_same_command() {
    let data = content(5, 300_000);
    let server = Server::start(vec![
        rel("2.1.0.5", &[("big.zip", data.clone())]),
        rel("2.1.0.6", &[("big.zip", content(6, 1000))]),
    ]);
    let c = Client::new(&server.url());
    let r = c.run(&["download", "--version", "2.1.0.5"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("older than 2.1.0.6"), "{r}");
    assert!(server.file_requests().is_empty());

    server.world().file_hook = Some(drop_after(100_000));
    let cmd = [
        "download",
        "--version",
        "2.1.0.5",
        "--allow-downgrade",
        "--json",
    ];
    let r = c.run(&cmd);
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("after 1 attempt;"), "{r}");
    server.clear_log();
    let r = c.run(&cmd);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["resumed"], true);
    assert_eq!(
        server.file_requests()[0].header("Range"),
        Some("bytes=100000-")
    );
    assert_eq!(
        std::fs::read(c.release_dir("2.1.0.5").join("big.zip")).unwrap(),
        data
    );
}

/// A customer whose subscription lapsed before 2.1.0.6: 2.1.0.5 is the newest it may install,
/// so asking for it needs no --allow-downgrade, and the re-run resumes.
#[test]
fn lapsed_customer_resumes_the_last_entitled_release() {
    let data = content(5, 300_000);
    let server = Server::start(vec![
        rel("2.1.0.5", &[("big.zip", data.clone())]),
        rel("2.1.0.6", &[("big.zip", content(6, 1000))]),
    ]);
    server.world().answer_hook = Some(not_downloadable(&["2.1.0.6"]));
    server.world().file_hook = Some(drop_after(120_000));
    let c = Client::new(&server.url());
    let r = c.run(&["download", "--version", "2.1.0.5"]);
    assert_eq!(r.code, 3, "{r}");
    let r = c.run(&["download", "--version", "2.1.0.5", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["resumed"], true);
}

#[test]
fn hold_caps_install_and_unhold_releases_it() {
    let server = Server::start(vec![
        rel("1.0", &[("a.zip", content(1, 100))]),
        rel("2.0", &[("a.zip", content(2, 100))]),
        rel("3.0", &[("a.zip", content(3, 100))]),
    ]);
    let c = Client::new(&server.url());
    assert_eq!(
        c.run(&["install", "--version", "1.0", "--allow-downgrade"])
            .code,
        0
    );
    let r = c.run(&["hold", "2.0"]);
    assert_eq!(r.code, 0, "{r}");
    // Up to the hold, not past it.
    assert_eq!(c.run(&["install"]).code, 0);
    assert_eq!(c.current().as_deref(), Some("releases/2.0"));
    let r = c.run(&["install", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["version"], Value::Null);
    assert_eq!(c.current().as_deref(), Some("releases/2.0"));
    // An explicit version past the hold is a usage error, not a silent switch.
    let r = c.run(&["install", "--version", "3.0"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("held at 2.0"), "{r}");
    let s = c.run(&["status", "--json"]).json();
    assert_eq!(s["hold"], "2.0");
    assert_eq!(c.run(&["unhold"]).code, 0);
    assert_eq!(c.run(&["install"]).code, 0);
    assert_eq!(c.current().as_deref(), Some("releases/3.0"));
    // `hold` without a version holds the installed one.
    assert_eq!(c.run(&["hold"]).code, 0);
    assert_eq!(c.state().unwrap()["hold"], "3.0");
}

#[test]
fn prune_keeps_the_newest_the_current_the_previous_and_the_held() {
    let versions = ["1.0", "2.0", "3.0", "4.0", "5.0"];
    let server = Server::start(
        versions
            .iter()
            .map(|v| rel(v, &[("a.zip", content(v.as_bytes()[0], 100))]))
            .collect(),
    );
    let c = Client::new(&server.url());
    for v in versions {
        assert_eq!(
            c.run(&["download", "--version", v, "--allow-downgrade"])
                .code,
            0
        );
    }
    assert_eq!(
        c.run(&["install", "--version", "2.0", "--allow-downgrade"])
            .code,
        0
    );
    assert_eq!(
        c.run(&["install", "--version", "3.0", "--allow-downgrade"])
            .code,
        0
    );
    // current 3.0, previous 2.0; keep the newest one (5.0).
    let r = c.run(&["prune", "--keep", "1", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    let mut removed: Vec<String> = r.json()["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    removed.sort();
    assert_eq!(removed, ["1.0", "4.0"]);
    for v in ["2.0", "3.0", "5.0"] {
        assert!(c.release_dir(v).join("a.zip").is_file(), "{v}");
    }
    for v in ["1.0", "4.0"] {
        assert!(!c.release_dir(v).exists(), "{v}");
    }
    // Nothing of the pruned ones is left anywhere, and the rollback target is intact.
    assert!(
        !c.all_files().iter().any(|f| f.contains("4.0")),
        "{:?}",
        c.all_files()
    );
    assert_eq!(c.run(&["rollback"]).code, 0);
    assert_eq!(c.current().as_deref(), Some("releases/2.0"));
    // --keep 0 still keeps current (2.0, held) and removes the rest but the held one.
    let r = c.run(&["prune", "--keep", "0", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(c.release_dir("2.0").is_dir());
}

#[test]
fn exec_runs_after_the_switch_and_a_failure_switches_back() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 100))])]);
    let c = Client::new(&server.url());
    let log = c.tmp.path().join("hook.log");
    let hook = format!(
        "printf '%s|%s|%s|%s\\n' \"$VYPUSK_VERSION\" \"$VYPUSK_PREVIOUS_VERSION\" \
         \"$VYPUSK_FILES\" \"$(readlink \"$VYPUSK_CURRENT\")\" >> {}; echo noise",
        log.display()
    );
    let r = c.run(&["install", "--exec", &hook, "--json"]);
    assert_eq!(r.code, 0, "{r}");
    // The hook's output does not spoil --json.
    assert_eq!(r.json()["installed"], "1.0");
    let line = std::fs::read_to_string(&log).unwrap();
    let a_zip = c.release_dir("1.0").join("a.zip");
    assert_eq!(
        line.trim(),
        format!("1.0||{}|releases/1.0", a_zip.display())
    );

    server
        .world()
        .releases
        .push(rel("2.0", &[("a.zip", content(2, 100))]));
    let r = c.run(&["install", "--exec", "test \"$VYPUSK_VERSION\" != 2.0"]);
    assert_eq!(r.code, 7, "{r}");
    assert!(r.stderr.contains("exit code 1"), "{r}");
    assert_eq!(c.current().as_deref(), Some("releases/1.0"));
    let s = c.state().unwrap();
    assert_eq!(s["installed"], "1.0");
    assert_eq!(s["history"], json!(["1.0"]));

    // A first install whose hook fails leaves no `current` at all.
    let fresh = Client::new(&server.url());
    let r = fresh.run(&["install", "--exec", "exit 3"]);
    assert_eq!(r.code, 7, "{r}");
    assert_eq!(fresh.current(), None);
    assert!(!fresh.dir.join("current").exists());
}

/// A non-1C product: no --conf, no --conf-version, no --scheme; the request omits CONF and the
/// answer's version_scheme decides how versions compare (1.10.0 > 1.9.0; 2.0.0-rc.1 < 2.0.0).
#[test]
fn non_1c_product_needs_no_configuration_and_no_scheme() {
    let server = Server::start(vec![
        rel("1.9.0", &[("tool.tar.gz", content(1, 100))]),
        rel("1.10.0", &[("tool.tar.gz", content(2, 100))]),
        rel("2.0.0-rc.1", &[("tool.tar.gz", content(3, 100))]),
    ]);
    server.world().scheme = VersionScheme::Semver;
    let c = Client::new(&server.url());
    let mut args: Vec<String> = c.base_args();
    for flag in ["--conf", "--conf-version"] {
        let at = args.iter().position(|a| a == flag).unwrap();
        args.drain(at..at + 2);
    }
    args.extend(["install".to_owned(), "--json".to_owned()]);
    let r = run_raw(&args, &[]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["installed"], "2.0.0-rc.1");
    let post = server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    let body = String::from_utf8_lossy(&post.body).into_owned();
    assert!(!body.contains("CONF"), "{body}");
    assert_eq!(c.state().unwrap()["scheme"], "semver");
    // A --scheme that contradicts the server is a usage error.
    let r = c.run(&["check", "--scheme", "1c"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("contradicts the server"), "{r}");
}

/// A one-shot TCP server: answers every connection with `response` (raw bytes) and closes.
fn raw_server(response: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(response);
        }
    });
    format!("127.0.0.1:{}", addr.port())
}

fn run_against(server: &str, extra: &[&str]) -> Run {
    let c = Client::new(server);
    let mut args = vec!["check"];
    args.extend_from_slice(extra);
    c.run(&args)
}

#[test]
fn wrong_path_and_html_pages_say_no_vypusk_server_answers() {
    let host = raw_server(
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 22\r\nConnection: close\r\n\r\n<html>not found</html>",
    );
    let r = run_against(&format!("http://{host}/wrong/path"), &[]);
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("no vypusk server answers"), "{r}");
    assert!(!r.stderr.contains("changed on the way"), "{r}");
}

#[test]
fn unsigned_5xx_from_a_proxy_is_a_network_error() {
    let host = raw_server(
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbad gateway",
    );
    let r = run_against(&format!("http://{host}"), &[]);
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("proxy or gateway"), "{r}");
    // Retried like any server error, and counted in words.
    let r = run_against(&format!("http://{host}"), &["--retries", "1"]);
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("after 2 attempts"), "{r}");
}

#[test]
fn tls_to_a_plain_port_and_plain_http_to_a_tls_port_are_named() {
    // A plain HTTP server answers a TLS ClientHello with a 400 in plain text.
    let host =
        raw_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let started = std::time::Instant::now();
    let r = run_against(&format!("https://{host}"), &["--retries", "3"]);
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("does not speak TLS"), "{r}");
    assert!(r.stderr.contains("use http://"), "{r}");
    // Not retried: it will not get better.
    assert!(
        started.elapsed() < std::time::Duration::from_millis(450),
        "{r}"
    );

    // A TLS server reads a plain request and answers with a TLS alert record.
    let host = raw_server(b"\x15\x03\x03\x00\x02\x02\x46");
    let r = run_against(&format!("http://{host}"), &[]);
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("use https://"), "{r}");
    // nginx answers a plain request on its TLS port with a 400 page.
    let host = raw_server(
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: 48\r\nConnection: close\r\n\r\nThe plain HTTP request was sent to HTTPS port..",
    );
    let r = run_against(&format!("http://{host}"), &[]);
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("use https://"), "{r}");
}

#[test]
fn invalid_server_url_is_a_usage_error_and_nothing_is_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    for url in [
        format!("http://127.0.0.1:{port}x"),
        "http://:80".to_owned(),
        "http://host:99999".to_owned(),
        "ftp://host".to_owned(),
        "http://ho st".to_owned(),
    ] {
        let started = std::time::Instant::now();
        let r = run_against(&url, &["--retries", "4"]);
        assert_eq!(r.code, 2, "{url}: {r}");
        assert!(r.stderr.contains("not a valid server URL"), "{url}: {r}");
        assert!(
            started.elapsed() < std::time::Duration::from_millis(450),
            "{r}"
        );
    }
    assert!(listener.accept().is_err(), "a connection was made");
}

#[test]
fn a_server_that_never_answers_times_out_with_a_clear_message() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(4) {
            held.push(s);
        }
    });
    let r = run_against(&format!("http://{addr}"), &["--timeout", "1"]);
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("no answer from"), "{r}");
    assert!(r.stderr.contains("--timeout"), "{r}");
}
