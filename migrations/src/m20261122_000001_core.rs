//! Catalog (distributions, releases, compatibility, metadata, files), licenses, access
//! (admin user, API keys) and counted downloads.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn fk(
    from_table: &'static str,
    from_col: &'static str,
    to_table: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from_table}_{from_col}"))
        .from(from_table, from_col)
        .to(to_table, "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn index(table: &'static str, cols: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(format!("ix_{table}_{}", cols.join("_")))
        .table(table);
    for col in cols {
        stmt.col(*col);
    }
    if unique {
        stmt.unique();
    }
    stmt.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("distributions")
                    .col(pk_auto("id"))
                    .col(string_len_uniq("code", 64))
                    .col(string("name"))
                    .col(text("description"))
                    .col(string("developer"))
                    .col(string("label"))
                    .col(string("promo_link"))
                    .col(big_integer_null("lic_product_id"))
                    .col(big_integer_null("lic_feature_id"))
                    .col(boolean("published"))
                    .col(boolean("hide_unlicensed"))
                    .col(string_len("version_scheme", 16))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("releases")
                    .col(pk_auto("id"))
                    .col(integer("distribution_id"))
                    .col(string_len("version", 128))
                    // Equal versions (`4.0` and `4.0.0.0`) share this form, so the unique
                    // index below catches them.
                    .col(string_len("version_norm", 128))
                    .col(string_len("status", 16))
                    .col(timestamp_with_time_zone_null("published_at"))
                    .col(boolean("prerelease"))
                    .col(text("changelog"))
                    .col(text_null("yank_reason"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut fk("releases", "distribution_id", "distributions"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "releases",
                &["distribution_id", "version_norm"],
                true,
            ))
            .await?;
        manager
            .create_index(index("releases", &["distribution_id", "status"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("compatibility")
                    .col(pk_auto("id"))
                    .col(integer("release_id"))
                    .col(integer("position"))
                    .col(string("conf"))
                    .col(string_len("min_1c_version", 128))
                    .col(string_len_null("max_1c_version", 128))
                    .foreign_key(&mut fk("compatibility", "release_id", "releases"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("compatibility", &["release_id"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("release_metadata")
                    .col(pk_auto("id"))
                    .col(integer("release_id"))
                    .col(string("key"))
                    .col(text("value"))
                    .foreign_key(&mut fk("release_metadata", "release_id", "releases"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("release_metadata", &["release_id", "key"], true))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("files")
                    .col(pk_auto("id"))
                    .col(integer("release_id"))
                    .col(string("name"))
                    .col(big_integer("size"))
                    .col(string_len("md5", 32))
                    .col(string_len("sha256", 64))
                    .col(boolean("main"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut fk("files", "release_id", "releases"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("files", &["release_id", "name"], true))
            .await?;
        manager
            .create_index(index("files", &["sha256"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("licenses")
                    .col(pk_auto("id"))
                    .col(string_len_uniq("key", 64))
                    .col(string("customer"))
                    .col(string("itn"))
                    .col(boolean("revoked"))
                    .col(boolean("beta"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("license_features")
                    .col(pk_auto("id"))
                    .col(integer("license_id"))
                    .col(big_integer("product"))
                    .col(big_integer("feature"))
                    .col(timestamp_with_time_zone_null("active_until"))
                    .foreign_key(&mut fk("license_features", "license_id", "licenses"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "license_features",
                &["license_id", "product", "feature"],
                true,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("admin_users")
                    .col(pk_auto("id"))
                    .col(string_len_uniq("username", 64))
                    .col(string("password_hash"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("api_keys")
                    .col(pk_auto("id"))
                    .col(string("name"))
                    .col(string_len("prefix", 16))
                    .col(string_len_uniq("key_hash", 64))
                    .col(string("permissions"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("last_used_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("download_events")
                    .col(pk_auto("id"))
                    .col(timestamp_with_time_zone("at"))
                    .col(integer("distribution_id"))
                    .col(integer("release_id"))
                    .col(integer("file_id"))
                    .col(string_len_null("license_key", 64))
                    .col(string("conf"))
                    .col(string_len("conf_version", 128))
                    .col(string_len("installed_version", 128))
                    .col(big_integer("bytes"))
                    // One counted download per token and file, however often it is resumed.
                    .col(string_len_uniq("dedup_key", 64))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("download_events", &["release_id"], false))
            .await?;
        manager
            .create_index(index("download_events", &["at"], false))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "download_events",
            "api_keys",
            "admin_users",
            "license_features",
            "licenses",
            "files",
            "release_metadata",
            "compatibility",
            "releases",
            "distributions",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
