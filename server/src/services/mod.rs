//! The vendor API's rules, one module per area, free of HTTP: each service function owns its
//! transaction and the catalog refresh after it. Handlers extract, call a service, render; the
//! CLI (`cli/admin.rs`, `cli/demo.rs`) calls the same functions.

pub mod api_keys;
pub mod audit;
pub mod common;
pub mod distributions;
pub mod licenses;
pub mod patch;
pub mod releases;
pub mod sessions;
pub mod users;
