//! The MIKO-compatible client protocol under `/releases/v1/1c/` (SPEC §4.1–§4.5).

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::SecondsFormat;
use vypusk_formats::CheckRequestBody;
use vypusk_protocol::Version;
use vypusk_protocol::wire::{
    Compatibility, ExtensionHashResponse, Module, ModuleFile, ModuleInfo, ModuleInfoRelease,
    ModuleInfoResponse, ReleasesResponse,
};

use crate::catalog::{Distribution, Release};
use crate::client_addr::ClientAddr;
use crate::domain::LicenseKey;
use crate::domain::licensing::{self, LicenseView, Standing};
use crate::domain::selection::{self, CheckContext, Offer};
use crate::error::{ClientError, quote};
use crate::routes::files::{CountedDownload, serve_file};
use crate::state::AppState;
use crate::tokens::DownloadGrant;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/1c/getAvailableReleases", post(get_available_releases))
        .route("/v1/1c/getLatestRelease", post(get_latest_release))
        .route("/v1/1c/getModuleInfo", post(get_module_info))
        .route(
            "/v1/1c/getExtensionHash/{type}/{version}",
            get(get_extension_hash),
        )
        .route(
            "/v1/1c/getModuleFile/{type}/{version}",
            get(get_module_file_free),
        )
        .route(
            "/v1/1c/getModuleFile/{type}/{version}/{hash}",
            get(get_module_file),
        )
        .route("/v1/signing-key", get(signing_key))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
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

async fn signing_key(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
        state.signer.public_key_pem().to_owned(),
    )
}

/// A JSON object body (`vypusk_formats::check_request`); every way of getting it wrong is a 400
/// (or 413) in the client shape.
pub struct ClientBody(pub CheckRequestBody<'static>);

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
        CheckRequestBody::parse(&bytes)
            .map(|body| ClientBody(body.into_owned()))
            .map_err(|e| ClientError::bad_request(e.to_string()))
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

/// The parsed request of `getAvailableReleases` / `getLatestRelease`.
struct CheckRequest {
    dist: Arc<Distribution>,
    installed: Option<Version>,
    installed_text: String,
    conf: String,
    conf_version: Version,
    conf_version_text: String,
    license: Option<Arc<LicenseView>>,
    show_untested: bool,
    count_downloads: bool,
    downloadable_only: bool,
    sees_prereleases: bool,
}

impl CheckRequest {
    fn parse(
        state: &AppState,
        body: &CheckRequestBody<'_>,
        ip: IpAddr,
    ) -> Result<Self, ClientError> {
        let code = required_field(body, "TYPE")?;
        let dist = published_distribution(state, code)?;
        let installed_text = text_field(body, "INSTALLED_VERSION")?
            .unwrap_or("")
            .to_owned();
        let installed = if installed_text.is_empty() {
            None
        } else {
            Some(
                Version::parse(dist.scheme, &installed_text)
                    .map_err(|e| ClientError::bad_request(format!("INSTALLED_VERSION: {e}")))?,
            )
        };
        let conf = required_field(body, "CONF")?.to_owned();
        let conf_version_text = required_field(body, "CONF_VERSION")?.to_owned();
        let conf_version = Version::parse_1c(&conf_version_text)
            .map_err(|e| ClientError::bad_request(format!("CONF_VERSION: {e}")))?;
        let show_untested = flag_field(body, "SHOW_UNTESTED")?;
        let count_downloads = flag_field(body, "COUNT_DOWNLOADS")?;
        let downloadable_only = flag_field(body, "DOWNLOADABLE_ONLY")?;
        let license = lookup_license(state, &dist, text_field(body, "KEY")?, ip)?;
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
            show_untested,
            count_downloads,
            downloadable_only,
            sees_prereleases,
        })
    }

    fn standing(&self) -> Standing {
        licensing::standing(self.dist.gate, self.license.as_deref())
    }

    fn offers(&self, standing: &Standing) -> Vec<Offer> {
        selection::offers(
            &self.dist,
            &CheckContext {
                installed: self.installed.as_ref(),
                conf: &self.conf,
                conf_version: &self.conf_version,
                show_untested: self.show_untested,
                sees_prereleases: self.sees_prereleases,
                standing,
            },
        )
    }
}

async fn get_available_releases(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    ClientBody(body): ClientBody,
) -> Result<Json<ReleasesResponse>, ClientError> {
    let request = CheckRequest::parse(&state, &body, ip)?;
    let standing = request.standing();
    let offers = request.offers(&standing);
    record_check(&state, &request, &offers, ip);
    Ok(Json(answer(&state, &request, &offers)))
}

async fn get_latest_release(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    ClientBody(body): ClientBody,
) -> Result<Json<ReleasesResponse>, ClientError> {
    let request = CheckRequest::parse(&state, &body, ip)?;
    let standing = request.standing();
    let latest: Vec<Offer> =
        selection::latest(request.offers(&standing), request.downloadable_only)
            .into_iter()
            .collect();
    record_check(&state, &request, &latest, ip);
    Ok(Json(answer(&state, &request, &latest)))
}

/// Statistics: queues a check event (never waits for the database).
fn record_check(state: &AppState, request: &CheckRequest, offers: &[Offer], ip: IpAddr) {
    state.stats.check(crate::stats::capture::CheckEvent {
        at: chrono::Utc::now(),
        distribution_id: request.dist.id,
        paid: request.dist.gate.is_some(),
        installed_version: request.installed_text.clone(),
        conf: request.conf.clone(),
        conf_version: request.conf_version_text.clone(),
        offered_version: offers
            .first()
            .map(|o| o.release.version.to_string())
            .unwrap_or_default(),
        license_key: request.license.as_ref().map(|l| l.key.clone()),
        client: ip,
    });
}

fn answer(state: &AppState, request: &CheckRequest, offers: &[Offer]) -> ReleasesResponse {
    let now = chrono::Utc::now().timestamp();
    let expiry = state.tokens.expiry(now);
    let modules: Vec<Module> = offers
        .iter()
        .map(|offer| module(state, request, offer, expiry))
        .collect();
    let result = offers
        .iter()
        .find_map(|o| o.access.as_ref().err().cloned())
        .unwrap_or_default();
    ReleasesResponse { modules, result }
}

fn module(state: &AppState, request: &CheckRequest, offer: &Offer, expiry: i64) -> Module {
    let dist = &request.dist;
    let release = &offer.release;
    let downloadable = offer.access.is_ok();
    let files: Vec<ModuleFile> = release
        .files
        .iter()
        .map(|f| ModuleFile {
            name: f.name.clone(),
            size: f.size,
            url: if downloadable {
                let grant = DownloadGrant {
                    d: dist.id,
                    f: f.id,
                    k: dist
                        .gate
                        .and(request.license.as_ref().map(|l| l.key.clone())),
                    c: request.count_downloads,
                    e: expiry,
                    conf: request.conf.clone(),
                    cv: request.conf_version_text.clone(),
                    iv: request.installed_text.clone(),
                };
                file_url(state, &state.tokens.issue(&grant), &f.name)
            } else {
                String::new()
            },
            md5: f.md5.clone(),
            sha256: f.sha256.clone(),
        })
        .collect();
    let (product, feature) = dist.gate.unwrap_or((0, 0));
    Module {
        release_id: release.id.into(),
        uniqid: release.version.to_string(),
        version: dist.label.clone(),
        developer: dist.developer.clone(),
        min_1c_version: offer.min_1c_version.clone(),
        lic_product_id: product,
        lic_feature_id: feature,
        name: dist.name.clone(),
        description: dist.description.clone(),
        promo_link: dist.promo_link.clone(),
        changelog: release.changelog.clone(),
        size: release.main_file().map_or(0, |f| f.size),
        download_link: files.first().map(|f| f.url.clone()).unwrap_or_default(),
        files,
        published_at: rfc3339(release.published_at),
        prerelease: release.prerelease,
        untested: offer.untested,
        downloadable,
        result: offer.access.clone().err().unwrap_or_default(),
        distribution: dist.code.clone(),
    }
}

pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn file_url(state: &AppState, token: &str, name: &str) -> String {
    format!(
        "{}/releases/v1/files/{token}/{}",
        state.public_url,
        percent_encoding::utf8_percent_encode(name, PATH_SEGMENT)
    )
}

/// Everything but unreserved characters is escaped in a path segment.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

async fn get_module_info(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    ClientBody(body): ClientBody,
) -> Result<Json<ModuleInfoResponse>, ClientError> {
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
            changelog: r.changelog.clone(),
            size: r.main_file().map_or(0, |f| f.size),
            downloads: counts.get(&r.id).copied().unwrap_or(0).max(0) as u64,
            compatibility: r
                .compatibility
                .iter()
                .map(|c| Compatibility {
                    conf: c.conf.clone(),
                    min_1c_version: c.min.to_string(),
                    max_1c_version: c.max.as_ref().map(|v| v.to_string()),
                })
                .collect(),
            prerelease: r.prerelease,
        })
        .collect();
    let (product, feature) = dist.gate.unwrap_or((0, 0));
    Ok(Json(ModuleInfoResponse {
        module: ModuleInfo {
            code: dist.code.clone(),
            name: dist.name.clone(),
            description: dist.description.clone(),
            developer: dist.developer.clone(),
            promo_link: dist.promo_link.clone(),
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
fn find_release(
    dist: &Distribution,
    version: &str,
    visible: impl Fn(&Release) -> bool,
    usable: impl Fn(&Release) -> bool,
) -> Result<Option<Arc<Release>>, ClientError> {
    if version == "latest" {
        return Ok(dist
            .releases
            .iter()
            .find(|r| visible(r) && usable(r))
            .cloned());
    }
    let wanted = Version::parse(dist.scheme, version)
        .map_err(|e| ClientError::bad_request(e.to_string()))?;
    Ok(dist
        .releases
        .iter()
        .find(|r| r.version == wanted && visible(r))
        .cloned())
}

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
        .metadata
        .get("extension_hash")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            ClientError::not_found(format!(
                "release {} of {code} has no extension hash",
                release.version
            ))
        })?;
    Ok(Json(ExtensionHashResponse {
        hash: hash.clone(),
        result: String::new(),
    }))
}

async fn get_module_file_free(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    method: Method,
    headers: HeaderMap,
    Path((code, version)): Path<(String, String)>,
) -> Result<Response, ClientError> {
    module_file(&state, ip, &method, &headers, &code, &version, None).await
}

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
    let (license, counted_by) = match hash {
        None => (None, None),
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            if state.limiter.is_blocked(&ip) {
                return Err(ClientError::too_many_requests());
            }
            let found = state.catalog.license_by_sha256(&h.to_ascii_lowercase());
            if found.is_none() {
                state.limiter.record_failure(ip);
                return Err(ClientError::forbidden(
                    "the license key is not known to this server",
                ));
            }
            // A key hash is a permanent link: its downloads are counted per UTC day, so one
            // used again later is not attributed to its first day's row.
            let day = crate::stats::capture::day_of(chrono::Utc::now());
            (found, Some(format!("{}/{day}", h.to_ascii_lowercase())))
        }
        Some(token) => {
            let grant = state
                .tokens
                .verify(token, chrono::Utc::now().timestamp())
                .map_err(|e| ClientError::forbidden(e.to_string()))?;
            if grant.d != dist.id {
                return Err(ClientError::forbidden(
                    "the download link is for another distribution",
                ));
            }
            let license = grant.k.as_deref().and_then(|k| state.catalog.license(k));
            (license, grant.c.then(|| token.to_owned()))
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
    licensing::downloadable(&standing, release.published_at).map_err(ClientError::forbidden)?;
    let file = release
        .main_file()
        .ok_or_else(|| ClientError::not_found("the release has no files"))?;
    let counted = counted_by.map(|by| CountedDownload {
        dedup_key: crate::routes::files::dedup_key(&[by.as_bytes(), &file.id.to_be_bytes()]),
        license_key: license.as_ref().map(|l| l.key.clone()),
        conf: String::new(),
        conf_version: String::new(),
        installed_version: String::new(),
    });
    serve_file(state, &dist, &release, file, method, headers, counted).await
}
