//! The MIKO-compatible client protocol under `/releases/v1/1c/` (SPEC §4.1–§4.5).

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vypusk_formats::CheckRequestBody;
use vypusk_protocol::wire::{
    CheckRequest as CheckRequestSchema, ExtensionHashResponse, ModuleInfo, ModuleInfoRelease,
    ModuleInfoResponse, ReleasesResponse,
};
use vypusk_protocol::{HEADER_QUERY_ID, HEADER_SIGNATURE, Version};

use crate::answer::{AnswerKey, Links, rfc3339};
use crate::catalog::{Distribution, Release};
use crate::client_addr::ClientAddr;
use crate::domain::LicenseKey;
use crate::domain::licensing::{self, LicenseView};
use crate::domain::selection::{self, CheckContext, Offer};
use crate::error::{ClientError, quote};
use crate::routes::files::{CountedDownload, serve_file};
use crate::state::AppState;

/// The client protocol's routes, each with its part of the OpenAPI document (`crate::openapi`);
/// the downloads of `routes::files` join them under `/releases`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_available_releases))
        .routes(routes!(get_latest_release))
        .routes(routes!(get_module_info))
        .routes(routes!(get_extension_hash))
        .routes(routes!(get_module_file_free))
        .routes(routes!(get_module_file))
        .routes(routes!(signing_key))
}

/// Unknown URLs and methods under `/releases/` answer in the client family's shape.
pub fn with_fallbacks(router: Router<AppState>) -> Router<AppState> {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// `{type}` and `{version}` of the file and hash routes.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct ReleaseOfType {
    /// The distribution's code.
    #[param(rename = "type", example = "PT40_UT_CRM3")]
    r#type: String,
    /// The release's version (`4.0` finds `4.0.0.0`).
    #[param(example = "4.0.4.12")]
    version: String,
}

/// `{hash}` of `getModuleFile`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct ModuleFileHash {
    /// A download token from an answer's link, or the SHA-256 (hex) of the license key.
    hash: String,
}

/// Body of `getModuleInfo`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct ModuleInfoRequest {
    #[schema(rename = "TYPE", example = "PT40_UT_CRM3")]
    r#type: String,
    /// A license key: prereleases for beta licenses.
    #[schema(rename = "KEY", example = "ACME-0001")]
    key: Option<String>,
}

/// The client family's fallback for unknown URLs under `/releases/`.
pub async fn not_found(request: Request) -> ClientError {
    ClientError::not_found(format!("no such URL: {}", request.uri().path()))
}

pub async fn method_not_allowed() -> ClientError {
    ClientError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this URL",
    )
}

/// The public key every answer is signed with (PEM), for clients to pin.
#[utoipa::path(get, path = "/v1/signing-key", tag = "client", operation_id = "getSigningKey",
    responses((status = 200, description = "RSA public key, PEM",
        content_type = "application/x-pem-file", body = String)))]
async fn signing_key(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
        state.signer.public_key_pem().to_owned(),
    )
}

/// A JSON object body (`vypusk_formats::check_request`), kept as received and parsed in place
/// by the handler (no owned copy of any field); every way of getting it wrong is a 400 (or
/// 413) in the client shape.
pub struct ClientBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ClientBody {
    type Rejection = ClientError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ClientError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ClientError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body larger than {} bytes", super::JSON_BODY_LIMIT),
                )
            } else {
                ClientError::bad_request(format!("cannot read the request body: {e}"))
            }
        })?;
        Ok(ClientBody(bytes))
    }
}

impl ClientBody {
    fn parse(&self) -> Result<CheckRequestBody<'_>, ClientError> {
        CheckRequestBody::parse(&self.0).map_err(|e| ClientError::bad_request(e.to_string()))
    }
}

/// A string field of the request: absent and `null` are `None`, other types are an error.
fn text_field<'a>(
    body: &'a CheckRequestBody<'_>,
    key: &str,
) -> Result<Option<&'a str>, ClientError> {
    body.text(key)
        .map_err(|e| ClientError::bad_request(e.to_string()))
}

fn required_field<'a>(
    body: &'a CheckRequestBody<'_>,
    key: &'static str,
) -> Result<&'a str, ClientError> {
    body.required(key)
        .map_err(|e| ClientError::bad_request(e.to_string()))
}

fn flag_field(body: &CheckRequestBody<'_>, key: &str) -> Result<bool, ClientError> {
    body.flag(key)
        .map_err(|e| ClientError::bad_request(e.to_string()))
}

/// Rule 1: an unknown or unpublished distribution is a 400.
fn published_distribution(state: &AppState, code: &str) -> Result<Arc<Distribution>, ClientError> {
    state
        .catalog
        .distribution(code)
        .filter(|d| d.published)
        .ok_or_else(|| {
            ClientError::bad_request(format!("unknown distribution TYPE {}", quote(code)))
        })
}

pub fn in_prerelease_network(state: &AppState, ip: IpAddr) -> bool {
    if state.prerelease_networks.is_empty() {
        return false;
    }
    let ip = crate::client_addr::canonical(ip);
    state.prerelease_networks.iter().any(|n| n.contains(&ip))
}

/// The license named by `KEY`, if any. Malformed keys are a 400; an unknown key for a paid
/// distribution counts against the caller's address.
fn lookup_license(
    state: &AppState,
    dist: &Distribution,
    key: Option<&str>,
    ip: IpAddr,
) -> Result<Option<Arc<LicenseView>>, ClientError> {
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        if dist.gate.is_some() {
            return Err(ClientError::bad_request(
                "KEY is required for this distribution",
            ));
        }
        return Ok(None);
    };
    known_license(state, dist, key, ip)
}

/// Looks `key` up. Every route that looks a key up goes through here, so unknown keys count
/// against the caller's address on all of them and none can be used to test keys while the
/// others answer 429 (SPEC §4.1).
fn known_license(
    state: &AppState,
    dist: &Distribution,
    key: &str,
    ip: IpAddr,
) -> Result<Option<Arc<LicenseView>>, ClientError> {
    let key = LicenseKey::parse(key).map_err(ClientError::bad_request)?;
    if dist.gate.is_some() && state.limiter.is_blocked(&ip) {
        return Err(ClientError::too_many_requests());
    }
    let found = state.catalog.license(key.as_str());
    if found.is_none() && dist.gate.is_some() {
        state.limiter.record_failure(ip);
    }
    Ok(found)
}

/// The parsed request of `getAvailableReleases` / `getLatestRelease`; text fields borrow from
/// the request body.
struct CheckRequest<'a> {
    dist: Arc<Distribution>,
    installed: Option<Version>,
    installed_text: &'a str,
    /// `""` for a request without `CONF` (a non-1C product, SPEC §4.1).
    conf: &'a str,
    /// Required with `CONF`; without it optional (`None`: bounds not checked).
    conf_version: Option<Version>,
    /// `""` when absent.
    conf_version_text: &'a str,
    license: Option<Arc<LicenseView>>,
    /// `KEY` as sent, `""` when absent: a key that names no license is counted by the
    /// unknown-key report.
    key_text: &'a str,
    show_untested: bool,
    count_downloads: bool,
    downloadable_only: bool,
    sees_prereleases: bool,
}

impl<'a> CheckRequest<'a> {
    fn parse(
        state: &AppState,
        body: &'a CheckRequestBody<'a>,
        ip: IpAddr,
    ) -> Result<Self, ClientError> {
        let code = required_field(body, "TYPE")?;
        let dist = published_distribution(state, code)?;
        let installed_text = text_field(body, "INSTALLED_VERSION")?.unwrap_or("");
        let installed = if installed_text.is_empty() {
            None
        } else {
            Some(
                Version::parse(dist.scheme, installed_text)
                    .map_err(|e| ClientError::bad_request(format!("INSTALLED_VERSION: {e}")))?,
            )
        };
        // A non-1C product sends no CONF (or an empty one): it matches only `*` entries, and
        // CONF_VERSION, when it sends one anyway, bounds them as usual (SPEC §4.1).
        let conf = text_field(body, "CONF")?.unwrap_or("");
        let conf_version_text = if conf.is_empty() {
            text_field(body, "CONF_VERSION")?.unwrap_or("")
        } else {
            required_field(body, "CONF_VERSION")?
        };
        let conf_version = if conf_version_text.is_empty() {
            None
        } else {
            Some(
                Version::parse_1c(conf_version_text)
                    .map_err(|e| ClientError::bad_request(format!("CONF_VERSION: {e}")))?,
            )
        };
        let show_untested = flag_field(body, "SHOW_UNTESTED")?;
        let count_downloads = flag_field(body, "COUNT_DOWNLOADS")?;
        let downloadable_only = flag_field(body, "DOWNLOADABLE_ONLY")?;
        let key_text = text_field(body, "KEY")?.unwrap_or("");
        let license = lookup_license(state, &dist, Some(key_text), ip)?;
        let sees_prereleases =
            licensing::sees_prereleases(license.as_deref(), in_prerelease_network(state, ip));
        Ok(CheckRequest {
            dist,
            installed,
            installed_text,
            conf,
            conf_version,
            conf_version_text,
            license,
            key_text,
            show_untested,
            count_downloads,
            downloadable_only,
            sees_prereleases,
        })
    }

    /// `CONF_VERSION` as the statistics (and counted links) record it: `""` for a check without
    /// `CONF`, whose configuration version names no configuration.
    fn recorded_conf_version(&self) -> &'a str {
        if self.conf.is_empty() {
            ""
        } else {
            self.conf_version_text
        }
    }

    /// What the answer depends on besides the catalog's constants (see `answer::AnswerKey`).
    fn answer_key(&self, latest: bool, expires: i64, server_time: i64) -> AnswerKey {
        AnswerKey {
            latest,
            distribution_build: self.dist.build,
            license_build: self
                .license
                .as_ref()
                .filter(|_| self.dist.gate.is_some())
                .map(|l| l.build),
            expires,
            server_time,
            flags: [
                self.show_untested,
                self.count_downloads,
                latest && self.downloadable_only,
                self.sees_prereleases,
            ],
            installed_version: self.installed_text.into(),
            conf: self.conf.into(),
            conf_version: self.conf_version_text.into(),
        }
    }
}

/// Every release newer than `INSTALLED_VERSION` that fits the configuration (MIKO's
/// `getAvailableReleases`), newest first, with files, md5 checksums and signed download links.
/// A license problem is a `result` text with status 200, as in MIKO's protocol.
#[utoipa::path(post, path = "/v1/1c/getAvailableReleases", tag = "client",
    operation_id = "getAvailableReleases", request_body = CheckRequestSchema,
    responses((status = 200, description = "The releases on offer", body = ReleasesResponse)))]
async fn get_available_releases(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: ClientBody,
) -> Result<Response, ClientError> {
    check(&state, ip, &headers, &body, false).await
}

/// The newest downloadable release newer than `INSTALLED_VERSION` that fits, or none (MIKO's
/// `getLatestRelease`).
#[utoipa::path(post, path = "/v1/1c/getLatestRelease", tag = "client",
    operation_id = "getLatestRelease", request_body = CheckRequestSchema,
    responses((status = 200, description = "At most one release", body = ReleasesResponse)))]
async fn get_latest_release(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: ClientBody,
) -> Result<Response, ClientError> {
    check(&state, ip, &headers, &body, true).await
}

/// Both check routes: parse, select, record, render into one buffer, sign.
async fn check(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    body: &ClientBody,
    latest: bool,
) -> Result<Response, ClientError> {
    let (answer, key) = {
        let body = body.parse()?;
        let request = CheckRequest::parse(state, &body, ip)?;
        let standing = licensing::standing(request.dist.gate, request.license.as_deref());
        let dist = &request.dist;
        // One clock reading for the statistics, the links' expiry and `server_time`.
        let now = chrono::Utc::now();
        let mut offers = selection::offers(
            dist,
            &CheckContext {
                installed: request.installed.as_ref(),
                conf: Some(request.conf).filter(|c| !c.is_empty()),
                conf_version: request.conf_version.as_ref(),
                show_untested: request.show_untested,
                sees_prereleases: request.sees_prereleases,
                standing: &standing,
            },
        );
        if latest {
            offers = selection::latest(offers, request.downloadable_only)
                .into_iter()
                .collect();
        }
        record_check(state, &request, &offers, ip, now);
        let expires = state.tokens.expiry(now.timestamp());
        let links = Links {
            base: &state.public_url_json,
            key: state.tokens.key(),
            expires,
            // The key itself never goes into a link (issue 9); free downloads need none.
            license: dist.gate.and(request.license.as_ref()).map(|l| l.id),
            count: request.count_downloads,
            conf: request.conf,
            conf_version: request.recorded_conf_version(),
            installed_version: request.installed_text,
        };
        let answer = crate::answer::write_answer(dist, &offers, &links, now.timestamp());
        (answer, request.answer_key(latest, expires, now.timestamp()))
    };
    let query_id = headers
        .get(HEADER_QUERY_ID)
        .filter(|q| !q.is_empty())
        .cloned();
    Ok(signed_json(state, query_id, key, Bytes::from(answer)).await)
}

/// A JSON answer signed here, on its final bytes (SPEC §4.7): with the caller's QueryID each
/// time, without one once per [`AnswerKey`]. RSA runs on the blocking pool, never on the
/// threads that drive connections.
async fn signed_json(
    state: &AppState,
    query_id: Option<HeaderValue>,
    key: AnswerKey,
    body: Bytes,
) -> Response {
    let cached = match &query_id {
        None => state.answer_signatures.get(&key),
        Some(_) => None,
    };
    let signature = match cached {
        Some(signature) => signature,
        None => {
            let signed = state
                .signer
                .sign_answer(query_id.clone(), body.clone())
                .await;
            match signed {
                Ok(signature) => {
                    if query_id.is_none() {
                        state.answer_signatures.insert(key, signature.clone());
                    }
                    signature
                }
                Err(e) => {
                    tracing::error!(error = %e, "signing an answer failed");
                    return ClientError::internal("cannot sign the answer").into_response();
                }
            }
        }
    };
    let mut response = Response::new(axum::body::Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(crate::signing::JSON_UTF8),
    );
    if let Ok(value) = HeaderValue::from_str(&signature) {
        headers.insert(HEADER_SIGNATURE, value);
    }
    if let Some(q) = query_id {
        headers.insert(HEADER_QUERY_ID, q);
    }
    response
}

/// Statistics: queues a check event (never waits for the database). The offered version is
/// the newest release that fits the configuration: one listed only because the client asked
/// `SHOW_UNTESTED=Y` (vypusk-update always does, to explain "no release fits") is no offer.
fn record_check(
    state: &AppState,
    request: &CheckRequest<'_>,
    offers: &[Offer<'_>],
    ip: IpAddr,
    at: chrono::DateTime<chrono::Utc>,
) {
    state.stats.check(crate::stats::capture::CheckEvent {
        at,
        distribution_id: request.dist.id,
        paid: request.dist.gate.is_some(),
        installed_version: request.installed_text.to_owned(),
        conf: request.conf.to_owned(),
        conf_version: request.recorded_conf_version().to_owned(),
        offered_version: selection::first_compatible(offers)
            .map(|o| o.release.version.to_string())
            .unwrap_or_default(),
        license_key: request.license.as_ref().map(|l| l.key.to_string()),
        unknown_key: (request.license.is_none() && !request.key_text.is_empty())
            .then(|| request.key_text.to_owned()),
        client: ip,
    });
}

/// A distribution and all its published releases with download counts (MIKO's
/// `getModuleInfo`).
#[utoipa::path(post, path = "/v1/1c/getModuleInfo", tag = "client",
    operation_id = "getModuleInfo", request_body = ModuleInfoRequest,
    responses(
        (status = 200, description = "The distribution", body = ModuleInfoResponse),
        (status = 403, description = "The license key is revoked", body = vypusk_protocol::wire::ClientError),
    ))]
async fn get_module_info(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    body: ClientBody,
) -> Result<Json<ModuleInfoResponse>, ClientError> {
    let body = body.parse()?;
    let code = required_field(&body, "TYPE")?;
    let dist = published_distribution(&state, code)?;
    let key = text_field(&body, "KEY")?.filter(|k| !k.is_empty());
    let license = match key {
        Some(k) => known_license(&state, &dist, k, ip)?,
        None => None,
    };
    let sees_prereleases =
        licensing::sees_prereleases(license.as_deref(), in_prerelease_network(&state, ip));
    let counts = crate::stats::query::downloads_per_release(&state.db, dist.id).await?;
    let releases = dist
        .releases
        .iter()
        .filter(|r| !r.prerelease || sees_prereleases)
        .map(|r| ModuleInfoRelease {
            release_id: r.id.into(),
            version: r.version.to_string(),
            published_at: rfc3339(r.published_at),
            changelog: r.changelog(),
            size: r.main_file().map_or(0, |f| f.size),
            downloads: counts.get(&r.id).copied().unwrap_or(0).max(0) as u64,
            compatibility: crate::answer::wire_compatibility(&r.compatibility),
            prerelease: r.prerelease,
        })
        .collect();
    let (product, feature) = dist.gate.unwrap_or((0, 0));
    Ok(Json(ModuleInfoResponse {
        module: ModuleInfo {
            code: dist.code.to_string(),
            name: dist.name.to_string(),
            description: dist.description.to_string(),
            developer: dist.developer.to_string(),
            promo_link: dist.promo_link.to_string(),
            lic_product_id: product,
            lic_feature_id: feature,
            releases,
        },
        result: String::new(),
    }))
}

/// `{version}` or `latest` of a distribution (SPEC §4.3: visibility is the same on every
/// route). An explicit version the caller may not see is `None`, exactly like a missing one;
/// `latest` is the newest release that is visible and `usable`.
fn find_release<'a>(
    dist: &'a Distribution,
    version: &str,
    visible: impl Fn(&Release) -> bool,
    usable: impl Fn(&Release) -> bool,
) -> Result<Option<&'a Release>, ClientError> {
    if version == "latest" {
        return Ok(dist.releases.iter().find(|r| visible(r) && usable(r)));
    }
    let wanted = Version::parse(dist.scheme, version)
        .map_err(|e| ClientError::bad_request(e.to_string()))?;
    Ok(dist
        .releases
        .iter()
        .find(|r| r.version == wanted && visible(r)))
}

/// The extension hash of a release (its `extension_hash` metadata).
#[utoipa::path(get, path = "/v1/1c/getExtensionHash/{type}/{version}", tag = "client",
    operation_id = "getExtensionHash", params(ReleaseOfType),
    responses((status = 200, description = "The hash", body = ExtensionHashResponse)))]
async fn get_extension_hash(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Path((code, version)): Path<(String, String)>,
) -> Result<Json<ExtensionHashResponse>, ClientError> {
    let dist = state
        .catalog
        .distribution(&code)
        .filter(|d| d.published)
        .ok_or_else(|| ClientError::not_found(format!("unknown distribution {}", quote(&code))))?;
    let sees_prereleases = in_prerelease_network(&state, ip);
    let release = find_release(
        &dist,
        &version,
        |r| !r.prerelease || sees_prereleases,
        |_| true,
    )?
    .ok_or_else(|| {
        ClientError::not_found(format!(
            "no release {} of {}",
            quote(&version),
            quote(&code)
        ))
    })?;
    let hash = release
        .extension_hash
        .as_deref()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            ClientError::not_found(format!(
                "release {} of {code} has no extension hash",
                release.version
            ))
        })?;
    Ok(Json(ExtensionHashResponse {
        hash: hash.to_owned(),
        result: String::new(),
    }))
}

/// The main file of a release of a free distribution (MIKO's `getModuleFile` without a key).
#[utoipa::path(get, path = "/v1/1c/getModuleFile/{type}/{version}", tag = "downloads",
    operation_id = "getModuleFileFree", params(ReleaseOfType, crate::routes::files::RangeHeaders),
    responses(
        crate::routes::files::FileAnswers,
        (status = 403, description = "The distribution needs a license", body = vypusk_protocol::wire::ClientError),
    ))]
async fn get_module_file_free(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    method: Method,
    headers: HeaderMap,
    Path((code, version)): Path<(String, String)>,
) -> Result<Response, ClientError> {
    module_file(&state, ip, &method, &headers, &code, &version, None).await
}

/// The main file of a release for a license (MIKO's `getModuleFile`): `hash` is a download
/// token or the SHA-256 of the license key.
#[utoipa::path(get, path = "/v1/1c/getModuleFile/{type}/{version}/{hash}", tag = "downloads",
    operation_id = "getModuleFile",
    params(ReleaseOfType, ModuleFileHash, crate::routes::files::RangeHeaders),
    responses(
        crate::routes::files::FileAnswers,
        (status = 403, description = "The key or token does not open this file", body = vypusk_protocol::wire::ClientError),
    ))]
async fn get_module_file(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    method: Method,
    headers: HeaderMap,
    Path((code, version, hash)): Path<(String, String, String)>,
) -> Result<Response, ClientError> {
    module_file(&state, ip, &method, &headers, &code, &version, Some(&hash)).await
}

/// `getModuleFile`: `hash` is a download token or the SHA-256 of the license key.
async fn module_file(
    state: &AppState,
    ip: IpAddr,
    method: &Method,
    headers: &HeaderMap,
    code: &str,
    version: &str,
    hash: Option<&str>,
) -> Result<Response, ClientError> {
    let dist = state
        .catalog
        .distribution(code)
        .filter(|d| d.published)
        .ok_or_else(|| ClientError::not_found(format!("unknown distribution {}", quote(code))))?;
    // The credential, and (for a token) the one release it opens.
    let (license, counted_by, token_release) = match hash {
        None => (None, None, None),
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            if state.limiter.is_blocked(&ip) {
                return Err(ClientError::too_many_requests());
            }
            let found = state.catalog.license_by_sha256(h);
            if found.is_none() {
                state.limiter.record_failure(ip);
                return Err(ClientError::forbidden(
                    "the license key is not known to this server",
                ));
            }
            // A key hash is a permanent link: its downloads are counted per UTC day, so one
            // used again later is not attributed to its first day's row.
            let day = crate::stats::capture::day_of(chrono::Utc::now());
            (
                found,
                Some(format!("{}/{day}", h.to_ascii_lowercase())),
                None,
            )
        }
        Some(token) => {
            let grant = state
                .tokens
                .verify(token, chrono::Utc::now().timestamp())
                .map_err(|e| ClientError::forbidden(e.to_string()))?;
            if grant.distribution != dist.id {
                return Err(ClientError::forbidden(
                    "the download link is for another distribution",
                ));
            }
            let license = grant.license.and_then(|id| state.catalog.license_by_id(id));
            (
                license,
                grant.count.then(|| token.to_owned()),
                Some(grant.release),
            )
        }
    };
    if dist.gate.is_some() && license.is_none() {
        return Err(ClientError::forbidden(
            "this distribution needs a license: add the SHA-256 of the key or a download token to the URL",
        ));
    }
    let standing = licensing::standing(dist.gate, license.as_deref());
    let sees_prereleases =
        licensing::sees_prereleases(license.as_deref(), in_prerelease_network(state, ip));
    let release = find_release(
        &dist,
        version,
        |r| !r.prerelease || sees_prereleases,
        |r| licensing::downloadable(&standing, r.published_at).is_ok(),
    )?
    .ok_or_else(|| {
        ClientError::not_found(format!(
            "no downloadable release {} of {}",
            quote(version),
            quote(code)
        ))
    })?;
    if token_release.is_some_and(|id| id != release.id) {
        return Err(ClientError::forbidden(
            "the download link is for another release",
        ));
    }
    licensing::downloadable(&standing, release.published_at).map_err(ClientError::forbidden)?;
    let file = release
        .main_file()
        .ok_or_else(|| ClientError::not_found("the release has no files"))?;
    let counted = counted_by.map(|by| CountedDownload {
        dedup_key: crate::routes::files::dedup_key(&[by.as_bytes(), &file.id.to_be_bytes()]),
        license_key: license.as_ref().map(|l| l.key.to_string()),
        conf: String::new(),
        conf_version: String::new(),
        installed_version: String::new(),
    });
    serve_file(state, &dist, release, file, method, headers, counted).await
}
