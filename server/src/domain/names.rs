//! Parse-don't-validate newtypes for identifiers that come from outside. They live in
//! `vypusk-formats` (so the fuzz targets build them alone); the server names them from here.

pub use vypusk_formats::{DistributionCode, LicenseKey, parse_flag};
