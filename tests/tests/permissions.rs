//! The permission matrix of the vendor API (SPEC §1 roles, §5): for an API key with each of
//! `read`, `publish`, `licenses` and `admin`, every vendor route (and the statistics' HTML and
//! CSV reports) is either allowed (the request succeeds with its usual status) or 403. Customer
//! data — licenses, customers, ITNs, license keys — is for `licenses` and `admin` only.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_tests::{TestServer, send_json};

const PAID: &str = "PERM";
const KEY: &str = "PERM-SEED-0001";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Read,
    Publish,
    Licenses,
    Admin,
}

const ROLES: [Role; 4] = [Role::Read, Role::Publish, Role::Licenses, Role::Admin];

impl Role {
    fn permission(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Publish => "publish",
            Role::Licenses => "licenses",
            Role::Admin => "admin",
        }
    }

    /// A tag for the resources this role's requests work on.
    fn tag(self) -> &'static str {
        match self {
            Role::Read => "R",
            Role::Publish => "P",
            Role::Licenses => "L",
            Role::Admin => "A",
        }
    }
}

/// Who may: the four columns of the matrix, in the order of `ROLES`.
const ALL: [bool; 4] = [true, true, true, true];
const PUBLISH: [bool; 4] = [false, true, false, true];
const LICENSES: [bool; 4] = [false, false, true, true];
const ADMIN: [bool; 4] = [false, false, false, true];

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

struct Case {
    method: Method,
    path: String,
    body: Body,
    /// The status when allowed.
    ok: StatusCode,
    allowed: [bool; 4],
}

fn case(method: Method, path: String, body: Body, ok: StatusCode, allowed: [bool; 4]) -> Case {
    Case {
        method,
        path,
        body,
        ok,
        allowed,
    }
}

/// What the admin prepares for one role, so that every request of that role meets an existing
/// resource (a refusal is then the permission's, not a 404's).
struct Prepared {
    published: i64,
    draft: i64,
    spare_draft: i64,
    api_key_id: i64,
}

async fn prepare(server: &TestServer, role: Role) -> Prepared {
    let t = role.tag();
    server
        .create_distribution(&format!("PERM-{t}"), json!({}))
        .await;
    server
        .create_distribution(&format!("PERM-{t}-EMPTY"), json!({}))
        .await;
    let compat = json!([{"conf": "*", "min_1c_version": "0"}]);
    let draft = server
        .create_release(
            &format!("PERM-{t}"),
            json!({"version": "1.0", "compatibility": compat}),
            &[],
            false,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let spare_draft = server
        .create_release(
            &format!("PERM-{t}"),
            json!({"version": "1.1", "compatibility": compat}),
            &[],
            false,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    for key in [format!("PERM-{t}-EDIT"), format!("PERM-{t}-GONE")] {
        let (status, body) = server
            .admin_json(
                Method::POST,
                "/api/v1/licenses",
                Some(json!({"key": key, "customer": "ООО Ромашка", "itn": "7701234567"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (api_key_id, _) = server.create_api_key(&["read"]).await;
    Prepared {
        published: 0,
        draft,
        spare_draft,
        api_key_id,
    }
}

fn multipart(name: &str) -> Body {
    let boundary = "permissionmatrixboundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\nmultipart bytes\r\n--{boundary}--\r\n"
    );
    Body::Raw(
        "multipart/form-data; boundary=permissionmatrixboundary",
        body.into_bytes(),
    )
}

/// Every vendor route with a request that succeeds for a caller allowed to make it, in an order
/// in which each one's resource exists (uploads before the publish, the publish before the yank).
fn cases(role: Role, p: &Prepared) -> Vec<Case> {
    use Method as M;
    use StatusCode as S;
    let t = role.tag();
    let dist = format!("PERM-{t}");
    let (draft, spare, published) = (p.draft, p.spare_draft, p.published);
    vec![
        // Server.
        case(M::GET, "/api".into(), Body::None, S::OK, ALL),
        case(M::GET, "/api/serverinfo".into(), Body::None, S::OK, ALL),
        // Catalog, read.
        case(
            M::GET,
            "/api/v1/distributions".into(),
            Body::None,
            S::OK,
            ALL,
        ),
        case(
            M::GET,
            format!("/api/v1/distributions/{PAID}"),
            Body::None,
            S::OK,
            ALL,
        ),
        case(
            M::GET,
            format!("/api/v1/distributions/{PAID}/releases"),
            Body::None,
            S::OK,
            ALL,
        ),
        case(
            M::GET,
            format!("/api/v1/releases/{published}"),
            Body::None,
            S::OK,
            ALL,
        ),
        // Catalog, write.
        case(
            M::POST,
            "/api/v1/distributions".into(),
            Body::Json(json!({"code": format!("PERM-{t}-NEW"), "name": "Новый"})),
            S::CREATED,
            PUBLISH,
        ),
        case(
            M::PUT,
            format!("/api/v1/distributions/{dist}"),
            Body::Json(json!({"name": "Переименован"})),
            S::OK,
            PUBLISH,
        ),
        case(
            M::DELETE,
            format!("/api/v1/distributions/PERM-{t}-EMPTY"),
            Body::None,
            S::NO_CONTENT,
            PUBLISH,
        ),
        case(
            M::POST,
            format!("/api/v1/distributions/{dist}/releases"),
            Body::Json(json!({"version": "2.0"})),
            S::CREATED,
            PUBLISH,
        ),
        case(
            M::PUT,
            format!("/api/v1/releases/{draft}/files/a.zip"),
            Body::Raw("application/octet-stream", b"raw bytes".to_vec()),
            S::CREATED,
            PUBLISH,
        ),
        case(
            M::POST,
            format!("/api/v1/releases/{draft}/files"),
            multipart("b.zip"),
            S::CREATED,
            PUBLISH,
        ),
        case(
            M::DELETE,
            format!("/api/v1/releases/{draft}/files/a.zip"),
            Body::None,
            S::NO_CONTENT,
            PUBLISH,
        ),
        case(
            M::PUT,
            format!("/api/v1/releases/{draft}"),
            Body::Json(json!({"changelog": "- Исправления."})),
            S::OK,
            PUBLISH,
        ),
        case(
            M::POST,
            format!("/api/v1/releases/{draft}/publish"),
            Body::None,
            S::OK,
            PUBLISH,
        ),
        case(
            M::POST,
            format!("/api/v1/releases/{draft}/yank"),
            Body::Json(json!({"reason": "проверка прав"})),
            S::OK,
            PUBLISH,
        ),
        case(
            M::DELETE,
            format!("/api/v1/releases/{spare}"),
            Body::None,
            S::NO_CONTENT,
            PUBLISH,
        ),
        // Licenses: customer data.
        case(
            M::GET,
            "/api/v1/licenses".into(),
            Body::None,
            S::OK,
            LICENSES,
        ),
        case(
            M::GET,
            "/api/v1/licenses?search=Ромашка".into(),
            Body::None,
            S::OK,
            LICENSES,
        ),
        case(
            M::GET,
            format!("/api/v1/licenses/{KEY}"),
            Body::None,
            S::OK,
            LICENSES,
        ),
        case(
            M::POST,
            "/api/v1/licenses".into(),
            Body::Json(json!({"key": format!("PERM-{t}-NEW")})),
            S::CREATED,
            LICENSES,
        ),
        case(
            M::PUT,
            format!("/api/v1/licenses/PERM-{t}-EDIT"),
            Body::Json(json!({"beta": true})),
            S::OK,
            LICENSES,
        ),
        case(
            M::PATCH,
            format!("/api/v1/licenses/PERM-{t}-EDIT"),
            Body::Json(json!({"revoked": true})),
            S::OK,
            LICENSES,
        ),
        case(
            M::DELETE,
            format!("/api/v1/licenses/PERM-{t}-GONE"),
            Body::None,
            S::NO_CONTENT,
            LICENSES,
        ),
        case(
            M::POST,
            "/api/v1/licenses/import".into(),
            Body::Raw(
                "text/csv",
                format!("key,customer,product,feature\nPERM-{t}-CSV,ИП Иванов,85,43\n")
                    .into_bytes(),
            ),
            S::OK,
            LICENSES,
        ),
        case(
            M::GET,
            format!("/api/v1/releases/{published}/bundle?license={KEY}"),
            Body::None,
            S::OK,
            LICENSES,
        ),
        // Statistics: for every reader, except what names license keys.
        case(
            M::GET,
            "/api/v1/stats/downloads".into(),
            Body::None,
            S::OK,
            ALL,
        ),
        case(
            M::GET,
            "/api/v1/stats/downloads?group_by=release&format=csv".into(),
            Body::None,
            S::OK,
            ALL,
        ),
        case(
            M::GET,
            "/api/v1/stats/downloads?group_by=license".into(),
            Body::None,
            S::OK,
            LICENSES,
        ),
        case(
            M::GET,
            "/api/v1/stats/downloads?group_by=license&format=csv".into(),
            Body::None,
            S::OK,
            LICENSES,
        ),
        case(
            M::GET,
            "/api/v1/stats/upgrade-paths".into(),
            Body::None,
            S::OK,
            ALL,
        ),
        case(
            M::GET,
            "/api/v1/stats/installed-base".into(),
            Body::None,
            S::OK,
            ALL,
        ),
        case(
            M::GET,
            "/api/v1/stats/pipeline".into(),
            Body::None,
            S::OK,
            ALL,
        ),
        case(M::GET, "/reports".into(), Body::None, S::OK, ALL),
        case(
            M::GET,
            format!("/reports/distributions/{PAID}"),
            Body::None,
            S::OK,
            ALL,
        ),
        case(
            M::GET,
            "/reports/csv/downloads?group_by=conf".into(),
            Body::None,
            S::OK,
            ALL,
        ),
        case(
            M::GET,
            "/reports/csv/downloads?group_by=license".into(),
            Body::None,
            S::OK,
            LICENSES,
        ),
        // API keys: admin only.
        case(M::GET, "/api/v1/api-keys".into(), Body::None, S::OK, ADMIN),
        case(
            M::POST,
            "/api/v1/api-keys".into(),
            Body::Json(json!({"name": format!("made by {t}"), "permissions": ["read"]})),
            S::CREATED,
            ADMIN,
        ),
        case(
            M::DELETE,
            format!("/api/v1/api-keys/{}", p.api_key_id),
            Body::None,
            S::NO_CONTENT,
            ADMIN,
        ),
    ]
}

/// Every cell: each role's key on each route is allowed (the usual status) or refused (403,
/// nothing changed); a read or publish key's answers never carry a customer, an ITN or a key.
#[tokio::test]
async fn permission_matrix() {
    let server = TestServer::start().await;
    // The shared part: a paid distribution with a published release and a license for it.
    server
        .create_distribution(
            PAID,
            json!({"name": "Комплект CRM", "lic_product_id": 85, "lic_feature_id": 43}),
        )
        .await;
    let published = server
        .create_release(
            PAID,
            json!({"version": "2.1.0.5", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("crm.zip", b"crm bytes")],
            true,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(
                json!({"key": KEY, "customer": "ООО Ромашка", "itn": "7701234567",
                        "features": [{"product": 85, "feature": 43}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A check and a counted download, so the statistics name the key.
    let (status, answer) = server
        .client_post(
            "getAvailableReleases",
            json!({"TYPE": PAID, "KEY": KEY, "CONF": "", "COUNT_DOWNLOADS": "Y"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let link = first_link(&answer).expect("a download link");
    let resp = server.client.get(&link).send().await.expect("download");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.bytes().await.expect("download body");
    // Written in batches within about a second: wait until the per-license report names it.
    let mut named = false;
    for _ in 0..100 {
        let (_, report) = server
            .admin_json(
                Method::GET,
                "/api/v1/stats/downloads?group_by=license",
                None,
            )
            .await;
        if report.to_string().contains(KEY) {
            named = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(named, "the per-license report never named the key");

    let mut failures = Vec::new();
    let mut cells = 0;
    for (column, role) in ROLES.into_iter().enumerate() {
        let mut prepared = prepare(&server, role).await;
        prepared.published = published;
        let (_, key) = server.create_api_key(&[role.permission()]).await;
        for c in cases(role, &prepared) {
            let mut req = server
                .client
                .request(c.method.clone(), server.url(&c.path))
                .bearer_auth(&key);
            req = match c.body {
                Body::None => req,
                Body::Json(v) => req.json(&v),
                Body::Raw(content_type, bytes) => {
                    req.header("content-type", content_type).body(bytes)
                }
            };
            let resp = req.send().await.expect("request");
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let allowed = c.allowed[column];
            let expected = if allowed { c.ok } else { StatusCode::FORBIDDEN };
            cells += 1;
            if status != expected {
                failures.push(format!(
                    "{:?} {} {}: expected {expected}, got {status}: {}",
                    role,
                    c.method,
                    c.path,
                    text.chars().take(200).collect::<String>()
                ));
            }
            if matches!(role, Role::Read | Role::Publish) {
                for secret in [KEY, "Ромашка", "7701234567"] {
                    if text.contains(secret) {
                        failures.push(format!(
                            "{role:?} {} {}: the answer shows {secret:?}",
                            c.method, c.path
                        ));
                    }
                }
            }
        }
    }
    assert!(cells > 150, "only {cells} cells");
    assert!(
        failures.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The first download link anywhere in a check's answer.
fn first_link(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.contains("/releases/v1/files/") => Some(s.clone()),
        Value::Array(a) => a.iter().find_map(first_link),
        Value::Object(o) => o.values().find_map(first_link),
        _ => None,
    }
}

/// The refusal comes in the error shape and names the permission.
#[tokio::test]
async fn read_and_publish_keys_get_403_on_licenses() {
    let server = TestServer::start().await;
    let (status, _) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": KEY, "customer": "ООО Ромашка", "itn": "7701234567"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for permission in ["read", "publish"] {
        let (_, key) = server.create_api_key(&[permission]).await;
        for path in [
            "/api/v1/licenses".to_owned(),
            format!("/api/v1/licenses/{KEY}"),
            "/api/v1/licenses/import".to_owned(),
        ] {
            let (status, body) =
                send_json(server.client.get(server.url(&path)).bearer_auth(&key)).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{permission} GET {path}: {body}"
            );
            assert_eq!(body["Exception"], "Forbidden", "{body}");
            assert!(
                body["Message"].as_str().unwrap().contains("licenses"),
                "{body}"
            );
            assert!(!body.to_string().contains("Ромашка"), "{body}");
        }
    }
}
