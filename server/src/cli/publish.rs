//! `vypusk publish`: the vendor's CI uploads a release through the vendor API.

#[derive(Debug, clap::Args)]
pub struct PublishArgs {}

pub async fn run(_args: PublishArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
