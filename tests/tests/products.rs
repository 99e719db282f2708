//! Named products and features (issue 13 item 2): the catalogue through the vendor API and the
//! console, who may change it, the names shown on the distribution and license pages, and a
//! feature's default subscription given to licenses it is added to.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_tests::*;

async fn as_user(server: &TestServer, login: &str, role: &str) {
    user_with_roles(server, login, &[role], "long enough password").await;
}

async fn call(
    server: &TestServer,
    login: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = server
        .client
        .request(method, server.url(path))
        .basic_auth(login, Some("long enough password"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    send_json(req).await
}

#[tokio::test]
async fn the_catalogue_through_the_vendor_api() {
    let server = TestServer::start().await;
    let (status, p) = server
        .admin_json(
            Method::POST,
            "/api/v1/products",
            Some(json!({"number": 85, "name": "Телефония"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let (status, p) = server
        .admin_json(
            Method::PUT,
            "/api/v1/products/85/features/43",
            Some(json!({"name": "Обновления", "default_days": 365})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(
        p,
        json!({"number": 85, "name": "Телефония",
               "features": [{"number": 43, "name": "Обновления", "default_days": 365}]})
    );
    // Replaced, not added twice.
    let (_, p) = server
        .admin_json(
            Method::PUT,
            "/api/v1/products/85/features/43",
            Some(json!({"name": "Обновления и поддержка", "default_days": 30})),
        )
        .await;
    assert_eq!(p["features"].as_array().unwrap().len(), 1);
    assert_eq!(p["features"][0]["default_days"], 30);

    // Refusals in words, nothing changed.
    let (status, _) = server
        .admin_json(
            Method::POST,
            "/api/v1/products",
            Some(json!({"number": 85, "name": "again"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = server
        .admin_json(
            Method::PUT,
            "/api/v1/products/99/features/1",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, e) = server
        .admin_json(
            Method::PUT,
            "/api/v1/products/85/features/43",
            Some(json!({"name": "x", "default_days": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    let (_, p) = server
        .admin_json(Method::GET, "/api/v1/products/85", None)
        .await;
    assert_eq!(p["features"][0]["name"], "Обновления и поддержка");

    // Readers read; `release` and `support` name; `viewer` does not.
    for (login, role, may) in [
        ("v", "viewer", false),
        ("r", "release", true),
        ("s", "support", true),
    ] {
        as_user(&server, login, role).await;
        let (status, list) = call(&server, login, Method::GET, "/api/v1/products", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["items"][0]["number"], 85);
        let (status, _) = call(
            &server,
            login,
            Method::PUT,
            "/api/v1/products/85",
            Some(json!({"name": format!("Телефония ({role})")})),
        )
        .await;
        assert_eq!(status == StatusCode::OK, may, "{role}: {status}");
    }

    // Forgetting a feature, then the product.
    let (status, _) = server
        .admin_json(Method::DELETE, "/api/v1/products/85/features/43", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .admin_json(Method::DELETE, "/api/v1/products/85", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .admin_json(Method::GET, "/api/v1/products/85", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_feature_added_to_a_license_gets_its_default_subscription() {
    let server = TestServer::start().await;
    server
        .name_feature((85, "Телефония"), (43, "Обновления"), Some(365))
        .await;
    let (status, l) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": "DFLT-0001", "features": [
                {"product": 85, "feature": 43},
                {"product": 85, "feature": 44},
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{l}");
    let expected = (chrono_today_plus(365)) + "T23:59:59Z";
    assert_eq!(l["features"][0]["active_until"], expected, "{l}");
    assert_eq!(
        l["features"][1]["active_until"],
        Value::Null,
        "44 has no default"
    );

    // An explicit date wins; a feature the license had keeps what the request says.
    let (_, l) = server
        .admin_json(
            Method::PATCH,
            "/api/v1/licenses/DFLT-0001",
            Some(json!({"features": [{"product": 85, "feature": 43}]})),
        )
        .await;
    assert_eq!(
        l["features"][0]["active_until"],
        Value::Null,
        "not added: {l}"
    );
    let (_, l) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": "DFLT-0002", "features": [
                {"product": 85, "feature": 43, "active_until": "2030-01-31"}]})),
        )
        .await;
    assert_eq!(l["features"][0]["active_until"], "2030-01-31T23:59:59Z");
}

/// `today + days` as `YYYY-MM-DD`, from the system clock (the server's clock is the same).
fn chrono_today_plus(days: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let day = (now / 86_400 + days) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[tokio::test]
async fn names_show_on_the_console_pages_and_are_edited_there() {
    let server = TestServer::start().await;
    let cookie = reports_login(&server, "admin", ADMIN_PASSWORD).await;
    let get = |path: &str| {
        server
            .client
            .get(server.url(path))
            .header("cookie", cookie.clone())
            .send()
    };
    let page = get("/console/products")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let post = |path: &str, fields: Vec<(&str, &str)>| {
        let mut all = vec![("csrf", csrf.clone())];
        all.extend(fields.into_iter().map(|(k, v)| (k, v.to_owned())));
        server
            .client
            .post(server.url(path))
            .header("cookie", cookie.clone())
            .form(&all)
            .send()
    };
    let status = post(
        "/console/products",
        vec![("number", "85"), ("name", "Телефония")],
    )
    .await
    .unwrap()
    .status();
    assert_eq!(status, StatusCode::SEE_OTHER);
    let status = post(
        "/console/products/85/features",
        vec![
            ("feature", "43"),
            ("name", "Обновления"),
            ("default_days", "365"),
        ],
    )
    .await
    .unwrap()
    .status();
    assert_eq!(status, StatusCode::SEE_OTHER);
    // A bad number: refused on the page, nothing named.
    let resp = post(
        "/console/products/85/features",
        vec![("feature", "x"), ("name", "Плохая")],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let (_, p) = server
        .admin_json(Method::GET, "/api/v1/products/85", None)
        .await;
    assert_eq!(p["features"].as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p["features"][0]["default_days"], 365);

    // The distribution and license pages say the names; the wire keeps the numbers.
    server
        .create_distribution(
            "NAMED_CRM",
            json!({"lic_product_id": 85, "lic_feature_id": 43}),
        )
        .await;
    server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": "NAMED-0001", "customer": "ООО «Ромашка»",
                        "features": [{"product": 85, "feature": 43}]})),
        )
        .await;
    let named = "Телефония / Обновления (85/43)";
    for path in [
        "/console/distributions",
        "/console/distributions/NAMED_CRM",
        "/console/licenses",
        "/console/licenses/NAMED-0001",
    ] {
        let page = get(path).await.unwrap().text().await.unwrap();
        assert!(page.contains(named), "{path}: {page}");
    }
    let (_, d) = server
        .admin_json(Method::GET, "/api/v1/distributions/NAMED_CRM", None)
        .await;
    assert_eq!(d["lic_product_id"], 85);

    // Renamed in the console, the pages follow.
    let status = post(
        "/console/products/85",
        vec![("action", "rename"), ("name", "IP-телефония")],
    )
    .await
    .unwrap()
    .status();
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = get("/console/distributions")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("IP-телефония / Обновления (85/43)"), "{page}");
}
