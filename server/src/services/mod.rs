//! The vendor API's rules, one module per area, free of HTTP: each service function owns its
//! transaction and the catalog refresh after it. Handlers extract, call a service, render.

pub mod distributions;
pub mod licenses;
pub mod patch;
pub mod releases;
