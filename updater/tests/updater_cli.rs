//! The real `vypusk-update` binary against in-test servers and proxies: every threat of issue 3
//! item 7 that does not need the real `vypusk` server.

mod common;

use std::io::Write;

use common::*;

fn rel(version: &str, files: &[(&str, Vec<u8>)]) -> Release {
    Release {
        version: version.to_owned(),
        files: files
            .iter()
            .map(|(n, b)| (n.to_string(), b.clone()))
            .collect(),
    }
}

/// Prints a `--json` output for the README (visible with `--nocapture`).
fn example(title: &str, run: &Run) {
    eprintln!("README-EXAMPLE {title}: {}", run.stdout.trim());
}

#[test]
fn happy_path_check_download_install_status() {
    let v1 = content(1, 300_000);
    let server = Server::start(vec![rel("4.0.4.10", &[("PT40.zip", v1.clone())])]);
    let c = Client::new(&server.url());

    let r = c.run(&["check", "--exit-code", "--json"]);
    assert_eq!(r.code, 10, "{r}");
    let j = r.json();
    example("check", &r);
    assert_eq!(j["update_available"], true);
    assert_eq!(j["latest"]["version"], "4.0.4.10");
    // Nothing downloaded by check.
    assert!(c.visible_files().is_empty(), "{:?}", c.visible_files());

    let r = c.run(&["download", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    example("download", &r);
    assert_eq!(r.json()["version"], "4.0.4.10");
    assert_eq!(
        std::fs::read(c.release_dir("4.0.4.10").join("PT40.zip")).unwrap(),
        v1
    );
    // The download request asked to count, the check did not.
    let posts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert!(String::from_utf8_lossy(&posts[0].body).contains(r#""COUNT_DOWNLOADS":"N""#));
    assert!(String::from_utf8_lossy(&posts[1].body).contains(r#""COUNT_DOWNLOADS":"Y""#));
    // Each request has its own random QueryID.
    let ids: Vec<_> = posts
        .iter()
        .map(|r| r.header("Licence-QueryID").unwrap().to_owned())
        .collect();
    assert_eq!(ids[0].len(), 32);
    assert_ne!(ids[0], ids[1]);

    let r = c.run(&["install", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    example("install", &r);
    assert_eq!(r.json()["installed"], "4.0.4.10");
    assert_eq!(c.current().as_deref(), Some("releases/4.0.4.10"));
    // Already downloaded: install did not fetch the file again.
    assert_eq!(server.file_requests().len(), 1);

    // Nothing newer now.
    let r = c.run(&["check", "--exit-code", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["update_available"], false);
    assert_eq!(r.json()["installed"], "4.0.4.10");
    let r = c.run(&["install"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("Up to date"), "{r}");

    let r = c.run(&["status", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    example("status", &r);
    let j = r.json();
    assert_eq!(j["installed"], "4.0.4.10");
    assert_eq!(j["highest_seen"], "4.0.4.10");
    assert_eq!(j["downloaded"][0]["version"], "4.0.4.10");
    assert_eq!(j["downloaded"][0]["files"][0]["sha256"], sha256_hex(&v1));
    assert_eq!(j["partial"].as_array().unwrap().len(), 0);

    // Human output too.
    let r = c.run(&["status"]);
    assert!(r.stdout.contains("Installed:    4.0.4.10"), "{r}");
}

/// Issue 10: a second rollback used to step forward again, and the next scheduled install
/// re-installed the release just rolled back from. Rollback goes back through the install
/// history only, and holds there until `unhold`.
#[test]
fn rollback_goes_only_backwards_and_holds() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 5000))])]);
    let c = Client::new(&server.url());
    assert_eq!(c.run(&["install"]).code, 0);
    for v in ["2.0", "3.0"] {
        server
            .world()
            .releases
            .push(rel(v, &[("a.zip", content(v.as_bytes()[0], 7000))]));
        let r = c.run(&["install", "--json"]);
        assert_eq!(r.code, 0, "{r}");
    }
    assert_eq!(c.current().as_deref(), Some("releases/3.0"));

    let r = c.run(&["rollback", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    example("rollback", &r);
    assert_eq!(r.json()["installed"], "2.0");
    assert_eq!(r.json()["rolled_back_from"], "3.0");
    assert_eq!(r.json()["previous"], "1.0");
    assert_eq!(r.json()["hold"], "2.0");
    assert_eq!(c.current().as_deref(), Some("releases/2.0"));
    assert_eq!(
        std::fs::read(c.dir.join("current/a.zip")).unwrap(),
        content(b'2', 7000)
    );
    let s = c.state().unwrap();
    assert_eq!(s["installed"], "2.0");
    assert_eq!(s["highest_seen"], "3.0");
    // The release rolled back from stays downloaded.
    assert!(c.release_dir("3.0").join("a.zip").is_file());

    // The scheduled install does not undo the rollback; check says why it offers nothing.
    let r = c.run(&["install", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("Held at 2.0"),
        "{r}"
    );
    assert_eq!(c.current().as_deref(), Some("releases/2.0"));
    let r = c.run(&["check", "--exit-code", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["status"], "held");

    // A second rollback goes further back, never forward.
    let r = c.run(&["rollback"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(c.current().as_deref(), Some("releases/1.0"));
    let r = c.run(&["rollback"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("nothing to roll back to"), "{r}");
    assert_eq!(c.current().as_deref(), Some("releases/1.0"));

    // unhold: the next install moves to the newest release again.
    let r = c.run(&["unhold"]);
    assert_eq!(r.code, 0, "{r}");
    let r = c.run(&["install"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(c.current().as_deref(), Some("releases/3.0"));
}

#[test]
fn rollback_without_previous_is_a_local_error() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 100))])]);
    let c = Client::new(&server.url());
    let r = c.run(&["rollback"]);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(c.run(&["install"]).code, 0);
    let r = c.run(&["rollback", "--json"]);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(r.json()["exit_code"], 1);
    assert_eq!(c.current().as_deref(), Some("releases/1.0"));
}

/// A proxy on the path edits the signed answer (here: points the file at other bytes by
/// raising the version) → refused before anything is believed.
#[test]
fn answer_edited_by_a_proxy_is_refused() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 1000))])]);
    let proxy = Proxy::start(Box::new(|req: &Req, raw: Vec<u8>, _| {
        if req.method != "POST" {
            return raw;
        }
        let (head, body) = split_response(&raw);
        let edited = String::from_utf8(body)
            .unwrap()
            .replace("\"1.0\"", "\"9.0\"");
        join_response(&head, edited.as_bytes())
    }));
    let mut c = Client::new(&server.url());
    c.env.push(("HTTP_PROXY".into(), proxy.url()));
    let r = c.run(&["download"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("signature"), "{r}");
    assert!(c.visible_files().is_empty());
    assert!(server.file_requests().is_empty());
    // The proxy was really on the path (HTTP_PROXY honoured).
    assert_eq!(
        proxy.connects.lock().unwrap()[0],
        format!("CONNECT {}", server.addr)
    );

    // An unedited answer through the same kind of proxy is fine; NO_PROXY bypasses it.
    let passthrough = Proxy::start(Box::new(|_: &Req, raw: Vec<u8>, _| raw));
    c.env = vec![("HTTPS_PROXY".into(), passthrough.url())];
    assert_eq!(c.run(&["check"]).code, 0);
    assert_eq!(passthrough.connects.lock().unwrap().len(), 1);
    c.env.push(("NO_PROXY".into(), "127.0.0.1".into()));
    assert_eq!(c.run(&["check"]).code, 0);
    assert_eq!(passthrough.connects.lock().unwrap().len(), 1);
}

/// A proxy replays yesterday's signed answer (valid signature, other QueryID) → refused.
#[test]
fn replayed_answer_is_refused() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 1000))])]);
    let first: std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>> = Default::default();
    let f = first.clone();
    let proxy = Proxy::start(Box::new(move |req: &Req, raw: Vec<u8>, _| {
        if req.method != "POST" {
            return raw;
        }
        let mut saved = f.lock().unwrap();
        saved.get_or_insert(raw).clone()
    }));
    let mut c = Client::new(&server.url());
    c.env.push(("HTTP_PROXY".into(), proxy.url()));
    let r = c.run(&["check"]);
    assert_eq!(r.code, 0, "{r}");
    let state_before = c.state_bytes();
    let r = c.run(&["check"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("replayed"), "{r}");
    let r = c.run(&["install"]);
    assert_eq!(r.code, 4, "{r}");
    assert_eq!(c.state_bytes(), state_before);
    assert!(c.visible_files().is_empty());
}

#[test]
fn wrong_pinned_key_is_refused() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 1000))])]);
    let other = Signer::generate();
    let c = Client::with_key(&server.url(), &other.pem);
    for cmd in ["check", "download", "install"] {
        let r = c.run(&[cmd, "--json"]);
        assert_eq!(r.code, 4, "{cmd}: {r}");
        assert_eq!(r.json()["exit_code"], 4);
        assert!(
            r.json()["error"].as_str().unwrap().contains("pinned key"),
            "{r}"
        );
    }
    assert!(c.visible_files().is_empty());
    assert!(server.file_requests().is_empty());
}

/// A vendor rolling its signing key over: clients that pin both keys accept answers signed
/// with either, whether the keys come as repeated `--public-key` or as one file of several PEM
/// blocks; a file with an unusable block is a usage error, not a silently smaller set.
#[test]
fn several_pinned_keys_accept_an_answer_signed_by_any() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 1000))])]);
    let old = Signer::generate();
    let current = &Signer::shared().pem;

    // Repeated flag: the old key first, the server's second.
    let c = Client::with_key(&server.url(), &old.pem);
    let current_file = c.tmp.path().join("current.pem");
    std::fs::write(&current_file, current).unwrap();
    let r = c.run(&[
        "--public-key",
        current_file.to_str().unwrap(),
        "check",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["latest"]["version"], "1.0");

    // One file holding both keys, in either order.
    for bundle in [
        format!("{}{current}", old.pem),
        format!("{current}\n{}", old.pem),
    ] {
        let c = Client::with_key(&server.url(), &bundle);
        let r = c.run(&["install", "--json"]);
        assert_eq!(r.code, 0, "{r}");
        assert_eq!(c.current().as_deref(), Some("releases/1.0"));
    }

    // The old key alone is refused, as any wrong key is.
    let c = Client::with_key(&server.url(), &old.pem);
    assert_eq!(c.run(&["check", "--json"]).code, 4);

    // A bundle with a broken block is refused before anything is asked.
    let broken =
        format!("{current}-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n");
    let c = Client::with_key(&server.url(), &broken);
    server.clear_log();
    let r = c.run(&["check", "--json"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(server.requests().is_empty());
}

#[test]
fn missing_signature_is_refused_and_insecure_flag_skips_the_check() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 1000))])]);
    let proxy = Proxy::start(Box::new(|req: &Req, raw: Vec<u8>, _| {
        if req.method != "POST" {
            return raw;
        }
        let (head, body) = split_response(&raw);
        let head: Vec<&str> = head
            .split("\r\n")
            .filter(|l| !l.starts_with("Licence-Signature"))
            .collect();
        join_response(&head.join("\r\n"), &body)
    }));
    let mut c = Client::new(&server.url());
    c.env.push(("HTTP_PROXY".into(), proxy.url()));
    let r = c.run(&["check"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("no Licence-Signature"), "{r}");
    let r = c.run(&["check", "--insecure-skip-signature"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stderr.contains("NOT verified"), "{r}");
}

#[test]
fn answer_about_another_type_is_refused() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 1000))])]);
    server.world().answer_hook = Some(Box::new(|v| {
        v["modules"][0]["distribution"] = "OTHER_PRODUCT".into();
    }));
    let c = Client::new(&server.url());
    let r = c.run(&["install"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("OTHER_PRODUCT"), "{r}");
    assert!(c.visible_files().is_empty());
}

#[test]
fn explicit_older_version_is_refused() {
    let server = Server::start(vec![
        rel("1.0", &[("a.zip", content(1, 1000))]),
        rel("2.0", &[("a.zip", content(2, 1000))]),
    ]);
    let c = Client::new(&server.url());
    assert_eq!(c.run(&["install"]).code, 0);
    assert_eq!(c.current().as_deref(), Some("releases/2.0"));
    let state = c.state_bytes();

    for cmd in ["download", "install"] {
        let r = c.run(&[cmd, "--version", "1.0"]);
        assert_eq!(r.code, 4, "{r}");
        assert!(r.stderr.contains("not newer than the installed 2.0"), "{r}");
    }
    // The same version again is not newer either.
    let r = c.run(&["install", "--version", "2.0"]);
    assert_eq!(r.code, 4, "{r}");
    assert_eq!(c.state_bytes(), state);
    assert!(!c.release_dir("1.0").exists());

    // A path trick as --version is a usage error.
    let r = c.run(&["download", "--version", "../1.0"]);
    assert_eq!(r.code, 2, "{r}");

    // Explicitly allowed.
    let r = c.run(&["install", "--version", "1.0", "--allow-downgrade"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(c.current().as_deref(), Some("releases/1.0"));
    assert_eq!(c.state().unwrap()["highest_seen"], "2.0");
}

/// The server stops offering 3.0 (a yank, or a stale mirror) and offers 2.0, newer than the
/// installed 1.0 but older than the 3.0 seen before → refused.
#[test]
fn release_older_than_highest_seen_is_refused() {
    let server = Server::start(vec![
        rel("1.0", &[("a.zip", content(1, 100))]),
        rel("2.0", &[("a.zip", content(2, 100))]),
        rel("3.0", &[("a.zip", content(3, 100))]),
    ]);
    let c = Client::new(&server.url());
    // An explicit older version needs --allow-downgrade on the first run too (issue 10).
    let r = c.run(&["install", "--version", "1.0"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("older than 3.0"), "{r}");
    assert_eq!(
        c.run(&["install", "--version", "1.0", "--allow-downgrade"])
            .code,
        0
    );
    assert_eq!(c.state().unwrap()["highest_seen"], "3.0");
    server.world().releases.retain(|r| r.version != "3.0");
    let r = c.run(&["install"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("older than 3.0"), "{r}");
    let r = c.run(&["check", "--exit-code"]);
    assert_eq!(r.code, 4, "{r}");
    assert_eq!(c.current().as_deref(), Some("releases/1.0"));
}

/// The signed answer declares N bytes; the server streams without end and no Content-Length.
/// The updater reads N bytes, sees more coming, stops and refuses.
#[test]
fn server_sending_more_than_declared_is_stopped() {
    let real = content(1, 50_000);
    let server = Server::start(vec![rel("1.0", &[("a.zip", real.clone())])]);
    server.world().file_hook = Some(Box::new(|_req, stream, bytes, etag| {
        let head = format!(
            "HTTP/1.1 200 OK\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n"
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(bytes);
        // ... and then garbage forever (bounded here so the test cannot run away).
        let junk = vec![0x55u8; 64 * 1024];
        for _ in 0..16 * 1024 {
            if stream.write_all(&junk).is_err() {
                break;
            }
        }
        Some(())
    }));
    let c = Client::new(&server.url());
    let started = std::time::Instant::now();
    let r = c.run(&["install"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(
        r.stderr.contains("a.zip") && r.stderr.contains("more than the 50000 bytes"),
        "{r}"
    );
    assert!(c.visible_files().is_empty(), "{:?}", c.visible_files());
    assert!(c.state().unwrap().get("installed").is_none());
}

/// Content-Length bigger than the declared size: refused before the body is read.
#[test]
fn content_length_disagreeing_with_declared_size_is_refused() {
    let real = content(1, 10_000);
    let server = Server::start(vec![rel("1.0", &[("a.zip", real.clone())])]);
    let mut longer = real.clone();
    longer.extend_from_slice(&[0u8; 5000]);
    server
        .world()
        .served_override
        .insert("a.zip".into(), longer);
    let c = Client::new(&server.url());
    let r = c.run(&["download"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("announced 15000 bytes"), "{r}");
    assert!(c.visible_files().is_empty());
}

/// The connection drops mid-file: the run fails with 3 and keeps the partial; the next run
/// resumes with Range + If-Range and the result verifies.
#[test]
fn dropped_connection_resumes_with_range() {
    let data = content(7, 400_000);
    let server = Server::start(vec![rel("1.0", &[("big.zip", data.clone())])]);
    server.world().file_hook = Some(drop_after(150_000));
    let c = Client::new(&server.url());
    let r = c.run(&["download"]);
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("run again to resume"), "{r}");
    assert!(c.visible_files().is_empty());
    let s = c.run(&["status", "--json"]);
    let partial = &s.json()["partial"][0];
    assert_eq!(partial["name"], "big.zip");
    assert_eq!(partial["bytes"], 150_000);

    server.clear_log();
    let r = c.run(&["download", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["resumed"], true);
    let reqs = server.file_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("Range"), Some("bytes=150000-"));
    assert_eq!(
        reqs[0].header("If-Range").map(str::to_owned),
        Some(format!("\"{}\"", sha256_hex(&data)))
    );
    assert_eq!(
        std::fs::read(c.release_dir("1.0").join("big.zip")).unwrap(),
        data
    );
    assert_eq!(
        c.run(&["status", "--json"]).json()["partial"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

/// Bytes without a period, so that a block written at the wrong offset changes the file.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// A file of several MiB (hashed on the md5 and sha256 threads, written in whole blocks
/// straight to disk where the file system allows) drops inside a block; the resume hashes the
/// kept prefix through the same threads, realigns, and the result is the file.
#[test]
fn big_file_resumes_from_inside_a_block() {
    let data = noise(7, 5 * 1024 * 1024 + 1234);
    let cut = 3 * 1024 * 1024 + 777;
    let server = Server::start(vec![rel("1.0", &[("big.zip", data.clone())])]);
    server.world().file_hook = Some(drop_after(cut));
    let c = Client::new(&server.url());
    let r = c.run(&["download"]);
    assert_eq!(r.code, 3, "{r}");
    assert_eq!(
        c.run(&["status", "--json"]).json()["partial"][0]["bytes"],
        cut
    );

    server.clear_log();
    let r = c.run(&["download", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["resumed"], true);
    let reqs = server.file_requests();
    assert_eq!(
        reqs[0].header("Range"),
        Some(format!("bytes={cut}-").as_str())
    );
    assert!(std::fs::read(c.release_dir("1.0").join("big.zip")).unwrap() == data);
}

/// One flipped byte in the middle of a file of several MiB is caught by the hash threads.
#[test]
fn big_file_with_a_flipped_byte_is_refused() {
    let data = noise(8, 4 * 1024 * 1024 + 5);
    let server = Server::start(vec![rel("1.0", &[("big.zip", data.clone())])]);
    let mut tampered = data;
    tampered[3 * 1024 * 1024 + 10] ^= 1;
    server
        .world()
        .served_override
        .insert("big.zip".into(), tampered);
    let c = Client::new(&server.url());
    let r = c.run(&["download"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(
        r.stderr.contains("big.zip") && r.stderr.contains("sha256 is"),
        "{r}"
    );
    assert!(c.visible_files().is_empty(), "{:?}", c.visible_files());
    assert!(
        c.all_files().iter().all(|f| !f.ends_with(".part")),
        "{:?}",
        c.all_files()
    );
}

/// With retries the same run resumes by itself.
#[test]
fn dropped_connection_is_retried_within_a_run() {
    let data = content(9, 200_000);
    let server = Server::start(vec![rel("1.0", &[("big.zip", data.clone())])]);
    server.world().file_hook = Some(drop_after(70_000));
    let c = Client::new(&server.url());
    let r = c.run(&["install", "--retries", "2"]);
    assert_eq!(r.code, 0, "{r}");
    let reqs = server.file_requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].header("Range"), Some("bytes=70000-"));
    assert_eq!(std::fs::read(c.dir.join("current/big.zip")).unwrap(), data);
}

/// The server's file changed between attempts (its ETag differs): If-Range makes it send the
/// whole file, and the updater starts over instead of appending.
#[test]
fn changed_file_restarts_from_scratch() {
    let data = content(3, 300_000);
    let server = Server::start(vec![rel("1.0", &[("a.zip", data.clone())])]);
    server.world().etag_override = Some("\"old-etag\"".into());
    server.world().file_hook = Some(drop_after(100_000));
    let c = Client::new(&server.url());
    assert_eq!(c.run(&["download"]).code, 3);

    server.world().etag_override = Some("\"new-etag\"".into());
    server.clear_log();
    let r = c.run(&["download", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["restarted"], true);
    assert_eq!(r.json()["resumed"], false);
    let reqs = server.file_requests();
    assert_eq!(reqs[0].header("If-Range"), Some("\"old-etag\""));
    assert_eq!(
        std::fs::read(c.release_dir("1.0").join("a.zip")).unwrap(),
        data
    );
}

/// The release's file was replaced between attempts (the signed answer declares new hashes):
/// the old partial is not used at all.
#[test]
fn redeclared_file_is_downloaded_anew() {
    let old = content(3, 300_000);
    let new = content(4, 280_000);
    let server = Server::start(vec![rel("1.0", &[("a.zip", old)])]);
    server.world().file_hook = Some(drop_after(100_000));
    let c = Client::new(&server.url());
    assert_eq!(c.run(&["download"]).code, 3);

    server.world().releases[0].files[0].1 = new.clone();
    server.clear_log();
    let r = c.run(&["download"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(server.file_requests()[0].header("Range"), None);
    assert_eq!(
        std::fs::read(c.release_dir("1.0").join("a.zip")).unwrap(),
        new
    );
    // The stale partial is gone.
    assert!(
        c.all_files().iter().all(|f| !f.ends_with(".part")),
        "{:?}",
        c.all_files()
    );
}

#[test]
fn file_name_leaving_dir_is_refused() {
    for evil in [
        "../x",
        "../../etc/passwd",
        "/tmp/abs",
        "a/b",
        "..",
        "C:x",
        ".hidden",
        "evil\u{202E}piz.exe",
        "a\u{200B}.zip",
    ] {
        let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 100))])]);
        let name = evil.to_owned();
        server.world().answer_hook = Some(Box::new(move |v| {
            v["modules"][0]["files"][0]["name"] = name.clone().into();
        }));
        let c = Client::new(&server.url());
        let r = c.run(&["install"]);
        assert_eq!(r.code, 4, "{evil}: {r}");
        assert!(server.file_requests().is_empty(), "{evil}");
        assert_eq!(
            c.all_files()
                .iter()
                .filter(|f| !f.starts_with("app/.vypusk-update"))
                .count(),
            1,
            "{evil}: {:?}",
            c.all_files()
        ); // only server.pem
    }
}

/// Names that differ only in case are one file on Windows and macOS: refused with Unicode
/// case folding (Cyrillic names are common), before any byte is downloaded.
#[test]
fn file_names_differing_only_in_case_are_refused() {
    for (a, b) in [
        ("Расширение.cfe", "РАСШИРЕНИЕ.cfe"),
        ("Setup.zip", "setup.zip"),
    ] {
        let server = Server::start(vec![rel(
            "1.0",
            &[(a, content(1, 100)), (b, content(2, 100))],
        )]);
        let c = Client::new(&server.url());
        let r = c.run(&["install"]);
        assert_eq!(r.code, 4, "{a} / {b}: {r}");
        assert!(r.stderr.contains("differ only in case"), "{r}");
        assert!(server.file_requests().is_empty(), "{a} / {b}");
    }
}

#[test]
fn version_that_is_a_path_trick_is_refused() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 100))])]);
    server.world().answer_hook = Some(Box::new(|v| {
        v["modules"][0]["uniqid"] = "../../1.0".into();
    }));
    let c = Client::new(&server.url());
    let r = c.run(&["install"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("../../1.0"), "{r}");
}

/// Bytes tampered in storage: size right, digests wrong → exit 4 naming the file and the
/// digest, nothing visible, the installed release and the state untouched.
#[test]
fn tampered_bytes_are_refused_and_old_install_stays() {
    let v1 = content(1, 20_000);
    let v2 = content(2, 20_000);
    let server = Server::start(vec![rel("1.0", &[("a.zip", v1.clone())])]);
    let c = Client::new(&server.url());
    assert_eq!(c.run(&["install"]).code, 0);
    let state = c.state_bytes();

    server
        .world()
        .releases
        .push(rel("2.0", &[("a.zip", v2.clone())]));
    let mut tampered = v2.clone();
    tampered[12_345] ^= 0xff;
    server
        .world()
        .served_override
        .insert("a.zip".into(), tampered);
    let r = c.run(&["install", "--json"]);
    assert_eq!(r.code, 4, "{r}");
    example("install refused", &r);
    let msg = r.json()["error"].as_str().unwrap().to_owned();
    assert!(msg.contains("a.zip") && msg.contains("sha256"), "{msg}");
    assert_eq!(c.visible_files(), vec!["current", "releases/1.0/a.zip"]);
    assert!(!c.release_dir("2.0").exists());
    assert_eq!(c.current().as_deref(), Some("releases/1.0"));
    assert_eq!(std::fs::read(c.dir.join("current/a.zip")).unwrap(), v1);
    // The state only learned that 2.0 exists.
    let s = c.state().unwrap();
    assert_eq!(s["installed"], "1.0");
    assert_ne!(c.state_bytes(), state);
    // No partial is kept from a refused download.
    assert!(
        c.all_files().iter().all(|f| !f.ends_with(".part")),
        "{:?}",
        c.all_files()
    );

    // The server's storage is repaired: the same release now installs.
    server.world().served_override.clear();
    let r = c.run(&["install"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(std::fs::read(c.dir.join("current/a.zip")).unwrap(), v2);
}

/// A lying answer: sha256 right, md5 wrong → refused naming md5.
#[test]
fn md5_mismatch_is_refused() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 1000))])]);
    server.world().answer_hook = Some(Box::new(|v| {
        v["modules"][0]["files"][0]["md5"] = "00000000000000000000000000000000".into();
    }));
    let c = Client::new(&server.url());
    let r = c.run(&["download"]);
    assert_eq!(r.code, 4, "{r}");
    assert!(
        r.stderr.contains("a.zip") && r.stderr.contains("md5"),
        "{r}"
    );
    assert!(c.visible_files().is_empty());
}

#[test]
fn server_unreachable_exit_3_state_unchanged() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 100))])]);
    let c = Client::new(&server.url());
    assert_eq!(c.run(&["install"]).code, 0);
    let state = c.state_bytes();
    // A port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c2 = Client::new(&format!("http://{dead}"));
    c2.dir = c.dir.clone();
    for cmd in ["check", "download", "install"] {
        let r = c2.run(&[cmd, "--retries", "1"]);
        assert_eq!(r.code, 3, "{cmd}: {r}");
        assert!(r.stderr.contains("after 2 attempts"), "{r}");
    }
    assert_eq!(c.state_bytes(), state);
    assert_eq!(c.current().as_deref(), Some("releases/1.0"));
}

#[test]
fn server_error_answer_is_exit_3_after_its_signature_is_checked() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 100))])]);
    server.world().distribution = "SOMETHING_ELSE".into();
    let c = Client::new(&server.url());
    let r = c.run(&["check"]);
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stderr.contains("unknown TYPE"), "{r}");
    let other = Signer::generate();
    let c = Client::with_key(&server.url(), &other.pem);
    let r = c.run(&["check"]);
    assert_eq!(r.code, 4, "{r}");
}

#[test]
fn usage_errors_exit_2() {
    let server = Server::start(vec![]);
    let c = Client::new(&server.url());
    // No public key and no --insecure-skip-signature.
    let args: Vec<String> = vec![
        "--server".into(),
        server.url(),
        "--type".into(),
        TYPE.into(),
        "--conf".into(),
        "UT".into(),
        "--conf-version".into(),
        "11.5".into(),
        "--dir".into(),
        c.dir.to_str().unwrap().into(),
        "check".into(),
    ];
    let r = run_raw(&args, &[]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("--public-key"), "{r}");
    // Unknown command / flag.
    assert_eq!(run_raw(&["frobnicate".into()], &[]).code, 2);
    // Bad conf version, bad scheme, missing --dir.
    assert_eq!(c.run(&["check", "--conf-version", "x.y"]).code, 2);
    assert_eq!(c.run(&["check", "--scheme", "calver"]).code, 2);
    assert_eq!(run_raw(&["status".into()], &[]).code, 2);
    // A key file that is not a key.
    let bad = c.tmp.path().join("bad.pem");
    std::fs::write(&bad, "not a key").unwrap();
    assert_eq!(
        c.run(&["check", "--public-key", bad.to_str().unwrap()])
            .code,
        2
    );
    // A CA file without certificates, or missing.
    assert_eq!(
        c.run(&["check", "--ca-file", bad.to_str().unwrap()]).code,
        2
    );
    assert_eq!(
        c.run(&["check", "--ca-file", "/nonexistent/ca.pem"]).code,
        2
    );
    // --help works and shows examples.
    let h = run_raw(&["--help".into()], &[]);
    assert_eq!(h.code, 0);
    assert!(
        h.stdout.contains("Examples:") && h.stdout.contains("Exit codes"),
        "{h}"
    );
}

/// Precedence: flags > environment > config file.
#[test]
fn config_file_env_and_flags() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 100))])]);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("key.pem"), &Signer::shared().pem).unwrap();
    let cfg = tmp.path().join("vypusk-update.toml");
    std::fs::write(
        &cfg,
        format!(
            "server = \"{}\"\ntype = \"WRONG_TYPE\"\nconf = \"UT\"\nconf_version = \"11.5\"\n\
             dir = \"app\"\npublic_key = \"key.pem\"\nretries = 0\n",
            server.url()
        ),
    )
    .unwrap();
    let cfg_arg = vec!["--config".to_string(), cfg.to_str().unwrap().to_string()];
    let with = |extra: &[&str]| {
        let mut a = cfg_arg.clone();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // File alone: the wrong TYPE reaches the server.
    let r = run_raw(&with(&["check"]), &[]);
    assert_eq!(r.code, 3, "{r}");
    // Environment beats the file.
    let env = vec![("VYPUSK_TYPE".to_string(), TYPE.to_string())];
    let r = run_raw(&with(&["check", "--json"]), &env);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["type"], TYPE);
    // Relative paths in the file are relative to the file.
    assert!(tmp.path().join("app/.vypusk-update/state.json").is_file());
    // A flag beats the environment.
    let env = vec![("VYPUSK_TYPE".to_string(), "WRONG_AGAIN".to_string())];
    let r = run_raw(&with(&["--type", TYPE, "install"]), &env);
    assert_eq!(r.code, 0, "{r}");
    // Config file given by VYPUSK_CONFIG, unknown keys refused.
    std::fs::write(tmp.path().join("bad.toml"), "srever = \"x\"\n").unwrap();
    let env = vec![(
        "VYPUSK_CONFIG".to_string(),
        tmp.path().join("bad.toml").to_str().unwrap().to_string(),
    )];
    let r = run_raw(&["status".to_string()], &env);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("srever"), "{r}");
}

/// A directory that holds another distribution is not mixed with this one.
#[test]
fn dir_of_another_type_is_refused() {
    let server = Server::start(vec![rel("1.0", &[("a.zip", content(1, 100))])]);
    let c = Client::new(&server.url());
    assert_eq!(c.run(&["install"]).code, 0);
    let r = c.run(&["check", "--type", "OTHER"]);
    assert_eq!(r.code, 2, "{r}");
}

/// Several files in one release appear together, and each is verified.
#[test]
fn multi_file_release() {
    let server = Server::start(vec![rel(
        "5.1",
        &[
            ("main.zip", content(1, 30_000)),
            ("Расширение.cfe", content(2, 12_345)),
            ("readme.txt", b"hi".to_vec()),
        ],
    )]);
    let c = Client::new(&server.url());
    let r = c.run(&["install", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        c.visible_files(),
        vec![
            "current",
            "releases/5.1/main.zip",
            "releases/5.1/readme.txt",
            "releases/5.1/Расширение.cfe"
        ]
    );
}
