//! The client protocol (SPEC §4) end to end: the real `vypusk serve`, data published through
//! the vendor API, and requests shaped like the ones 1C extensions send.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vypusk_protocol::PinnedKeys;
use vypusk_protocol::signature::PublicKey;
use vypusk_tests::*;

const TYPE: &str = "PT40_UT_CRM3";
const CONF: &str = "КомплекснаяАвтоматизация_CRM";
const KEY: &str = "MIKO-AAAAA-BBBBB-CCCCC-DDDDD";

/// The seed's example: a paid distribution with three releases and a license holding its feature.
async fn seed_miko(server: &TestServer) -> Vec<Vec<u8>> {
    server
        .create_distribution(
            TYPE,
            json!({
                "name": "ПодсистемаТелефонии40_УТиВСК",
                "description": "Расширение для 1С:Управление торговлей и взаимоотношениями с клиентами (CRM)",
                "developer": "MIKO",
                "label": "MIKO",
                "promo_link": "https://wiki.example.com/nightbird",
                "lic_product_id": 85,
                "lic_feature_id": 43,
            }),
        )
        .await;
    let mut files = Vec::new();
    for (i, version) in ["4.0.4.9", "4.0.4.10", "4.0.4.11"].iter().enumerate() {
        let bytes = test_bytes(10_000 + i * 1000, i as u8);
        server
            .create_release(
                TYPE,
                json!({
                    "version": version,
                    "changelog": format!("- Исправлена проблема {version} (PT-743)."),
                    "compatibility": [{"conf": CONF, "min_1c_version": "2.5.8.191"}],
                    "metadata": {"extension_hash": format!("hash-{version}")},
                }),
                &[(&format!("PT40_{version}.zip"), &bytes)],
                true,
            )
            .await;
        files.push(bytes);
    }
    create_license(
        server,
        KEY,
        json!([{"product": 85, "feature": 43, "active_until": null}]),
        false,
    )
    .await;
    files
}

async fn create_license(server: &TestServer, key: &str, features: Value, beta: bool) {
    let (status, body) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(json!({"key": key, "customer": "ООО Ромашка", "itn": "7701234567", "beta": beta, "features": features})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn seed_request() -> Value {
    json!({
        "INSTALLED_VERSION": "4.0.4.9",
        "TYPE": TYPE,
        "CONF": CONF,
        "CONF_VERSION": "2.5.8.191",
        "KEY": KEY,
        "SHOW_UNTESTED": "Y",
        "COUNT_DOWNLOADS": "Y"
    })
}

fn versions(answer: &Value) -> Vec<String> {
    answer["modules"]
        .as_array()
        .unwrap_or_else(|| panic!("no modules in {answer}"))
        .iter()
        .map(|m| m["uniqid"].as_str().unwrap().to_owned())
        .collect()
}

fn with(mut base: Value, extra: Value) -> Value {
    merge(&mut base, extra);
    base
}

#[tokio::test]
async fn seed_example_answer_has_miko_shape_and_working_links() {
    let server = TestServer::start().await;
    let files = seed_miko(&server).await;
    let (status, answer) = server
        .client_post("getAvailableReleases", seed_request())
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"], "");
    // Numeric order, newest first, only newer than installed.
    assert_eq!(versions(&answer), ["4.0.4.11", "4.0.4.10"]);

    let m = &answer["modules"][0];
    assert!(m["release_id"].is_i64());
    assert_eq!(m["uniqid"], "4.0.4.11");
    assert_eq!(m["version"], "MIKO");
    assert_eq!(m["developer"], "MIKO");
    assert_eq!(m["min_1c_version"], "2.5.8.191");
    assert_eq!(m["lic_product_id"], 85);
    assert_eq!(m["lic_feature_id"], 43);
    assert_eq!(m["name"], "ПодсистемаТелефонии40_УТиВСК");
    assert!(m["description"].as_str().unwrap().starts_with("Расширение"));
    assert_eq!(m["promo_link"], "https://wiki.example.com/nightbird");
    assert_eq!(m["changelog"], "- Исправлена проблема 4.0.4.11 (PT-743).");
    assert_eq!(m["size"], files[2].len() as u64);
    assert_eq!(m["prerelease"], false);
    assert_eq!(m["untested"], false);
    assert_eq!(m["downloadable"], true);
    assert!(m["published_at"].as_str().unwrap().ends_with('Z'));
    let file = &m["files"][0];
    assert_eq!(file["name"], "PT40_4.0.4.11.zip");
    assert_eq!(file["size"], files[2].len() as u64);
    assert_eq!(file["md5"], md5_hex(&files[2]));
    assert_eq!(file["sha256"], sha256_hex(&files[2]));
    let link = m["download_link"].as_str().unwrap();
    assert_eq!(link, file["url"].as_str().unwrap());
    assert!(
        link.starts_with(&format!("{}/releases/v1/files/", server.base)),
        "{link}"
    );

    // The link downloads exactly the bytes whose md5 the answer gave.
    let resp = server.client.get(link).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["etag"],
        format!("\"{}\"", sha256_hex(&files[2])).as_str()
    );
    assert_eq!(resp.headers()["accept-ranges"], "bytes");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(md5_hex(&bytes), file["md5"].as_str().unwrap());

    // Without INSTALLED_VERSION every compatible release is offered.
    let (_, all) = server
        .client_post(
            "getAvailableReleases",
            with(seed_request(), json!({"INSTALLED_VERSION": ""})),
        )
        .await;
    assert_eq!(versions(&all), ["4.0.4.11", "4.0.4.10", "4.0.4.9"]);
    let (_, none) = server
        .client_post(
            "getAvailableReleases",
            with(seed_request(), json!({"INSTALLED_VERSION": "4.0.4.11"})),
        )
        .await;
    assert_eq!(versions(&none), Vec::<String>::new());
}

#[tokio::test]
async fn conf_matching_is_case_insensitive_and_untested_is_opt_in() {
    let server = TestServer::start().await;
    server.create_distribution("FREE", json!({})).await;
    for (version, conf, min) in [
        ("1.0", "УправлениеТорговлей", "11.4.11.55"),
        ("1.1", "Бухгалтерия", "3.0"),
        ("1.2", "УправлениеТорговлей", "11.5.1"),
    ] {
        server
            .create_release(
                "FREE",
                json!({"version": version, "compatibility": [{"conf": conf, "min_1c_version": min}]}),
                &[("a.zip", b"abc")],
                true,
            )
            .await;
    }
    let req = |conf: &str, cv: &str, untested: &str| json!({"TYPE": "FREE", "CONF": conf, "CONF_VERSION": cv, "SHOW_UNTESTED": untested});
    let (_, a) = server
        .client_post(
            "getAvailableReleases",
            req("УПРАВЛЕНИЕТОРГОВЛЕЙ", "11.4.11.55", "N"),
        )
        .await;
    assert_eq!(versions(&a), ["1.0"]);
    let (_, a) = server
        .client_post(
            "getAvailableReleases",
            req("управлениеторговлей", "11.5.1.0", "N"),
        )
        .await;
    assert_eq!(versions(&a), ["1.2", "1.0"]);
    let (_, a) = server
        .client_post(
            "getAvailableReleases",
            req("УправлениеТорговлей", "11.4.11.9", "N"),
        )
        .await;
    assert_eq!(versions(&a), Vec::<String>::new());
    // Free distributions send zeros for the license ids.
    let (_, a) = server
        .client_post(
            "getAvailableReleases",
            req("УправлениеТорговлей", "11.5.1", "Y"),
        )
        .await;
    assert_eq!(versions(&a), ["1.2", "1.1", "1.0"]);
    let untested: Vec<bool> = a["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["untested"].as_bool().unwrap())
        .collect();
    assert_eq!(untested, [false, true, false]);
    assert_eq!(a["modules"][1]["min_1c_version"], "3.0");
    assert_eq!(a["modules"][0]["lic_product_id"], 0);
    assert_eq!(a["modules"][0]["lic_feature_id"], 0);
    // Flags may be booleans too.
    let (status, a) = server
        .client_post(
            "getAvailableReleases",
            with(
                req("УправлениеТорговлей", "11.5.1", "N"),
                json!({"SHOW_UNTESTED": true}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(versions(&a).len(), 3);
}

#[tokio::test]
async fn drafts_yanked_and_prereleases_are_hidden() {
    let server = TestServer::start().await;
    server.create_distribution("D", json!({})).await;
    let compat = json!([{"conf": "*", "min_1c_version": "0"}]);
    let r1 = server
        .create_release(
            "D",
            json!({"version": "1.0", "compatibility": compat}),
            &[("a.zip", b"1")],
            true,
        )
        .await;
    let r2 = server
        .create_release(
            "D",
            json!({"version": "2.0", "compatibility": compat}),
            &[("a.zip", b"2")],
            true,
        )
        .await;
    server
        .create_release(
            "D",
            json!({"version": "3.0", "compatibility": compat}),
            &[("a.zip", b"3")],
            false,
        )
        .await;
    server
        .create_release(
            "D",
            json!({"version": "4.0", "compatibility": compat, "prerelease": true}),
            &[("a.zip", b"4")],
            true,
        )
        .await;
    let req = json!({"TYPE": "D", "CONF": "Любая", "CONF_VERSION": "1.0"});
    let (_, a) = server
        .client_post("getAvailableReleases", req.clone())
        .await;
    assert_eq!(versions(&a), ["2.0", "1.0"]);
    let link_of_2 = a["modules"][0]["download_link"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, _) = server
        .admin_json(
            Method::POST,
            &format!("/api/v1/releases/{}/yank", r2["id"]),
            Some(json!({"reason": "broken"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, a) = server
        .client_post("getAvailableReleases", req.clone())
        .await;
    assert_eq!(versions(&a), ["1.0"]);
    // A link handed out before the yank no longer serves the bytes.
    let resp = server.client.get(&link_of_2).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let err: Value = resp.json().await.unwrap();
    assert!(err["error"].is_string());

    // A beta license sees the prerelease.
    create_license(&server, "BETA-0001", json!([]), true).await;
    let (_, a) = server
        .client_post(
            "getAvailableReleases",
            with(req.clone(), json!({"KEY": "BETA-0001"})),
        )
        .await;
    assert_eq!(versions(&a), ["4.0", "1.0"]);
    assert_eq!(a["modules"][0]["prerelease"], true);
    let _ = r1;
}

#[tokio::test]
async fn prerelease_networks_see_prereleases() {
    let server = TestServer::start_with(ServerOptions {
        env: vec![("VYPUSK_PRERELEASE_NETWORKS".into(), "127.0.0.0/8".into())],
        ..Default::default()
    })
    .await;
    server.create_distribution("D", json!({})).await;
    server
        .create_release(
            "D",
            json!({"version": "5.0", "compatibility": [{"conf": "*", "min_1c_version": "0"}], "prerelease": true}),
            &[("a.zip", b"5")],
            true,
        )
        .await;
    let (_, a) = server
        .client_post(
            "getAvailableReleases",
            json!({"TYPE": "D", "CONF": "X", "CONF_VERSION": "1"}),
        )
        .await;
    assert_eq!(versions(&a), ["5.0"]);
}

#[tokio::test]
async fn every_licensing_outcome() {
    let server = TestServer::start().await;
    seed_miko(&server).await;
    let ask = |key: &str| with(seed_request(), json!({"KEY": key, "INSTALLED_VERSION": ""}));

    // Unknown key: listed, not downloadable, no links, and a reason.
    let (status, a) = server
        .client_post("getAvailableReleases", ask("MIKO-UNKNOWN-0000"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(versions(&a).len(), 3);
    for m in a["modules"].as_array().unwrap() {
        assert_eq!(m["downloadable"], false);
        assert_eq!(m["download_link"], "");
        assert_eq!(m["files"][0]["url"], "");
        assert!(!m["files"][0]["md5"].as_str().unwrap().is_empty());
    }
    assert!(a["result"].as_str().unwrap().contains("not known"), "{a}");

    // Revoked.
    create_license(
        &server,
        "MIKO-REVOKED-0001",
        json!([{"product": 85, "feature": 43}]),
        false,
    )
    .await;
    let (status, _) = server
        .admin_json(
            Method::PUT,
            "/api/v1/licenses/MIKO-REVOKED-0001",
            Some(json!({"customer": "x", "itn": "1", "beta": false, "revoked": true, "features": [{"product": 85, "feature": 43}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, a) = server
        .client_post("getAvailableReleases", ask("MIKO-REVOKED-0001"))
        .await;
    assert!(a["result"].as_str().unwrap().contains("revoked"), "{a}");
    assert_eq!(a["modules"][0]["downloadable"], false);

    // Another feature only.
    create_license(
        &server,
        "MIKO-OTHER-0001",
        json!([{"product": 85, "feature": 44}]),
        false,
    )
    .await;
    let (_, a) = server
        .client_post("getAvailableReleases", ask("MIKO-OTHER-0001"))
        .await;
    assert!(
        a["result"]
            .as_str()
            .unwrap()
            .contains("product 85 feature 43"),
        "{a}"
    );

    // Malformed key and missing key.
    let (status, e) = server
        .client_post("getAvailableReleases", ask("bad key!"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("malformed license key")
    );
    let mut no_key = seed_request();
    no_key.as_object_mut().unwrap().remove("KEY");
    let (status, e) = server.client_post("getAvailableReleases", no_key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["error"].as_str().unwrap().contains("KEY"));

    // hide_unlicensed: not listed at all.
    let (status, body) = server
        .admin_json(Method::GET, &format!("/api/v1/distributions/{TYPE}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut dist = body.clone();
    merge(&mut dist, json!({"hide_unlicensed": true}));
    let dist = strip_server_fields(dist);
    let (status, body) = server
        .admin_json(
            Method::PUT,
            &format!("/api/v1/distributions/{TYPE}"),
            Some(dist),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, a) = server
        .client_post("getAvailableReleases", ask("MIKO-UNKNOWN-0000"))
        .await;
    assert_eq!(versions(&a), Vec::<String>::new());
    let (_, a) = server.client_post("getAvailableReleases", ask(KEY)).await;
    assert_eq!(versions(&a).len(), 3);
}

/// Keeps only the fields a distribution PUT takes.
fn strip_server_fields(dist: Value) -> Value {
    let keep = [
        "code",
        "name",
        "description",
        "developer",
        "label",
        "promo_link",
        "lic_product_id",
        "lic_feature_id",
        "published",
        "hide_unlicensed",
        "version_scheme",
    ];
    Value::Object(
        dist.as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

#[tokio::test]
async fn lapsed_subscription_keeps_releases_published_while_active() {
    let server = TestServer::start().await;
    server
        .create_distribution("PAID", json!({"lic_product_id": 1, "lic_feature_id": 2}))
        .await;
    let compat = json!([{"conf": "*", "min_1c_version": "0"}]);
    server
        .create_release(
            "PAID",
            json!({"version": "1.0", "compatibility": compat}),
            &[("a.zip", b"old")],
            true,
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let until = chrono_now_rfc3339();
    create_license(
        &server,
        "SUBS-0001",
        json!([{"product": 1, "feature": 2, "active_until": until}]),
        false,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    server
        .create_release(
            "PAID",
            json!({"version": "2.0", "compatibility": compat}),
            &[("a.zip", b"new")],
            true,
        )
        .await;
    let (_, a) = server
        .client_post(
            "getAvailableReleases",
            json!({"TYPE": "PAID", "CONF": "X", "CONF_VERSION": "1", "KEY": "SUBS-0001"}),
        )
        .await;
    assert_eq!(versions(&a), ["2.0", "1.0"]);
    assert_eq!(a["modules"][0]["downloadable"], false);
    assert!(
        a["modules"][0]["result"]
            .as_str()
            .unwrap()
            .contains("ended on"),
        "{a}"
    );
    assert!(a["result"].as_str().unwrap().contains("ended on"));
    assert_eq!(a["modules"][1]["downloadable"], true);
    let link = a["modules"][1]["download_link"].as_str().unwrap();
    let bytes = server
        .client
        .get(link)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"old");

    // getLatestRelease: the newest, or the newest downloadable on request.
    let ask = json!({"TYPE": "PAID", "CONF": "X", "CONF_VERSION": "1", "KEY": "SUBS-0001"});
    let (_, l) = server.client_post("getLatestRelease", ask.clone()).await;
    assert_eq!(versions(&l), ["2.0"]);
    let (_, l) = server
        .client_post(
            "getLatestRelease",
            with(ask, json!({"DOWNLOADABLE_ONLY": "Y"})),
        )
        .await;
    assert_eq!(versions(&l), ["1.0"]);
}

fn chrono_now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Format seconds since the epoch as RFC 3339 without pulling chrono into the tests.
    let days = now / 86_400;
    let secs = now % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Howard Hinnant's days → civil date.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[tokio::test]
async fn downloads_support_range_if_range_head_and_416() {
    let server = TestServer::start().await;
    server.create_distribution("F", json!({})).await;
    let bytes = test_bytes(100_000, 7);
    server
        .create_release(
            "F",
            json!({"version": "1", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("Файл обновления.zip", &bytes)],
            true,
        )
        .await;
    let (_, a) = server
        .client_post(
            "getAvailableReleases",
            json!({"TYPE": "F", "CONF": "c", "CONF_VERSION": "1"}),
        )
        .await;
    let link = a["modules"][0]["download_link"]
        .as_str()
        .unwrap()
        .to_owned();
    let etag = format!("\"{}\"", sha256_hex(&bytes));

    let resp = server
        .client
        .get(&link)
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-range"], "bytes 1000-1999/100000");
    assert_eq!(resp.headers()["content-length"], "1000");
    assert_eq!(&resp.bytes().await.unwrap()[..], &bytes[1000..2000]);

    let resp = server
        .client
        .get(&link)
        .header("Range", "bytes=99000-")
        .header("If-Range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&resp.bytes().await.unwrap()[..], &bytes[99_000..]);

    // A stale validator: the whole file.
    let resp = server
        .client
        .get(&link)
        .header("Range", "bytes=99000-")
        .header("If-Range", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().len(), bytes.len());

    let resp = server
        .client
        .get(&link)
        .header("Range", "bytes=100000-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(resp.headers()["content-range"], "bytes */100000");

    let resp = server.client.head(&link).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-length"], "100000");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("filename*=UTF-8''%D0%A4")
    );

    let resp = server
        .client
        .get(&link)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn forged_mismatching_and_expired_tokens_are_refused() {
    let server = TestServer::start_with(ServerOptions {
        env: vec![("VYPUSK_TOKEN_TTL_SECS".into(), "3".into())],
        ..Default::default()
    })
    .await;
    server.create_distribution("F", json!({})).await;
    let any = json!([{"conf": "*", "min_1c_version": "0"}]);
    // Both releases have an `a.zip`: file names repeat across releases, so a link must name
    // its release (one token per release, issue 9).
    server
        .create_release(
            "F",
            json!({"version": "1", "compatibility": any}),
            &[("a.zip", b"old"), ("c.zip", b"only in 1")],
            true,
        )
        .await;
    server
        .create_release(
            "F",
            json!({"version": "2", "compatibility": any}),
            &[("a.zip", b"abc"), ("b.zip", b"def")],
            true,
        )
        .await;
    let (_, a) = server
        .client_post(
            "getAvailableReleases",
            json!({"TYPE": "F", "CONF": "c", "CONF_VERSION": "1"}),
        )
        .await;
    assert_eq!(a["modules"][0]["uniqid"], "2");
    let url = |m: usize, f: usize| {
        a["modules"][m]["files"][f]["url"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let link = url(0, 0);
    let token = |link: &str| link.rsplit('/').nth(1).unwrap().to_owned();
    // One token for every file of a release.
    assert_eq!(token(&link), token(&url(0, 1)));
    assert_ne!(token(&link), token(&url(1, 0)));
    let get = |url: String| {
        let client = server.client.clone();
        async move {
            let resp = client.get(&url).send().await.unwrap();
            (resp.status(), resp.bytes().await.unwrap().to_vec())
        }
    };
    assert_eq!(get(link.clone()).await, (StatusCode::OK, b"abc".to_vec()));
    assert_eq!(get(url(0, 1)).await, (StatusCode::OK, b"def".to_vec()));
    assert_eq!(get(url(1, 0)).await, (StatusCode::OK, b"old".to_vec()));

    // Flip one character of the token.
    let (prefix, name) = link.rsplit_once('/').unwrap();
    let (base, tok) = prefix.rsplit_once('/').unwrap();
    let mut chars: Vec<char> = tok.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    let forged = format!("{base}/{}/{name}", chars.iter().collect::<String>());
    let resp = server.client.get(&forged).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_string());
    // Release 2's token does not open a file that only release 1 has.
    let (status, _) = get(format!("{base}/{}/c.zip", token(&link))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nor release 1 through getModuleFile.
    let (status, _) = get(server.url(&format!(
        "/releases/v1/1c/getModuleFile/F/1/{}",
        token(&link)
    )))
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = get(server.url(&format!(
        "/releases/v1/1c/getModuleFile/F/2/{}",
        token(&link)
    )))
    .await;
    assert_eq!((status, body), (StatusCode::OK, b"abc".to_vec()));
    let garbage = server.url("/releases/v1/files/not-a-token/a.zip");
    assert_eq!(
        server.client.get(&garbage).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    tokio::time::sleep(std::time::Duration::from_millis(5100)).await;
    let resp = server.client.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        resp.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn answers_are_signed_over_query_id_and_body() {
    let server = TestServer::start().await;
    seed_miko(&server).await;
    let pem = server
        .client
        .get(server.url("/releases/v1/signing-key"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(
        pem,
        std::fs::read_to_string(server.public_key_path()).unwrap()
    );
    let key = PublicKey::from_pem(&pem).unwrap();
    // `vypusk signing-key` prints the same key.
    let out = std::process::Command::new(vypusk_bin())
        .arg("--data-dir")
        .arg(server.data_dir.path())
        .arg("signing-key")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), pem);

    let check = |query_id: Option<&'static str>, path: &'static str, body: Option<Value>| {
        let server = &server;
        let key = &key;
        async move {
            let mut req = match body {
                Some(b) => server.client.post(server.url(path)).json(&b),
                None => server.admin(Method::GET, path),
            };
            if let Some(q) = query_id {
                req = req.header("Licence-QueryID", q);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.unwrap();
            let sig = headers
                .get("Licence-Signature")
                .expect("signature header")
                .to_str()
                .unwrap();
            assert!(headers.contains_key("Licence-ServerVersion"));
            key.verify(query_id.unwrap_or("").as_bytes(), &body, sig)
                .expect("signature verifies");
            if let Some(q) = query_id {
                assert_eq!(headers["Licence-QueryID"], q);
                assert!(key.verify(b"another-id", &body, sig).is_err());
            }
            status
        }
    };
    assert_eq!(
        check(
            Some("q-123"),
            "/releases/v1/1c/getAvailableReleases",
            Some(seed_request())
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        check(
            None,
            "/releases/v1/1c/getAvailableReleases",
            Some(seed_request())
        )
        .await,
        StatusCode::OK
    );
    // Errors are signed too, in both families.
    assert_eq!(
        check(
            Some("q-err"),
            "/releases/v1/1c/getAvailableReleases",
            Some(json!({"TYPE": "NOPE"}))
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        check(Some("q-api"), "/api/v1/distributions", None).await,
        StatusCode::OK
    );
    assert_eq!(
        check(Some("q-404"), "/api/v1/nothing-here", None).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_400() {
    let server = TestServer::start().await;
    seed_miko(&server).await;
    let (status, _) = server
        .admin_json(
            Method::POST,
            "/api/v1/distributions",
            Some(json!({"code": "HIDDEN", "name": "h", "description": "", "developer": "", "label": "", "promo_link": "", "published": false})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let post_raw = |body: &'static str| {
        let server = &server;
        async move {
            let resp = server
                .client
                .post(server.url("/releases/v1/1c/getAvailableReleases"))
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    for (body, needle) in [
        ("{not json", "malformed JSON"),
        ("[1,2]", "JSON object"),
        (
            "{\"TYPE\": 5, \"CONF\": \"a\", \"CONF_VERSION\": \"1\"}",
            "TYPE must be a string",
        ),
        (
            "{\"CONF\": \"a\", \"CONF_VERSION\": \"1\"}",
            "TYPE is required",
        ),
    ] {
        let (status, e) = post_raw(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(e["error"].as_str().unwrap().contains(needle), "{body}: {e}");
    }
    for (patch, needle) in [
        (json!({"TYPE": "UNKNOWN"}), "unknown distribution"),
        (json!({"TYPE": "HIDDEN"}), "unknown distribution"),
        (json!({"INSTALLED_VERSION": "v4.0"}), "INSTALLED_VERSION"),
        (json!({"INSTALLED_VERSION": "4..0"}), "INSTALLED_VERSION"),
        (json!({"CONF_VERSION": "1.2.3.4.5.6.7.8.9"}), "CONF_VERSION"),
        (json!({"CONF_VERSION": ""}), "CONF_VERSION is required"),
        (json!({"SHOW_UNTESTED": "perhaps"}), "SHOW_UNTESTED"),
        (json!({"KEY": 12345}), "KEY must be a string"),
    ] {
        let (status, e) = server
            .client_post("getAvailableReleases", with(seed_request(), patch.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{patch}");
        assert!(
            e["error"].as_str().unwrap().contains(needle),
            "{patch}: {e}"
        );
    }
    // Unknown keys are ignored.
    let (status, _) = server
        .client_post(
            "getAvailableReleases",
            with(seed_request(), json!({"EXTRA": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Oversized body: answered 413 from the headers, before the body (the server then closes
    // the connection, so the client writes the body on a raw socket and ignores a reset).
    let big = format!("{{\"TYPE\": \"{}\"}}", "x".repeat(2 << 20));
    let answer = raw_exchange(
        &server,
        format!(
            "POST /releases/v1/1c/getAvailableReleases HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{big}",
            big.len()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").expect("head") + 4..];
    let value: Value = serde_json::from_str(body).expect("JSON error");
    assert!(value["error"].is_string(), "{value}");
    // Unknown route in the client family.
    let resp = server
        .client
        .get(server.url("/releases/v1/1c/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_string());
}

#[tokio::test]
async fn failed_license_lookups_are_rate_limited() {
    let server = TestServer::start_with(ServerOptions {
        env: vec![("VYPUSK_LICENSE_FAILURES_PER_MINUTE".into(), "3".into())],
        ..Default::default()
    })
    .await;
    seed_miko(&server).await;
    for i in 0..3 {
        let (status, _) = server
            .client_post(
                "getAvailableReleases",
                with(seed_request(), json!({"KEY": format!("GUESS-{i:04}")})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, e) = server
        .client_post(
            "getAvailableReleases",
            with(seed_request(), json!({"KEY": "GUESS-9999"})),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(e["error"].is_string());
}

#[tokio::test]
async fn module_info_extension_hash_and_module_file() {
    let server = TestServer::start().await;
    let files = seed_miko(&server).await;

    let (status, info) = server
        .client_post("getModuleInfo", json!({"TYPE": TYPE}))
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["result"], "");
    let m = &info["module"];
    assert_eq!(m["code"], TYPE);
    assert_eq!(m["lic_product_id"], 85);
    let releases = m["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 3);
    assert_eq!(releases[0]["version"], "4.0.4.11");
    assert_eq!(releases[0]["downloads"], 0);
    assert_eq!(releases[0]["compatibility"][0]["conf"], CONF);
    assert_eq!(releases[0]["size"], files[2].len() as u64);

    let get = |path: String| {
        let server = &server;
        async move { server.client.get(server.url(&path)).send().await.unwrap() }
    };
    let h: Value = get(format!("/releases/v1/1c/getExtensionHash/{TYPE}/4.0.4.10"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(h, json!({"hash": "hash-4.0.4.10", "result": ""}));
    let h: Value = get(format!("/releases/v1/1c/getExtensionHash/{TYPE}/latest"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(h["hash"], "hash-4.0.4.11");
    assert_eq!(
        get(format!("/releases/v1/1c/getExtensionHash/{TYPE}/9.9"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get("/releases/v1/1c/getExtensionHash/NOPE/latest".into())
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // A paid distribution needs a hash of the key or a token.
    let resp = get(format!("/releases/v1/1c/getModuleFile/{TYPE}/latest")).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let key_hash = sha256_hex(KEY.as_bytes());
    let resp = get(format!(
        "/releases/v1/1c/getModuleFile/{TYPE}/latest/{key_hash}"
    ))
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(&resp.bytes().await.unwrap()[..], &files[2][..]);
    let resp = get(format!(
        "/releases/v1/1c/getModuleFile/{TYPE}/4.0.4.9/{key_hash}"
    ))
    .await;
    assert_eq!(&resp.bytes().await.unwrap()[..], &files[0][..]);
    let wrong = sha256_hex(b"MIKO-NOT-A-KEY");
    assert_eq!(
        get(format!(
            "/releases/v1/1c/getModuleFile/{TYPE}/latest/{wrong}"
        ))
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    // A download token from a check works as the hash, for the release it was issued for.
    let (_, a) = server
        .client_post("getAvailableReleases", seed_request())
        .await;
    let module = a["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["uniqid"] == "4.0.4.10")
        .unwrap();
    let link = module["download_link"].as_str().unwrap();
    let token = link.rsplit('/').nth(1).unwrap();
    let resp = get(format!(
        "/releases/v1/1c/getModuleFile/{TYPE}/4.0.4.10/{token}"
    ))
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(&resp.bytes().await.unwrap()[..], &files[1][..]);
    // Not for another release (issue 9: one token per release).
    let resp = get(format!(
        "/releases/v1/1c/getModuleFile/{TYPE}/latest/{token}"
    ))
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

/// Waits (bounded) until the batch writer has committed `events` events — checks and
/// requests of counted downloads (HEAD sends none) — so counts read afterwards are final.
async fn wait_until_written(server: &TestServer, events: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, p) = server
            .admin_json(Method::GET, "/api/v1/stats/pipeline", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{p}");
        assert_eq!(p["dropped_events"], 0, "{p}");
        assert_eq!(p["failed_events"], 0, "{p}");
        let written = p["written_events"].as_u64().unwrap();
        assert!(written <= events, "more events than sent: {p}");
        if written == events {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "statistics were not written: {p}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Downloads per release as `getModuleInfo` shows them, newest release first.
async fn module_info_downloads(server: &TestServer) -> Vec<u64> {
    let (status, info) = server
        .client_post("getModuleInfo", json!({"TYPE": TYPE}))
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    info["module"]["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["downloads"].as_u64().unwrap())
        .collect()
}

/// GETs `url` (with `range`, if any) and returns the body.
async fn fetch(server: &TestServer, url: &str, range: Option<&str>) -> Vec<u8> {
    let mut req = server.client.get(url);
    if let Some(range) = range {
        req = req.header("Range", range);
    }
    let resp = req.send().await.unwrap();
    let expected = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    assert_eq!(resp.status(), expected, "{url} {range:?}");
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn counted_downloads_count_each_first_byte_request_and_only_when_asked() {
    let server = TestServer::start().await;
    seed_miko(&server).await;
    let (_, counted) = server
        .client_post("getAvailableReleases", seed_request())
        .await;
    let (_, uncounted) = server
        .client_post(
            "getAvailableReleases",
            with(seed_request(), json!({"COUNT_DOWNLOADS": "N"})),
        )
        .await;
    let link = counted["modules"][0]["download_link"].as_str().unwrap();
    // An interrupted download resumed once (0-99, 100-), then downloaded again from the
    // start (0-): two downloads through one link.
    for range in ["bytes=0-99", "bytes=100-", "bytes=0-"] {
        fetch(&server, link, Some(range)).await;
    }
    let plain = uncounted["modules"][1]["download_link"].as_str().unwrap();
    fetch(&server, plain, None).await;

    // Two checks and three counted requests; the uncounted link sends nothing.
    wait_until_written(&server, 5).await;
    assert_eq!(module_info_downloads(&server).await, [2, 0, 0]);
}

/// Downloads count the way users mean them (issue 9): separate downloads through one link
/// count separately, a download resumed in ranges counts once, and neither a HEAD nor a range
/// from the middle alone counts (its bytes still add up). Read back through `getModuleInfo`
/// and the stats API, with completed downloads and bytes.
#[tokio::test]
async fn downloads_count_per_first_byte_request_resumes_once_head_and_middle_ranges_never() {
    let server = TestServer::start().await;
    let files = seed_miko(&server).await;
    let (_, answer) = server
        .client_post(
            "getAvailableReleases",
            with(seed_request(), json!({"INSTALLED_VERSION": "4.0.4.1"})),
        )
        .await;
    assert_eq!(versions(&answer), ["4.0.4.11", "4.0.4.10", "4.0.4.9"]);
    let link = |i: usize| answer["modules"][i]["download_link"].as_str().unwrap();
    let mut events = 1;

    // 4.0.4.11: three installations download through the same link.
    for _ in 0..3 {
        assert_eq!(fetch(&server, link(0), None).await, files[2]);
        events += 1;
    }

    // 4.0.4.10: one download, interrupted and resumed (If-Range as a resuming client sends).
    let size = files[1].len();
    let mut whole = fetch(&server, link(1), Some("bytes=0-4999")).await;
    let resp = server
        .client
        .get(link(1))
        .header("Range", "bytes=5000-")
        .header("If-Range", format!("\"{}\"", sha256_hex(&files[1])))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    whole.extend_from_slice(&resp.bytes().await.unwrap());
    assert_eq!(whole, files[1]);
    events += 2;

    // 4.0.4.9: a HEAD, a range from the middle and one from the middle to the end begin no
    // download (and complete none); their bytes add up.
    let head = server.client.head(link(2)).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        fetch(&server, link(2), Some("bytes=100-199")).await.len(),
        100
    );
    let tail = files[0].len() - 5000;
    assert_eq!(
        fetch(&server, link(2), Some("bytes=5000-")).await.len(),
        tail
    );
    events += 2;

    wait_until_written(&server, events).await;
    assert_eq!(module_info_downloads(&server).await, [3, 1, 0]);
    let (status, report) = server
        .admin_json(
            Method::GET,
            &format!("/api/v1/stats/downloads?distribution={TYPE}&group_by=release"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let per_release: std::collections::BTreeMap<String, Value> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_str().unwrap().to_owned(),
                json!([r["downloads"], r["completed"], r["bytes"]]),
            )
        })
        .collect();
    let full = |i: usize| files[i].len();
    assert_eq!(
        per_release,
        std::collections::BTreeMap::from([
            ("4.0.4.11".to_owned(), json!([3, 3, 3 * full(2)])),
            ("4.0.4.10".to_owned(), json!([1, 1, size])),
            ("4.0.4.9".to_owned(), json!([0, 0, 100 + tail])),
        ]),
        "{report}"
    );
}

/// Writes `request` on a raw connection (ignoring a reset once the server has answered) and
/// returns everything the server sent.
async fn raw_exchange(server: &TestServer, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(request.as_bytes()).await;
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        read.read_to_end(&mut answer),
    )
    .await;
    writer.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Publishes `NON1C` with releases of every compatibility shape and returns nothing; the
/// versions say what they are compatible with.
async fn seed_compatibility_shapes(server: &TestServer) {
    server.create_distribution("NON1C", json!({})).await;
    for (version, compat) in [
        // Any configuration.
        ("1.0", json!([{"conf": "*", "min_1c_version": "0"}])),
        // One named configuration only.
        (
            "1.1",
            json!([{"conf": "УправлениеТорговлей", "min_1c_version": "11.4"}]),
        ),
        // Any configuration, bounded.
        (
            "1.2",
            json!([{"conf": "*", "min_1c_version": "2.0", "max_1c_version": "3.0"}]),
        ),
        // A named configuration plus any other one.
        (
            "1.3",
            json!([
                {"conf": "УправлениеТорговлей", "min_1c_version": "11.5"},
                {"conf": "*", "min_1c_version": "1.0"},
            ]),
        ),
    ] {
        server
            .create_release(
                "NON1C",
                json!({"version": version, "compatibility": compat}),
                &[("tool.zip", version.as_bytes())],
                true,
            )
            .await;
    }
}

#[tokio::test]
async fn requests_without_conf_match_only_wildcard_entries() {
    let server = TestServer::start().await;
    seed_compatibility_shapes(&server).await;
    let ask = |extra: Value| {
        let server = &server;
        async move {
            let (status, a) = server
                .client_post(
                    "getAvailableReleases",
                    with(json!({"TYPE": "NON1C"}), extra),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{a}");
            a
        }
    };
    // No CONF and no CONF_VERSION: every `*` entry, bounds unchecked.
    let a = ask(json!({})).await;
    assert_eq!(versions(&a), ["1.3", "1.2", "1.0"]);
    assert_eq!(a["modules"][1]["min_1c_version"], "2.0");
    // An empty CONF is no CONF.
    assert_eq!(
        versions(&ask(json!({"CONF": ""})).await),
        ["1.3", "1.2", "1.0"]
    );
    // CONF_VERSION without CONF bounds the `*` entries as usual.
    let a = ask(json!({"CONF_VERSION": "3.5"})).await;
    assert_eq!(versions(&a), ["1.3", "1.0"]);
    let a = ask(json!({"CONF": "", "CONF_VERSION": "0.5"})).await;
    assert_eq!(versions(&a), ["1.0"]);
    // Releases for a named configuration only are untested for a non-1C product.
    let a = ask(json!({"SHOW_UNTESTED": "Y"})).await;
    assert_eq!(versions(&a), ["1.3", "1.2", "1.1", "1.0"]);
    let untested: Vec<bool> = a["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["untested"].as_bool().unwrap())
        .collect();
    assert_eq!(untested, [false, false, true, false]);
    // getLatestRelease too.
    let (status, a) = server
        .client_post(
            "getLatestRelease",
            json!({"TYPE": "NON1C", "INSTALLED_VERSION": "1.0"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(versions(&a), ["1.3"]);
    // A malformed CONF_VERSION is still a 400.
    let (status, e) = server
        .client_post(
            "getAvailableReleases",
            json!({"TYPE": "NON1C", "CONF_VERSION": "x.1"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"].as_str().unwrap().contains("CONF_VERSION"), "{e}");
    // With CONF, CONF_VERSION stays required.
    for route in ["getAvailableReleases", "getLatestRelease"] {
        let (status, e) = server
            .client_post(
                route,
                json!({"TYPE": "NON1C", "CONF": "УправлениеТорговлей"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .contains("CONF_VERSION is required"),
            "{e}"
        );
    }
    // With CONF as before: the named entry wins over `*`.
    let a = ask(json!({"CONF": "управлениеторговлей", "CONF_VERSION": "11.4.1"})).await;
    assert_eq!(versions(&a), ["1.1", "1.0"]);
}

/// The additive fields of issue 10: `server_time` at the top level after `result`, and each
/// module's `version_scheme` and whole `compatibility` after `distribution`, all inside the
/// signed bytes; and a QueryID-less answer's cached signature never covers another second.
#[tokio::test]
async fn answers_carry_server_time_scheme_and_compatibility_inside_the_signature() {
    let server = TestServer::start().await;
    seed_compatibility_shapes(&server).await;
    server
        .create_distribution("SEMVER_APP", json!({"version_scheme": "semver"}))
        .await;
    server
        .create_release(
            "SEMVER_APP",
            json!({"version": "2.0.0-rc.1", "compatibility": [{"conf": "*", "min_1c_version": "0"}]}),
            &[("app.tar.gz", b"app")],
            true,
        )
        .await;
    server
        .create_release(
            "SEMVER_APP",
            json!({"version": "1.4.2", "compatibility": [
                {"conf": "*", "min_1c_version": "0"},
                {"conf": "БухгалтерияПредприятия", "min_1c_version": "3.0.100", "max_1c_version": "3.0.199"},
            ]}),
            &[("app.tar.gz", b"app 1.4.2")],
            true,
        )
        .await;
    let keys =
        PinnedKeys::from_pem_bundle(&std::fs::read_to_string(server.public_key_path()).unwrap())
            .unwrap();
    let signed = |body: Value, query_id: Option<&'static str>, route: &'static str| {
        let server = &server;
        let keys = &keys;
        async move {
            let mut req = server
                .client
                .post(server.url(&format!("/releases/v1/1c/{route}")))
                .json(&body);
            if let Some(q) = query_id {
                req = req.header("Licence-QueryID", q);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let signature = resp
                .headers()
                .get("Licence-Signature")
                .map(|v| v.to_str().unwrap().to_owned());
            let bytes = resp.bytes().await.unwrap();
            keys.verify_response(query_id.unwrap_or(""), &bytes, signature.as_deref())
                .unwrap_or_else(|e| {
                    panic!("{e}: {}", String::from_utf8_lossy(&bytes));
                });
            String::from_utf8(bytes.to_vec()).unwrap()
        }
    };

    let before = chrono_now_rfc3339();
    let text = signed(
        json!({"TYPE": "SEMVER_APP"}),
        Some("q-fields"),
        "getAvailableReleases",
    )
    .await;
    let after = chrono_now_rfc3339();
    // In the signed bytes, in this order.
    assert!(
        text.contains("],\"result\":\"\",\"server_time\":\""),
        "{text}"
    );
    assert!(text.ends_with("\"}"), "{text}");
    assert!(
        text.contains("\"distribution\":\"SEMVER_APP\",\"version_scheme\":\"semver\",\"compatibility\":[{\"conf\":\"*\""),
        "{text}"
    );
    let answer: Value = serde_json::from_str(&text).unwrap();
    let server_time = answer["server_time"].as_str().unwrap();
    assert_eq!(
        server_time.len(),
        "2026-11-30T10:53:07Z".len(),
        "{server_time}"
    );
    assert!(server_time.ends_with('Z'));
    assert!(
        before.as_str() <= server_time && server_time <= after.as_str(),
        "{before} <= {server_time} <= {after}"
    );
    assert_eq!(versions(&answer), ["1.4.2"]);
    let m = &answer["modules"][0];
    assert_eq!(m["version_scheme"], "semver");
    // The whole list, as getModuleInfo renders it.
    let (_, info) = server
        .client_post("getModuleInfo", json!({"TYPE": "SEMVER_APP"}))
        .await;
    let listed = info["module"]["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["version"] == "1.4.2")
        .unwrap()["compatibility"]
        .clone();
    assert_eq!(m["compatibility"], listed);
    assert_eq!(
        m["compatibility"],
        json!([
            {"conf": "*", "min_1c_version": "0"},
            {"conf": "БухгалтерияПредприятия", "min_1c_version": "3.0.100", "max_1c_version": "3.0.199"},
        ])
    );
    // And in a 1C distribution's modules, every list as it was published.
    let text = signed(
        json!({"TYPE": "NON1C", "SHOW_UNTESTED": "Y"}),
        None,
        "getLatestRelease",
    )
    .await;
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["modules"][0]["version_scheme"], "1c");
    assert_eq!(
        answer["modules"][0]["compatibility"],
        json!([
            {"conf": "УправлениеТорговлей", "min_1c_version": "11.5"},
            {"conf": "*", "min_1c_version": "1.0"},
        ])
    );
    assert!(answer["server_time"].is_string());

    // Identical checks without a QueryID a second apart: each signature covers its own
    // answer (its own server_time), though the signature of the first is cached.
    let mut times = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let text = signed(json!({"TYPE": "NON1C"}), None, "getAvailableReleases").await;
        let answer: Value = serde_json::from_str(&text).unwrap();
        times.insert(answer["server_time"].as_str().unwrap().to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    assert!(times.len() >= 2, "{times:?}");
}

/// vypusk-update always asks SHOW_UNTESTED=Y; a release shown only because of it is not what
/// the check offered, so the statistics record the first compatible one (or none).
#[tokio::test]
async fn statistics_record_the_first_compatible_offer_not_an_untested_one() {
    use sea_orm::ConnectionTrait;
    let server = TestServer::start().await;
    seed_compatibility_shapes(&server).await;
    // For CONF=УправлениеТорговлей 11.4.5: 1.3 needs 11.5 (named entry wins), 1.2 is `*`
    // 2.0–3.0, 1.1 fits, 1.0 fits.
    let ut = "УправлениеТорговлей";
    // (request, recorded conf, conf_version and offered version)
    let checks = [
        (
            json!({"CONF": ut, "CONF_VERSION": "11.4.5"}),
            (ut, "11.4.5", "1.1"),
        ),
        // Only untested ones: no offer.
        (
            json!({"CONF": ut, "CONF_VERSION": "11.4.5", "INSTALLED_VERSION": "1.1"}),
            (ut, "11.4.5", ""),
        ),
        // Without CONF every `*` entry fits: 1.3; such checks record no configuration, and no
        // configuration version either.
        (json!({}), ("", "", "1.3")),
        (json!({"CONF_VERSION": "3.5"}), ("", "", "1.3")),
    ];
    for (extra, _) in &checks {
        let (status, a) = server
            .client_post(
                "getAvailableReleases",
                with(
                    json!({"TYPE": "NON1C", "SHOW_UNTESTED": "Y"}),
                    extra.clone(),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{a}");
        // The untested releases are in the answer, first.
        assert_eq!(
            a["modules"][0]["untested"],
            extra.get("CONF").is_some(),
            "{a}"
        );
    }
    wait_until_written(&server, checks.len() as u64).await;
    let db = sea_orm::Database::connect(format!(
        "sqlite://{}/vypusk.db?mode=ro",
        server.data_dir.path().display()
    ))
    .await
    .unwrap();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT conf, conf_version, offered_version FROM check_events ORDER BY id",
        ))
        .await
        .unwrap();
    let recorded: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get::<String>("", "conf").unwrap(),
                r.try_get::<String>("", "conf_version").unwrap(),
                r.try_get::<String>("", "offered_version").unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = checks
        .iter()
        .map(|(_, (c, cv, o))| ((*c).to_owned(), (*cv).to_owned(), (*o).to_owned()))
        .collect();
    assert_eq!(recorded, expected);
}
