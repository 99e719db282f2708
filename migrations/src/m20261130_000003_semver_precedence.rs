//! SemVer build metadata does not take part in precedence (SemVer 2.0 §10): `1.2.3+a` and
//! `1.2.3+b` are the same version, so a distribution may hold only one of them. The server's
//! normalized version (`releases.version_norm`, unique per distribution) now leaves build
//! metadata out; this migration rewrites the stored values to match.
//!
//! A database may already hold such a pair (earlier servers accepted it). The first release of
//! each group (lowest id) gets the new value; the others keep theirs, so the unique index still
//! holds, the migration never fails, and the server keeps serving them. New releases equal to
//! any of them are refused.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, TryGetable};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Iden)]
enum Releases {
    Table,
    Id,
    DistributionId,
    VersionNorm,
}

fn get<T: TryGetable>(
    row: &sea_orm_migration::sea_orm::QueryResult,
    col: &str,
) -> Result<T, DbErr> {
    row.try_get::<T>("", col)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let with_build = Query::select()
            .columns([
                Releases::Id,
                Releases::DistributionId,
                Releases::VersionNorm,
            ])
            .from(Releases::Table)
            .and_where(Expr::col(Releases::VersionNorm).like("%+%"))
            .order_by(Releases::Id, Order::Asc)
            .to_owned();
        for row in db.query_all(&with_build).await? {
            let id: i32 = get(&row, "id")?;
            let distribution: i32 = get(&row, "distribution_id")?;
            let norm: String = get(&row, "version_norm")?;
            let Some((without_build, _)) = norm.split_once('+') else {
                continue;
            };
            let taken = Query::select()
                .column(Releases::Id)
                .from(Releases::Table)
                .and_where(Expr::col(Releases::DistributionId).eq(distribution))
                .and_where(Expr::col(Releases::VersionNorm).eq(without_build))
                .to_owned();
            if db.query_one(&taken).await?.is_some() {
                continue;
            }
            let update = Query::update()
                .table(Releases::Table)
                .value(Releases::VersionNorm, without_build)
                .and_where(Expr::col(Releases::Id).eq(id))
                .to_owned();
            db.execute(&update).await?;
        }
        Ok(())
    }

    /// The old values (with build metadata) cannot be told apart from the new ones without
    /// the version text; going down leaves them, which the old server reads as before.
    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
