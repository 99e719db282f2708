//! The OpenAPI 3.1 document of the vendor API (`/api/`, SPEC §5) and the client protocol
//! (`/releases/`, SPEC §4), served at `/api/openapi.json`, and Swagger UI at `/docs`.
//!
//! The document is not written by hand: every handler under `/api/` and `/releases/` carries a
//! `#[utoipa::path]` annotation and is registered through `utoipa_axum::routes!`, which builds
//! the axum route and the document's operation from that one annotation (`routes::documented`).
//! What every operation of a family shares — its error shape and codes, the credentials, the
//! `Licence-*` headers of signed answers — is added here once ([`Shared`]), not repeated on 40
//! handlers. Swagger UI's files are inside the binary (`utoipa-swagger-ui`'s `vendored`
//! feature): `/docs` works with no Internet access, and "Try it out" calls this same server.

use std::sync::LazyLock;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
use utoipa::openapi::security::{SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Object, Ref, RefOr, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi};
use vypusk_protocol::{HEADER_QUERY_ID, HEADER_SERVER_VERSION, HEADER_SIGNATURE};

use crate::state::AppState;

/// Where the document is served; not itself an operation of the document.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";
/// Where Swagger UI is served.
pub const DOCS_PATH: &str = "/docs";

/// Vendor-API operations that take no credentials: what the API offers, and setting a new
/// user's password with the one-time token (the token is the credential).
pub const PUBLIC_API_PATHS: &[&str] = &["/api", "/api/v1/users/set-password"];

/// Names of the security schemes.
pub const BASIC: &str = "basic";
pub const BEARER: &str = "bearer";
pub const API_KEY_HEADER: &str = "apiKey";

/// The parts of the document no handler owns: title, tags, shared schemas ([`Shared`] adds
/// the rest once the routers are built).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "vypusk",
        description = "Release distribution and update checks.\n\n\
            * `/releases/…` — the client protocol 1C extensions speak (MIKO's): no credentials; \
            every JSON answer is signed (`Licence-Signature` over the request's `Licence-QueryID` \
            and the body, RSA PKCS#1 v1.5 SHA-256, key at `/releases/v1/signing-key`). \
            Errors are `{\"error\": \"…\"}`.\n\
            * `/api/…` — the vendor API: HTTP Basic as a user (roles `owner`, `release`, \
            `support`, `viewer` grant `admin`, `publish`, `licenses`, `read`), or an API key \
            (`Authorization: Bearer KEY` or `x-api-key: KEY`) with permissions `read`, \
            `publish` (implies read), `licenses` (implies read) or `admin`, never more than its \
            user's roles allow. Errors are \
            `{\"Code\", \"Text\", \"Message\", \"Exception\"}`. `PUT` and `PATCH` both change \
            only the fields given; `null` clears an optional field.",
        license(name = "Apache-2.0"),
    ),
    tags(
        (name = "client", description = "The MIKO-compatible client protocol (SPEC §4)"),
        (name = "downloads", description = "Files through signed links (SPEC §4.6)"),
        (name = "server", description = "What this server is"),
        (name = "distributions", description = "Distributions: what clients ask about by TYPE"),
        (name = "releases", description = "Releases: draft → published → yanked; files while draft"),
        (name = "licenses", description = "License keys and their features: customer data, permission `licenses`"),
        (name = "api-keys", description = "Keys of the vendor API: each user their own, owners every key"),
        (name = "products", description = "Names of license products and features, and default subscription lengths"),
        (name = "users", description = "Users and their roles: owner, release, support, viewer (owners manage them)"),
        (name = "statistics", description = "Download statistics (SPEC §7)"),
        (name = "audit", description = "The audit log: who did what and when, from the API, the console and the CLI (owners)"),
    ),
    components(schemas(crate::error::ApiErrorBody, vypusk_protocol::wire::ClientError)),
)]
pub struct ApiDoc;

/// Error codes any vendor-API operation may answer, besides those its annotation lists: bad
/// input, credentials, permission, unknown ids, body limits, throttling, a full login queue.
const API_ERRORS: &[(u16, &str)] = &[
    (
        400,
        "Bad request: malformed JSON, a missing or invalid field, an invalid parameter",
    ),
    (401, "No credentials, or wrong ones"),
    (
        403,
        "The credentials lack the permission this operation needs",
    ),
    (404, "No such resource"),
    (413, "The body is larger than this operation accepts"),
    (
        429,
        "Too many failed logins from this address; `Retry-After` says when to retry",
    ),
    (503, "Too many logins at once; try again in a few seconds"),
];

/// Error codes any client-protocol operation may answer.
const CLIENT_ERRORS: &[(u16, &str)] = &[
    (
        400,
        "Bad request: unknown TYPE, a malformed version, key or body",
    ),
    (404, "No such release or file"),
    (413, "The body is larger than this operation accepts"),
    (429, "Too many unknown license keys from this address"),
];

/// Adds to every operation what its family shares (see the module docs).
pub struct Shared;

impl Modify for Shared {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BASIC,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("A user's login and password"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: `Authorization: Bearer KEY`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            API_KEY_HEADER,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "An API key in its own header",
            ))),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let api = path.starts_with("/api");
            let public = !api || PUBLIC_API_PATHS.contains(&path.as_str());
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
            ]
            .into_iter()
            .flatten()
            {
                decorate(op, api, public);
            }
        }
    }
}

/// OpenAPI links: what a created resource's answer leads to, for clients and for stateful
/// testing. `(operation, status, link name, target operation, parameter, value expression)`.
const LINKS: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "createDistribution",
        "201",
        "GetDistribution",
        "getDistribution",
        "code",
        "$response.body#/code",
    ),
    (
        "createDistribution",
        "201",
        "UpdateDistribution",
        "updateDistribution",
        "code",
        "$response.body#/code",
    ),
    (
        "createDistribution",
        "201",
        "ListReleases",
        "listReleases",
        "code",
        "$response.body#/code",
    ),
    (
        "createDistribution",
        "201",
        "CreateRelease",
        "createRelease",
        "code",
        "$response.body#/code",
    ),
    (
        "createDistribution",
        "201",
        "DeleteDistribution",
        "deleteDistribution",
        "code",
        "$response.body#/code",
    ),
    (
        "createRelease",
        "201",
        "GetRelease",
        "getRelease",
        "id",
        "$response.body#/id",
    ),
    (
        "createRelease",
        "201",
        "UpdateRelease",
        "updateRelease",
        "id",
        "$response.body#/id",
    ),
    (
        "createRelease",
        "201",
        "UploadFiles",
        "uploadFiles",
        "id",
        "$response.body#/id",
    ),
    (
        "createRelease",
        "201",
        "PublishRelease",
        "publishRelease",
        "id",
        "$response.body#/id",
    ),
    (
        "createRelease",
        "201",
        "DeleteRelease",
        "deleteRelease",
        "id",
        "$response.body#/id",
    ),
    (
        "publishRelease",
        "200",
        "YankRelease",
        "yankRelease",
        "id",
        "$response.body#/id",
    ),
    (
        "publishRelease",
        "200",
        "GetReleaseBundle",
        "getReleaseBundle",
        "id",
        "$response.body#/id",
    ),
    (
        "createLicense",
        "201",
        "GetLicense",
        "getLicense",
        "key",
        "$response.body#/key",
    ),
    (
        "createLicense",
        "201",
        "UpdateLicense",
        "updateLicense",
        "key",
        "$response.body#/key",
    ),
    (
        "createLicense",
        "201",
        "DeleteLicense",
        "deleteLicense",
        "key",
        "$response.body#/key",
    ),
    (
        "createUser",
        "201",
        "GetUser",
        "getUser",
        "id",
        "$response.body#/id",
    ),
    (
        "createUser",
        "201",
        "UpdateUser",
        "updateUser",
        "id",
        "$response.body#/id",
    ),
    (
        "createApiKey",
        "201",
        "RevokeApiKey",
        "revokeApiKey",
        "id",
        "$response.body#/id",
    ),
];

fn add_links(op: &mut Operation) {
    let Some(id) = op.operation_id.clone() else {
        return;
    };
    for (from, status, name, target, parameter, value) in LINKS {
        if *from != id {
            continue;
        }
        if let Some(RefOr::T(response)) = op.responses.responses.get_mut(*status) {
            response.links.insert(
                (*name).to_owned(),
                RefOr::T(
                    LinkBuilder::new()
                        .operation_id(*target)
                        .parameter(*parameter, *value)
                        .build(),
                ),
            );
        }
    }
}

fn decorate(op: &mut Operation, api: bool, public: bool) {
    add_links(op);
    let (errors, schema) = if api {
        (API_ERRORS, "ApiError")
    } else {
        (CLIENT_ERRORS, "ClientError")
    };
    for (code, description) in errors {
        if public && matches!(code, 401 | 403 | 503) {
            continue;
        }
        let code = code.to_string();
        if op.responses.responses.contains_key(&code) {
            continue;
        }
        let response = ResponseBuilder::new()
            .description(*description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build();
        op.responses.responses.insert(code, RefOr::T(response));
    }
    for response in op.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            add_signature_headers(response);
        }
    }
    let parameters = op.parameters.get_or_insert_with(Vec::new);
    parameters.push(RefOr::T(
        ParameterBuilder::new()
            .name(HEADER_QUERY_ID)
            .parameter_in(ParameterIn::Header)
            .required(utoipa::openapi::Required::False)
            .description(Some(
                "A fresh random value per request; the server echoes it and signs it with the \
                 body, so an old answer cannot be replayed",
            ))
            .schema(Some(Object::with_type(Type::String)))
            .build(),
    ));
    if !public {
        op.security = Some(
            [BASIC, BEARER, API_KEY_HEADER]
                .into_iter()
                .map(|scheme| SecurityRequirement::new(scheme, Vec::<String>::new()))
                .collect(),
        );
    }
}

fn add_signature_headers(response: &mut utoipa::openapi::Response) {
    let header = |description: &str| {
        HeaderBuilder::new()
            .schema(Some(Object::with_type(Type::String)))
            .description(Some(description))
            .build()
    };
    response.headers.insert(
        HEADER_SIGNATURE.to_owned(),
        RefOr::T(header(
            "Base64 RSA PKCS#1 v1.5 SHA-256 signature over the request's Licence-QueryID bytes \
             and the body bytes (JSON answers)",
        )),
    );
    response.headers.insert(
        HEADER_QUERY_ID.to_owned(),
        RefOr::T(header("The request's Licence-QueryID, echoed")),
    );
    response.headers.insert(
        HEADER_SERVER_VERSION.to_owned(),
        RefOr::T(header("The server's version")),
    );
}

/// The whole document, built once from the same routers the server runs.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(|| {
        let mut document = crate::routes::documented().into_openapi();
        // After the routers are merged: before, the document has no operations to decorate.
        Shared.modify(&mut document);
        document
    });
    &DOCUMENT
}

/// `GET /api/openapi.json`: the document, rendered once.
pub async fn serve_document() -> Response {
    static RENDERED: LazyLock<Bytes> = LazyLock::new(|| {
        Bytes::from(serde_json::to_vec(document()).unwrap_or_else(|_| b"{}".to_vec()))
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        RENDERED.clone(),
    )
        .into_response()
}

/// `/docs`: Swagger UI from the binary, pointed at [`DOCUMENT_PATH`].
pub fn docs_router() -> Router<AppState> {
    utoipa_swagger_ui::SwaggerUi::new(DOCS_PATH)
        .config(utoipa_swagger_ui::Config::from(DOCUMENT_PATH).try_it_out_enabled(true))
        .into()
}

/// Every operation of the document as `(METHOD, path)`, sorted: what `/api` lists.
pub fn operations() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (path, item) in &document().paths.paths {
        for (method, op) in [
            ("GET", &item.get),
            ("HEAD", &item.head),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ] {
            if op.is_some() {
                out.push((method, path.clone()));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
    out
}

/// The operation id of `method` (upper case) on `path` (a route template, as axum's
/// `MatchedPath` has it), if the document has that operation: what the audit log names
/// actions by.
pub fn operation_id(method: &str, path: &str) -> Option<&'static str> {
    static IDS: LazyLock<std::collections::HashMap<(&'static str, &'static str), &'static str>> =
        LazyLock::new(|| {
            let mut ids = std::collections::HashMap::new();
            for (path, item) in &document().paths.paths {
                for (method, op) in [
                    ("GET", &item.get),
                    ("HEAD", &item.head),
                    ("POST", &item.post),
                    ("PUT", &item.put),
                    ("PATCH", &item.patch),
                    ("DELETE", &item.delete),
                ] {
                    if let Some(id) = op.as_ref().and_then(|op| op.operation_id.as_deref()) {
                        ids.insert((method, path.as_str()), id);
                    }
                }
            }
            ids
        });
    IDS.get(&(method, path)).copied()
}

/// Bytes of a file or an archive, in the document.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct Binary(Vec<u8>);

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `(METHOD, path)` of every route of `router`. axum lists no routes, but its `Debug` text
    /// has them: route ids with their paths, and route ids with their `Allow` header. `HEAD` is
    /// left out (axum answers it for every `GET`), and so are the catch-alls `nest` adds for
    /// the nested routers' fallbacks.
    fn routes_of(router: &Router<AppState>) -> BTreeSet<(String, String)> {
        let text = format!("{router:?}");
        // Only the routes proper, not the fallback router that follows them.
        let text = text.split("fallback_router:").next().unwrap_or_default();
        let mut paths = std::collections::HashMap::new();
        let mut methods = std::collections::HashMap::new();
        for chunk in text.split("RouteId(").skip(1) {
            let Some((id, rest)) = chunk.split_once("): ") else {
                continue;
            };
            if let Some(path) = rest.strip_prefix('"') {
                paths.insert(id.to_owned(), path.split('"').next().unwrap().to_owned());
            } else if let Some((_, allow)) = rest.split_once("allow_header: Bytes(b\"") {
                methods.insert(id.to_owned(), allow.split('"').next().unwrap().to_owned());
            }
        }
        assert!(
            !paths.is_empty() && paths.len() == methods.len(),
            "axum's Debug text changed shape; update routes_of: {text}"
        );
        let mut out = BTreeSet::new();
        for (id, path) in paths {
            if path.contains("__private__axum") {
                continue;
            }
            for method in methods[&id].split(',').filter(|m| *m != "HEAD") {
                out.insert((method.to_owned(), path.clone()));
            }
        }
        out
    }

    /// The router's routes under `/api/` and `/releases/` and the document's operations are
    /// the same set; the one exception is the document's own URL.
    /// Two types with one schema name would share a component, and one of them would be
    /// described wrongly (schemathesis found products' features validated as licenses').
    #[test]
    fn license_and_product_features_have_their_own_schemas() {
        let doc = serde_json::to_value(document()).unwrap();
        let schemas = &doc["components"]["schemas"];
        assert!(schemas["NamedFeature"]["properties"]["number"].is_object());
        assert!(schemas["FeatureView"]["properties"]["product"].is_object());
    }

    #[test]
    fn router_and_document_agree() {
        let (router, _) = crate::routes::documented().split_for_parts();
        let routed = routes_of(&router);
        let mut documented: BTreeSet<(String, String)> = operations()
            .into_iter()
            .map(|(m, p)| (m.to_owned(), p))
            .collect();
        documented.insert(("GET".to_owned(), DOCUMENT_PATH.to_owned()));
        let only_routed: Vec<_> = routed.difference(&documented).collect();
        let only_documented: Vec<_> = documented.difference(&routed).collect();
        assert!(
            only_routed.is_empty() && only_documented.is_empty(),
            "routes without a description: {only_routed:?}; described but not routed: {only_documented:?}"
        );
        assert!(routed.len() > 40, "{routed:?}");
    }

    /// Every operation has an id, a tag, a summary, and a typed answer: no 2xx without a
    /// schema (except 204 and the redirects) and no free-form object anywhere in the schemas.
    #[test]
    fn every_operation_is_described() {
        let document = serde_json::to_value(document()).unwrap();
        let mut ids = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let at = format!("{method} {path}");
                let id = op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{at}: no id"));
                assert!(ids.insert(id.to_owned()), "{at}: operationId {id} twice");
                assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{at}");
                assert!(
                    op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                    "{at}"
                );
                for (code, response) in op["responses"].as_object().unwrap() {
                    if code.starts_with('2') && code != "204" {
                        let content = response["content"].as_object();
                        assert!(
                            content.is_some_and(|c| c.values().all(|m| m["schema"].is_object())),
                            "{at} {code}: no schema"
                        );
                    }
                }
                if path.starts_with("/api/") && !PUBLIC_API_PATHS.contains(&path.as_str()) {
                    assert!(op["security"].is_array(), "{at}: no security");
                    for code in ["400", "401", "403"] {
                        assert_eq!(
                            op["responses"][code]["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ApiError",
                            "{at} {code}"
                        );
                    }
                }
            }
        }
        for (from, _, name, to, _, _) in LINKS {
            assert!(ids.contains(*from) && ids.contains(*to), "link {name}");
        }
        for (name, schema) in document["components"]["schemas"].as_object().unwrap() {
            free_form(name, schema);
        }
    }

    /// The audit log names actions by the document's operation ids, found from the route
    /// template axum matched.
    #[test]
    fn operation_ids_by_route() {
        assert_eq!(
            operation_id("POST", "/api/v1/releases/{id}/publish"),
            Some("publishRelease")
        );
        assert_eq!(
            operation_id("DELETE", "/api/v1/api-keys/{id}"),
            Some("revokeApiKey")
        );
        assert_eq!(
            operation_id("GET", "/api/v1/releases/{id}/bundle"),
            Some("getReleaseBundle")
        );
        assert_eq!(operation_id("GET", "/api/v1/audit"), Some("listAuditLog"));
        assert_eq!(operation_id("POST", "/api/v1/audit"), None);
        // Every operation of the document has an id.
        let mut ids = BTreeSet::new();
        for (method, path) in operations() {
            let id = operation_id(method, &path);
            assert!(id.is_some(), "{method} {path}");
            ids.extend(id);
        }
        // The CLI records its actions under these names (`cli::admin`, `cli::bundle`,
        // `cli::demo`): they must stay the API's.
        for name in [
            "createApiKey",
            "revokeApiKey",
            "importLicenses",
            "getReleaseBundle",
            "createDistribution",
            "createLicense",
        ] {
            assert!(ids.contains(name), "{name}");
        }
    }

    /// Panics at an object schema with neither properties nor typed additional properties.
    fn free_form(at: &str, schema: &serde_json::Value) {
        if let Some(object) = schema.as_object() {
            let is_object = object.get("type").is_some_and(|t| {
                t == "object" || t.as_array().is_some_and(|a| a.contains(&"object".into()))
            });
            if is_object {
                assert!(
                    object.contains_key("properties")
                        || object
                            .get("additionalProperties")
                            .is_some_and(|a| a.is_object()),
                    "{at}: a free-form object"
                );
            }
            for (key, value) in object {
                free_form(&format!("{at}.{key}"), value);
            }
        } else if let Some(items) = schema.as_array() {
            for (i, value) in items.iter().enumerate() {
                free_form(&format!("{at}[{i}]"), value);
            }
        }
    }
}
