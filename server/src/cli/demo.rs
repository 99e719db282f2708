//! `vypusk demo`: a data directory to try vypusk with.

use crate::config::Settings;

pub async fn run(_settings: &Settings) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
