//! Named products and features in the console (issue 13 item 2): everyone sees the catalogue;
//! `release`, `support` and owners name products and features and set a feature's default
//! subscription length. Rules: `services::products`.

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};

use super::{Console, Done, Fields, Layout, done, page, refused, target};
use crate::error::ApiError;
use crate::routes::reports::PageError;
use crate::services::products::{
    self as service, FeatureName, NewProduct, ProductEdit, ProductView,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/products", get(list).post(create))
        .route("/console/products/{number}", post(update))
        .route("/console/products/{number}/features", post(put_feature))
        .route(
            "/console/products/{number}/features/{feature}/delete",
            post(delete_feature),
        )
}

/// A console user who may name products (checked before the form is read).
pub struct Editor(Console);

impl FromRequestParts<AppState> for Editor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let console = Console::from_request_parts(parts, state).await?;
        service::may_edit(&console.caller)?;
        Ok(Editor(console))
    }
}

#[derive(Template)]
#[template(path = "console/products.html")]
struct ProductsPage {
    layout: Layout,
    products: Vec<ProductView>,
    can_edit: bool,
    error: String,
}

async fn render(
    console: &Console,
    state: &AppState,
    error: Option<ApiError>,
    notice: Option<&str>,
) -> Response {
    let products = match service::list(&state.db).await {
        Ok(p) => p,
        Err(e) => return refused(console, e),
    };
    let (status, error) = match error {
        Some(e) => (e.status, e.message),
        None => (StatusCode::OK, String::new()),
    };
    page(
        status,
        &ProductsPage {
            layout: console.layout("products").with_notice(notice),
            products,
            can_edit: service::may_edit(&console.caller).is_ok(),
            error,
        },
    )
}

async fn list(console: Console, State(state): State<AppState>, Query(q): Query<Done>) -> Response {
    render(&console, &state, None, q.done.as_deref()).await
}

fn number(field: &str, value: &str) -> Result<i64, ApiError> {
    value
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{field} must be a whole number")))
}

async fn finish<T>(
    console: &Console,
    state: &AppState,
    action: &str,
    target: String,
    outcome: Result<T, ApiError>,
) -> Response {
    let event = console.event(action, target);
    console.record(state, event, &outcome).await;
    match outcome {
        Ok(_) => done("/console/products", "saved"),
        Err(e) => render(console, state, Some(e), None).await,
    }
}

async fn create(
    Editor(console): Editor,
    State(state): State<AppState>,
    fields: Fields,
) -> Response {
    let outcome = match number("number", fields.get("number")) {
        Ok(n) => {
            service::create(
                &state.db,
                NewProduct {
                    number: n,
                    name: fields.get("name").to_owned(),
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    let target = target(&[("number", fields.get("number"))]);
    finish(&console, &state, "createProduct", target, outcome).await
}

/// Rename (`action=rename`, `name`) or forget (`action=delete`) a product.
async fn update(
    Editor(console): Editor,
    State(state): State<AppState>,
    Path(n): Path<i64>,
    fields: Fields,
) -> Response {
    let target = target(&[("number", &n.to_string())]);
    if fields.get("action") == "delete" {
        let outcome = service::delete(&state.db, n).await;
        return finish(&console, &state, "deleteProduct", target, outcome).await;
    }
    let outcome = service::rename(
        &state.db,
        n,
        ProductEdit {
            name: fields.get("name").to_owned(),
        },
    )
    .await;
    finish(&console, &state, "renameProduct", target, outcome).await
}

async fn put_feature(
    Editor(console): Editor,
    State(state): State<AppState>,
    Path(n): Path<i64>,
    fields: Fields,
) -> Response {
    let days = match fields.get("default_days") {
        "" => Ok(None),
        d => d
            .parse::<u32>()
            .map(Some)
            .map_err(|_| ApiError::bad_request("default days must be a whole number")),
    };
    let outcome = match (number("feature", fields.get("feature")), days) {
        (Ok(f), Ok(days)) => {
            service::put_feature(
                &state.db,
                n,
                f,
                FeatureName {
                    name: fields.get("name").to_owned(),
                    default_days: days,
                },
            )
            .await
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    let target = target(&[
        ("number", &n.to_string()),
        ("feature", fields.get("feature")),
    ]);
    finish(&console, &state, "putProductFeature", target, outcome).await
}

async fn delete_feature(
    Editor(console): Editor,
    State(state): State<AppState>,
    Path((n, f)): Path<(i64, i64)>,
    _fields: Fields,
) -> Response {
    let outcome = service::delete_feature(&state.db, n, f).await;
    finish(
        &console,
        &state,
        "deleteProductFeature",
        target(&[("number", &n.to_string()), ("feature", &f.to_string())]),
        outcome,
    )
    .await
}
