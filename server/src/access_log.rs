//! One access-log line per request, the per-request metrics, and audit lines for vendor
//! actions (SPEC §8 Running; issue 8, item 4).
//!
//! - **Access line** (target `access`, INFO), written when the answer's body ends or is
//!   dropped, so it has the bytes actually sent: method, the matched route *template*, status,
//!   bytes, duration and client address. The raw path is never logged: download paths carry a
//!   token, `getModuleFile` paths a license-key hash, and the query nothing we need. Lines go
//!   through the non-blocking writer set up in [`crate::logging`].
//! - **Metrics**: requests by route family and status and the time to the answer's head are
//!   recorded when the head is ready (so a scrape right after an answer counts it); download
//!   bytes when the body ends.
//! - **Audit line** (target `audit`, INFO) for every changing vendor-API request, and for the
//!   reads that hand something out ([`AUDITED_READS`]: offline bundles): action (method and
//!   route template), status, who ([`AuditActor`], filled by `auth`), client and path
//!   parameters (and a bundle's `license`), license keys shown only as a short fingerprint.
//!   The same request is recorded in the audit log kept in the database
//!   ([`crate::services::audit`], via `api`), its action named by the operation id of the
//!   OpenAPI document; a handler may add what it created or more detail ([`AuditNote`]). A
//!   request refused before anyone was known is not recorded there: a failed login is
//!   recorded once, by `auth`.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponseParts, Response, ResponseParts};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use sha2::Digest;

use crate::auth::Caller;
use crate::client_addr::ClientAddr;
use crate::services::audit;
use crate::state::AppState;
use crate::telemetry;

/// Route families of `vypusk_http_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// The client protocol's checks and hashes under `/releases/`.
    Client,
    /// `/releases/v1/files/…` and `getModuleFile`: file bytes.
    Download,
    Api,
    Reports,
    Other,
}

impl Family {
    /// From the raw path (only compared, never logged): also right for requests no route
    /// matched.
    pub fn of(path: &str) -> Family {
        if path.starts_with("/releases/v1/files/")
            || path.starts_with("/releases/v1/1c/getModuleFile/")
        {
            Family::Download
        } else if path.starts_with("/releases/") {
            Family::Client
        } else if path == "/api" || path.starts_with("/api/") {
            Family::Api
        } else if path == "/reports" || path.starts_with("/reports/") {
            Family::Reports
        } else {
            Family::Other
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Client => "client",
            Family::Download => "download",
            Family::Api => "api",
            Family::Reports => "reports",
            Family::Other => "other",
        }
    }
}

/// Who made a vendor-API request, for its audit line and entry; the authenticating extractor
/// fills it.
#[derive(Clone, Default)]
pub struct AuditActor(Arc<OnceLock<(String, i32)>>);

impl AuditActor {
    pub fn set(&self, caller: &Caller) {
        let _ = self.0.set((actor_name(caller), caller.user_id()));
    }

    fn get(&self) -> Option<&(String, i32)> {
        self.0.get()
    }
}

/// A caller as the audit log names it: the user's login, or `api-key:ID`.
pub fn actor_name(caller: &Caller) -> String {
    match caller {
        Caller::User { login, .. } => login.clone(),
        Caller::ApiKey { id, .. } => format!("api-key:{id}"),
    }
}

/// What a handler adds to its request's audit entry, as a part of its answer: what it created
/// (the path has no id yet), more detail (a yank's reason), or who acted when the request
/// carried no credentials (setting a password with a one-time token).
#[derive(Clone, Debug, Default)]
pub struct AuditNote {
    /// Appended to the path parameters.
    pub target: String,
    pub detail: String,
    /// `(login, user id)` when no credentials named the actor.
    pub actor: Option<(String, i32)>,
}

impl AuditNote {
    pub fn target(target: impl Into<String>) -> AuditNote {
        AuditNote {
            target: target.into(),
            ..AuditNote::default()
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> AuditNote {
        self.detail = detail.into();
        self
    }
}

impl IntoResponseParts for AuditNote {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.extensions_mut().insert(self);
        Ok(res)
    }
}

/// `name="value"` as audit targets write a parameter (the value quoted and cut like in
/// messages); a license key is written `key_sha256=` and its fingerprint instead.
pub fn target_param(name: &str, value: &str) -> String {
    if name == "key" {
        format!("key_sha256={}", key_fingerprint(value))
    } else {
        format!("{name}={}", crate::error::quote(value))
    }
}

/// Update checks, counted in `vypusk_checks_total` when answered with 200.
const CHECK_ROUTES: &[(&str, &str)] = &[
    (
        "/releases/v1/1c/getAvailableReleases",
        "getAvailableReleases",
    ),
    ("/releases/v1/1c/getLatestRelease", "getLatestRelease"),
    ("/releases/v1/1c/getModuleInfo", "getModuleInfo"),
];

/// Vendor-API reads audited like changes: a bundle gives a license's holder a release.
pub const AUDITED_READS: &[&str] = &["/api/v1/releases/{id}/bundle"];

const UPLOAD_ROUTES: &[&str] = &[
    "/api/v1/releases/{id}/files/{name}",
    "/api/v1/releases/{id}/files",
];

/// The middleware; outermost layer of the router, so it sees every answer as sent.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let family = Family::of(request.uri().path());
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route_str = route.as_ref().map_or("-", MatchedPath::as_str);
    let (mut parts, body) = request.into_parts();
    let method = parts.method.clone();
    let client = ClientAddr::from_parts(&parts, &state.trusted_proxies).0;

    let audit = if family == Family::Api
        && route.is_some()
        && (!matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
            || (method == Method::GET && AUDITED_READS.contains(&route_str)))
    {
        let actor = AuditActor::default();
        parts.extensions.insert(actor.clone());
        let mut params = RawPathParams::from_request_parts(&mut parts, &state)
            .await
            .map(|p| audit_params(&p))
            .unwrap_or_default();
        if let Some(license) = query_license(parts.uri.query()) {
            if !params.is_empty() {
                params.push(' ');
            }
            params.push_str("license_sha256=");
            params.push_str(&key_fingerprint(&license));
        }
        Some((actor, params))
    } else {
        None
    };
    let uploaded = (method != Method::GET && UPLOAD_ROUTES.contains(&route_str))
        .then(|| Arc::new(AtomicU64::new(0)));
    let body = match &uploaded {
        Some(counter) => Body::new(CountingBody {
            inner: body,
            counter: counter.clone(),
        }),
        None => body,
    };

    let mut response = next.run(Request::from_parts(parts, body)).await;
    let status = response.status();
    let note = response.extensions_mut().remove::<AuditNote>();

    metrics::counter!(telemetry::HTTP_REQUESTS,
        "family" => family.as_str(), "status" => status_label(status))
    .increment(1);
    metrics::histogram!(telemetry::HTTP_RESPONSE_TIME, "family" => family.as_str())
        .record(started.elapsed().as_secs_f64());
    if status == StatusCode::OK
        && let Some((_, call)) = CHECK_ROUTES.iter().find(|(r, _)| *r == route_str)
    {
        metrics::counter!(telemetry::CHECKS, "call" => *call).increment(1);
    }
    if let Some(counter) = uploaded
        && status.is_success()
    {
        metrics::counter!(telemetry::UPLOADS).increment(1);
        metrics::counter!(telemetry::UPLOAD_BYTES).increment(counter.load(Ordering::Relaxed));
    }
    if let Some((actor, params)) = audit {
        let note = note.unwrap_or_default();
        let who = actor.get().cloned().or(note.actor);
        tracing::info!(
            target: "audit",
            action = %format_args!("{method} {route_str}"),
            params = %params,
            status = status.as_u16(),
            actor = who.as_ref().map_or("-", |(name, _)| name.as_str()),
            client = %client,
            "vendor action"
        );
        // Without an actor the request was refused before anyone was known: a failed login
        // is recorded once, by `auth`; no credentials at all is nobody's action.
        if let Some((name, user_id)) = who {
            let mut target = params;
            if !note.target.is_empty() {
                if !target.is_empty() {
                    target.push(' ');
                }
                target.push_str(&note.target);
            }
            let event = audit::Event {
                user_id: Some(user_id),
                detail: note.detail,
                status: Some(status.as_u16()),
                client: Some(client.to_string()),
                ..audit::Event::new(
                    audit::Via::Api,
                    name,
                    crate::openapi::operation_id(method.as_str(), route_str)
                        .map_or_else(|| format!("{method} {route_str}"), str::to_owned),
                    target,
                )
            };
            audit::record(&state.db, event, chrono::Utc::now()).await;
        }
    }

    let counts_download =
        family == Family::Download && method == Method::GET && status.is_success();
    let (head, body) = response.into_parts();
    let finish = Finish {
        method,
        route,
        status,
        client,
        started,
        counts_download,
    };
    Response::from_parts(
        head,
        Body::new(LoggedBody {
            inner: body,
            sent: 0,
            finish: Some(finish),
        }),
    )
}

/// A status as a label without allocating for the usual ones.
fn status_label(status: StatusCode) -> metrics::SharedString {
    match status.as_u16() {
        200 => "200".into(),
        201 => "201".into(),
        204 => "204".into(),
        206 => "206".into(),
        302 => "302".into(),
        304 => "304".into(),
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        429 => "429".into(),
        other => other.to_string().into(),
    }
}

/// `name=value` pairs of the path; a license key appears as `key_sha256=` and 12 hex digits.
fn audit_params(params: &RawPathParams) -> String {
    let mut out = String::new();
    for (name, value) in params {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&target_param(name, value));
    }
    out
}

/// A license key as audit lines show it: the first 12 hex digits of its SHA-256.
pub fn key_fingerprint(key: &str) -> String {
    let digest = hex::encode(sha2::Sha256::digest(key.as_bytes()));
    digest[..12].to_owned()
}

/// The `license` parameter of a query string (a bundle's), if any.
fn query_license(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(name, value)| name == "license" && !value.is_empty())
        .map(|(_, value)| value.trim().to_owned())
}

/// What the access line needs once the body is done.
struct Finish {
    method: Method,
    route: Option<MatchedPath>,
    status: StatusCode,
    client: IpAddr,
    started: Instant,
    counts_download: bool,
}

impl Finish {
    fn log(self, bytes: u64) {
        if self.counts_download {
            metrics::counter!(telemetry::DOWNLOADS).increment(1);
            metrics::counter!(telemetry::DOWNLOAD_BYTES).increment(bytes);
        }
        if !tracing::enabled!(target: "access", tracing::Level::INFO) {
            return;
        }
        let line = AccessLine {
            method: self.method,
            route: self.route,
            status: self.status,
            bytes,
            duration_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            client: self.client,
        };
        // Formatting costs the request thread about as much as a small answer (bench/log_cost.sh):
        // lines are formatted on their own thread, which collects them every few milliseconds
        // (a wake-up per line would cost as much again). When it is far behind, the line is
        // formatted here rather than lost.
        let queue = access_queue();
        let mut pending = queue.lines.lock().unwrap_or_else(|e| e.into_inner());
        if pending.len() < ACCESS_QUEUE && queue.running {
            pending.push(line);
        } else {
            drop(pending);
            line.emit();
        }
    }
}

/// One access line, formatted by the access-log thread.
struct AccessLine {
    method: Method,
    route: Option<MatchedPath>,
    status: StatusCode,
    bytes: u64,
    duration_ms: f64,
    client: IpAddr,
}

impl AccessLine {
    fn emit(self) {
        tracing::info!(
            target: "access",
            method = %self.method,
            route = self.route.as_ref().map_or("-", MatchedPath::as_str),
            status = self.status.as_u16(),
            bytes = self.bytes,
            duration_ms = %format_args!("{:.3}", self.duration_ms),
            client = %self.client,
        );
    }
}

/// Lines waiting for the access-log thread; beyond this they are formatted in place.
const ACCESS_QUEUE: usize = 16 * 1024;
/// How often the access-log thread collects lines.
const ACCESS_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

struct AccessQueue {
    lines: std::sync::Mutex<Vec<AccessLine>>,
    /// The thread started; without it lines are formatted in place.
    running: bool,
}

impl AccessQueue {
    fn emit_pending(&self) {
        let lines = std::mem::take(&mut *self.lines.lock().unwrap_or_else(|e| e.into_inner()));
        for line in lines {
            line.emit();
        }
    }
}

fn access_queue() -> &'static AccessQueue {
    static QUEUE: OnceLock<AccessQueue> = OnceLock::new();
    static STARTED: OnceLock<bool> = OnceLock::new();
    QUEUE.get_or_init(|| AccessQueue {
        lines: std::sync::Mutex::new(Vec::new()),
        running: *STARTED.get_or_init(|| {
            std::thread::Builder::new()
                .name("vypusk-access".into())
                .spawn(|| {
                    loop {
                        std::thread::sleep(ACCESS_EVERY);
                        if let Some(queue) = QUEUE.get() {
                            queue.emit_pending();
                        }
                    }
                })
                .map_err(|e| tracing::error!(error = %e, "cannot start the access-log thread; lines are formatted in place"))
                .is_ok()
        }),
    })
}

/// Writes every access line handed over so far; called at shutdown so the last requests'
/// lines are not lost.
pub fn flush() {
    access_queue().emit_pending();
}

/// The answer's body, counting the bytes sent; logs when it ends or is dropped (client gone).
struct LoggedBody {
    inner: Body,
    sent: u64,
    finish: Option<Finish>,
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                }
            }
            None => {
                if let Some(finish) = this.finish.take() {
                    finish.log(this.sent);
                }
            }
            Some(Err(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(finish) = self.finish.take() {
            finish.log(self.sent);
        }
    }
}

/// An upload's request body, counting the bytes the handler read.
struct CountingBody {
    inner: Body,
    counter: Arc<AtomicU64>,
}

impl HttpBody for CountingBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            self.counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(
            Family::of("/releases/v1/files/TOKEN/a.cfe"),
            Family::Download
        );
        assert_eq!(
            Family::of("/releases/v1/1c/getModuleFile/T/latest/abc"),
            Family::Download
        );
        assert_eq!(
            Family::of("/releases/v1/1c/getAvailableReleases"),
            Family::Client
        );
        assert_eq!(Family::of("/api/v1/licenses"), Family::Api);
        assert_eq!(Family::of("/apiary"), Family::Other);
        assert_eq!(Family::of("/reports/login"), Family::Reports);
        assert_eq!(Family::of("/metrics"), Family::Other);
    }
}
