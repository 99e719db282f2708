//! Licenses in the console (`support` and `owner`, permission `licenses`): search by key,
//! customer or ITN; create and edit a license with its features and their expiry; revoke and
//! restore; import a CSV (every bad line shown with its number, nothing imported on error);
//! export the list as CSV in the import's format. Rules: `services::licenses`.

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{Console, Done, Fields, Layout, Pager, done, page, refused, seg, target};
use crate::auth::need;
use crate::error::ApiError;
use crate::services::common::Page;
use crate::services::licenses::{
    self as service, FeatureInput, IMPORT_BODY_LIMIT, LicensePatch, LicenseQuery, LicenseView,
    NewLicense,
};
use crate::services::products::{Names, ProductView};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/licenses", get(list).post(create))
        .route("/console/licenses/new", get(new_form))
        .route("/console/licenses.csv", get(export))
        .route(
            "/console/licenses/import",
            post(import).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .route("/console/licenses/{key}", get(show).post(update))
        .route("/console/licenses/{key}/revoked", post(set_revoked))
}

/// One feature row of the form, as typed.
#[derive(Clone, Default)]
pub struct FeatureRow {
    /// The feature's name from the catalogue ("" when unnamed or blank).
    pub label: String,
    pub product: String,
    pub feature: String,
    /// `YYYY-MM-DD` (the date input's), or empty: never lapses.
    pub until: String,
}

/// The license form, as typed.
#[derive(Default)]
pub struct LicenseForm {
    pub key: String,
    pub customer: String,
    pub itn: String,
    pub beta: bool,
    pub revoked: bool,
    pub features: Vec<FeatureRow>,
}

const BLANK_ROWS: usize = 2;

impl LicenseForm {
    fn of(l: &LicenseView) -> Self {
        LicenseForm {
            key: l.key.clone(),
            customer: l.customer.clone(),
            itn: l.itn.clone(),
            beta: l.beta,
            revoked: l.revoked,
            features: l
                .features
                .iter()
                .map(|f| FeatureRow {
                    label: String::new(),
                    product: f.product.to_string(),
                    feature: f.feature.to_string(),
                    until: f
                        .active_until
                        .as_deref()
                        .map(|t| t.chars().take(10).collect())
                        .unwrap_or_default(),
                })
                .collect(),
        }
    }

    fn from_fields(f: &Fields) -> Self {
        let products = f.all("product");
        let features = f.all("feature");
        let untils = f.all("until");
        let cell = |v: &[&str], i: usize| v.get(i).map_or("", |s| s.trim()).to_owned();
        LicenseForm {
            key: f.get("key").to_owned(),
            customer: f.get("customer").to_owned(),
            itn: f.get("itn").to_owned(),
            beta: f.checked("beta"),
            revoked: f.checked("revoked"),
            features: (0..products.len().max(features.len()).max(untils.len()))
                .map(|i| FeatureRow {
                    label: String::new(),
                    product: cell(&products, i),
                    feature: cell(&features, i),
                    until: cell(&untils, i),
                })
                .filter(|r| !(r.product.is_empty() && r.feature.is_empty() && r.until.is_empty()))
                .collect(),
        }
    }

    /// Names each filled row from the catalogue.
    fn named(mut self, names: &Names) -> Self {
        for r in &mut self.features {
            if let (Ok(p), Ok(f)) = (r.product.parse(), r.feature.parse()) {
                r.label = names.describe(p, f);
            }
        }
        self
    }

    fn with_blanks(mut self) -> Self {
        self.features
            .extend(std::iter::repeat_n(FeatureRow::default(), BLANK_ROWS));
        self
    }

    /// The features for the service; a date means "through the end of that day".
    fn feature_input(&self) -> Result<Vec<FeatureInput>, ApiError> {
        self.features
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let number = |what: &str, v: &str| {
                    v.parse::<i64>().map_err(|_| {
                        ApiError::bad_request(format!(
                            "feature row {}: {what} must be a whole number",
                            i + 1
                        ))
                    })
                };
                Ok(FeatureInput {
                    product: number("product", &r.product)?,
                    feature: number("feature", &r.feature)?,
                    active_until: Some(r.until.clone()).filter(|u| !u.is_empty()),
                })
            })
            .collect()
    }
}

pub struct LicenseRow {
    pub key: String,
    pub key_url: String,
    pub customer: String,
    pub itn: String,
    pub beta: bool,
    pub revoked: bool,
    pub features: String,
}

impl LicenseRow {
    fn of(l: &LicenseView, names: &Names) -> Self {
        LicenseRow {
            key: l.key.clone(),
            key_url: seg(&l.key),
            customer: l.customer.clone(),
            itn: l.itn.clone(),
            beta: l.beta,
            revoked: l.revoked,
            features: l
                .features
                .iter()
                .map(|f| {
                    let what = names.describe(f.product, f.feature);
                    match &f.active_until {
                        Some(t) => format!("{what} until {}", t.get(..10).unwrap_or(t)),
                        None => what,
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

#[derive(serde::Deserialize, Default)]
struct Search {
    #[serde(default)]
    search: String,
}

#[derive(Template)]
#[template(path = "console/licenses.html")]
struct ListPage {
    layout: Layout,
    search: String,
    rows: Vec<LicenseRow>,
    pager: Pager,
    csv_url: String,
    /// The import's refusal: each bad line on its own.
    import_errors: Vec<String>,
    import_summary: String,
}

async fn list_page(
    console: &Console<need::Licenses>,
    state: &AppState,
    search: String,
    p: &Page,
    notice: Option<&str>,
    import: Result<String, Vec<String>>,
    status: StatusCode,
) -> Response {
    let found = service::list(
        &state.db,
        LicenseQuery {
            offset: Some(p.offset),
            limit: Some(p.limit),
            sort: p.sort.clone(),
            search: Some(search.clone()).filter(|s| !s.is_empty()),
        },
    )
    .await;
    let list = match found {
        Ok(l) => l,
        Err(e) => return refused(console, e),
    };
    let names = super::names_or_empty(state).await;
    let csv_url = format!(
        "/console/licenses.csv?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("search", &search)
            .finish()
    );
    let (import_summary, import_errors) = match import {
        Ok(summary) => (summary, Vec::new()),
        Err(errors) => (String::new(), errors),
    };
    page(
        status,
        &ListPage {
            layout: console.layout("licenses").with_notice(notice),
            pager: Pager::new(p, list.total, "/console/licenses", &[("search", &search)]),
            rows: list
                .items
                .iter()
                .map(|l| LicenseRow::of(l, &names))
                .collect(),
            search,
            csv_url,
            import_errors,
            import_summary,
        },
    )
}

async fn list(
    console: Console<need::Licenses>,
    State(state): State<AppState>,
    Query(q): Query<Done>,
    Query(s): Query<Search>,
    Query(p): Query<Page>,
) -> Response {
    if let Err(e) = p.validate() {
        return refused(&console, e);
    }
    list_page(
        &console,
        &state,
        s.search.trim().to_owned(),
        &p,
        q.done.as_deref(),
        Ok(String::new()),
        StatusCode::OK,
    )
    .await
}

#[derive(Template)]
#[template(path = "console/license_form.html")]
struct FormPage {
    layout: Layout,
    form: LicenseForm,
    /// Named products, for the feature fields' suggestions.
    catalogue: Vec<ProductView>,
    /// Empty for a new license.
    existing: String,
    existing_url: String,
    error: String,
}

async fn new_form(console: Console<need::Licenses>, State(state): State<AppState>) -> Response {
    let names = super::names_or_empty(&state).await;
    page(
        StatusCode::OK,
        &FormPage {
            layout: console.layout("licenses"),
            form: LicenseForm::default().named(&names).with_blanks(),
            catalogue: names.all().cloned().collect(),
            existing: String::new(),
            existing_url: String::new(),
            error: String::new(),
        },
    )
}

async fn create(
    console: Console<need::Licenses>,
    State(state): State<AppState>,
    fields: Fields,
) -> Response {
    let form = LicenseForm::from_fields(&fields);
    let outcome = match form.feature_input() {
        Ok(features) => {
            service::create(
                &state.db,
                &state.catalog,
                NewLicense {
                    key: Some(form.key.clone()),
                    customer: Some(form.customer.clone()),
                    itn: Some(form.itn.clone()),
                    beta: Some(form.beta),
                    revoked: Some(form.revoked),
                    features: Some(features),
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    let event = console.event("createLicense", target(&[("key", &form.key)]));
    console.record(&state, event, &outcome).await;
    let e = match outcome {
        Ok(l) => return done(&format!("/console/licenses/{}", seg(&l.key)), "created"),
        Err(e) => e,
    };
    // The catalogue is read only when the form is shown again.
    let names = super::names_or_empty(&state).await;
    page(
        e.status,
        &FormPage {
            layout: console.layout("licenses"),
            form: form.named(&names).with_blanks(),
            catalogue: names.all().cloned().collect(),
            existing: String::new(),
            existing_url: String::new(),
            error: e.message,
        },
    )
}

async fn show(
    console: Console<need::Licenses>,
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    let names = super::names_or_empty(&state).await;
    match service::show(&state.db, &key).await {
        Ok(l) => page(
            StatusCode::OK,
            &FormPage {
                layout: console.layout("licenses").with_notice(q.done.as_deref()),
                form: LicenseForm::of(&l).named(&names).with_blanks(),
                catalogue: names.all().cloned().collect(),
                existing_url: seg(&l.key),
                existing: l.key,
                error: String::new(),
            },
        ),
        Err(e) => refused(&console, e),
    }
}

async fn update(
    console: Console<need::Licenses>,
    State(state): State<AppState>,
    Path(key): Path<String>,
    fields: Fields,
) -> Response {
    let mut form = LicenseForm::from_fields(&fields);
    form.key = key.clone();
    let outcome = match form.feature_input() {
        Ok(features) => {
            service::update(
                &state.db,
                &state.catalog,
                &key,
                LicensePatch {
                    key: None,
                    customer: Some(Some(form.customer.clone())),
                    itn: Some(Some(form.itn.clone())),
                    beta: Some(Some(form.beta)),
                    revoked: None,
                    features: Some(Some(features)),
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    let event = console.event("updateLicense", target(&[("key", &key)]));
    console.record(&state, event, &outcome).await;
    let e = match outcome {
        Ok(l) => return done(&format!("/console/licenses/{}", seg(&l.key)), "saved"),
        Err(e) => e,
    };
    // The catalogue is read only when the form is shown again.
    let names = super::names_or_empty(&state).await;
    page(
        e.status,
        &FormPage {
            layout: console.layout("licenses"),
            form: form.named(&names).with_blanks(),
            catalogue: names.all().cloned().collect(),
            existing_url: seg(&key),
            existing: key,
            error: e.message,
        },
    )
}

/// Revoke (`revoked=1`: every feature stops at once) or restore (`revoked=0`).
async fn set_revoked(
    console: Console<need::Licenses>,
    State(state): State<AppState>,
    Path(key): Path<String>,
    fields: Fields,
) -> Response {
    let revoked = fields.get("revoked") == "1";
    let outcome = service::update(
        &state.db,
        &state.catalog,
        &key,
        LicensePatch {
            revoked: Some(Some(revoked)),
            ..Default::default()
        },
    )
    .await;
    let mut event = console.event("updateLicense", target(&[("key", &key)]));
    event.detail = format!("revoked={revoked}");
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(l) => done(
            &format!("/console/licenses/{}", seg(&l.key)),
            if revoked {
                "revoked-license"
            } else {
                "restored-license"
            },
        ),
        Err(e) => refused(&console, e),
    }
}

/// `multipart/form-data` whose first part is `csrf`, then the CSV file: imported all or
/// nothing; a refusal lists each bad line with its number.
async fn import(
    console: Console<need::Licenses>,
    State(state): State<AppState>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let mut multipart = match super::checked_multipart(&console, multipart).await {
        Ok(m) => m,
        Err(refusal) => return refusal,
    };
    let mut csv = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.file_name().is_some() => match field.bytes().await {
                Ok(bytes) => {
                    csv = Some(bytes);
                    break;
                }
                Err(e) => return refused(&console, ApiError::bad_request(e.body_text())),
            },
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(e) => return refused(&console, ApiError::bad_request(e.body_text())),
        }
    }
    let outcome = match csv {
        Some(bytes) if !bytes.is_empty() => {
            service::import_csv(&state.db, &state.catalog, &bytes).await
        }
        _ => Err(ApiError::bad_request("choose a CSV file to import")),
    };
    let mut event = console.event("importLicenses", "");
    if let Ok(s) = &outcome {
        event.detail = format!("licenses={} features={}", s.imported, s.features);
    }
    console.record(&state, event, &outcome).await;
    let first = Page {
        offset: 0,
        limit: 100,
        sort: None,
    };
    let (result, status) = match outcome {
        Ok(s) => (
            Ok(console.tr.t2(
                "import-done",
                ("licenses", &s.imported),
                ("features", &s.features),
            )),
            StatusCode::OK,
        ),
        Err(e) if e.status == StatusCode::BAD_REQUEST => (
            Err(e.message.lines().map(str::to_owned).collect()),
            StatusCode::BAD_REQUEST,
        ),
        Err(e) => return refused(&console, e),
    };
    list_page(
        &console,
        &state,
        String::new(),
        &first,
        None,
        result,
        status,
    )
    .await
}

async fn export(
    console: Console<need::Licenses>,
    State(state): State<AppState>,
    Query(s): Query<Search>,
) -> Response {
    let search = Some(s.search.trim()).filter(|s| !s.is_empty());
    let mut out = Vec::new();
    if let Err(e) = service::export_csv(&state.db, search, &mut out).await {
        return refused(&console, e);
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"vypusk-licenses.csv\""),
            ),
        ],
        out,
    )
        .into_response()
}
