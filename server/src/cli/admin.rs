//! `vypusk api-key …` and `vypusk license …`: administration on the data directory directly.

use clap::Subcommand;

use crate::config::Settings;

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
    /// Import licenses from a CSV file, all or nothing.
    Import { file: std::path::PathBuf },
}

pub async fn api_key(_settings: &Settings, _command: ApiKeyCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

pub async fn license(_settings: &Settings, _command: LicenseCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
