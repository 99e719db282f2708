//! PostgreSQL: the migrations apply to the local server, and the real `vypusk` runs the core
//! path on it. The server runs on this machine kind at 127.0.0.1:5432 (user postgres, trust
//! auth); `.ci/run` starts it when stopped.

use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;
use vypusk_migrations::{Migrator, MigratorTrait};
use vypusk_tests::*;

#[tokio::test]
async fn migrations_apply_up_and_down_on_postgres() {
    let temp = TempDatabase::create().await;
    let db = Database::connect(temp.url()).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    for table in [
        "distributions",
        "releases",
        "files",
        "licenses",
        "download_events",
    ] {
        db.execute_unprepared(&format!("SELECT count(*) FROM {table}"))
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
    }
    // Applying again is a no-op; down and up again works.
    Migrator::up(&db, None).await.unwrap();
    Migrator::down(&db, None).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn migrations_apply_on_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let db = Database::connect(url).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    Migrator::down(&db, None).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
}

#[tokio::test]
async fn core_path_runs_on_postgres() {
    let temp = TempDatabase::create().await;
    let server = TestServer::start_with(ServerOptions {
        database_url: Some(temp.url()),
        ..Default::default()
    })
    .await;
    server
        .create_distribution("PG", json!({"lic_product_id": 1, "lic_feature_id": 1}))
        .await;
    let bytes = test_bytes(50_000, 1);
    server
        .create_release(
            "PG",
            json!({"version": "2.0.1", "compatibility": [{"conf": "УТ", "min_1c_version": "11.4"}]}),
            &[("pg.zip", &bytes)],
            true,
        )
        .await;
    let (status, _) = server
        .admin_json(
            Method::POST,
            "/api/v1/licenses",
            Some(
                json!({"key": "PG-KEY-0001", "customer": "c", "itn": "1", "beta": false,
                        "features": [{"product": 1, "feature": 1, "active_until": null}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, a) = server
        .client_post(
            "getAvailableReleases",
            json!({"TYPE": "PG", "CONF": "ут", "CONF_VERSION": "11.5", "KEY": "PG-KEY-0001", "COUNT_DOWNLOADS": "Y"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    let link = a["modules"][0]["download_link"].as_str().unwrap();
    let got = server
        .client
        .get(link)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        md5_hex(&got),
        a["modules"][0]["files"][0]["md5"].as_str().unwrap()
    );
    let (status, info) = server
        .admin_json(Method::GET, "/api/serverinfo", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["Database"], "postgres");
}
