//! `/api/v1/products`: names of license products and their features (issue 13 item 2), and a
//! feature's default subscription length. Everyone who reads may list them; naming needs
//! `publish` or `licenses` (`services::products::may_edit`), checked before the body is read.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiJson;
use super::common::{ApiPath, ProductFeatureParams, ProductParam};
use crate::auth::{Authorized, Caller, need};
use crate::error::{ApiError, ApiErrorBody};
use crate::services::products::{
    self as service, FeatureName, NewProduct, ProductEdit, ProductView,
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, rename, remove))
        .routes(routes!(put_feature, remove_feature))
}

/// A caller who may name products and features.
pub struct ProductEditor(pub Caller);

impl FromRequestParts<AppState> for ProductEditor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        service::may_edit(&caller)?;
        Ok(ProductEditor(caller))
    }
}

/// Every named product with its named features.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProductList {
    /// By number.
    pub items: Vec<ProductView>,
}

/// Lists the named products and their features (permission `read`).
#[utoipa::path(get, path = "/v1/products", tag = "products", operation_id = "listProducts",
    responses((status = 200, description = "The catalogue", body = ProductList)))]
async fn list(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
) -> Result<Json<ProductList>, ApiError> {
    Ok(Json(ProductList {
        items: service::list(&state.db).await?,
    }))
}

/// Names a product number (permission `publish` or `licenses`).
#[utoipa::path(post, path = "/v1/products", tag = "products", operation_id = "createProduct",
    request_body = NewProduct,
    responses(
        (status = 201, description = "Named", body = ProductView),
        (status = 409, description = "The number is named already", body = ApiErrorBody),
    ))]
async fn create(
    _: ProductEditor,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewProduct>,
) -> Result<(StatusCode, Json<ProductView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(service::create(&state.db, input).await?),
    ))
}

/// One named product with its features (permission `read`).
#[utoipa::path(get, path = "/v1/products/{number}", tag = "products",
    operation_id = "getProduct", params(ProductParam),
    responses((status = 200, description = "The product", body = ProductView)))]
async fn get_one(
    _: Authorized<need::Read>,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<i64>,
) -> Result<Json<ProductView>, ApiError> {
    Ok(Json(service::get(&state.db, number).await?))
}

/// Renames a product (permission `publish` or `licenses`).
#[utoipa::path(put, path = "/v1/products/{number}", tag = "products",
    operation_id = "renameProduct", params(ProductParam), request_body = ProductEdit,
    responses((status = 200, description = "Renamed", body = ProductView)))]
async fn rename(
    _: ProductEditor,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<i64>,
    ApiJson(input): ApiJson<ProductEdit>,
) -> Result<Json<ProductView>, ApiError> {
    Ok(Json(service::rename(&state.db, number, input).await?))
}

/// Forgets a product's name and its features' (distributions and licenses keep their
/// numbers; permission `publish` or `licenses`).
#[utoipa::path(delete, path = "/v1/products/{number}", tag = "products",
    operation_id = "deleteProduct", params(ProductParam),
    responses((status = 204, description = "Forgotten")))]
async fn remove(
    _: ProductEditor,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state.db, number).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Names a feature of a named product, with its default subscription length, replacing what
/// was there (permission `publish` or `licenses`).
#[utoipa::path(put, path = "/v1/products/{number}/features/{feature}", tag = "products",
    operation_id = "putProductFeature", params(ProductFeatureParams), request_body = FeatureName,
    responses((status = 200, description = "The product with the feature", body = ProductView)))]
async fn put_feature(
    _: ProductEditor,
    State(state): State<AppState>,
    ApiPath((number, feature)): ApiPath<(i64, i64)>,
    ApiJson(input): ApiJson<FeatureName>,
) -> Result<Json<ProductView>, ApiError> {
    Ok(Json(
        service::put_feature(&state.db, number, feature, input).await?,
    ))
}

/// Forgets a feature's name (permission `publish` or `licenses`).
#[utoipa::path(delete, path = "/v1/products/{number}/features/{feature}", tag = "products",
    operation_id = "deleteProductFeature", params(ProductFeatureParams),
    responses((status = 204, description = "Forgotten")))]
async fn remove_feature(
    _: ProductEditor,
    State(state): State<AppState>,
    ApiPath((number, feature)): ApiPath<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    service::delete_feature(&state.db, number, feature).await?;
    Ok(StatusCode::NO_CONTENT)
}
