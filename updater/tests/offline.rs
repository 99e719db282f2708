//! Issue 10, offline installs against the in-test signing server: `download --bundle` on a
//! connected machine, `install --from-bundle` on one without network (no --server at all), and
//! every way a bundle can be wrong refused with exit 4 and nothing visible changed.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Value, json};

fn rel(version: &str, files: &[(&str, Vec<u8>)]) -> Release {
    Release {
        version: version.to_owned(),
        files: files
            .iter()
            .map(|(n, b)| (n.to_string(), b.clone()))
            .collect(),
    }
}

/// `vypusk-update` for the machine without network: no --server, the same pinned key.
fn offline(c: &Client, args: &[&str]) -> Run {
    let mut all: Vec<String> = [
        "--type",
        TYPE,
        "--conf",
        "UT",
        "--conf-version",
        "11.5.18",
        "--dir",
        c.dir.to_str().unwrap(),
        "--public-key",
        c.key_file.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    all.extend(args.iter().map(|s| s.to_string()));
    run_raw(&all, &[])
}

struct Made {
    _server: Server,
    bundle: PathBuf,
    _maker: Client,
    a: Vec<u8>,
    b: Vec<u8>,
}

/// A bundle of release 2.0 (two files) made by `download --bundle` on a connected machine.
fn make_bundle(hook: Option<AnswerHook>) -> Made {
    let a = content(1, 700_000);
    let b = content(2, 1234);
    let server = Server::start(vec![
        rel("1.0", &[("PT40.zip", content(9, 10))]),
        rel("2.0", &[("PT40.zip", a.clone()), ("readme.txt", b.clone())]),
    ]);
    server.world().answer_hook = hook;
    let maker = Client::new(&server.url());
    let bundle = maker.tmp.path().join("pt40.vypusk-bundle.tar");
    let r = maker.run(&["download", "--bundle", bundle.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["bundle"], json!(bundle));
    Made {
        _server: server,
        bundle,
        _maker: maker,
        a,
        b,
    }
}

/// The entries of a bundle: (path, bytes).
fn entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (p, bytes)
        })
        .collect()
}

fn write_entries(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (p, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        // Raw name bytes: the tar crate refuses to write `..`, an attacker's tool does not.
        h.as_gnu_mut().unwrap().name[..p.len()].copy_from_slice(p.as_bytes());
        h.set_cksum();
        b.append(&h, &bytes[..]).unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn bundle_made_online_installs_offline_like_an_online_install() {
    let made = make_bundle(None);
    let names: Vec<String> = entries(&made.bundle).into_iter().map(|e| e.0).collect();
    assert_eq!(
        names,
        [
            "vypusk-bundle.json",
            "answer.json",
            "files/PT40.zip",
            "files/readme.txt"
        ]
    );
    let header: Value = serde_json::from_slice(&entries(&made.bundle)[0].1).unwrap();
    assert_eq!(header["type"], TYPE);
    assert_eq!(header["version"], "2.0");
    assert_eq!(header["format"], 1);

    let target = Client::new("http://127.0.0.1:9");
    let r = offline(
        &target,
        &[
            "install",
            "--from-bundle",
            made.bundle.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["installed"], "2.0");
    assert_eq!(target.current().as_deref(), Some("releases/2.0"));
    assert_eq!(
        std::fs::read(target.dir.join("current/PT40.zip")).unwrap(),
        made.a
    );
    assert_eq!(
        std::fs::read(target.dir.join("current/readme.txt")).unwrap(),
        made.b
    );
    let s = target.state().unwrap();
    assert_eq!(s["highest_seen"], "2.0");
    // The same bundle again: not newer than the installed 2.0.
    let r = offline(
        &target,
        &["install", "--from-bundle", made.bundle.to_str().unwrap()],
    );
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("not newer than the installed 2.0"), "{r}");
    // status and rollback work on it as on an online install.
    let r = offline(&target, &["status", "--json"]);
    assert_eq!(r.json()["installed"], "2.0");
}

/// Each broken bundle: exit 4, nothing visible in DIR, no state written.
fn refused(bundle: &Path, extra: &[&str], why: &str) {
    let target = Client::new("http://127.0.0.1:9");
    let mut args = vec!["install", "--from-bundle", bundle.to_str().unwrap()];
    args.extend_from_slice(extra);
    let r = offline(&target, &args);
    assert_eq!(r.code, 4, "{why}: {r}");
    assert!(
        target.visible_files().is_empty(),
        "{why}: {:?}",
        target.visible_files()
    );
    assert_eq!(target.current(), None, "{why}");
    assert!(target.state().is_none(), "{why}: state written");
    let leftovers: Vec<String> = target
        .all_files()
        .into_iter()
        .filter(|f| f.contains("partial/") || f.contains("staging/"))
        .collect();
    assert!(leftovers.is_empty(), "{why}: {leftovers:?}");
}

#[test]
fn tampered_truncated_old_wrong_key_and_wrong_type_bundles_are_refused() {
    let made = make_bundle(None);
    let dir = made.bundle.parent().unwrap().to_path_buf();
    let good = entries(&made.bundle);

    // A byte of a file changed.
    let mut e = good.clone();
    e[2].1[500_000] ^= 1;
    let tampered = dir.join("tampered.tar");
    write_entries(&tampered, &e);
    refused(&tampered, &[], "tampered file");

    // The signed answer edited (a bigger file declared, say).
    let mut e = good.clone();
    let text = String::from_utf8(e[1].1.clone()).unwrap();
    e[1].1 = text
        .replacen("\"PT40.zip\"", "\"PT41.zip\"", 1)
        .into_bytes();
    let edited = dir.join("edited.tar");
    write_entries(&edited, &e);
    refused(&edited, &[], "edited answer");

    // The header names another version than the signed answer holds.
    let mut e = good.clone();
    let mut header: Value = serde_json::from_slice(&e[0].1).unwrap();
    header["version"] = json!("9.0");
    e[0].1 = serde_json::to_vec(&header).unwrap();
    let renamed = dir.join("renamed.tar");
    write_entries(&renamed, &e);
    refused(&renamed, &[], "header names another version");

    // A file entry missing, one added, or in the wrong place.
    let missing = dir.join("missing.tar");
    write_entries(&missing, &good[..3]);
    refused(&missing, &[], "missing file");
    let mut e = good.clone();
    e.push(("files/evil.sh".into(), b"rm -rf /".to_vec()));
    let extra = dir.join("extra.tar");
    write_entries(&extra, &e);
    refused(&extra, &[], "extra entry");
    let mut e = good.clone();
    e[2].0 = "../PT40.zip".into();
    let escaped = dir.join("escaped.tar");
    write_entries(&escaped, &e);
    refused(&escaped, &[], "path outside files/");

    // Truncated in the middle of the big file, and at a header.
    let bytes = std::fs::read(&made.bundle).unwrap();
    for cut in [bytes.len() / 2, 700, 100] {
        let truncated = dir.join(format!("truncated-{cut}.tar"));
        std::fs::write(&truncated, &bytes[..cut]).unwrap();
        refused(&truncated, &[], &format!("truncated at {cut}"));
    }
    // Not a bundle at all.
    let junk = dir.join("junk.tar");
    std::fs::write(&junk, b"this is not a tar file").unwrap();
    refused(&junk, &[], "junk");

    // Wrong pinned key.
    let target = Client::with_key("http://127.0.0.1:9", &Signer::generate().pem);
    let r = offline(
        &target,
        &["install", "--from-bundle", made.bundle.to_str().unwrap()],
    );
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("does not match"), "{r}");
    assert!(target.visible_files().is_empty());

    // Wrong TYPE.
    let target = Client::new("http://127.0.0.1:9");
    let r = run_raw(
        &[
            "--type".into(),
            "OTHER_PRODUCT".into(),
            "--dir".into(),
            target.dir.to_str().unwrap().into(),
            "--public-key".into(),
            target.key_file.to_str().unwrap().into(),
            "install".into(),
            "--from-bundle".into(),
            made.bundle.to_str().unwrap().into(),
        ],
        &[],
    );
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("not a release of OTHER_PRODUCT"), "{r}");
    assert!(target.visible_files().is_empty());

    // The good one still installs after all that.
    let target = Client::new("http://127.0.0.1:9");
    let r = offline(
        &target,
        &["install", "--from-bundle", made.bundle.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{r}");
}

#[test]
fn too_old_bundle_is_refused_by_its_signed_server_time() {
    // The server signed the answer 40 days ago.
    let made = make_bundle(Some(Box::new(|v: &mut Value| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        v["server_time"] = json!(rfc3339(secs - 40 * 86_400));
    })));
    refused(&made.bundle, &[], "40 days old");
    let target = Client::new("http://127.0.0.1:9");
    let r = offline(
        &target,
        &["install", "--from-bundle", made.bundle.to_str().unwrap()],
    );
    assert!(r.stderr.contains("40 days ago"), "{r}");
    // File times do not matter: a fresh copy is as old.
    let copy = made.bundle.with_extension("copy.tar");
    std::fs::copy(&made.bundle, &copy).unwrap();
    refused(&copy, &[], "copied");
    // The customer may accept an older answer explicitly.
    let r = offline(
        &target,
        &[
            "install",
            "--from-bundle",
            copy.to_str().unwrap(),
            "--max-age",
            "45d",
        ],
    );
    assert_eq!(r.code, 0, "{r}");
    // Without any server_time (an older server) the age cannot be judged.
    let old = make_bundle(Some(Box::new(|v: &mut Value| {
        v.as_object_mut().unwrap().remove("server_time");
    })));
    refused(&old.bundle, &[], "no server_time");
}

#[test]
fn bundle_for_another_configuration_is_refused_with_what_it_requires() {
    let made = make_bundle(Some(Box::new(|v: &mut Value| {
        for m in v["modules"].as_array_mut().unwrap() {
            m["compatibility"] = json!([{"conf": "BP", "min_1c_version": "3.0"}]);
        }
    })));
    let target = Client::new("http://127.0.0.1:9");
    let r = offline(
        &target,
        &["install", "--from-bundle", made.bundle.to_str().unwrap()],
    );
    assert_eq!(r.code, 6, "{r}");
    assert!(r.stderr.contains("does not fit UT 11.5.18"), "{r}");
    assert!(r.stderr.contains("BP 3.0 or later"), "{r}");
    assert!(target.visible_files().is_empty());
}

#[test]
fn exec_and_hold_apply_to_bundle_installs() {
    let made = make_bundle(None);
    let target = Client::new("http://127.0.0.1:9");
    let r = offline(
        &target,
        &[
            "install",
            "--from-bundle",
            made.bundle.to_str().unwrap(),
            "--exec",
            "exit 9",
        ],
    );
    assert_eq!(r.code, 7, "{r}");
    assert_eq!(target.current(), None);
}
