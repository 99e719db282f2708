//! Domain rules as plain functions: names, compatibility matching, licensing, release
//! selection. Nothing here knows about HTTP or SQL.

pub mod licensing;
pub mod matching;
pub mod names;
pub mod selection;

pub use names::{DistributionCode, LicenseKey, parse_flag};
