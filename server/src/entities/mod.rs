//! sea-orm entities, one per table of `vypusk-migrations`. Relations are resolved by hand in
//! `db`, so the entities stay plain rows.

pub mod admin_user;
pub mod api_key;
pub mod audit_log;
pub mod blob;
pub mod check_event;
pub mod compatibility;
pub mod distribution;
pub mod download_event;
pub mod file;
pub mod license;
pub mod license_feature;
pub mod product;
pub mod product_feature;
pub mod release;
pub mod release_metadata;
pub mod session;
pub mod stats_daily_check;
pub mod stats_daily_download;
pub mod stats_daily_license_download;
pub mod stats_daily_upgrade;
pub mod stats_installation;
