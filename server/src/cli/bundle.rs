//! `vypusk bundle`: an offline bundle of one release for one license, written on the data
//! directory directly by the same service as `GET /api/v1/releases/{id}/bundle`
//! (`crate::bundle`), without HTTP.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use crate::bundle::{self, BundleSources};
use crate::config::Settings;

#[derive(Debug, clap::Args)]
#[command(
    about = "Write an offline bundle of a published release for a license (what GET /api/v1/releases/{id}/bundle answers)",
    after_help = "Example:\n  vypusk --data-dir /var/lib/vypusk bundle --release 17 --license MIKO-XXXXX-XXXXX --out PT40-4.0.4.11.vypusk-bundle.tar\n\nThe release must be published and downloadable for the license by the rules of a check;\nthe configuration is not checked (the installer checks it against the bundle's compatibility list).\nA bundle is not counted as a download."
)]
pub struct BundleArgs {
    /// Id of the release (the API's `id`, the answers' `release_id`).
    #[arg(long, value_name = "ID")]
    pub release: i32,
    /// License key the bundle is for; optional for free distributions.
    #[arg(long, value_name = "KEY")]
    pub license: Option<String>,
    /// File to write (replaced atomically when it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

pub async fn run(settings: &Settings, args: BundleArgs) -> anyhow::Result<()> {
    let sources = open(settings).await?;
    let plan = bundle::plan(&sources, args.release, args.license.as_deref()).await?;
    let header = plan.header.clone();
    let files = plan.files().len();
    let written = bundle::write_file(plan, &args.out)
        .await
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    tracing::info!(target: "audit", actor = "cli", release = args.release,
        license_sha256 = %args.license.as_deref().map(crate::access_log::key_fingerprint).unwrap_or_default(),
        "bundle written");
    // The target as the API's `getReleaseBundle` entry has it.
    let mut target = crate::access_log::target_param("id", &args.release.to_string());
    if let Some(license) = args
        .license
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        target.push_str(" license_sha256=");
        target.push_str(&crate::access_log::key_fingerprint(license));
    }
    super::admin::record_cli(&sources.db, "getReleaseBundle", target, "").await;
    println!(
        "Wrote {}: {} {} ({files} file{}, {written} bytes), signed for QueryID {}",
        args.out.display(),
        header.distribution,
        header.version,
        if files == 1 { "" } else { "s" },
        header.query_id
    );
    Ok(())
}

/// The database, storage, keys and catalog of the data directory, as `serve` opens them,
/// without what only a serving instance does (cleaning uploads, statistics, sweeping).
async fn open(settings: &Settings) -> anyhow::Result<BundleSources> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    let db = crate::db::connect(&settings.database_url()).await?;
    crate::db::migrate(&db).await?;
    let storage = vypusk_storage::Storage::from_url(&settings.storage_url())
        .map_err(|e| anyhow::anyhow!("storage: {e}"))?;
    let identity = crate::identity::load(&db, settings).await?;
    let catalog = crate::catalog::Catalog::load(&db).await?;
    let public_url = settings.public_url_for(settings.listen_addr()?);
    let quoted = serde_json::to_string(&public_url)?;
    Ok(BundleSources {
        db,
        catalog,
        storage,
        signer: Arc::new(identity.signer),
        tokens: Arc::new(crate::tokens::TokenSigner::new(
            identity.token_secret,
            settings.token_ttl_secs,
        )),
        public_url_json: quoted[1..quoted.len() - 1].into(),
    })
}
