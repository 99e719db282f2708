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
    ) -> Result<Vec<u8>, Failure> {
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
                    match response
                        .into_body()
                        .with_config()
                        .limit(MAX_ANSWER)
                        .read_to_vec()
                    {
                        Ok(answer) => {
                            let transient = status == 429 || status >= 500;
                            if !(transient && attempt < self.retries) {
                                return verified(
                                    url, &query_id, echoed, signature, status, answer, key,
                                );
                            }
                            format!("{url} answered {status}")
                        }
                        Err(e) => format!("reading the answer of {url}: {e}"),
                    }
                }
                Err(e) => format!("{url}: {e}"),
            };
            if attempt >= self.retries {
                return Err(Failure::network(format!(
                    "network error: {transient} (after {} attempts)",
                    attempt + 1
                )));
            }
            std::thread::sleep(Self::backoff(attempt));
            attempt += 1;
        }
    }
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Believes nothing of an answer before its signature over QueryID + body checks out.
fn verified(
    url: &str,
    query_id: &str,
    echoed: Option<String>,
    signature: Option<String>,
    status: u16,
    body: Vec<u8>,
    key: Option<&PinnedKeys>,
) -> Result<Vec<u8>, Failure> {
    if let Some(key) = key {
        if let Err(e) = key.verify_response(query_id, &body, signature.as_deref()) {
            return Err(Failure::refused(format!(
                "refusing the answer of {url} (HTTP {status}): {e}; it was changed on the way, \
                 replayed, or comes from a server that does not hold the pinned key"
            )));
        }
        if echoed.as_deref().is_some_and(|e| e != query_id) {
            return Err(Failure::refused(format!(
                "refusing the answer of {url}: it echoes another Licence-QueryID than the one sent"
            )));
        }
    }
    if status != 200 {
        let reason = serde_json::from_slice::<ClientError>(&body)
            .map(|e| e.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(300).collect());
        return Err(Failure::network(format!(
            "the server refused the request (HTTP {status}): {reason}"
        )));
    }
    Ok(body)
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
