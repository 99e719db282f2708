//! Releases in the console: create a draft, edit its version, changelog (with a Markdown
//! preview), compatibility rows and metadata; upload files (streamed, with a progress bar when
//! scripts run, a plain multipart form otherwise); choose the main file; publish and yank after
//! a confirmation page showing what clients will see. Every rule is `services::releases`'s.

use std::collections::BTreeMap;

use askama::Template;
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use vypusk_protocol::FileName;
use vypusk_storage::{ExpectedDigests, StagedBlob};

use super::{Console, Done, Fields, Layout, done, header_csrf_ok, page, refused, seg, target};
use crate::auth::{Permission, need};
use crate::error::ApiError;
use crate::i18n::Tr;
use crate::services::common::Page;
use crate::services::distributions;
use crate::services::releases::{
    self as service, CompatInput, ListFilter, NewRelease, ReleaseEdit, ReleaseView, Status,
    YankRequest,
};
use crate::state::AppState;
use crate::stats::chart::human_bytes;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/distributions/{code}/releases/new", get(new_form))
        .route("/console/distributions/{code}/releases", post(create))
        .route("/console/releases/{id}", get(show).post(update))
        .route(
            "/console/releases/{id}/files",
            post(upload_form).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/console/releases/{id}/files/{name}",
            put(upload_one).layer(DefaultBodyLimit::disable()),
        )
        .route("/console/releases/{id}/main", post(choose_main))
        .route("/console/releases/{id}/remove-file", post(remove_file))
        .route(
            "/console/releases/{id}/publish",
            get(publish_confirm).post(publish),
        )
        .route("/console/releases/{id}/yank", get(yank_confirm).post(yank))
        .route("/console/releases/{id}/delete", post(delete))
}

// ---------------------------------------------------------------------------------------
// Views

/// A release in a distribution's list.
pub struct ReleaseRow {
    pub id: i32,
    pub version: String,
    pub status: String,
    /// The status's message id.
    pub status_id: &'static str,
    pub prerelease: bool,
    pub files: usize,
    pub compat: String,
    pub published_at: String,
}

/// The message id of a release status.
pub fn status_id(status: &str) -> &'static str {
    match Status::parse(status) {
        Some(Status::Draft) => "status-draft",
        Some(Status::Published) => "status-published",
        Some(Status::Yanked) => "status-yanked",
        None => "status-all",
    }
}

impl ReleaseRow {
    pub fn of(v: &ReleaseView, tr: Tr) -> Self {
        ReleaseRow {
            id: v.release.id,
            version: v.release.version.clone(),
            status: v.release.status.clone(),
            status_id: status_id(&v.release.status),
            prerelease: v.release.prerelease,
            files: v.parts.files.len(),
            compat: v
                .parts
                .compat
                .iter()
                .map(|c| compat_text(tr, &c.conf, &c.min_1c_version, c.max_1c_version.as_deref()))
                .collect::<Vec<_>>()
                .join("; "),
            published_at: v
                .release
                .published_at
                .map(|t| tr.time(t))
                .unwrap_or_default(),
        }
    }
}

/// "УправлениеТорговлей 11.4.11.55 – 11.5.99.999", "any configuration 0 or later".
fn compat_text(tr: Tr, conf: &str, min: &str, max: Option<&str>) -> String {
    let any = tr.t("compat-any-configuration");
    let conf = if conf == "*" { any.as_str() } else { conf };
    match max {
        Some(max) => tr.t2(
            "compat-range",
            ("conf", &conf),
            ("range", &format!("{min} – {max}")),
        ),
        None => tr.t2("compat-or-later", ("conf", &conf), ("min", &min)),
    }
}

/// One row of the compatibility editor, as typed.
#[derive(Clone, Default)]
pub struct CompatRow {
    pub conf: String,
    pub min: String,
    pub max: String,
}

/// One metadata row, as typed.
#[derive(Clone, Default)]
pub struct MetaRow {
    pub key: String,
    pub value: String,
}

pub struct FileRow {
    pub name: String,
    pub size: String,
    pub bytes: i64,
    pub md5: String,
    pub main: bool,
}

impl FileRow {
    fn of(f: &crate::entities::file::Model) -> Self {
        FileRow {
            name: f.name.clone(),
            size: human_bytes(f.size),
            bytes: f.size,
            md5: f.md5.clone(),
            main: f.main,
        }
    }
}

/// The editable fields of a release, as typed (shown again after a refusal or a preview).
#[derive(Default)]
pub struct ReleaseForm {
    pub version: String,
    pub prerelease: bool,
    pub changelog: String,
    pub compat: Vec<CompatRow>,
    pub meta: Vec<MetaRow>,
}

/// Blank rows the editors offer beyond the filled ones.
const BLANK_ROWS: usize = 2;

impl ReleaseForm {
    fn of(v: &ReleaseView) -> Self {
        ReleaseForm {
            version: v.release.version.clone(),
            prerelease: v.release.prerelease,
            changelog: v.release.changelog.clone(),
            compat: v
                .parts
                .compat
                .iter()
                .map(|c| CompatRow {
                    conf: c.conf.clone(),
                    min: c.min_1c_version.clone(),
                    max: c.max_1c_version.clone().unwrap_or_default(),
                })
                .collect(),
            meta: v
                .parts
                .meta
                .iter()
                .map(|m| MetaRow {
                    key: m.key.clone(),
                    value: m.value.clone(),
                })
                .collect(),
        }
    }

    fn from_fields(f: &Fields) -> Self {
        let confs = f.all("conf");
        let mins = f.all("min");
        let maxes = f.all("max");
        let compat = (0..confs.len().max(mins.len()).max(maxes.len()))
            .map(|i| CompatRow {
                conf: confs.get(i).map_or("", |s| s.trim()).to_owned(),
                min: mins.get(i).map_or("", |s| s.trim()).to_owned(),
                max: maxes.get(i).map_or("", |s| s.trim()).to_owned(),
            })
            .filter(|r| !(r.conf.is_empty() && r.min.is_empty() && r.max.is_empty()))
            .collect();
        let keys = f.all("meta_key");
        let values = f.all("meta_value");
        let meta = (0..keys.len().max(values.len()))
            .map(|i| MetaRow {
                key: keys.get(i).map_or("", |s| s.trim()).to_owned(),
                value: values.get(i).map_or("", |s| s.trim()).to_owned(),
            })
            .filter(|r| !(r.key.is_empty() && r.value.is_empty()))
            .collect();
        ReleaseForm {
            version: f.get("version").to_owned(),
            prerelease: f.checked("prerelease"),
            changelog: f.raw("changelog").replace("\r\n", "\n"),
            compat,
            meta,
        }
    }

    /// The rows to show: the filled ones and a few blank ones.
    fn with_blanks(mut self) -> Self {
        self.compat
            .extend(std::iter::repeat_n(CompatRow::default(), BLANK_ROWS));
        self.meta
            .extend(std::iter::repeat_n(MetaRow::default(), BLANK_ROWS));
        self
    }

    /// A row with a configuration but no minimum version means "from any version".
    fn compat_input(&self) -> Vec<CompatInput> {
        self.compat
            .iter()
            .map(|r| CompatInput {
                conf: r.conf.clone(),
                min_1c_version: if r.min.is_empty() {
                    "0".into()
                } else {
                    r.min.clone()
                },
                max_1c_version: Some(r.max.clone()).filter(|m| !m.is_empty()),
            })
            .collect()
    }

    fn metadata(&self) -> Result<BTreeMap<String, String>, ApiError> {
        let mut out = BTreeMap::new();
        for row in &self.meta {
            if row.key.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "the metadata value {:?} has no key",
                    row.value
                )));
            }
            if out.insert(row.key.clone(), row.value.clone()).is_some() {
                return Err(ApiError::bad_request(format!(
                    "metadata key {:?} is given twice",
                    row.key
                )));
            }
        }
        Ok(out)
    }
}

/// Markdown as HTML for the preview: CommonMark with tables and strikethrough; raw HTML in
/// the source is shown as text, never passed through (the page must not run a changelog).
pub fn markdown(source: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, Tag, html};
    let parser = Parser::new_ext(
        source,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    )
    .map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        // Links and images only to the web or mail: a `javascript:` link goes nowhere.
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe_url(&dest_url) => Event::Start(Tag::Link {
            link_type,
            dest_url: "".into(),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe_url(&dest_url) => Event::Start(Tag::Image {
            link_type,
            dest_url: "".into(),
            title,
            id,
        }),
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, parser);
    out
}

/// `http:`, `https:`, `mailto:` or a URL without a scheme (relative, `#anchor`).
fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    match lower.split_once(':') {
        None => true,
        // A colon after a path or query character is not a scheme's.
        Some((scheme, _)) if scheme.contains(['/', '?', '#']) => true,
        Some((scheme, _)) => matches!(scheme, "http" | "https" | "mailto"),
    }
}

#[derive(Template)]
#[template(path = "console/release.html")]
struct ReleasePage {
    layout: Layout,
    id: i32,
    distribution: String,
    distribution_url: String,
    distribution_name: String,
    status: String,
    status_id: &'static str,
    is_draft: bool,
    is_published: bool,
    yank_reason: String,
    published_at: String,
    form: ReleaseForm,
    files: Vec<FileRow>,
    preview: String,
    error: String,
    can_publish: bool,
    max_upload: String,
}

#[derive(Template)]
#[template(path = "console/release_new.html")]
struct NewReleasePage {
    layout: Layout,
    distribution: String,
    distribution_url: String,
    form: ReleaseForm,
    preview: String,
    error: String,
}

// ---------------------------------------------------------------------------------------
// Create

async fn new_form(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Response {
    let d = match distributions::find(&state.db, &code).await {
        Ok(d) => d,
        Err(e) => return refused(&console, e),
    };
    let form = ReleaseForm {
        compat: vec![CompatRow {
            conf: "*".into(),
            min: "0".into(),
            max: String::new(),
        }],
        ..Default::default()
    };
    page(
        StatusCode::OK,
        &NewReleasePage {
            layout: console.layout("distributions"),
            distribution_url: seg(&d.code),
            distribution: d.code,
            form: form.with_blanks(),
            preview: String::new(),
            error: String::new(),
        },
    )
}

async fn create(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    Path(code): Path<String>,
    fields: Fields,
) -> Response {
    let form = ReleaseForm::from_fields(&fields);
    let render = |form: ReleaseForm, preview: String, error: String, status: StatusCode| {
        page(
            status,
            &NewReleasePage {
                layout: console.layout("distributions"),
                distribution: code.clone(),
                distribution_url: seg(&code),
                form: form.with_blanks(),
                preview,
                error,
            },
        )
    };
    if fields.get("action") == "preview" {
        let preview = markdown(&form.changelog);
        return render(form, preview, String::new(), StatusCode::OK);
    }
    let outcome = match form.metadata() {
        Ok(metadata) => {
            service::create(
                &state.db,
                &code,
                NewRelease {
                    version: form.version.clone(),
                    changelog: form.changelog.clone(),
                    compatibility: form.compat_input(),
                    prerelease: form.prerelease,
                    metadata,
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    let mut event = console.event("createRelease", target(&[("code", &code)]));
    event.detail = format!("version={}", form.version);
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(id) => done(&format!("/console/releases/{id}"), "created"),
        Err(e) => render(form, String::new(), e.message, e.status),
    }
}

// ---------------------------------------------------------------------------------------
// Show and edit

async fn load(state: &AppState, id: i32) -> Result<(ReleaseView, String), ApiError> {
    let view = service::get(&state.db, id).await?;
    let name = distributions::find(&state.db, &view.distribution)
        .await?
        .name;
    Ok((view, name))
}

fn release_page(
    console: &Console<impl crate::auth::Needs>,
    state: &AppState,
    view: &ReleaseView,
    distribution_name: String,
    form: ReleaseForm,
    preview: String,
    error: String,
) -> ReleasePage {
    let r = &view.release;
    ReleasePage {
        layout: console.layout("distributions"),
        id: r.id,
        distribution: view.distribution.clone(),
        distribution_url: seg(&view.distribution),
        distribution_name,
        status: r.status.clone(),
        status_id: status_id(&r.status),
        is_draft: Status::parse(&r.status) == Some(Status::Draft),
        is_published: Status::parse(&r.status) == Some(Status::Published),
        yank_reason: r.yank_reason.clone().unwrap_or_default(),
        published_at: r
            .published_at
            .map(|t| console.tr.time(t))
            .unwrap_or_default(),
        form: form.with_blanks(),
        files: view.parts.files.iter().map(FileRow::of).collect(),
        preview,
        error,
        can_publish: console.has(Permission::Publish),
        max_upload: human_bytes(i64::try_from(state.settings.max_upload_bytes).unwrap_or(i64::MAX)),
    }
}

async fn show(
    console: Console,
    State(state): State<AppState>,
    Path(id): Path<i32>,
    Query(q): Query<Done>,
) -> Response {
    let (view, name) = match load(&state, id).await {
        Ok(found) => found,
        Err(e) => return refused(&console, e),
    };
    let form = ReleaseForm::of(&view);
    let mut p = release_page(
        &console,
        &state,
        &view,
        name,
        form,
        String::new(),
        String::new(),
    );
    p.layout = p.layout.with_notice(q.done.as_deref());
    page(StatusCode::OK, &p)
}

async fn update(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    Path(id): Path<i32>,
    fields: Fields,
) -> Response {
    let form = ReleaseForm::from_fields(&fields);
    if fields.get("action") == "preview" {
        let (view, name) = match load(&state, id).await {
            Ok(found) => found,
            Err(e) => return refused(&console, e),
        };
        let preview = markdown(&form.changelog);
        let p = release_page(&console, &state, &view, name, form, preview, String::new());
        return page(StatusCode::OK, &p);
    }
    let outcome = match form.metadata() {
        Ok(metadata) => {
            // A published release keeps its version and flag; sending them would be refused.
            let draft = match service::find(&state.db, id).await {
                Ok(r) => Status::parse(&r.status) == Some(Status::Draft),
                Err(e) => return refused(&console, e),
            };
            let edit = ReleaseEdit {
                version: draft.then(|| Some(form.version.clone())),
                prerelease: draft.then_some(Some(form.prerelease)),
                changelog: Some(Some(form.changelog.clone())),
                compatibility: Some(Some(form.compat_input())),
                metadata: Some(Some(metadata)),
            };
            service::edit(&state, id, edit).await
        }
        Err(e) => Err(e),
    };
    let event = console.event("updateRelease", target(&[("id", &id.to_string())]));
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(()) => done(&format!("/console/releases/{id}"), "saved"),
        Err(e) => match load(&state, id).await {
            Ok((view, name)) => {
                let p = release_page(
                    &console,
                    &state,
                    &view,
                    name,
                    form,
                    String::new(),
                    e.message,
                );
                page(e.status, &p)
            }
            Err(_) => refused(&console, e),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Files

fn file_name(name: &str) -> Result<FileName, ApiError> {
    FileName::parse(name).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The answer of the upload script's `PUT`: the stored file, or the vendor API's error shape.
#[derive(serde::Serialize)]
struct Uploaded {
    name: String,
    size: i64,
    md5: String,
}

/// `PUT /console/releases/{id}/files/{name}`: the raw body, streamed like the vendor API's
/// upload; the session's CSRF token in `X-CSRF-Token`, checked before any byte is read.
async fn upload_one(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    Path((id, name)): Path<(i32, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !header_csrf_ok(&console.csrf, &headers) {
        return ApiError::forbidden("the X-CSRF-Token header is missing or wrong").into_response();
    }
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let outcome = match file_name(&name) {
        Ok(name) => {
            service::upload(
                &state,
                id,
                &name,
                body.into_data_stream(),
                announced,
                ExpectedDigests::default(),
                false,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let mut event = console.event(
        "uploadFile",
        target(&[("id", &id.to_string()), ("name", &name)]),
    );
    if let Ok(row) = &outcome {
        event.detail = format!("size={} md5={}", row.size, row.md5);
    }
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(row) => (
            StatusCode::CREATED,
            Json(Uploaded {
                name: row.name,
                size: row.size,
                md5: row.md5,
            }),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /console/releases/{id}/files`: the upload form without scripts, `multipart/form-data`
/// whose first part is `csrf` (checked before any file part is read); every part with a file
/// name is stored.
async fn upload_form(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    Path(id): Path<i32>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let mut multipart = match super::checked_multipart(&console, multipart).await {
        Ok(m) => m,
        Err(refusal) => return refusal,
    };
    let outcome = receive_files(&state, id, &mut multipart).await;
    let names = match &outcome {
        Ok(rows) => rows
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        Err(_) => String::new(),
    };
    let mut event = console.event("uploadFiles", target(&[("id", &id.to_string())]));
    event.detail = names;
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(_) => done(&format!("/console/releases/{id}"), "uploaded"),
        Err(e) => refused(&console, e),
    }
}

async fn receive_files(
    state: &AppState,
    id: i32,
    multipart: &mut Multipart,
) -> Result<Vec<crate::entities::file::Model>, ApiError> {
    service::check_draft_for_files(&state.db, id).await?;
    let max = state.settings.max_upload_bytes;
    let mut uploads: Vec<(FileName, StagedBlob)> = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(|e| {
        ApiError::bad_request(format!("malformed multipart body: {}", e.body_text()))
    })? {
        let Some(name) = field
            .file_name()
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
        else {
            continue;
        };
        let name = file_name(&name)?;
        let staged = state
            .storage
            .stage_stream(field, max, ExpectedDigests::default())
            .await
            .map_err(service::storage_error)?;
        uploads.push((name, staged));
    }
    if uploads.is_empty() {
        return Err(ApiError::bad_request("choose at least one file to upload"));
    }
    service::record_files(&state.db, id, uploads, None).await
}

async fn choose_main(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    Path(id): Path<i32>,
    fields: Fields,
) -> Response {
    let name = fields.get("name").to_owned();
    let outcome = service::choose_main(&state, id, &name).await;
    let event = console.event(
        "chooseMainFile",
        target(&[("id", &id.to_string()), ("name", &name)]),
    );
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(()) => done(&format!("/console/releases/{id}"), "main"),
        Err(e) => refused(&console, e),
    }
}

async fn remove_file(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    Path(id): Path<i32>,
    fields: Fields,
) -> Response {
    let name = fields.get("name").to_owned();
    // Drafts are not in the catalog: nothing to refresh.
    let outcome = service::remove_file(&state.db, id, &name).await;
    let event = console.event(
        "deleteFile",
        target(&[("id", &id.to_string()), ("name", &name)]),
    );
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(()) => done(&format!("/console/releases/{id}"), "removed"),
        Err(e) => refused(&console, e),
    }
}

// ---------------------------------------------------------------------------------------
// Publish, yank, delete

/// What clients are shown of a release, for the confirmation pages.
struct ClientView {
    module: String,
    label: String,
    version: String,
    prerelease: bool,
    audience: Vec<String>,
    license: String,
    files: Vec<FileRow>,
    changelog_html: String,
    distribution_hidden: bool,
}

async fn client_view(state: &AppState, view: &ReleaseView, tr: Tr) -> Result<ClientView, ApiError> {
    let d = distributions::find(&state.db, &view.distribution).await?;
    Ok(ClientView {
        module: d.name.clone(),
        label: d.label.clone(),
        version: view.release.version.clone(),
        prerelease: view.release.prerelease,
        audience: view
            .parts
            .compat
            .iter()
            .map(|c| compat_text(tr, &c.conf, &c.min_1c_version, c.max_1c_version.as_deref()))
            .collect(),
        license: match (d.lic_product_id, d.lic_feature_id) {
            (Some(p), Some(f)) => {
                let what = crate::services::products::names(&state.db)
                    .await
                    .map(|n| n.describe(p, f))
                    .unwrap_or_else(|_| format!("{p}/{f}"));
                format!(
                    "{}; {}",
                    tr.t1("confirm-license-gated", "what", what),
                    tr.t(if d.hide_unlicensed {
                        "confirm-license-hidden"
                    } else {
                        "confirm-license-shown"
                    })
                )
            }
            _ => tr.t("confirm-license-free"),
        },
        files: view.parts.files.iter().map(FileRow::of).collect(),
        changelog_html: markdown(&view.release.changelog),
        distribution_hidden: !d.published,
    })
}

#[derive(Template)]
#[template(path = "console/release_confirm.html")]
struct ConfirmPage {
    layout: Layout,
    id: i32,
    action: &'static str,
    client: ClientView,
    /// For a yank: the release clients are offered instead ("" when none).
    instead: String,
    error: String,
}

async fn confirm_page(
    console: &Console<need::Publish>,
    state: &AppState,
    id: i32,
    action: &'static str,
    error: String,
    status: StatusCode,
) -> Response {
    let (view, _) = match load(state, id).await {
        Ok(found) => found,
        Err(e) => return refused(console, e),
    };
    let client = match client_view(state, &view, console.tr).await {
        Ok(c) => c,
        Err(e) => return refused(console, e),
    };
    let instead = if action == "yank" {
        match newest_other_published(state, &view).await {
            Ok(v) => v,
            Err(e) => return refused(console, e),
        }
    } else {
        String::new()
    };
    page(
        status,
        &ConfirmPage {
            layout: console.layout("distributions"),
            id,
            action,
            client,
            instead,
            error,
        },
    )
}

/// The newest published release of the same distribution other than `view`'s, by version.
async fn newest_other_published(state: &AppState, view: &ReleaseView) -> Result<String, ApiError> {
    let filter = ListFilter {
        status: Some(Status::Published.as_str().to_owned()),
        version: None,
    };
    let page = Page {
        offset: 0,
        limit: 1000,
        sort: None,
    };
    let (others, _) = service::list(&state.db, &view.distribution, &filter, &page).await?;
    Ok(others
        .iter()
        .filter(|o| o.release.id != view.release.id && !o.release.prerelease)
        .max_by(|a, b| a.release.version_norm.cmp(&b.release.version_norm))
        .map(|o| o.release.version.clone())
        .unwrap_or_default())
}

async fn publish_confirm(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    Path(id): Path<i32>,
) -> Response {
    confirm_page(
        &console,
        &state,
        id,
        "publish",
        String::new(),
        StatusCode::OK,
    )
    .await
}

async fn yank_confirm(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    Path(id): Path<i32>,
) -> Response {
    confirm_page(&console, &state, id, "yank", String::new(), StatusCode::OK).await
}

async fn publish(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    Path(id): Path<i32>,
    _fields: Fields,
) -> Response {
    let outcome = service::publish(&state, id).await;
    let event = console.event("publishRelease", target(&[("id", &id.to_string())]));
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(()) => done(&format!("/console/releases/{id}"), "published"),
        Err(e) => confirm_page(&console, &state, id, "publish", e.message, e.status).await,
    }
}

async fn yank(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    Path(id): Path<i32>,
    fields: Fields,
) -> Response {
    let reason = Some(fields.get("reason").to_owned()).filter(|r| !r.is_empty());
    let outcome = service::yank(
        &state,
        id,
        YankRequest {
            reason: reason.clone(),
        },
    )
    .await;
    let mut event = console.event("yankRelease", target(&[("id", &id.to_string())]));
    event.detail = reason.unwrap_or_default();
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(()) => done(&format!("/console/releases/{id}"), "yanked"),
        Err(e) => confirm_page(&console, &state, id, "yank", e.message, e.status).await,
    }
}

async fn delete(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    Path(id): Path<i32>,
    _fields: Fields,
) -> Response {
    let code = match service::get(&state.db, id).await {
        Ok(v) => v.distribution,
        Err(e) => return refused(&console, e),
    };
    let outcome = service::delete(&state.db, id).await;
    let event = console.event("deleteRelease", target(&[("id", &id.to_string())]));
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(()) => done(&format!("/console/distributions/{}", seg(&code)), "deleted"),
        Err(e) => refused(&console, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_preview_never_passes_html_through() {
        let html = markdown("* Исправлена печать\n\n<script>alert(1)</script> <b>x</b>");
        assert!(html.contains("<li>Исправлена печать</li>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        let links = markdown(
            "[a](javascript:alert(1)) [b](https://example.com) [c](JavaScript:x) ![i](data:x)",
        );
        assert!(
            !links.to_ascii_lowercase().contains("javascript:"),
            "{links}"
        );
        assert!(!links.contains("data:x"), "{links}");
        assert!(links.contains("href=\"https://example.com\""), "{links}");
    }

    #[test]
    fn compatibility_rows_skip_blanks_and_default_the_minimum() {
        let f = Fields::from_pairs(
            [
                ("conf", "УправлениеТорговлей"),
                ("min", "11.4.11.55"),
                ("max", ""),
                ("conf", ""),
                ("min", ""),
                ("max", ""),
                ("conf", "*"),
                ("min", ""),
                ("max", "8.3.99.999"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let form = ReleaseForm::from_fields(&f);
        let input = form.compat_input();
        assert_eq!(input.len(), 2);
        assert_eq!(input[0].conf, "УправлениеТорговлей");
        assert_eq!(input[0].max_1c_version, None);
        assert_eq!(input[1].min_1c_version, "0");
        assert_eq!(input[1].max_1c_version.as_deref(), Some("8.3.99.999"));
    }

    #[test]
    fn metadata_needs_keys_once() {
        let f = |pairs: &[(&str, &str)]| {
            ReleaseForm::from_fields(&Fields::from_pairs(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ))
        };
        assert!(
            f(&[("meta_key", ""), ("meta_value", "x")])
                .metadata()
                .is_err()
        );
        assert!(
            f(&[
                ("meta_key", "a"),
                ("meta_value", "1"),
                ("meta_key", "a"),
                ("meta_value", "2")
            ])
            .metadata()
            .is_err()
        );
        let ok = f(&[("meta_key", "build"), ("meta_value", "77")])
            .metadata()
            .unwrap();
        assert_eq!(ok.get("build").map(String::as_str), Some("77"));
    }
}
