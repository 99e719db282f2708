//! HTTP: one ureq agent (rustls, proxy from the environment, optional extra CA file), bounded
//! retries with exponential backoff, and signed requests of the client protocol.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::{Agent, Proxy};
use vypusk_protocol::wire::{CheckRequest, ClientError};
use vypusk_protocol::{HEADER_QUERY_ID, HEADER_SIGNATURE, PinnedKeys};

use crate::cli::Settings;
use crate::fail::Failure;
use crate::state::random_hex;

/// Largest JSON answer read.
const MAX_ANSWER: u64 = 16 << 20;

pub struct Http {
    pub agent: Agent,
    pub retries: u32,
}

impl Http {
    pub fn new(settings: &Settings) -> Result<Http, Failure> {
        let mut tls = TlsConfig::builder();
        if let Some(ca_file) = &settings.ca_file {
            tls = tls.root_certs(roots_with_extra(ca_file)?);
        }
        let t = settings.timeout;
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .proxy(Proxy::try_from_env())
            .tls_config(tls.build())
            .user_agent(concat!("vypusk-update/", env!("CARGO_PKG_VERSION")))
            .timeout_resolve(Some(t))
            .timeout_connect(Some(t))
            .timeout_send_request(Some(t))
            .timeout_send_body(Some(t))
            .timeout_recv_response(Some(t))
            // No total body time: a 1 GiB file takes what it takes; a stalled one does not.
            .timeout_per_read(Some(t))
            .max_redirects(5)
            .build();
        Ok(Http {
            agent: config.into(),
            retries: settings.retries,
        })
    }

    /// Backoff before retry number `attempt` (0-based): 0.5 s, 1 s, 2 s, … capped at 8 s.
    pub fn backoff(attempt: u32) -> Duration {
        Duration::from_millis((500u64 << attempt.min(4)).min(8_000))
    }

    /// POSTs a check request with a fresh random QueryID and returns the answer only after its
    /// signature verified (unless `key` is `None`, i.e. `--insecure-skip-signature`).
    pub fn signed_post(
        &self,
        url: &str,
        request: &CheckRequest,
        key: Option<&PinnedKeys>,
    ) -> Result<SignedAnswer, Failure> {
        let body = serde_json::to_vec(request).expect("request serializes");
        let mut attempt = 0;
        loop {
            let query_id = random_hex(16);
            let outcome = self
                .agent
                .post(url)
                .header(HEADER_QUERY_ID, &query_id)
                .header("Accept", "application/json")
                .content_type("application/json")
                .send(&body[..]);
            let transient = match outcome {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let echoed = header(&response, HEADER_QUERY_ID);
                    let signature = header(&response, HEADER_SIGNATURE);
                    let content_type = header(&response, "Content-Type").unwrap_or_default();
                    match response
                        .into_body()
                        .with_config()
                        .limit(MAX_ANSWER)
                        .read_to_vec()
                    {
                        Ok(answer) => {
                            let reply = Reply {
                                url,
                                query_id,
                                echoed,
                                signature,
                                status,
                                content_type,
                                body: answer,
                            };
                            let transient = status == 429 || status >= 500;
                            if !(transient && attempt < self.retries) {
                                return reply.verified(key).map_err(|mut f| {
                                    if transient {
                                        f.message =
                                            format!("{} ({})", f.message, attempts(attempt + 1));
                                    }
                                    f
                                });
                            }
                            format!("{url} answered HTTP {status}")
                        }
                        Err(e) => describe(url, &e).0,
                    }
                }
                Err(e) => {
                    let (message, retry) = describe(url, &e);
                    if !retry {
                        return Err(Failure::network(message));
                    }
                    message
                }
            };
            if attempt >= self.retries {
                return Err(Failure::network(format!(
                    "{transient} ({})",
                    attempts(attempt + 1)
                )));
            }
            std::thread::sleep(Self::backoff(attempt));
            attempt += 1;
        }
    }
}

/// `after 1 attempt`, `after 4 attempts`.
pub fn attempts(n: u32) -> String {
    if n == 1 {
        "after 1 attempt".to_owned()
    } else {
        format!("after {n} attempts")
    }
}

/// A verified answer as it came: kept whole so an offline bundle can carry it.
pub struct SignedAnswer {
    pub body: Vec<u8>,
    pub query_id: String,
    /// `None` only with `--insecure-skip-signature` against a server that did not sign.
    pub signature: Option<String>,
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// One HTTP answer to a check, not yet believed.
struct Reply<'a> {
    url: &'a str,
    query_id: String,
    echoed: Option<String>,
    signature: Option<String>,
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply<'_> {
    /// Believes nothing of an answer before its signature over QueryID + body checks out. An
    /// unsigned error page is named for what it most likely is (a wrong URL, a proxy failing),
    /// and nothing in it is believed either.
    fn verified(self, key: Option<&PinnedKeys>) -> Result<SignedAnswer, Failure> {
        let Reply {
            url,
            query_id,
            echoed,
            signature,
            status,
            content_type,
            body,
        } = self;
        if signature.is_none() && status != 200 {
            return Err(unsigned_error(url, status, &content_type, &body));
        }
        if let Some(key) = key {
            if let Err(e) = key.verify_response(&query_id, &body, signature.as_deref()) {
                return Err(Failure::refused(format!(
                    "refusing the answer of {url} (HTTP {status}): {e}; it was changed on the \
                     way, replayed, or comes from a server that does not hold the pinned key"
                )));
            }
            if echoed.as_deref().is_some_and(|e| e != query_id) {
                return Err(Failure::refused(format!(
                    "refusing the answer of {url}: it echoes another Licence-QueryID than the \
                     one sent"
                )));
            }
        }
        if status != 200 {
            let reason = serde_json::from_slice::<ClientError>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| snippet(&body));
            return Err(Failure::network(format!(
                "the server refused the request (HTTP {status}): {reason}"
            )));
        }
        Ok(SignedAnswer {
            body,
            query_id,
            signature,
        })
    }
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// An error status without a signature: a vypusk server signs every answer of the client
/// protocol, errors included, so this came from something else on the way.
fn unsigned_error(url: &str, status: u16, content_type: &str, body: &[u8]) -> Failure {
    let text = String::from_utf8_lossy(body);
    let html = content_type.contains("html") || text.trim_start().starts_with('<');
    let message = if status == 429 {
        format!("{url} answered HTTP 429: too many requests from this address; try again later")
    } else if text.contains("HTTPS port") || text.contains("https port") {
        format!("{url} answered HTTP {status}: the port expects TLS; use https:// in --server")
    } else if status >= 500 {
        format!(
            "{url} answered HTTP {status} without a signature: a proxy or gateway in front of \
             the vypusk server failed, or the server is down; try again later"
        )
    } else if status == 404 || html {
        format!(
            "no vypusk server answers at {url} (HTTP {status}{}): check --server, the base URL \
             of the server (e.g. https://updates.example.com, without /releases/v1/…)",
            if html { ", an HTML page" } else { "" }
        )
    } else {
        format!(
            "{url} answered HTTP {status} without a signature ({}); it is not a vypusk server's \
             answer",
            snippet(body)
        )
    };
    Failure::network(message)
}

fn tls_failure(host: &str, tls: &rustls::Error) -> (String, bool) {
    let message = if matches!(tls, rustls::Error::InvalidMessage(_)) {
        format!(
            "TLS with {host} failed: the port does not speak TLS ({tls}); if it serves plain \
             HTTP, use http:// in --server"
        )
    } else {
        format!("TLS with {host} failed: {tls} (an untrusted certificate? --ca-file adds a CA)")
    };
    // Neither gets better by trying again.
    (message, false)
}

/// A transport error in words a customer can act on, and whether trying again may help.
pub fn describe(url: &str, e: &ureq::Error) -> (String, bool) {
    use ureq::Error as E;
    let host = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or(url);
    // rustls reports a handshake that met no TLS inside an I/O error.
    if let E::Io(io) = e
        && let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return tls_failure(host, tls);
    }
    match e {
        E::Timeout(what) => (
            format!("no answer from {host} in time (--timeout; {what})"),
            true,
        ),
        E::HostNotFound => (format!("cannot resolve the host of {host}"), true),
        E::ConnectionFailed => (
            format!("cannot connect to {host}: is the server running, and --server right?"),
            true,
        ),
        E::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => (
            format!(
                "cannot connect to {host}: connection refused (is the server running, and \
                 --server right?)"
            ),
            true,
        ),
        E::Rustls(tls) => tls_failure(host, tls),
        E::Tls(why) => (format!("TLS with {host} failed: {why}"), false),
        E::Protocol(p) if url.starts_with("http://") => (
            format!(
                "{host} did not answer HTTP ({p}); if the port expects TLS, use https:// in \
                 --server"
            ),
            false,
        ),
        E::Io(io) if url.starts_with("http://") => (
            format!(
                "{host} closed the connection without an HTTP answer ({io}); if the port \
                 expects TLS, use https:// in --server"
            ),
            true,
        ),
        E::BadUri(why) => (format!("invalid URL {url}: {why}"), false),
        other => (format!("{url}: {other}"), true),
    }
}

/// The system CA bundle (when there is one) plus the certificates of `ca_file`.
fn roots_with_extra(ca_file: &Path) -> Result<RootCerts, Failure> {
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    let mut add = |path: &Path, required: bool| -> Result<(), Failure> {
        let pem = match std::fs::read(path) {
            Ok(pem) => pem,
            Err(_) if !required => return Ok(()),
            Err(e) => {
                return Err(Failure::usage(format!(
                    "cannot read the CA file {}: {e}",
                    path.display()
                )));
            }
        };
        let before = certs.len();
        for item in ureq::tls::parse_pem(&pem) {
            if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                certs.push(c);
            }
        }
        if required && certs.len() == before {
            return Err(Failure::usage(format!(
                "the CA file {} holds no PEM certificate",
                path.display()
            )));
        }
        Ok(())
    };
    add(ca_file, true)?;
    let system = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
    add(&system, false)?;
    Ok(RootCerts::Specific(Arc::new(certs)))
}
