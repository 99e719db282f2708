//! HTML statistics reports under `/reports` (askama templates in `templates/reports/`):
//! an overview and a page per distribution, with server-rendered SVG charts, filters in the
//! query string and a CSV link next to every table. No JavaScript, no external resource.
//!
//! Credentials are the vendor API's (permission `read`): HTTP Basic, an API key header, or the
//! session cookie (`vypusk_session`, kept in the database: `services::sessions`) that the
//! login form at `/reports/login` sets. A browser without credentials (its `Accept` names
//! `text/html`) is sent to the login form (303); other clients get a 401 with
//! `WWW-Authenticate: Basic`. Every form carries a CSRF token: the login form a double-submit
//! cookie, the logout form the session's token.

use askama::Template;

use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use sea_orm::{EntityTrait, QueryOrder};
use serde::Deserialize;

use crate::auth::{
    Authorized, Caller, Credentials, Permission, authenticate, need, record_login,
    record_login_failure, record_logout, user_password_hash,
};
use crate::client_addr::{ClientAddr, ForwardedHttps};
use crate::entities::distribution;
use crate::entities::session;
use crate::error::ApiError;
use crate::i18n::{Lang, Tr};
use crate::routes::api::stats::{
    StatsParams, active_installations_report, customers_report, downloads_report, expiring_report,
    installed_base_report, newest_share_report, render, unknown_keys_report, upgrade_paths_report,
};
use crate::services::audit::Via;
use crate::services::sessions;
use crate::state::AppState;
use crate::stats::chart::{self, human_bytes};
use crate::stats::query::{self, Cell, Table};

/// The session cookie (`services::sessions`): HttpOnly, SameSite=Lax, Path=/.
pub(crate) const SESSION_COOKIE: &str = "vypusk_session";
/// The login form's double-submit CSRF cookie.
const CSRF_COOKIE: &str = "vypusk_csrf";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reports", get(overview))
        .route("/reports/", get(overview))
        .route("/reports/distributions/{code}", get(distribution_page))
        .route("/reports/csv/{report}", get(csv))
        .route("/reports/login", get(login_form).post(login))
        .route("/reports/logout", get(logout_form).post(logout))
        .merge(super::audience_pages::router())
        .layer(axum::middleware::from_fn(security_headers))
}

/// The reports use no script and no external resource, so the policy allows none: an
/// injected `<script>` or form target goes nowhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    page_headers(response.headers_mut(), CONTENT_SECURITY_POLICY);
    response
}

/// The headers every browser page carries: its content security policy, no MIME sniffing,
/// referrers only to this server.
pub(crate) fn page_headers(headers: &mut HeaderMap, policy: &'static str) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

// ---------------------------------------------------------------------------------------
// Authentication

/// Someone allowed to read statistics, and who they are (downloads per license need
/// `licenses` besides).
pub struct Reader(pub Caller);

/// 401 (with the Basic challenge and a link to the login form), 403, or another error, as
/// an HTML page; or a 303 to the login form (then `message` is the form's local URL).
pub struct PageError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    /// The language of the page's own words (the message is given).
    pub(crate) lang: Lang,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        PageError {
            status,
            message: message.into(),
            lang: Lang::En,
        }
    }

    /// A 303 to `to` (a local URL: the login form).
    pub fn redirect(to: String) -> Self {
        PageError::new(StatusCode::SEE_OTHER, to)
    }

    pub fn in_lang(mut self, lang: Lang) -> Self {
        self.lang = lang;
        self
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::new(e.status, e.message)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::SEE_OTHER {
            // To the login form (`message` is its local URL).
            return Redirect::to(&self.message).into_response();
        }
        let page = ErrorPage {
            status: self.status.as_u16(),
            reason: self.status.canonical_reason().unwrap_or(""),
            message: &self.message,
            login: self.status == StatusCode::UNAUTHORIZED,
            tr: Tr(self.lang),
        };
        let mut response = (self.status, html(&page)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"vypusk\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        if let Some((_, caller)) = current_session(state, &parts.headers).await
            && caller.has(Permission::Read)
        {
            return Ok(Reader(caller));
        }
        if Credentials::from_headers(&parts.headers).is_none() && wants_html(&parts.headers) {
            // A browser without credentials goes to the login form, not to a Basic dialog.
            let here = parts
                .uri
                .path_and_query()
                .map_or("/reports", |p| p.as_str());
            let next: String =
                url::form_urlencoded::byte_serialize(safe_next(here).as_bytes()).collect();
            return Err(PageError::redirect(format!("/reports/login?next={next}")));
        }
        let authorized = Authorized::<need::Read>::from_request_parts(parts, state).await?;
        Ok(Reader(authorized.0))
    }
}

/// Whether the request looks like a browser's: its `Accept` names `text/html`.
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"))
}

/// The value of cookie `name`, if the request has it.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v)
}

/// The request's session (from the shared `sessions` table) and who it is, while it lasts.
pub(crate) async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Option<(session::Model, Caller)> {
    let token = cookie(headers, SESSION_COOKIE)?;
    let idle = sessions::idle_limit(state.settings.session_idle_minutes);
    match sessions::lookup(&state.db, token, idle, chrono::Utc::now()).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a session");
            None
        }
    }
}

pub(crate) fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn secure(https: bool) -> &'static str {
    if https { "; Secure" } else { "" }
}

/// 403: a form came without its CSRF token, or with another one; nothing was changed.
pub(crate) fn csrf_refused(lang: Lang) -> Response {
    PageError::new(StatusCode::FORBIDDEN, Tr(lang).t("error-csrf"))
        .in_lang(lang)
        .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize, Default)]
struct NextParam {
    next: Option<String>,
}

/// The login form. Its CSRF token is a double-submit one: a random value in the `vypusk_csrf`
/// cookie (HttpOnly, SameSite=Strict) and in the form; a login is accepted only when both
/// agree, which another site cannot arrange. No server state is needed, so any instance
/// accepts a form another one served.
async fn login_form(
    ForwardedHttps(https): ForwardedHttps,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<NextParam>,
) -> Response {
    let csrf = cookie(&headers, CSRF_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or_else(sessions::random_token, str::to_owned);
    let mut response = html(&LoginPage {
        error: "",
        next: safe_next(q.next.as_deref().unwrap_or("")),
        csrf: &csrf,
        tr: Tr(Lang::of(&headers)),
    });
    set_cookie(
        &mut response,
        &format!(
            "{CSRF_COOKIE}={csrf}; Path=/reports; HttpOnly; SameSite=Strict{}",
            secure(https)
        ),
    );
    response
}

/// Only local URLs are followed after login: a path under `/reports` or `/console` made of visible
/// ASCII (anything else, such as a newline that cannot go into a `Location` header, falls
/// back to `/reports`).
pub(crate) fn safe_next(next: &str) -> &str {
    let local = (next.starts_with("/reports") || next.starts_with("/console"))
        && !next.contains("//")
        && !next.contains('\\');
    if local && next.len() <= 2048 && next.bytes().all(|b| b.is_ascii_graphic()) {
        next
    } else {
        "/reports"
    }
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    ForwardedHttps(https): ForwardedHttps,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    // Without a readable form, or its token, or the cookie to match: 403, nothing tried.
    let (Ok(Form(form)), Some(expected)) = (form, cookie(&headers, CSRF_COOKIE)) else {
        return csrf_refused(Lang::of(&headers));
    };
    if !sessions::same_secret(expected, form.csrf.trim()) {
        return csrf_refused(Lang::of(&headers));
    }
    let csrf = expected;
    let user = form.user.trim();
    let credentials = if user.is_empty() || user == "apikey" {
        // An API key in the password field.
        Credentials::ApiKey(form.password.trim().to_owned())
    } else {
        Credentials::Password {
            user: user.to_owned(),
            password: form.password.clone(),
        }
    };
    let tr = Tr(Lang::of(&headers));
    let failed = &tr.t("login-wrong");
    let (wrong, unauthorized) = ("wrong credentials", StatusCode::UNAUTHORIZED);
    let who = match authenticate(&state, &credentials, ip).await {
        Ok(c) if c.has(Permission::Read) => match c {
            Caller::User { id, .. } => match user_password_hash(&state.db, id).await {
                Ok(Some(hash)) => (id, None, hash),
                _ => {
                    record_login_failure(&state, Via::Login, &credentials, unauthorized, wrong, ip)
                        .await;
                    return login_failed(failed, &form.next, csrf, tr);
                }
            },
            Caller::ApiKey { id, user_id, .. } => (user_id, Some(id), String::new()),
        },
        Ok(_) => {
            record_login_failure(
                &state,
                Via::Login,
                &credentials,
                unauthorized,
                "no permission",
                ip,
            )
            .await;
            return login_failed(&tr.t("login-no-permission"), &form.next, csrf, tr);
        }
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {
            record_login_failure(&state, Via::Login, &credentials, e.status, "throttled", ip).await;
            return login_refused(e.status, &e.message, &form.next, csrf, tr);
        }
        Err(e) => {
            let reason = if e.status == unauthorized {
                wrong
            } else {
                "the credentials could not be checked"
            };
            record_login_failure(&state, Via::Login, &credentials, e.status, reason, ip).await;
            return login_failed(failed, &form.next, csrf, tr);
        }
    };
    let login = match &who {
        (user_id, None, hash) => sessions::Login::Password {
            user_id: *user_id,
            password_hash: hash,
        },
        (user_id, Some(key_id), _) => sessions::Login::ApiKey {
            key_id: *key_id,
            user_id: *user_id,
        },
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let now = chrono::Utc::now();
    // Housekeeping: sessions ended by time go (lookups delete the ones they meet).
    let idle = sessions::idle_limit(state.settings.session_idle_minutes);
    if let Err(e) = sessions::delete_ended(&state.db, idle, now).await {
        tracing::warn!(error = %e, "cannot delete ended sessions");
    }
    let created =
        match sessions::create(&state.db, login, Some(ip.to_string()), user_agent, now).await {
            Ok(c) => c,
            Err(e) => return PageError::from(ApiError::from(e)).into_response(),
        };
    let actor = match who.1 {
        Some(key_id) => format!("api-key:{key_id}"),
        None => user.to_owned(),
    };
    record_login(&state, actor, who.0, ip).await;
    let mut response = Redirect::to(safe_next(&form.next)).into_response();
    set_cookie(
        &mut response,
        &format!(
            "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
            created.token,
            sessions::ABSOLUTE_LIFETIME.num_seconds(),
            secure(https)
        ),
    );
    response
}

fn login_failed(message: &str, next: &str, csrf: &str, tr: Tr) -> Response {
    login_refused(StatusCode::UNAUTHORIZED, message, next, csrf, tr)
}

fn login_refused(status: StatusCode, message: &str, next: &str, csrf: &str, tr: Tr) -> Response {
    (
        status,
        html(&LoginPage {
            error: message,
            next: safe_next(next),
            csrf,
            tr,
        }),
    )
        .into_response()
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `GET /reports/logout`: a one-button form that posts the session's CSRF token (logging out
/// changes state, so it is never a GET); without a session, the login form.
async fn logout_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match current_session(&state, &headers).await {
        Some((session, _)) => html(&LogoutPage {
            csrf: &session.csrf_token,
            tr: Tr(Lang::of(&headers)),
        }),
        None => Redirect::to("/reports/login").into_response(),
    }
}

/// `POST /reports/logout`: ends the session (on every instance) when the form carries the
/// session's CSRF token; 403 and nothing changed otherwise.
async fn logout(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    ForwardedHttps(https): ForwardedHttps,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    // A form that cannot be read has no token.
    let presented = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Ok(Some(row)) = session::Entity::find_by_id(sessions::token_hash(token))
            .one(&state.db)
            .await
    {
        if !sessions::same_secret(&row.csrf_token, presented.trim()) {
            return csrf_refused(Lang::of(&headers));
        }
        if let Err(e) = sessions::delete(&state.db, token).await {
            return PageError::from(ApiError::from(e)).into_response();
        }
        record_logout(&state, row.user_id, row.api_key_id, ip).await;
    }
    let mut response = Redirect::to("/reports/login").into_response();
    set_cookie(
        &mut response,
        &format!(
            "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            secure(https)
        ),
    );
    response
}

// ---------------------------------------------------------------------------------------
// Pages

#[derive(Template)]
#[template(path = "reports/login.html")]
struct LoginPage<'a> {
    error: &'a str,
    next: &'a str,
    csrf: &'a str,
    tr: Tr,
}

#[derive(Template)]
#[template(path = "reports/logout.html")]
struct LogoutPage<'a> {
    csrf: &'a str,
    tr: Tr,
}

#[derive(Template)]
#[template(path = "reports/error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
    login: bool,
    tr: Tr,
}

/// One report section: heading, optional chart, table, CSV link.
pub struct Section {
    pub id: &'static str,
    pub title: String,
    pub note: String,
    pub svg: Option<String>,
    pub columns: Vec<String>,
    pub rows: Vec<RowView>,
    pub totals: Vec<CellView>,
    pub csv_url: String,
    pub empty: bool,
}

pub struct RowView {
    pub cells: Vec<CellView>,
    /// Drawn highlighted (an installation not on the newest release).
    pub highlight: bool,
}

pub struct CellView {
    pub column: &'static str,
    pub text: String,
    /// Raw number, for numeric cells.
    pub value: String,
    pub numeric: bool,
    pub link: String,
}

#[derive(Template)]
#[template(path = "reports/page.html")]
pub(crate) struct ReportPage {
    pub tr: Tr,
    pub title: String,
    pub heading: String,
    /// Which report of the navigation this is (`overview`, `active`, …).
    pub current: &'static str,
    /// The reader may see customer data: the per-customer and expiry reports are listed.
    pub customers: bool,
    pub from: String,
    pub to: String,
    pub show_range: bool,
    pub days: String,
    pub days_label: String,
    pub distribution: String,
    pub distributions: Vec<(String, String)>,
    pub action: String,
    pub show_days: bool,
    /// Per-customer filters: search text and "not on the newest release only".
    pub search: Option<(String, bool)>,
    pub summary: Vec<(String, String)>,
    pub sections: Vec<Section>,
    pub links: Vec<(String, String)>,
}

impl ReportPage {
    /// The navigation between reports: (path, label, is this page).
    pub fn nav(&self) -> Vec<(&'static str, String, bool)> {
        let mut out = vec![
            ("/reports", "report-nav-overview", "overview"),
            ("/reports/active", "report-nav-active", "active"),
            ("/reports/newest", "report-nav-newest", "newest"),
        ];
        if self.customers {
            out.push(("/reports/customers", "report-nav-customers", "customers"));
            out.push(("/reports/expiring", "report-nav-expiring", "expiring"));
        }
        out.push((
            "/reports/unknown-keys",
            "report-nav-unknown-keys",
            "unknown-keys",
        ));
        out.into_iter()
            .map(|(href, id, name)| (href, self.tr.t(id), name == self.current))
            .collect()
    }
}

pub(crate) fn html<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(body) => Html(body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a report template");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render the page").into_response()
        }
    }
}

pub(crate) fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

fn placeholder(tr: Tr, column: &str) -> String {
    match column {
        "conf" => tr.t("report-no-conf"),
        "license" => tr.t("report-no-license"),
        "from_version" => tr.t("report-new-install"),
        "version" => tr.t("report-nothing-installed"),
        _ => "—".into(),
    }
}

fn cell_view(tr: Tr, column: &'static str, cell: &Cell, row: &[Cell], table: &Table) -> CellView {
    match cell {
        Cell::Bool(b) => CellView {
            column,
            text: tr.t(if *b { "report-yes" } else { "report-no" }),
            value: b.to_string(),
            numeric: false,
            link: String::new(),
        },
        Cell::Int(n) => CellView {
            column,
            text: if column == "bytes" {
                human_bytes(*n)
            } else if column == "release_id" {
                n.to_string()
            } else {
                tr.number(*n)
            },
            value: n.to_string(),
            numeric: column != "release_id",
            link: String::new(),
        },
        Cell::Text(s) => {
            let link = if column == "distribution" && !s.is_empty() {
                let _ = (row, table);
                format!(
                    "/reports/distributions/{}",
                    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                )
            } else {
                String::new()
            };
            CellView {
                column,
                text: if s.is_empty() {
                    placeholder(tr, column)
                } else {
                    s.clone()
                },
                value: s.clone(),
                numeric: false,
                link,
            }
        }
    }
}

/// Columns shown in tables: internal ids stay in the JSON and CSV only.
fn shown(column: &str) -> bool {
    column != "release_id"
}

pub(crate) fn section(
    tr: Tr,
    id: &'static str,
    title: impl Into<String>,
    table: &Table,
    svg: Option<String>,
    csv_url: String,
) -> Section {
    let highlight = table.column("on_newest");
    let rows: Vec<RowView> = table
        .rows
        .iter()
        .map(|row| RowView {
            cells: table
                .columns
                .iter()
                .zip(row)
                .filter(|(c, _)| shown(c))
                .map(|(c, cell)| cell_view(tr, c, cell, row, table))
                .collect(),
            highlight: highlight.is_some_and(|i| row[i] == Cell::Bool(false)),
        })
        .collect();
    let totals: Vec<CellView> = table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| shown(c))
        .map(|(i, c)| {
            let numeric = table
                .rows
                .first()
                .is_some_and(|r| matches!(r[i], Cell::Int(_)))
                && table.summable(c);
            if numeric {
                cell_view(tr, c, &Cell::Int(table.total(c)), &[], table)
            } else {
                CellView {
                    column: c,
                    text: if i == 0 {
                        tr.t("report-total")
                    } else {
                        String::new()
                    },
                    value: String::new(),
                    numeric: false,
                    link: String::new(),
                }
            }
        })
        .collect();
    // A footer only where some column adds up.
    let totals = if totals.iter().any(|c: &CellView| c.numeric) {
        totals
    } else {
        Vec::new()
    };
    Section {
        id,
        title: title.into(),
        note: String::new(),
        svg,
        columns: table
            .columns
            .iter()
            .filter(|c| shown(c))
            .map(|c| column_title(tr, c))
            .collect(),
        empty: rows.is_empty(),
        rows,
        totals,
        csv_url,
    }
}

/// Every report column has a `col-<name>` message in each catalogue.
fn column_title(tr: Tr, c: &str) -> String {
    tr.t(&format!("col-{c}"))
}

pub(crate) async fn distribution_choices(state: &AppState) -> Vec<(String, String)> {
    distribution::Entity::find()
        .order_by_asc(distribution::Column::Code)
        .all(&state.db)
        .await
        .map(|ds| ds.into_iter().map(|d| (d.code, d.name)).collect())
        .unwrap_or_default()
}

fn cell_text(row: &[Cell], table: &Table, column: &str) -> String {
    table
        .column(column)
        .map(|i| row[i].as_text())
        .unwrap_or_default()
}

fn cell_int(row: &[Cell], table: &Table, column: &str) -> i64 {
    table.column(column).map_or(0, |i| row[i].as_int())
}

async fn overview(
    Reader(caller): Reader,
    tr: Tr,
    State(state): State<AppState>,
    axum::extract::Query(params): axum::extract::Query<StatsParams>,
) -> Result<Response, PageError> {
    let filter = params.filter(&state)?;
    let (from, to) = (
        filter.from.format("%Y-%m-%d").to_string(),
        filter.to.format("%Y-%m-%d").to_string(),
    );
    let dist = params.distribution.clone().unwrap_or_default();
    let dist = dist.trim().to_owned();
    let base = |group_by: &str| {
        format!(
            "/reports/csv/downloads?{}",
            query_string(&[
                ("from", &from),
                ("to", &to),
                ("distribution", &dist),
                ("group_by", group_by)
            ])
        )
    };

    let mut day_params = params.clone();
    day_params.group_by = Some("day".into());
    let (per_day, _) = downloads_report(&state, &day_params).await?;
    let mut release_params = params.clone();
    release_params.group_by = Some("release".into());
    let (per_release, _) = downloads_report(&state, &release_params).await?;
    let mut conf_params = params.clone();
    conf_params.group_by = Some("conf".into());
    let (per_conf, _) = downloads_report(&state, &conf_params).await?;

    // Every day of the range, zeros included, for the line.
    let counts: std::collections::HashMap<String, i64> = per_day
        .rows
        .iter()
        .map(|r| {
            (
                cell_text(r, &per_day, "day"),
                cell_int(r, &per_day, "downloads"),
            )
        })
        .collect();
    let points: Vec<(String, i64)> = query::days(filter.from, filter.to)
        .into_iter()
        .map(|d| {
            let n = counts.get(&d).copied().unwrap_or(0);
            (d, n)
        })
        .collect();
    let line = chart::line_chart(
        "chart-downloads-per-day",
        &tr.t("report-downloads-per-day"),
        &points,
    );

    let mut top = per_release.clone();
    top.rows.truncate(10);
    let conf_bars: Vec<(String, i64)> = per_conf
        .rows
        .iter()
        .map(|r| {
            let c = cell_text(r, &per_conf, "conf");
            (
                if c.is_empty() {
                    tr.t("report-no-conf")
                } else {
                    c
                },
                cell_int(r, &per_conf, "downloads"),
            )
        })
        .collect();
    let conf_chart = chart::bar_chart(
        "chart-share-by-conf",
        &tr.t("report-downloads-by-conf"),
        &conf_bars,
    );

    let total = per_day.total("downloads");
    let mut conf_section = section(
        tr,
        "share-by-conf",
        tr.t("report-share-by-conf"),
        &per_conf,
        Some(conf_chart),
        base("conf"),
    );
    add_share_column(tr, &mut conf_section, &per_conf, total);
    let mut top_section = section(
        tr,
        "top-releases",
        tr.t("report-top-releases"),
        &top,
        None,
        base("release"),
    );
    if per_release.rows.len() > top.rows.len() {
        top_section.note = tr.t2(
            "report-top-note",
            ("top", &top.rows.len()),
            ("all", &per_release.rows.len()),
        );
    }
    let sections = vec![
        section(
            tr,
            "downloads-per-day",
            tr.t("report-downloads-per-day"),
            &per_day,
            Some(line),
            base("day"),
        ),
        top_section,
        conf_section,
    ];
    let distributions = distribution_choices(&state).await;
    let links = distributions
        .iter()
        .map(|(code, name)| {
            (
                format!(
                    "/reports/distributions/{}?{}",
                    percent_encoding::utf8_percent_encode(code, percent_encoding::NON_ALPHANUMERIC),
                    query_string(&[("from", &from), ("to", &to)])
                ),
                format!("{code} — {name}"),
            )
        })
        .collect();
    let page = ReportPage {
        tr,
        title: tr.t("report-title"),
        heading: if dist.is_empty() {
            tr.t("report-overview")
        } else {
            tr.t1("report-overview-of", "distribution", &dist)
        },
        from: from.clone(),
        to: to.clone(),
        days: String::new(),
        distribution: dist.clone(),
        distributions,
        action: "/reports".into(),
        show_days: false,
        current: "overview",
        customers: caller.has(Permission::Licenses),
        show_range: true,
        days_label: String::new(),
        search: None,
        summary: vec![
            (tr.t("col-downloads"), tr.number(total)),
            (tr.t("col-completed"), tr.number(per_day.total("completed"))),
            (tr.t("col-bytes"), human_bytes(per_day.total("bytes"))),
            (
                tr.t("report-releases-downloaded"),
                tr.number(per_release.rows.len() as i64),
            ),
        ],
        sections,
        links,
    };
    Ok(html(&page))
}

/// `share` column of the HTML table only (CSV and JSON carry the counts it derives from).
fn add_share_column(tr: Tr, section: &mut Section, table: &Table, total: i64) {
    section.columns.push(tr.t("report-share"));
    for (row, view) in table.rows.iter().zip(section.rows.iter_mut()) {
        let cells = &mut view.cells;
        let n = cell_int(row, table, "downloads");
        let share = if total > 0 {
            format!("{:.1} %", 100.0 * n as f64 / total as f64)
        } else {
            "—".into()
        };
        cells.push(CellView {
            column: "share",
            text: share,
            value: String::new(),
            numeric: true,
            link: String::new(),
        });
    }
    section.totals.push(CellView {
        column: "share",
        text: if total > 0 {
            "100 %".into()
        } else {
            String::new()
        },
        value: String::new(),
        numeric: true,
        link: String::new(),
    });
}

async fn distribution_page(
    Reader(caller): Reader,
    tr: Tr,
    State(state): State<AppState>,
    Path(code): Path<String>,
    axum::extract::Query(mut params): axum::extract::Query<StatsParams>,
) -> Result<Response, PageError> {
    params.distribution = Some(code.clone());
    let dist = state
        .catalog
        .distribution(&code)
        .ok_or_else(|| ApiError::not_found(format!("distribution {code:?} not found")))?;
    let filter = params.filter(&state)?;
    let days = params.days()?;
    let (from, to) = (
        filter.from.format("%Y-%m-%d").to_string(),
        filter.to.format("%Y-%m-%d").to_string(),
    );
    let days_text = days.to_string();
    let csv = |report: &str, extra: &[(&str, &str)]| {
        let mut pairs: Vec<(&str, &str)> = vec![("distribution", code.as_str())];
        pairs.extend_from_slice(extra);
        format!("/reports/csv/{report}?{}", query_string(&pairs))
    };

    let mut release_params = params.clone();
    release_params.group_by = Some("release".into());
    let (mut per_release, _) = downloads_report(&state, &release_params).await?;
    // Chart and table in version order, newest first.
    sort_by_version(&mut per_release, &dist, "version");
    let bars: Vec<(String, i64)> = per_release
        .rows
        .iter()
        .map(|r| {
            (
                cell_text(r, &per_release, "version"),
                cell_int(r, &per_release, "downloads"),
            )
        })
        .collect();
    let release_chart = chart::bar_chart(
        "chart-downloads-per-release",
        &tr.t("report-downloads-per-release"),
        &bars,
    );

    let mut base_params = params.clone();
    base_params.group_by = Some("version".into());
    let (mut base, _) = installed_base_report(&state, &base_params).await?;
    sort_by_version(&mut base, &dist, "version");
    let base_bars: Vec<(String, i64)> = base
        .rows
        .iter()
        .map(|r| {
            let v = cell_text(r, &base, "version");
            (
                if v.is_empty() {
                    tr.t("report-nothing-installed")
                } else {
                    v
                },
                cell_int(r, &base, "installations"),
            )
        })
        .collect();
    let base_chart = chart::bar_chart(
        "chart-installed-base",
        &tr.t1("report-base-chart", "days", days),
        &base_bars,
    );
    let (paths, _) = upgrade_paths_report(&state, &params).await?;

    let mut base_section = section(
        tr,
        "installed-base",
        tr.t1("report-base-title", "days", days),
        &base,
        Some(base_chart),
        csv(
            "installed-base",
            &[("days", &days_text), ("group_by", "version")],
        ),
    );
    base_section.note = tr.t(if dist.gate.is_some() {
        "report-base-note-licensed"
    } else {
        "report-base-note-free"
    });
    let sections = vec![
        section(
            tr,
            "downloads-per-release",
            tr.t("report-downloads-per-release"),
            &per_release,
            Some(release_chart),
            csv(
                "downloads",
                &[("from", &from), ("to", &to), ("group_by", "release")],
            ),
        ),
        base_section,
        section(
            tr,
            "upgrade-paths",
            tr.t("report-upgrade-paths"),
            &paths,
            None,
            csv("upgrade-paths", &[("from", &from), ("to", &to)]),
        ),
    ];
    let page = ReportPage {
        tr,
        title: tr.t1("report-distribution-title", "code", &dist.code),
        heading: format!("{} — {}", dist.code, dist.name),
        from,
        to,
        days: days_text,
        distribution: code.clone(),
        distributions: Vec::new(),
        action: format!(
            "/reports/distributions/{}",
            percent_encoding::utf8_percent_encode(&code, percent_encoding::NON_ALPHANUMERIC)
        ),
        show_days: true,
        current: "",
        customers: caller.has(Permission::Licenses),
        show_range: true,
        days_label: tr.t("report-days"),
        search: None,
        summary: vec![
            (
                tr.t("col-downloads"),
                tr.number(per_release.total("downloads")),
            ),
            (
                tr.t("col-completed"),
                tr.number(per_release.total("completed")),
            ),
            (
                tr.t("col-installations"),
                tr.number(base.total("installations")),
            ),
        ],
        sections,
        links: vec![("/reports".into(), tr.t("report-back-to-overview"))],
    };
    Ok(html(&page))
}

/// Newest version first, by the distribution's version scheme; unparsable ones last.
fn sort_by_version(table: &mut Table, dist: &crate::catalog::Distribution, column: &str) {
    let Some(i) = table.column(column) else {
        return;
    };
    table.rows.sort_by(|a, b| {
        let va = vypusk_protocol::Version::parse(dist.scheme, &a[i].as_text()).ok();
        let vb = vypusk_protocol::Version::parse(dist.scheme, &b[i].as_text()).ok();
        match (va, vb) {
            (Some(x), Some(y)) => y.cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a[i].as_text().cmp(&b[i].as_text()),
        }
    });
}

/// The CSV behind every table, with the same credentials as the pages.
async fn csv(
    Reader(caller): Reader,
    State(state): State<AppState>,
    Path(report): Path<String>,
    axum::extract::Query(params): axum::extract::Query<StatsParams>,
) -> Result<Response, PageError> {
    let (table, meta, name) = match report.as_str() {
        "downloads" => {
            params.check_may_read(&caller)?;
            let (t, m) = downloads_report(&state, &params).await?;
            let name = format!("downloads-by-{}", m.group_by.as_deref().unwrap_or("day"));
            (t, m, name)
        }
        "upgrade-paths" => {
            let (t, m) = upgrade_paths_report(&state, &params).await?;
            (t, m, "upgrade-paths".to_owned())
        }
        "installed-base" => {
            let (t, m) = installed_base_report(&state, &params).await?;
            (t, m, "installed-base".to_owned())
        }
        "active-installations" => {
            let (t, m) = active_installations_report(&state, &params).await?;
            (t, m, report.clone())
        }
        "newest-share" => {
            let (t, m) = newest_share_report(&state, &params).await?;
            (t, m, report.clone())
        }
        "customers" | "expiring-subscriptions" => {
            if !caller.has(Permission::Licenses) {
                return Err(ApiError::forbidden(
                    "this report names customers: it needs the \"licenses\" permission",
                )
                .into());
            }
            let (t, m) = if report == "customers" {
                customers_report(&state, &params, None).await?
            } else {
                expiring_report(&state, &params).await?
            };
            (t, m, report.clone())
        }
        "unknown-keys" => {
            params.check_may_read_keys(&caller)?;
            let (t, m) = unknown_keys_report(&state, &params).await?;
            let name = format!("unknown-keys-by-{}", m.group_by.as_deref().unwrap_or("day"));
            (t, m, name)
        }
        other => {
            return Err(PageError::new(
                StatusCode::NOT_FOUND,
                format!("no report {other:?}"),
            ));
        }
    };
    Ok(render(table, meta, true, &name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_report_urls_follow_login() {
        assert_eq!(
            safe_next("/reports/distributions/X"),
            "/reports/distributions/X"
        );
        assert_eq!(safe_next("https://evil.example/"), "/reports");
        assert_eq!(safe_next("/reports//evil.example"), "/reports");
    }
}
