//! `vypusk api-key …` and `vypusk license import` without an API key, and `vypusk
//! admin-password`: administration on the data directory directly, through the same services
//! as the vendor API's routes (so the first admin key can be made before there is any key).
//! With an API key the same commands go over HTTP (`super::resources`).

use std::path::Path;

use anyhow::Context;
use axum::http::StatusCode;

use super::remote::Answer;
use super::resources::{ApiKeyCommand, PageArgs, print_created_key, print_keys};
use crate::access_log::target_param;
use crate::auth::Permission;
use crate::config::Settings;
use crate::licenses_csv;
use crate::services::audit::{self, Event, Via};
use crate::services::common::Page;
use crate::services::{api_keys, licenses};

/// Records an action done on the data directory directly in the audit log: actor `cli`, via
/// `cli`, `action` the operation id of the vendor API's matching operation.
pub async fn record_cli(
    db: &sea_orm::DatabaseConnection,
    action: &str,
    target: impl Into<String>,
    detail: impl Into<String>,
) {
    let event = Event {
        detail: detail.into(),
        ..Event::new(Via::Cli, "cli", action, target)
    };
    audit::record(db, event, chrono::Utc::now()).await;
}

/// The line that says a command works on the data directory, not through a server (on
/// standard error, so standard output stays what scripts read).
pub fn say_direct(settings: &Settings, server: &str) {
    eprintln!(
        "working on the data directory {} directly (no API key given); with --api-key or VYPUSK_API_KEY it goes through the server ({server})",
        settings.data_dir.display()
    );
}

/// `vypusk admin-password`: the password comes from `VYPUSK_NEW_ADMIN_PASSWORD` or the first
/// line of standard input, never from the command line (where `ps` would show it).
pub async fn admin_password(settings: &Settings) -> anyhow::Result<()> {
    let password = match std::env::var("VYPUSK_NEW_ADMIN_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the new password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let db = open_db(settings).await?;
    crate::db::set_admin_password(&db, &password).await?;
    tracing::info!(target: "audit", actor = "cli", user = crate::auth::ADMIN_USER, "password set");
    // No operation of the vendor API sets another user's password: this action is the CLI's.
    record_cli(
        &db,
        "setAdminPassword",
        target_param("login", crate::auth::ADMIN_USER),
        "",
    )
    .await;
    println!("The password of admin was changed.");
    Ok(())
}

async fn open_db(settings: &Settings) -> anyhow::Result<sea_orm::DatabaseConnection> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    let db = crate::db::connect(&settings.database_url()).await?;
    crate::db::migrate(&db).await?;
    Ok(db)
}

pub async fn api_key(
    settings: &Settings,
    command: ApiKeyCommand,
    json: bool,
) -> anyhow::Result<()> {
    let db = open_db(settings).await?;
    match command {
        ApiKeyCommand::Create { name, permissions } => {
            let name = name.trim();
            anyhow::ensure!(!name.is_empty(), "--name must not be empty");
            let permissions = parse_permissions(&permissions)?;
            let input = api_keys::NewApiKey {
                name: name.to_owned(),
                permissions,
            };
            // On the data directory, keys belong to the first owner.
            let owner = crate::services::users::first_owner(&db)
                .await
                .map_err(api_error)?;
            let owner = api_keys::KeyOwner {
                user_id: owner.id,
                may_grant: vec![Permission::Admin],
            };
            let created = api_keys::create(&db, &owner, input)
                .await
                .map_err(api_error)?;
            let row = &created.view;
            let joined = Permission::join(&row.permissions);
            tracing::info!(target: "audit", actor = "cli", id = row.id, name = %crate::error::quote(&row.name),
                permissions = %joined, "API key created");
            record_cli(
                &db,
                "createApiKey",
                target_param("id", &row.id.to_string()),
                format!("{} permissions={joined}", target_param("name", &row.name)),
            )
            .await;
            print_created_key(json, &Answer::of(&created));
        }
        ApiKeyCommand::List(PageArgs {
            offset,
            limit,
            sort,
        }) => {
            let page = Page {
                offset: offset.unwrap_or(0),
                limit: limit.unwrap_or(100),
                sort,
            };
            let list = api_keys::list(&db, &page, None).await.map_err(api_error)?;
            print_keys(json, &Answer::of(&list));
        }
        ApiKeyCommand::Delete { id } => {
            match api_keys::revoke(&db, id, None).await {
                Ok(()) => {}
                Err(e) if e.status == StatusCode::NOT_FOUND => {
                    anyhow::bail!("no API key with id {id}")
                }
                Err(e) => return Err(api_error(e)),
            }
            tracing::info!(target: "audit", actor = "cli", id, "API key revoked");
            record_cli(&db, "revokeApiKey", target_param("id", &id.to_string()), "").await;
            if !json {
                println!("revoked API key {id}");
            }
        }
    }
    Ok(())
}

fn api_error(e: crate::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}", e.message)
}

/// `read,publish` → permissions (`services::api_keys::parse_permissions`), the messages
/// naming the option.
pub fn parse_permissions(list: &str) -> anyhow::Result<Vec<Permission>> {
    api_keys::parse_permissions(list).map_err(|e| {
        if e.message == api_keys::NO_PERMISSIONS {
            anyhow::anyhow!("--{}", e.message)
        } else {
            anyhow::anyhow!("{}", e.message)
        }
    })
}

/// `vypusk license import FILE` on the data directory: all or nothing; servers on the same
/// database apply the licenses within a second (they poll for changes).
pub async fn license_import(settings: &Settings, file: &Path, json: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let (licenses, encoding) = licenses_csv::parse_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    if encoding != licenses_csv::Encoding::Utf8 {
        let line = format!(
            "{} is not UTF-8: read as {}",
            file.display(),
            encoding.name()
        );
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    let db = open_db(settings).await?;
    let n = licenses::import(&db, &licenses).await?;
    let features: usize = licenses.iter().map(|l| l.features.len()).sum();
    tracing::info!(target: "audit", actor = "cli", licenses = n, features,
        file = %file.display(), "licenses imported");
    record_cli(
        &db,
        "importLicenses",
        "",
        format!(
            "{n} licenses, {features} features from {}",
            target_param("file", &file.display().to_string())
        ),
    )
    .await;
    if json {
        super::remote::print_json(&Answer::of(&licenses::ImportSummary {
            imported: n,
            features,
        }));
    } else {
        println!(
            "imported {n} licenses with {features} features from {}",
            file.display()
        );
        println!("Running servers on this database apply them within a second.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions() {
        assert_eq!(
            parse_permissions("read, publish,read").unwrap(),
            vec![Permission::Read, Permission::Publish]
        );
        assert!(parse_permissions("read,root").is_err());
        assert!(parse_permissions(" , ").is_err());
    }
}
