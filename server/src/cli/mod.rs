//! The `vypusk` command line: `serve` and the commands around it.

pub mod admin;
pub mod bundle;
pub mod demo;
pub mod publish;
pub mod remote;
pub mod resources;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::SettingsFlags;

#[derive(Debug, Parser)]
#[command(
    name = "vypusk",
    version,
    about = "Self-hosted release distribution and update checks for 1C:Enterprise extensions and any other software",
    long_about = None
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: SettingsFlags,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (default data directory ./vypusk-data, 127.0.0.1:8080).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Fill the data directory with a demo distribution, releases, files and a license, and
    /// print ready-to-run curl and vypusk-update commands.
    Demo,
    /// Create or reuse a release, upload files, and optionally publish it (for vendors' CI).
    Publish(publish::PublishArgs),
    /// Print the public key that signs every answer (PEM), for clients to pin.
    SigningKey,
    /// Write an offline bundle of a published release for a license (works on the data
    /// directory directly; the same as GET /api/v1/releases/{id}/bundle).
    Bundle(bundle::BundleArgs),
    /// Manage API keys of the vendor API: over HTTP with an admin API key, or without one on
    /// the data directory directly (to create the first key).
    #[command(after_help = REMOTE_HELP)]
    ApiKey {
        #[command(flatten)]
        remote: remote::RemoteArgs,
        #[command(subcommand)]
        command: resources::ApiKeyCommand,
    },
    /// Set the password of `admin` from the environment variable VYPUSK_NEW_ADMIN_PASSWORD
    /// (or the first line of standard input); running servers refuse the old password at once.
    AdminPassword,
    /// Manage licenses over HTTP (API key with the licenses permission); `license import`
    /// without an API key works on the data directory directly.
    #[command(after_help = REMOTE_HELP)]
    License {
        #[command(flatten)]
        remote: remote::RemoteArgs,
        #[command(subcommand)]
        command: resources::LicenseCommand,
    },
    /// Manage distributions over HTTP (API key: read to look, publish to change).
    #[command(after_help = REMOTE_HELP)]
    Distribution {
        #[command(flatten)]
        remote: remote::RemoteArgs,
        #[command(subcommand)]
        command: resources::DistributionCommand,
    },
    /// Manage releases over HTTP (API key: read to look, publish to change); uploads are
    /// `vypusk publish`.
    #[command(after_help = REMOTE_HELP)]
    Release {
        #[command(flatten)]
        remote: remote::RemoteArgs,
        #[command(subcommand)]
        command: resources::ReleaseCommand,
    },
    /// Copy a SQLite deployment (database, objects, keys) into DIR while the server runs.
    Backup {
        /// New or empty directory for the copy.
        dir: PathBuf,
    },
    /// Restore a `vypusk backup` DIR into the (new or empty) data directory.
    Restore {
        /// A directory written by `vypusk backup`.
        dir: PathBuf,
        /// Replace the database, objects and keys of a data directory that is not empty.
        #[arg(long)]
        force: bool,
    },
}

/// The end of `--help` of the remote commands.
const REMOTE_HELP: &str = "Every command is one request to the vendor API of --server (VYPUSK_SERVER) with --api-key \
(VYPUSK_API_KEY). Lists print a table, one object `key  value` lines; --json prints the server's JSON answer.\n\
Exit codes: 0 done, 1 other error, 2 usage (bad flags, no API key), 3 server unreachable or not vypusk, \
4 refused by the server (its message is printed; 401/403 name the key or permission needed).";

/// Where a command's output files go, relative to the data directory.
pub fn data_file(settings: &crate::config::Settings, name: &str) -> PathBuf {
    settings.data_dir.join(name)
}
