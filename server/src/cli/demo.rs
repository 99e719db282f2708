//! `vypusk demo`: fills the data directory with a demo distribution, releases, files and a
//! license, then prints commands that work as printed.
//!
//! It writes the database directly (no HTTP, no router), in one transaction that records its
//! changes in the catalog change log (`catalog_sync`): a `vypusk serve` already running on the
//! same database picks the demo up within a second, no restart. It finds such a server by
//! asking the URL it prints for the signing key: the same key means the same database.
//!
//! Idempotent: the demo data is written once (a second run leaves it as it is, and recreates
//! the demo license if it was deleted); the demo API key (named `demo`) of an earlier run is
//! revoked and a new one printed, so runs never pile up admin keys.

use std::time::Duration;

use bytes::Bytes;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use serde_json::json;
use vypusk_protocol::{Version, VersionScheme};
use vypusk_storage::{ExpectedDigests, Storage};

use super::admin::record_cli;
use crate::access_log::target_param;
use crate::auth::Permission;
use crate::catalog::STATUS_PUBLISHED;
use crate::catalog_sync::{self, Change};
use crate::config::Settings;
use crate::entities::{
    compatibility, distribution, file, license, license_feature, release, release_metadata,
};
use crate::services::api_keys;

pub const DEMO_TYPE: &str = "DEMO_CRM";
pub const DEMO_KEY: &str = "DEMO-0000-0000-0001";
/// The name of the API key the demo makes; a later run revokes every key of this name.
pub const DEMO_API_KEY_NAME: &str = "demo";
const DEMO_CONF: &str = "УправлениеТорговлей";
const RELEASES: [(&str, &str); 2] = [
    ("1.0.0.1", "- Первый выпуск."),
    (
        "1.0.0.2",
        "- Исправлена проблема с прикреплением заметок к звонкам.\n- Ускорена загрузка истории.",
    ),
];

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let listen = settings.listen_addr()?;
    let public_url = settings.public_url_for(listen);
    std::fs::create_dir_all(&settings.data_dir)?;
    let db = crate::db::connect(&settings.database_url()).await?;
    crate::db::migrate(&db).await?;
    // The shared identity (and `signing-key.pub.pem` in the data directory).
    let identity = crate::identity::load(&db, settings).await?;
    // No `remove_incomplete_uploads` here: a running server may be in the middle of one.
    let storage =
        Storage::from_url(&settings.storage_url()).map_err(|e| anyhow::anyhow!("storage: {e}"))?;
    let generated = crate::db::ensure_admin(&db, settings.admin_password.as_deref()).await?;

    let created = write_demo_data(&db, &storage).await?;
    let (revoked, key) = replace_demo_key(&db).await?;
    let owner_error = |e: crate::error::ApiError| anyhow::anyhow!("demo owner: {}", e.message);
    let owner = crate::services::users::first_owner(&db)
        .await
        .map_err(owner_error)?;
    let (set_password_token, set_password_expires) =
        crate::services::users::issue_set_password_token(&db, owner.id, chrono::Utc::now())
            .await
            .map_err(owner_error)?;
    let mut event = crate::services::audit::Event::new(
        crate::services::audit::Via::Cli,
        "cli",
        "issueSetPasswordToken",
        format!("id={}", owner.id),
    );
    event.user_id = Some(owner.id);
    event.status = Some(200);
    crate::services::audit::record(&db, event, chrono::Utc::now()).await;

    let data_dir = std::path::absolute(&settings.data_dir)?;
    let defaults = Settings::default();
    let mut flags = String::new();
    if settings.data_dir != defaults.data_dir {
        flags.push_str(&format!(" --data-dir {}", data_dir.display()));
    }
    if settings.listen != defaults.listen {
        flags.push_str(&format!(" --listen {}", settings.listen));
    }
    if let Some(url) = &settings.public_url {
        flags.push_str(&format!(" --public-url {url}"));
    }
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
    println!(
        "{}",
        if created.distribution {
            format!(
                "Created the distribution {DEMO_TYPE} with releases {} and {} (published) and the license {DEMO_KEY}.",
                RELEASES[0].0, RELEASES[1].0
            )
        } else if created.license {
            format!(
                "The distribution {DEMO_TYPE} exists already and was left as it is; created the license {DEMO_KEY} again."
            )
        } else {
            format!(
                "The distribution {DEMO_TYPE} and the license {DEMO_KEY} exist already and were left as they are."
            )
        }
    );
    if revoked > 0 {
        println!(
            "Revoked the demo API key of an earlier run ({revoked} key{} named {DEMO_API_KEY_NAME:?}).",
            if revoked == 1 { "" } else { "s" }
        );
    }
    if let Some(password) = generated {
        println!("Created the admin user. Its password, shown only this once: {password}");
    }
    println!("Server URL: {public_url} (listen {})", settings.listen);

    let step1 = match probe(&public_url, identity.signer.public_key_pem(), &body).await {
        Probe::Serving => {
            println!(
                "A vypusk server on this database answers at {public_url} and already serves the demo (no restart needed)."
            );
            None
        }
        Probe::NotYet => {
            println!(
                "A vypusk server on this database answers at {public_url} but does not serve the demo yet; restart it if the commands below answer \"unknown distribution\"."
            );
            None
        }
        Probe::Other => {
            println!(
                "Something answers at {public_url}, but not a vypusk server on this database (another signing key): stop it, or give this command and `serve` another --listen."
            );
            Some(())
        }
        Probe::Nothing => Some(()),
    };
    if step1.is_some() {
        println!(
            "\n1. Start the server (in another terminal):\n\n   cargo run --release --bin vypusk --{flags} serve\n"
        );
    } else {
        println!("\n1. The server runs already.\n");
    }
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
        "5. The vendor API, with the demo API key (admin permissions, shown only this once; the next `vypusk demo` revokes it):\n\n   curl -s {public_url}/api/v1/distributions/{DEMO_TYPE}/releases -H 'Authorization: Bearer {key}'\n"
    );
    println!(
        "6. The vendor console: {public_url}/console\n\n   Set a password for the owner {:?} with this one-time link (works once, until {set_password_expires}), then log in:\n\n   {public_url}/console/set-password?token={set_password_token}\n",
        owner.username
    );
    Ok(())
}

/// What the demo wrote this time.
struct Created {
    distribution: bool,
    license: bool,
}

/// Writes the demo distribution (two published releases with a .zip each) unless it exists,
/// and the demo license unless it exists: one transaction, recorded in the catalog change log
/// so running servers apply it at once.
async fn write_demo_data(db: &DatabaseConnection, storage: &Storage) -> anyhow::Result<Created> {
    let distribution_exists = distribution::Entity::find()
        .filter(distribution::Column::Code.eq(DEMO_TYPE))
        .one(db)
        .await?
        .is_some();
    let license_exists = license::Entity::find()
        .filter(license::Column::Key.eq(DEMO_KEY))
        .one(db)
        .await?
        .is_some();
    let created = Created {
        distribution: !distribution_exists,
        license: !license_exists,
    };
    if distribution_exists && license_exists {
        return Ok(created);
    }
    // The bytes are staged before the transaction and moved to their content keys inside
    // it, after their blobs are claimed, as an upload through the API does.
    let mut staged = Vec::new();
    if created.distribution {
        for (version, _) in RELEASES {
            let zip = demo_zip(
                &format!("DEMO_CRM_{version}.cfe"),
                format!("demo extension {version}\n")
                    .repeat(2000)
                    .as_bytes(),
            );
            let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(zip))]);
            let blob = storage
                .stage_stream(body, u64::MAX, ExpectedDigests::default())
                .await
                .map_err(|e| anyhow::anyhow!("storage: {e}"))?;
            staged.push(blob);
        }
    }
    let now = chrono::Utc::now();
    let txn = db.begin().await?;
    if created.distribution {
        let dist = distribution::ActiveModel {
            code: Set(DEMO_TYPE.to_owned()),
            name: Set("ДемоРасширение_CRM".to_owned()),
            description: Set("Демонстрационное расширение для 1С:Управление торговлей".to_owned()),
            developer: Set("Demo Vendor".to_owned()),
            label: Set("DEMO".to_owned()),
            promo_link: Set("https://example.com/demo".to_owned()),
            lic_product_id: Set(Some(85)),
            lic_feature_id: Set(Some(43)),
            published: Set(true),
            hide_unlicensed: Set(false),
            version_scheme: Set(VersionScheme::OneC.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        crate::blobs::claim(&txn, staged.iter().map(|b| b.blob().sha256.clone())).await?;
        for ((version, changelog), blob) in RELEASES.into_iter().zip(&staged) {
            let parsed = Version::parse(VersionScheme::OneC, version)
                .map_err(|e| anyhow::anyhow!("demo version {version}: {e}"))?;
            let rel = release::ActiveModel {
                distribution_id: Set(dist.id),
                version: Set(version.to_owned()),
                version_norm: Set(parsed.normalized()),
                status: Set(STATUS_PUBLISHED.to_owned()),
                published_at: Set(Some(now)),
                prerelease: Set(parsed.is_prerelease()),
                changelog: Set(changelog.to_owned()),
                yank_reason: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
            for (position, (conf, min)) in [
                (DEMO_CONF, "11.4.11.55"),
                ("КомплекснаяАвтоматизация", "2.5.8.191"),
            ]
            .into_iter()
            .enumerate()
            {
                compatibility::ActiveModel {
                    release_id: Set(rel.id),
                    position: Set(position as i32),
                    conf: Set(conf.to_owned()),
                    min_1c_version: Set(min.to_owned()),
                    max_1c_version: Set(None),
                    ..Default::default()
                }
                .insert(&txn)
                .await?;
            }
            release_metadata::ActiveModel {
                release_id: Set(rel.id),
                key: Set("extension_hash".to_owned()),
                value: Set(format!("demo-hash-{version}")),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
            let blob = blob.blob();
            file::ActiveModel {
                release_id: Set(rel.id),
                name: Set(format!("DEMO_CRM_{version}.zip")),
                size: Set(i64::try_from(blob.size).unwrap_or(i64::MAX)),
                md5: Set(blob.md5.clone()),
                sha256: Set(blob.sha256.clone()),
                main: Set(true),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
        }
        for blob in staged {
            blob.publish()
                .await
                .map_err(|e| anyhow::anyhow!("storage: {e}"))?;
        }
        catalog_sync::record(&txn, Change::Distribution(dist.id)).await?;
    }
    if created.license {
        let lic = license::ActiveModel {
            key: Set(DEMO_KEY.to_owned()),
            customer: Set("ООО «Демо»".to_owned()),
            itn: Set("7700000000".to_owned()),
            beta: Set(false),
            revoked: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        license_feature::ActiveModel {
            license_id: Set(lic.id),
            product: Set(85),
            feature: Set(43),
            active_until: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        catalog_sync::record(&txn, Change::License(DEMO_KEY)).await?;
    }
    txn.commit().await?;
    tracing::info!(target: "audit", actor = "cli", distribution = created.distribution,
        license = created.license, "demo data written");
    if created.distribution {
        let detail = format!(
            "demo: releases {} and {}, published",
            RELEASES[0].0, RELEASES[1].0
        );
        record_cli(
            db,
            "createDistribution",
            target_param("code", DEMO_TYPE),
            detail,
        )
        .await;
    }
    if created.license {
        record_cli(db, "createLicense", target_param("key", DEMO_KEY), "demo").await;
    }
    Ok(created)
}

/// Revokes every API key named [`DEMO_API_KEY_NAME`] and creates a new admin one
/// (`services::api_keys`): how many were revoked, and the new key.
async fn replace_demo_key(db: &DatabaseConnection) -> anyhow::Result<(usize, String)> {
    let failed = |e: crate::error::ApiError| anyhow::anyhow!("demo API key: {}", e.message);
    let revoked = api_keys::revoke_named(db, DEMO_API_KEY_NAME)
        .await
        .map_err(failed)?;
    let input = api_keys::NewApiKey {
        name: DEMO_API_KEY_NAME.to_owned(),
        permissions: vec![Permission::Admin],
    };
    let owner = crate::services::users::first_owner(db)
        .await
        .map_err(failed)?;
    let owner = api_keys::KeyOwner {
        user_id: owner.id,
        may_grant: vec![Permission::Admin],
    };
    let created = api_keys::create(db, &owner, input).await.map_err(failed)?;
    tracing::info!(target: "audit", actor = "cli", key_id = created.view.id, revoked, "demo API key replaced");
    if revoked > 0 {
        let detail = format!("demo: {revoked} key(s) of an earlier run");
        record_cli(
            db,
            "revokeApiKey",
            target_param("name", DEMO_API_KEY_NAME),
            detail,
        )
        .await;
    }
    let target = target_param("id", &created.view.id.to_string());
    let detail = format!(
        "{} permissions=admin",
        target_param("name", DEMO_API_KEY_NAME)
    );
    record_cli(db, "createApiKey", target, detail).await;
    Ok((revoked, created.key))
}

enum Probe {
    /// A server on this database answers and serves the demo.
    Serving,
    /// A server on this database answers but did not pick the demo up within a few seconds.
    NotYet,
    /// Something else answers at the URL.
    Other,
    /// Nothing answers.
    Nothing,
}

/// Asks `public_url` for its signing key: the same as this database's means a server on this
/// database (or on the same PostgreSQL). Then waits (a few seconds at most) until it serves the
/// demo, which the catalog change feed brings it within a second.
async fn probe(public_url: &str, public_key_pem: &str, body: &serde_json::Value) -> Probe {
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        return Probe::Nothing;
    };
    let key = match client
        .get(format!("{public_url}/releases/v1/signing-key"))
        .send()
        .await
    {
        Err(_) => return Probe::Nothing,
        Ok(resp) => resp.text().await.unwrap_or_default(),
    };
    if key.trim() != public_key_pem.trim() {
        return Probe::Other;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let answer = client
            .post(format!("{public_url}/releases/v1/1c/getAvailableReleases"))
            .json(body)
            .send()
            .await;
        if let Ok(resp) = answer
            && resp.status().is_success()
        {
            return Probe::Serving;
        }
        if std::time::Instant::now() >= deadline {
            return Probe::NotYet;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
