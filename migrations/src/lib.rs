//! Database schema of vypusk. Every migration runs on SQLite and PostgreSQL; the server applies
//! them at start and `vypusk migrate` applies them on demand.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_core;
mod m20261122_000002_stats;
mod m20261130_000003_semver_precedence;
mod m20261130_100001_cluster;
mod m20261201_000001_blobs;
mod m20261202_000001_download_starts;
mod m20261203_000001_users;
mod m20261204_000001_sessions;
mod m20261205_000001_audit;
mod m20261206_000001_products;
mod m20261207_000001_audience;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_core::Migration),
            Box::new(m20261122_000002_stats::Migration),
            Box::new(m20261130_000003_semver_precedence::Migration),
            Box::new(m20261201_000001_blobs::Migration),
            Box::new(m20261130_100001_cluster::Migration),
            Box::new(m20261202_000001_download_starts::Migration),
            Box::new(m20261203_000001_users::Migration),
            Box::new(m20261204_000001_sessions::Migration),
            Box::new(m20261205_000001_audit::Migration),
            Box::new(m20261206_000001_products::Migration),
            Box::new(m20261207_000001_audience::Migration),
        ]
    }
}
