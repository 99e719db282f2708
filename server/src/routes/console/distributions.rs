//! Distributions in the console: list, create, edit every SPEC §3 field, unpublish and
//! publish again (the `published` flag), each through `services::distributions`.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use super::{Console, Done, Fields, Layout, Pager, done, page, refused, seg, target};
use crate::auth::need;
use crate::entities::distribution;
use crate::error::ApiError;
use crate::services::common::Page;
use crate::services::distributions::{self as service, DistributionEdit, NewDistribution};
use crate::services::products::{Names, ProductView};
use crate::services::releases::{self as releases, ListFilter, Status};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/distributions", get(list).post(create))
        .route("/console/distributions/new", get(new_form))
        .route("/console/distributions/{code}", get(show).post(update))
        .route(
            "/console/distributions/{code}/published",
            post(set_published),
        )
}

/// The fields of the distribution form, as typed (shown again after a refusal).
#[derive(Default)]
pub struct DistributionForm {
    pub code: String,
    pub name: String,
    pub description: String,
    pub developer: String,
    pub label: String,
    pub promo_link: String,
    pub lic_product_id: String,
    pub lic_feature_id: String,
    pub published: bool,
    pub hide_unlicensed: bool,
    pub version_scheme: String,
}

impl DistributionForm {
    fn of(d: &distribution::Model) -> Self {
        DistributionForm {
            code: d.code.clone(),
            name: d.name.clone(),
            description: d.description.clone(),
            developer: d.developer.clone(),
            label: d.label.clone(),
            promo_link: d.promo_link.clone(),
            lic_product_id: d.lic_product_id.map(|n| n.to_string()).unwrap_or_default(),
            lic_feature_id: d.lic_feature_id.map(|n| n.to_string()).unwrap_or_default(),
            published: d.published,
            hide_unlicensed: d.hide_unlicensed,
            version_scheme: d.version_scheme.clone(),
        }
    }

    fn from_fields(f: &Fields) -> Self {
        DistributionForm {
            code: f.get("code").to_owned(),
            name: f.get("name").to_owned(),
            description: f.raw("description").replace("\r\n", "\n"),
            developer: f.get("developer").to_owned(),
            label: f.get("label").to_owned(),
            promo_link: f.get("promo_link").to_owned(),
            lic_product_id: f.get("lic_product_id").to_owned(),
            lic_feature_id: f.get("lic_feature_id").to_owned(),
            published: f.checked("published"),
            hide_unlicensed: f.checked("hide_unlicensed"),
            version_scheme: f.get("version_scheme").to_owned(),
        }
    }

    fn number(field: &str, value: &str) -> Result<Option<i64>, ApiError> {
        if value.is_empty() {
            return Ok(None);
        }
        value
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{field} must be a whole number")))
    }

    /// The service's input: empty numbers mean "no license gate".
    fn to_new(&self) -> Result<NewDistribution, ApiError> {
        Ok(NewDistribution {
            code: Some(self.code.clone()),
            name: self.name.clone(),
            description: self.description.clone(),
            developer: self.developer.clone(),
            label: self.label.clone(),
            promo_link: self.promo_link.clone(),
            lic_product_id: Self::number("lic_product_id", &self.lic_product_id)?,
            lic_feature_id: Self::number("lic_feature_id", &self.lic_feature_id)?,
            published: self.published,
            hide_unlicensed: self.hide_unlicensed,
            version_scheme: Some(self.version_scheme.clone()).filter(|s| !s.is_empty()),
        })
    }

    /// Every field replaced, as a PUT of the whole form.
    fn to_edit(&self) -> Result<DistributionEdit, ApiError> {
        let new = self.to_new()?;
        Ok(DistributionEdit {
            code: None,
            name: Some(Some(new.name)),
            description: Some(Some(new.description)),
            developer: Some(Some(new.developer)),
            label: Some(Some(new.label)),
            promo_link: Some(Some(new.promo_link)),
            lic_product_id: Some(new.lic_product_id),
            lic_feature_id: Some(new.lic_feature_id),
            published: Some(Some(new.published)),
            hide_unlicensed: Some(Some(new.hide_unlicensed)),
            version_scheme: new.version_scheme.map(Some),
        })
    }
}

/// A distribution in the list.
pub struct DistributionRow {
    pub code: String,
    pub code_url: String,
    pub name: String,
    pub published: bool,
    pub gate: String,
    pub scheme: String,
}

fn gate(d: &distribution::Model, names: &Names) -> String {
    match (d.lic_product_id, d.lic_feature_id) {
        (Some(p), Some(f)) => names.describe(p, f),
        // The page says "free" in its language.
        _ => String::new(),
    }
}

#[derive(Template)]
#[template(path = "console/distributions.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<DistributionRow>,
    pager: Pager,
}

async fn list(
    console: Console,
    State(state): State<AppState>,
    Query(q): Query<Done>,
    Query(p): Query<Page>,
) -> Response {
    if let Err(e) = p.validate() {
        return refused(&console, e);
    }
    let (rows, total) = match service::list(&state.db, &p).await {
        Ok(found) => found,
        Err(e) => return refused(&console, e),
    };
    let names = super::names_or_empty(&state).await;
    let rows = rows
        .iter()
        .map(|d| DistributionRow {
            code: d.code.clone(),
            code_url: seg(&d.code),
            name: d.name.clone(),
            published: d.published,
            gate: gate(d, &names),
            scheme: d.version_scheme.clone(),
        })
        .collect();
    page(
        StatusCode::OK,
        &ListPage {
            layout: console
                .layout("distributions")
                .with_notice(q.done.as_deref()),
            rows,
            pager: Pager::new(&p, total, "/console/distributions", &[]),
        },
    )
}

#[derive(Template)]
#[template(path = "console/distribution_form.html")]
struct FormPage {
    layout: Layout,
    form: DistributionForm,
    /// Empty for a new distribution.
    existing: String,
    existing_url: String,
    error: String,
    releases: Vec<super::releases::ReleaseRow>,
    status: String,
    can_publish: bool,
    /// The license gate in words ("" for a new distribution).
    gate_name: String,
    /// Named products, for the gate fields' suggestions.
    catalogue: Vec<ProductView>,
}

async fn new_form(console: Console<need::Publish>, State(state): State<AppState>) -> Response {
    page(
        StatusCode::OK,
        &FormPage {
            layout: console.layout("distributions"),
            form: DistributionForm {
                published: true,
                version_scheme: "1c".into(),
                ..Default::default()
            },
            existing: String::new(),
            existing_url: String::new(),
            error: String::new(),
            releases: Vec::new(),
            status: String::new(),
            can_publish: true,
            gate_name: String::new(),
            catalogue: super::names_or_empty(&state).await.all().cloned().collect(),
        },
    )
}

async fn create(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    fields: Fields,
) -> Response {
    let form = DistributionForm::from_fields(&fields);
    let outcome = match form.to_new() {
        Ok(input) => service::create(&state, input).await,
        Err(e) => Err(e),
    };
    let event = console.event("createDistribution", target(&[("code", &form.code)]));
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(d) => done(
            &format!("/console/distributions/{}", seg(&d.code)),
            "created",
        ),
        Err(e) => page(
            e.status,
            &FormPage {
                layout: console.layout("distributions"),
                form,
                existing: String::new(),
                existing_url: String::new(),
                error: e.message,
                releases: Vec::new(),
                status: String::new(),
                can_publish: true,
                gate_name: String::new(),
                catalogue: super::names_or_empty(&state).await.all().cloned().collect(),
            },
        ),
    }
}

/// `?status=` of the releases list.
#[derive(serde::Deserialize, Default)]
struct StatusFilter {
    status: Option<String>,
}

async fn show(
    console: Console,
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<Done>,
    Query(f): Query<StatusFilter>,
) -> Response {
    let d = match service::find(&state.db, &code).await {
        Ok(d) => d,
        Err(e) => return refused(&console, e),
    };
    let status = f
        .status
        .filter(|s| Status::parse(s).is_some())
        .unwrap_or_default();
    let filter = ListFilter {
        status: Some(status.clone()).filter(|s| !s.is_empty()),
        version: None,
    };
    let everything = Page {
        offset: 0,
        limit: 1000,
        sort: None,
    };
    let releases = match releases::list(&state.db, &d.code, &filter, &everything).await {
        Ok((views, _)) => views
            .iter()
            .map(|v| super::releases::ReleaseRow::of(v, console.tr))
            .collect(),
        Err(e) => return refused(&console, e),
    };
    let names = super::names_or_empty(&state).await;
    page(
        StatusCode::OK,
        &FormPage {
            layout: console
                .layout("distributions")
                .with_notice(q.done.as_deref()),
            form: DistributionForm::of(&d),
            existing: d.code.clone(),
            existing_url: seg(&d.code),
            error: String::new(),
            releases,
            status,
            can_publish: console.has(crate::auth::Permission::Publish),
            gate_name: gate(&d, &names),
            catalogue: names.all().cloned().collect(),
        },
    )
}

async fn update(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    Path(code): Path<String>,
    fields: Fields,
) -> Response {
    let mut form = DistributionForm::from_fields(&fields);
    form.code = code.clone();
    let outcome = match form.to_edit() {
        Ok(edit) => service::edit(&state, &code, edit).await,
        Err(e) => Err(e),
    };
    let event = console.event("updateDistribution", target(&[("code", &code)]));
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(d) => done(&format!("/console/distributions/{}", seg(&d.code)), "saved"),
        Err(e) => page(
            e.status,
            &FormPage {
                layout: console.layout("distributions"),
                form,
                existing_url: seg(&code),
                existing: code,
                error: e.message,
                releases: Vec::new(),
                status: String::new(),
                can_publish: true,
                gate_name: String::new(),
                catalogue: super::names_or_empty(&state).await.all().cloned().collect(),
            },
        ),
    }
}

/// Unpublish (clients stop seeing the distribution) or publish again: `published=0|1`.
async fn set_published(
    console: Console<need::Publish>,
    State(state): State<AppState>,
    Path(code): Path<String>,
    fields: Fields,
) -> Response {
    let published = fields.get("published") == "1";
    let edit = DistributionEdit {
        published: Some(Some(published)),
        ..Default::default()
    };
    let outcome = service::edit(&state, &code, edit).await;
    let mut event = console.event("updateDistribution", target(&[("code", &code)]));
    event.detail = format!("published={published}");
    console.record(&state, event, &outcome).await;
    match outcome {
        Ok(d) => done(
            &format!("/console/distributions/{}", seg(&d.code)),
            if published {
                "republished"
            } else {
                "unpublished"
            },
        ),
        Err(e) => refused(&console, e),
    }
}
