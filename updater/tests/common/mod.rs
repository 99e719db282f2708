//! Test doubles for `vypusk-update`: a signing fake server speaking the client protocol and the
//! download route, a CONNECT proxy that can edit or replay what passes through it, and a runner
//! for the real binary.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use md5::{Digest, Md5};
use sha2::Sha256;
use vypusk_protocol::wire::{CheckRequest, Compatibility, Module, ModuleFile, ReleasesResponse};
use vypusk_protocol::{Version, VersionScheme};

pub const TYPE: &str = "PT40_UT";

// ---------------------------------------------------------------- signing

pub struct Signer {
    key: KeyPair,
    pub pem: String,
}

impl Signer {
    pub fn generate() -> Signer {
        let key = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let der = key.public_key().as_der().expect("SPKI DER");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        Signer { key, pem }
    }

    /// The key of this test binary's run (generated once).
    pub fn shared() -> &'static Signer {
        static SIGNER: OnceLock<Signer> = OnceLock::new();
        SIGNER.get_or_init(Signer::generate)
    }

    pub fn sign(&self, query_id: &[u8], body: &[u8]) -> String {
        let mut message = query_id.to_vec();
        message.extend_from_slice(body);
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                &message,
                &mut sig,
            )
            .expect("sign");
        base64::engine::general_purpose::STANDARD.encode(sig)
    }
}

pub fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}
pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Deterministic test content.
pub fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

// ---------------------------------------------------------------- raw HTTP

#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path).into_bytes();
        for (k, v) in &self.headers {
            if k.eq_ignore_ascii_case("connection") {
                continue;
            }
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

pub fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Req> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let mut req = Req {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    req.body = vec![0; len];
    reader.read_exact(&mut req.body).ok()?;
    Some(req)
}

pub fn response_bytes(
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    head_only: bool,
) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Whatever",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
    let mut has_len = false;
    for (k, v) in headers {
        has_len |= k.eq_ignore_ascii_case("content-length");
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if !has_len {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// Splits a raw response into head and body.
pub fn split_response(raw: &[u8]) -> (String, Vec<u8>) {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response has a head");
    (
        String::from_utf8_lossy(&raw[..at]).into_owned(),
        raw[at + 4..].to_vec(),
    )
}

/// Reassembles a response with a new body (Content-Length fixed up).
pub fn join_response(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = String::new();
    for line in head.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

// ---------------------------------------------------------------- the fake server

pub struct Release {
    pub version: String,
    pub files: Vec<(String, Vec<u8>)>,
}

/// What a file request does instead of the normal answer; returns the bytes it wrote.
pub type FileHook = Box<dyn FnMut(&Req, &mut TcpStream, &[u8], &str) -> Option<()> + Send>;

/// Edits an answer's JSON before it is signed.
pub type AnswerHook = Box<dyn Fn(&mut serde_json::Value) + Send>;

pub struct World {
    pub distribution: String,
    pub releases: Vec<Release>,
    /// Edits the answer's JSON before it is signed (a lying but key-holding server).
    pub answer_hook: Option<AnswerHook>,
    /// Takes over file requests while it returns `Some`.
    pub file_hook: Option<FileHook>,
    /// Bytes served instead of the release's (tampered object store), by file name.
    pub served_override: HashMap<String, Vec<u8>>,
    /// ETag served instead of the sha256.
    pub etag_override: Option<String>,
    pub signer: &'static Signer,
    /// How the distribution compares versions; said in each module's `version_scheme`.
    pub scheme: VersionScheme,
}

pub struct Server {
    pub addr: SocketAddr,
    pub world: Arc<Mutex<World>>,
    pub log: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    pub fn start(releases: Vec<Release>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let world = Arc::new(Mutex::new(World {
            distribution: TYPE.to_owned(),
            releases,
            answer_hook: None,
            file_hook: None,
            served_override: HashMap::new(),
            etag_override: None,
            signer: Signer::shared(),
            scheme: VersionScheme::OneC,
        }));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (w, l) = (world.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (w, l) = (w.clone(), l.clone());
                std::thread::spawn(move || serve(stream, addr, &w, &l));
            }
        });
        Server { addr, world, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }

    pub fn file_requests(&self) -> Vec<Req> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/files/"))
            .collect()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }

    pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap()
    }
}

fn serve(stream: TcpStream, addr: SocketAddr, world: &Mutex<World>, log: &Mutex<Vec<Req>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    log.lock().unwrap().push(req.clone());
    let mut stream = stream;
    let mut w = world.lock().unwrap();
    if req.method == "POST" && req.path == "/releases/v1/1c/getAvailableReleases" {
        let raw = answer(&w, addr, &req);
        drop(w);
        let _ = stream.write_all(&raw);
    } else if let Some(rest) = req.path.strip_prefix("/files/") {
        let (version, name) = rest.split_once('/').unwrap_or(("", ""));
        let bytes = w
            .releases
            .iter()
            .find(|r| r.version == version)
            .and_then(|r| r.files.iter().find(|(n, _)| n == name))
            .map(|(_, b)| b.clone());
        let Some(mut bytes) = bytes else {
            drop(w);
            let _ = stream.write_all(&response_bytes(
                404,
                &[],
                br#"{"error":"no such file"}"#,
                false,
            ));
            return;
        };
        let etag = w
            .etag_override
            .clone()
            .unwrap_or_else(|| format!("\"{}\"", sha256_hex(&bytes)));
        if let Some(b) = w.served_override.get(name) {
            bytes = b.clone();
        }
        if let Some(hook) = w.file_hook.as_mut()
            && hook(&req, &mut stream, &bytes, &etag).is_some()
        {
            return;
        }
        drop(w);
        let _ = stream.write_all(&file_response(&req, &bytes, &etag));
    } else {
        drop(w);
        let _ = stream.write_all(&response_bytes(
            404,
            &[],
            br#"{"error":"not found"}"#,
            false,
        ));
    }
    let _ = stream.flush();
}

/// Now as RFC 3339 UTC (`2026-11-30T10:53:07Z`).
pub fn rfc3339_now() -> String {
    rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
}

/// Seconds since the epoch as RFC 3339 UTC (Howard Hinnant's civil_from_days).
pub fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The signed answer of getAvailableReleases for `req`.
fn answer(w: &World, addr: SocketAddr, req: &Req) -> Vec<u8> {
    let query_id = req.header("Licence-QueryID").unwrap_or("").to_owned();
    let check: CheckRequest = serde_json::from_slice(&req.body).expect("CheckRequest");
    let (status, body) = if check.distribution != w.distribution {
        (400, br#"{"error":"unknown TYPE"}"#.to_vec())
    } else {
        let parse = |v: &str| Version::parse(w.scheme, v);
        let installed = parse(&check.installed_version).ok();
        let mut rels: Vec<&Release> = w
            .releases
            .iter()
            .filter(|r| match &installed {
                Some(i) => &parse(&r.version).unwrap() > i,
                None => true,
            })
            .collect();
        rels.sort_by_key(|r| std::cmp::Reverse(parse(&r.version).unwrap()));
        let modules: Vec<Module> = rels
            .iter()
            .map(|r| {
                let files: Vec<ModuleFile> = r
                    .files
                    .iter()
                    .map(|(name, bytes)| ModuleFile {
                        name: name.clone(),
                        size: bytes.len() as u64,
                        url: format!("http://{addr}/files/{}/{name}", r.version),
                        md5: md5_hex(bytes),
                        sha256: sha256_hex(bytes),
                    })
                    .collect();
                Module {
                    release_id: 1,
                    uniqid: r.version.clone(),
                    version: "MIKO".into(),
                    developer: "MIKO".into(),
                    min_1c_version: "11.0".into(),
                    name: "Telephony".into(),
                    changelog: format!("- release {}", r.version),
                    size: files[0].size,
                    download_link: files[0].url.clone(),
                    files,
                    published_at: "2026-11-20T10:00:00Z".into(),
                    downloadable: true,
                    distribution: w.distribution.clone(),
                    version_scheme: w.scheme.as_str().into(),
                    compatibility: vec![Compatibility {
                        conf: "*".into(),
                        min_1c_version: "11.0".into(),
                        max_1c_version: None,
                    }],
                    ..Default::default()
                }
            })
            .collect();
        let mut value = serde_json::to_value(ReleasesResponse {
            modules,
            result: String::new(),
            server_time: rfc3339_now(),
        })
        .unwrap();
        if let Some(hook) = &w.answer_hook {
            hook(&mut value);
        }
        (200, serde_json::to_vec(&value).unwrap())
    };
    let sig = w.signer.sign(query_id.as_bytes(), &body);
    response_bytes(
        status,
        &[
            ("Content-Type", "application/json".into()),
            ("Licence-QueryID", query_id),
            ("Licence-Signature", sig),
        ],
        &body,
        false,
    )
}

/// The download route as SPEC §4.6 describes it: Range, If-Range, ETag, 206, 416.
pub fn file_response(req: &Req, bytes: &[u8], etag: &str) -> Vec<u8> {
    let head = req.method == "HEAD";
    let mut headers = vec![
        ("Accept-Ranges", "bytes".to_owned()),
        ("ETag", etag.to_owned()),
        ("Content-Disposition", "attachment".to_owned()),
        ("Content-Type", "application/octet-stream".to_owned()),
    ];
    let range = req
        .header("Range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse::<usize>().ok());
    let if_range_ok = req.header("If-Range").is_none_or(|v| v == etag);
    match range {
        Some(start) if if_range_ok => {
            if start >= bytes.len() {
                headers.push(("Content-Range", format!("bytes */{}", bytes.len())));
                return response_bytes(416, &headers, b"", head);
            }
            headers.push((
                "Content-Range",
                format!("bytes {start}-{}/{}", bytes.len() - 1, bytes.len()),
            ));
            response_bytes(206, &headers, &bytes[start..], head)
        }
        _ => response_bytes(200, &headers, bytes, head),
    }
}

// ---------------------------------------------------------------- CONNECT proxy

/// What the proxy does to a response: (request, raw response, index of this exchange) → bytes.
pub type Transform = Box<dyn FnMut(&Req, Vec<u8>, usize) -> Vec<u8> + Send>;

pub struct Proxy {
    pub addr: SocketAddr,
    pub connects: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// An HTTP CONNECT proxy (what HTTP_PROXY points at) that looks into the plain-HTTP tunnel:
    /// it reads the request, forwards it, and passes the answer through `transform`.
    pub fn start(transform: Transform) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connects = Arc::new(Mutex::new(Vec::new()));
        let transform = Arc::new(Mutex::new((transform, 0usize)));
        let c = connects.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (c, t) = (c.clone(), transform.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let Some(connect) = read_request(&mut reader) else {
                        return;
                    };
                    c.lock()
                        .unwrap()
                        .push(format!("{} {}", connect.method, connect.path));
                    let mut client = stream;
                    if connect.method != "CONNECT" {
                        let _ = client.write_all(&response_bytes(405, &[], b"", false));
                        return;
                    }
                    let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                    let Some(req) = read_request(&mut reader) else {
                        return;
                    };
                    let Ok(mut upstream) = TcpStream::connect(&connect.path) else {
                        return;
                    };
                    let _ = upstream.write_all(&req.to_bytes());
                    let mut raw = Vec::new();
                    let _ = upstream.read_to_end(&mut raw);
                    let out = {
                        let mut guard = t.lock().unwrap();
                        let n = guard.1;
                        guard.1 += 1;
                        (guard.0)(&req, raw, n)
                    };
                    let _ = client.write_all(&out);
                });
            }
        });
        Proxy { addr, connects }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

// ---------------------------------------------------------------- running the binary

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A temporary install root plus the pinned key file.
pub struct Client {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub key_file: PathBuf,
    pub server: String,
    pub env: Vec<(String, String)>,
}

impl Client {
    pub fn new(server: &str) -> Client {
        Client::with_key(server, &Signer::shared().pem)
    }

    pub fn with_key(server: &str, pem: &str) -> Client {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        let key_file = tmp.path().join("server.pem");
        std::fs::write(&key_file, pem).unwrap();
        Client {
            dir,
            key_file,
            server: server.to_owned(),
            env: Vec::new(),
            tmp,
        }
    }

    pub fn base_args(&self) -> Vec<String> {
        [
            "--server",
            &self.server,
            "--type",
            TYPE,
            "--conf",
            "UT",
            "--conf-version",
            "11.5.18",
            "--key",
            "MIKO-TEST-KEY",
            "--dir",
            self.dir.to_str().unwrap(),
            "--public-key",
            self.key_file.to_str().unwrap(),
            "--retries",
            "0",
            "--timeout",
            "5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Runs `vypusk-update <base args> <args>`.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut all = self.base_args();
        all.extend(args.iter().map(|s| s.to_string()));
        run_raw(&all, &self.env)
    }

    pub fn state(&self) -> Option<serde_json::Value> {
        std::fs::read(self.dir.join(".vypusk-update/state.json"))
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    pub fn state_bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join(".vypusk-update/state.json")).ok()
    }

    pub fn current(&self) -> Option<String> {
        std::fs::read_link(self.dir.join("current"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    pub fn release_dir(&self, version: &str) -> PathBuf {
        self.dir.join("releases").join(version)
    }

    /// Every file under DIR except the updater's own bookkeeping.
    pub fn visible_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.dir, &self.dir, &mut out);
        out.retain(|p| !p.starts_with(".vypusk-update"));
        out.sort();
        out
    }

    /// Files anywhere under the temporary root (to catch writes outside DIR).
    pub fn all_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.tmp.path(), self.tmp.path(), &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            walk(root, &path, out);
        } else {
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

/// Runs the binary with a clean environment (no proxies, no VYPUSK_* from the outside) plus
/// `env`, killing it after 60 s.
pub fn run_raw(args: &[String], env: &[(String, String)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vypusk-update"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn vypusk-update");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stdout = String::new();
            let mut stderr = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut stdout)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return Run {
                code: status.code().unwrap_or(-1),
                stdout,
                stderr,
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vypusk-update {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Serves a normal file response but stops after `cut` body bytes and drops the connection.
pub fn drop_after(cut: usize) -> FileHook {
    let mut done = false;
    Box::new(
        move |req: &Req, stream: &mut TcpStream, bytes: &[u8], etag: &str| {
            if done {
                return None;
            }
            done = true;
            let full = file_response(req, bytes, etag);
            let (head, _) = split_response(&full);
            let head_len = head.len() + 4;
            let _ = stream.write_all(&full[..(head_len + cut).min(full.len())]);
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
            Some(())
        },
    )
}
