//! `vypusk demo`: fills the data directory with a demo distribution, releases, files and a
//! license, then prints commands that work as printed once `vypusk serve` runs.
//!
//! Everything goes through the vendor API in-process, so the demo data passes the same
//! validation as anything a vendor publishes.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::auth::{Permission, generate_api_key, hash_api_key};
use crate::config::Settings;
use crate::entities::api_key;

pub const DEMO_TYPE: &str = "DEMO_CRM";
pub const DEMO_KEY: &str = "DEMO-0000-0000-0001";
const DEMO_CONF: &str = "УправлениеТорговлей";

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let listen = settings.listen_addr()?;
    let public_url = settings.public_url_for(listen);
    let (state, recorder) = crate::open(settings, public_url.clone()).await?;
    let generated = crate::db::ensure_admin(&state.db, settings.admin_password.as_deref()).await?;

    let key = generate_api_key();
    api_key::ActiveModel {
        name: Set("demo".to_owned()),
        prefix: Set(key.chars().take(12).collect()),
        key_hash: Set(hash_api_key(&key)),
        permissions: Set(Permission::join(&[Permission::Admin])),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(&state.db)
    .await?;

    let app = crate::routes::router(state.clone());
    let call = |method: Method, path: String, body: Body, content_type: &'static str| {
        let app = app.clone();
        let key = key.clone();
        async move {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .header(header::CONTENT_TYPE, content_type)
                .body(body)?;
            let response = app.oneshot(request).await?;
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
            let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            anyhow::Ok((status, value))
        }
    };
    let json_call = |method: Method, path: &str, body: Value| {
        call(
            method,
            path.to_owned(),
            Body::from(body.to_string()),
            "application/json",
        )
    };

    let (status, existing) = json_call(
        Method::GET,
        &format!("/api/v1/distributions/{DEMO_TYPE}"),
        Value::Null,
    )
    .await?;
    if status == StatusCode::OK {
        eprintln!("The demo distribution {DEMO_TYPE} exists already: {existing}");
    } else {
        let (status, body) = json_call(
            Method::POST,
            "/api/v1/distributions",
            json!({
                "code": DEMO_TYPE,
                "name": "ДемоРасширение_CRM",
                "description": "Демонстрационное расширение для 1С:Управление торговлей",
                "developer": "Demo Vendor",
                "label": "DEMO",
                "promo_link": "https://example.com/demo",
                "lic_product_id": 85,
                "lic_feature_id": 43,
                "published": true,
            }),
        )
        .await?;
        anyhow::ensure!(status == StatusCode::CREATED, "create distribution: {body}");
        for (version, changelog) in [
            ("1.0.0.1", "- Первый выпуск."),
            (
                "1.0.0.2",
                "- Исправлена проблема с прикреплением заметок к звонкам.\n- Ускорена загрузка истории.",
            ),
        ] {
            let (status, release) = json_call(
                Method::POST,
                &format!("/api/v1/distributions/{DEMO_TYPE}/releases"),
                json!({
                    "version": version,
                    "changelog": changelog,
                    "compatibility": [
                        {"conf": DEMO_CONF, "min_1c_version": "11.4.11.55"},
                        {"conf": "КомплекснаяАвтоматизация", "min_1c_version": "2.5.8.191"},
                    ],
                    "metadata": {"extension_hash": format!("demo-hash-{version}")},
                }),
            )
            .await?;
            anyhow::ensure!(status == StatusCode::CREATED, "create release: {release}");
            let id = release["id"].as_i64().unwrap_or_default();
            let name = format!("DEMO_CRM_{version}.zip");
            let zip = demo_zip(
                &format!("DEMO_CRM_{version}.cfe"),
                format!("demo extension {version}\n")
                    .repeat(2000)
                    .as_bytes(),
            );
            let (status, file) = call(
                Method::PUT,
                format!("/api/v1/releases/{id}/files/{name}"),
                Body::from(zip),
                "application/octet-stream",
            )
            .await?;
            anyhow::ensure!(status == StatusCode::CREATED, "upload: {file}");
            let (status, published) = json_call(
                Method::POST,
                &format!("/api/v1/releases/{id}/publish"),
                Value::Null,
            )
            .await?;
            anyhow::ensure!(status == StatusCode::OK, "publish: {published}");
        }
        let (status, license) = json_call(
            Method::POST,
            "/api/v1/licenses",
            json!({
                "key": DEMO_KEY,
                "customer": "ООО «Демо»",
                "itn": "7700000000",
                "beta": false,
                "features": [{"product": 85, "feature": 43, "active_until": null}],
            }),
        )
        .await?;
        anyhow::ensure!(status == StatusCode::CREATED, "create license: {license}");
    }
    recorder.flush_and_stop().await;

    let data_dir = std::path::absolute(&settings.data_dir)?;
    let data_flag = if settings.data_dir == Settings::default().data_dir {
        String::new()
    } else {
        format!(" --data-dir {}", data_dir.display())
    };
    let public_key = data_dir.join(crate::signing::PUBLIC_KEY_FILE);
    let body = json!({
        "INSTALLED_VERSION": "1.0.0.1",
        "TYPE": DEMO_TYPE,
        "CONF": DEMO_CONF,
        "CONF_VERSION": "11.5.20.73",
        "KEY": DEMO_KEY,
        "SHOW_UNTESTED": "N",
        "COUNT_DOWNLOADS": "Y",
    });
    println!("Demo data is in {}.", data_dir.display());
    if let Some(password) = generated {
        println!("Created the admin user. Its password, shown only this once: {password}");
    }
    println!(
        "\n1. Start the server (in another terminal):\n\n   cargo run --release --bin vypusk --{data_flag} serve\n"
    );
    println!(
        "2. Ask for releases newer than 1.0.0.1, as a 1C extension does:\n\n   curl -s {public_url}/releases/v1/1c/getAvailableReleases -H 'Content-Type: application/json' -d '{body}'\n"
    );
    println!(
        "3. Download the main file with the \"download_link\" of that answer and check its md5:\n\n   curl -s {public_url}/releases/v1/1c/getAvailableReleases -H 'Content-Type: application/json' -d '{body}' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"modules\"][0][\"download_link\"])' | xargs curl -sOJ && md5sum DEMO_CRM_1.0.0.2.zip\n"
    );
    println!(
        "4. Install it with vypusk-update, which verifies the signature, size, md5 and sha256:\n\n   cargo run --release --bin vypusk-update -- install --server {public_url} --type {DEMO_TYPE} --conf {DEMO_CONF} --conf-version 11.5.20.73 --key {DEMO_KEY} --dir ./demo-install --public-key {}\n",
        public_key.display()
    );
    println!(
        "5. The vendor API, with the demo API key (admin permissions, shown only this once):\n\n   curl -s {public_url}/api/v1/distributions/{DEMO_TYPE}/releases -H 'Authorization: Bearer {key}'\n"
    );
    Ok(())
}

/// A minimal .zip (stored, no compression) holding one file, so the demo download is a
/// real archive.
fn demo_zip(name: &str, content: &[u8]) -> Vec<u8> {
    let crc = crc32(content);
    let size = content.len() as u32;
    let name = name.as_bytes();
    let mut out = Vec::with_capacity(content.len() + 128);
    let local = |out: &mut Vec<u8>| {
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0x0800u16.to_le_bytes()); // UTF-8 names
        out.extend_from_slice(&0u16.to_le_bytes()); // stored
        out.extend_from_slice(&0u32.to_le_bytes()); // time, date
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
    };
    local(&mut out);
    out.extend_from_slice(name);
    out.extend_from_slice(content);
    let central_at = out.len() as u32;
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    out.extend_from_slice(&20u16.to_le_bytes()); // made by
    out.extend_from_slice(&20u16.to_le_bytes());
    out.extend_from_slice(&0x0800u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0u8; 8]); // extra, comment, disk, internal attrs
    out.extend_from_slice(&0u32.to_le_bytes()); // external attrs
    out.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    out.extend_from_slice(name);
    let central_len = out.len() as u32 - central_at;
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]); // disk numbers
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&central_len.to_le_bytes());
    out.extend_from_slice(&central_at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn zip_is_readable_by_unzip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.zip");
        std::fs::write(&path, demo_zip("Расширение.cfe", b"hello")).unwrap();
        // `unzip -t` is not everywhere; follow the end record to the central directory instead.
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], b"PK\x03\x04");
        let end = &bytes[bytes.len() - 22..];
        assert_eq!(&end[..4], b"PK\x05\x06");
        let u32_at =
            |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap()) as usize;
        let (cd_size, cd_at) = (u32_at(end, 12), u32_at(end, 16));
        assert_eq!(&bytes[cd_at..cd_at + 4], b"PK\x01\x02");
        assert_eq!(cd_at + cd_size, bytes.len() - 22);
        // Central header: fixed 46 bytes, then the name.
        assert_eq!(cd_size, 46 + "Расширение.cfe".len());
    }
}
