//! The vendor console under `/console` (issue 12): server-rendered pages (askama templates in
//! `templates/console/`) over the same services as the vendor API, so a rule holds whichever
//! way a vendor works. Handlers extract, call a service, record the audit entry and render.
//!
//! - **Who:** the login session of `/reports/login` (`services::sessions`); without one, a
//!   303 to the login form. [`Console<N>`] checks permission `N` from the session before the
//!   body is read, so a `viewer` cannot even start an upload.
//! - **Forms:** every state-changing request carries the session's CSRF token: a `csrf` field
//!   in forms ([`Fields`]), the `X-CSRF-Token` header for the upload script. Without it: 403
//!   and nothing changed.
//! - **Script:** pages work without JavaScript; `console.js` (inside the binary, served from
//!   `/console/assets/`) only adds an upload progress bar. The content security policy allows
//!   scripts from this server alone.

pub mod account;
pub mod audit;
pub mod distributions;
pub mod keys;
pub mod licenses;
pub mod products;
pub mod releases;
pub mod users;

use std::marker::PhantomData;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::auth::{Caller, Needs, Permission, need};
use crate::client_addr::ClientAddr;
use crate::error::ApiError;
use crate::i18n::{Lang, Tr};
use crate::routes::reports::{PageError, csrf_refused, current_session, html, safe_next};
use crate::services::audit::{Event as AuditEvent, Via, record as record_audit};
use crate::services::common::Page;
use crate::state::AppState;

/// The upload script, vendored into the binary.
const CONSOLE_JS: &str = include_str!("../../../../templates/console/console.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/assets/console.js", get(script))
        .merge(distributions::router())
        .merge(releases::router())
        .merge(keys::router())
        .merge(licenses::router())
        .merge(products::router())
        .merge(users::router())
        .merge(account::router())
        .merge(audit::router())
        .layer(axum::middleware::from_fn(security_headers))
}

/// Scripts from this server only; no inline script, no external resource, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(request: Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    crate::routes::reports::page_headers(headers, CONTENT_SECURITY_POLICY);
    // Pages with secrets shown once (keys, one-time links) stay out of caches.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn script() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        CONSOLE_JS,
    )
}

// ---------------------------------------------------------------------------------------
// Who is asking

/// The session's CSRF token, left in the request by [`Console`] for [`Fields`].
#[derive(Clone)]
struct SessionCsrf(String);

/// A console user holding permission `N` (default: `read`, which every role has).
pub struct Console<N: Needs = need::Read> {
    pub caller: Caller,
    /// The user's login (for a session opened with an API key: `api-key:ID`).
    pub login: String,
    pub csrf: String,
    pub client: String,
    /// The language of the pages (`crate::i18n`).
    pub tr: Tr,
    /// This page's path and query, for the language switch to come back to.
    pub here: String,
    _needs: PhantomData<N>,
}

impl<N: Needs> Console<N> {
    pub fn user_id(&self) -> i32 {
        self.caller.user_id()
    }

    pub fn has(&self, p: Permission) -> bool {
        self.caller.has(p)
    }

    /// The page frame for this user.
    pub fn layout(&self, section: &'static str) -> Layout {
        Layout {
            login: self.login.clone(),
            csrf: self.csrf.clone(),
            tr: self.tr,
            here: self.here.clone(),
            section,
            can_publish: self.has(Permission::Publish),
            can_licenses: self.has(Permission::Licenses),
            is_owner: self.has(Permission::Admin),
            notice: String::new(),
        }
    }

    /// An audit entry of this user's, made in the console.
    pub fn event(&self, action: &str, target: impl Into<String>) -> AuditEvent {
        let mut e = AuditEvent::new(Via::Console, self.login.clone(), action, target);
        e.user_id = Some(self.user_id());
        e.client = Some(self.client.clone());
        e
    }

    /// Records `event` with the outcome of the action (its status: 200, or the error's).
    pub async fn record<T>(
        &self,
        state: &AppState,
        mut event: AuditEvent,
        outcome: &Result<T, ApiError>,
    ) {
        event.status = Some(match outcome {
            Ok(_) => 200,
            Err(e) => e.status.as_u16(),
        });
        if let Err(e) = outcome {
            event.detail = e.message.clone();
        }
        record_audit(&state.db, event, chrono::Utc::now()).await;
    }
}

impl<N: Needs> FromRequestParts<AppState> for Console<N> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let tr = Tr(Lang::of(&parts.headers));
        let Some((session, caller)) = current_session(state, &parts.headers).await else {
            let here = parts
                .uri
                .path_and_query()
                .map_or("/console", |p| p.as_str());
            let next: String =
                url::form_urlencoded::byte_serialize(safe_next(here).as_bytes()).collect();
            return Err(PageError::redirect(format!("/reports/login?next={next}")));
        };
        if !caller.has(N::PERMISSION) {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                tr.t1(
                    "error-needs-permission",
                    "permission",
                    N::PERMISSION.as_str(),
                ),
            )
            .in_lang(tr.0));
        }
        let login = match &caller {
            Caller::User { login, .. } => login.clone(),
            Caller::ApiKey { id, .. } => format!("api-key:{id}"),
        };
        let client = ClientAddr::from_parts(parts, &state.trusted_proxies)
            .0
            .to_string();
        parts
            .extensions
            .insert(SessionCsrf(session.csrf_token.clone()));
        let here = safe_next(
            parts
                .uri
                .path_and_query()
                .map_or("/console", |p| p.as_str()),
        )
        .to_owned();
        Ok(Console {
            caller,
            login,
            csrf: session.csrf_token,
            client,
            tr,
            here: url::form_urlencoded::byte_serialize(here.as_bytes()).collect(),
            _needs: PhantomData,
        })
    }
}

/// The frame every console page shares: who is logged in, what the navigation offers, the
/// logout form's CSRF token and a notice after an action.
pub struct Layout {
    pub login: String,
    pub csrf: String,
    pub tr: Tr,
    /// This page, URL-encoded, for the language switch.
    pub here: String,
    pub section: &'static str,
    pub can_publish: bool,
    pub can_licenses: bool,
    pub is_owner: bool,
    pub notice: String,
}

impl Layout {
    pub fn with_notice(mut self, notice: Option<&str>) -> Self {
        self.notice = notice
            .and_then(notice_id)
            .map(|id| self.tr.t(id))
            .unwrap_or_default();
        self
    }

    /// Message `id` in the page's language.
    pub fn t(&self, id: &str) -> String {
        self.tr.t(id)
    }

    /// Message `id` with one argument.
    pub fn t1(&self, id: &str, name: &str, value: impl std::fmt::Display) -> String {
        self.tr.t1(id, name, value)
    }

    /// The code of the language the switch offers.
    pub fn other_lang(&self) -> &'static str {
        match self.tr.0 {
            Lang::Ru => "en",
            Lang::En => "ru",
        }
    }
}

/// The notices a redirect may ask for (`?done=…`): fixed messages, so nothing from the URL
/// is shown.
fn notice_id(code: &str) -> Option<&'static str> {
    Some(match code {
        "created" => "notice-created",
        "saved" => "notice-saved",
        "published" => "notice-published",
        "yanked" => "notice-yanked",
        "deleted" => "notice-deleted",
        "uploaded" => "notice-uploaded",
        "main" => "notice-main",
        "removed" => "notice-removed",
        "revoked" => "notice-revoked",
        "password" => "notice-password",
        "unpublished" => "notice-unpublished",
        "republished" => "notice-republished",
        "revoked-license" => "notice-revoked-license",
        "restored-license" => "notice-restored-license",
        _ => return None,
    })
}

/// `?done=…` of a page after a redirect.
#[derive(serde::Deserialize, Default)]
pub struct Done {
    pub done: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Forms

/// The fields of a form (`application/x-www-form-urlencoded`) whose `csrf` field matched the
/// session's token. Repeated names (the rows of the compatibility editor) keep their order.
pub struct Fields(Vec<(String, String)>);

/// The largest form body read (changelogs are long; files never come this way).
const FORM_LIMIT: usize = 1 << 20;

impl Fields {
    /// The first value of `name`, trimmed, or "".
    pub fn get(&self, name: &str) -> &str {
        self.raw(name).trim()
    }

    /// The first value of `name` as sent, or "".
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether a checkbox `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Fields(pairs)
    }
}

impl FromRequest<AppState> for Fields {
    type Rejection = Response;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, Response> {
        let lang = Lang::of(req.headers());
        let Some(SessionCsrf(expected)) = req.extensions().get::<SessionCsrf>().cloned() else {
            return Err(csrf_refused(lang));
        };
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(csrf_refused(lang));
        }
        let body = axum::body::to_bytes(req.into_body(), FORM_LIMIT)
            .await
            .map_err(|_| {
                PageError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Tr(lang).t1("error-form-too-large", "bytes", FORM_LIMIT),
                )
                .in_lang(lang)
                .into_response()
            })?;
        let fields = parse_form(&body);
        if !crate::services::sessions::same_secret(&expected, fields.get("csrf")) {
            return Err(csrf_refused(lang));
        }
        Ok(fields)
    }
}

fn parse_form(body: &Bytes) -> Fields {
    Fields(
        url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    )
}

/// A `multipart/form-data` body whose first part is the session's `csrf` token, checked before
/// any other part (a file) is read; otherwise the 403 refusal.
pub async fn checked_multipart<N: Needs>(
    console: &Console<N>,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<axum::extract::Multipart, Response> {
    let refused = || csrf_refused(console.tr.0);
    let mut multipart = multipart.map_err(|_| refused())?;
    match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some("csrf") => match field.text().await {
            Ok(token) if crate::services::sessions::same_secret(&console.csrf, token.trim()) => {}
            _ => return Err(refused()),
        },
        _ => return Err(refused()),
    }
    Ok(multipart)
}

/// The `X-CSRF-Token` header of the upload script, checked against the session's token.
pub fn header_csrf_ok(parts_csrf: &str, headers: &axum::http::HeaderMap) -> bool {
    headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| crate::services::sessions::same_secret(parts_csrf, v.trim()))
}

// ---------------------------------------------------------------------------------------
// Answers

/// A page, or an error page for a service's refusal.
pub fn page<T: Template>(status: StatusCode, template: &T) -> Response {
    let mut response = html(template);
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

/// The error page of a refusal, in the page's language (the message is the service's,
/// written for people, in English).
pub fn refused<N: Needs>(console: &Console<N>, e: ApiError) -> Response {
    PageError::from(e).in_lang(console.tr.0).into_response()
}

/// 303 to `to` with notice `done`.
pub fn done(to: &str, notice: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}done={notice}")).into_response()
}

/// The catalogue of product names, or an empty one when it cannot be read (names are a
/// convenience; the pages still show the numbers).
pub async fn names_or_empty(state: &AppState) -> crate::services::products::Names {
    crate::services::products::names(&state.db)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e.message, "cannot read the product names");
            crate::services::products::Names::default()
        })
}

/// What a path segment keeps as is: RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// An audit target as the vendor API writes it (`id="12" name="crm.cfe"`, a license key as
/// `key_sha256=…`), so one filter finds an action whichever way it was done.
pub fn target(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(name, value)| crate::access_log::target_param(name, value))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A path segment, percent-encoded.
pub fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// Links to the previous and next page of a list (the vendor API's `offset`/`limit`).
pub struct Pager {
    pub first: u64,
    pub last: u64,
    pub total: u64,
    pub prev: String,
    pub next: String,
}

impl Pager {
    /// `base` is the list's path, `keep` the filters every link repeats.
    pub fn new(page: &Page, total: u64, base: &str, keep: &[(&str, &str)]) -> Pager {
        let link = |offset: u64| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in keep.iter().filter(|(_, v)| !v.is_empty()) {
                q.append_pair(k, v);
            }
            q.append_pair("offset", &offset.to_string());
            q.append_pair("limit", &page.limit.to_string());
            format!("{base}?{}", q.finish())
        };
        let last = (page.offset + page.limit).min(total);
        Pager {
            first: if total == 0 { 0 } else { page.offset + 1 },
            last,
            total,
            prev: if page.offset > 0 {
                link(page.offset.saturating_sub(page.limit))
            } else {
                String::new()
            },
            next: if last < total {
                link(last)
            } else {
                String::new()
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// Home

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    layout: Layout,
    roles: String,
}

async fn home(console: Console) -> Response {
    let roles = console
        .caller
        .permissions()
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    page(
        StatusCode::OK,
        &HomePage {
            layout: console.layout("home"),
            roles,
        },
    )
}
