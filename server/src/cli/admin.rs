//! `vypusk api-key …` and `vypusk license …`: administration on the data directory directly.

use anyhow::Context;
use axum::http::StatusCode;
use clap::Subcommand;

use crate::auth::Permission;
use crate::config::Settings;
use crate::licenses_csv;
use crate::services::{api_keys, licenses};

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key; the key is printed once.
    Create {
        /// A name that says who uses the key, e.g. "ci".
        #[arg(long)]
        name: String,
        /// Comma-separated permissions: read, publish, licenses, admin.
        #[arg(long, default_value = "read")]
        permissions: String,
    },
    /// List API keys (never the keys themselves).
    List,
    /// Revoke an API key by id.
    Revoke { id: i32 },
}

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Import licenses from a CSV file (UTF-8, or Windows-1251 as Excel writes it), all or
    /// nothing.
    Import { file: std::path::PathBuf },
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

pub async fn api_key(settings: &Settings, command: ApiKeyCommand) -> anyhow::Result<()> {
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
            let created = api_keys::create(&db, input).await.map_err(api_error)?;
            let row = &created.view;
            let joined = Permission::join(&row.permissions);
            tracing::info!(target: "audit", actor = "cli", id = row.id, name = %crate::error::quote(&row.name),
                permissions = %joined, "API key created");
            println!(
                "Created API key {} ({:?}, permissions: {joined}). The key, shown only this once:",
                row.id, row.name
            );
            println!("{}", created.key);
        }
        ApiKeyCommand::List => {
            let rows = api_keys::all(&db).await.map_err(api_error)?;
            if rows.is_empty() {
                println!("no API keys");
            } else {
                println!(
                    "{:>5}  {:<14} {:<28} {:<21} name",
                    "id", "prefix", "permissions", "created"
                );
                for k in rows {
                    println!(
                        "{:>5}  {:<14} {:<28} {:<21} {}",
                        k.id,
                        format!("{}…", k.prefix),
                        Permission::join(&k.permissions),
                        // RFC 3339 with a space, as this list always showed it.
                        k.created_at.replacen('T', " ", 1),
                        k.name
                    );
                }
            }
        }
        ApiKeyCommand::Revoke { id } => {
            match api_keys::revoke(&db, id).await {
                Ok(()) => {}
                Err(e) if e.status == StatusCode::NOT_FOUND => {
                    anyhow::bail!("no API key with id {id}")
                }
                Err(e) => return Err(api_error(e)),
            }
            tracing::info!(target: "audit", actor = "cli", id, "API key revoked");
            println!("revoked API key {id}");
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

pub async fn license(settings: &Settings, command: LicenseCommand) -> anyhow::Result<()> {
    match command {
        LicenseCommand::Import { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let (licenses, encoding) = licenses_csv::parse_bytes(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            if encoding != licenses_csv::Encoding::Utf8 {
                println!(
                    "{} is not UTF-8: read as {}",
                    file.display(),
                    encoding.name()
                );
            }
            let db = open_db(settings).await?;
            let n = licenses::import(&db, &licenses).await?;
            let features: usize = licenses.iter().map(|l| l.features.len()).sum();
            tracing::info!(target: "audit", actor = "cli", licenses = n, features,
                file = %file.display(), "licenses imported");
            println!(
                "imported {n} licenses with {features} features from {}",
                file.display()
            );
            println!("Running servers on this database apply them within a second.");
        }
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
