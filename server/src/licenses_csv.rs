//! License CSV import (`POST /api/v1/licenses/import`, `vypusk license import`): the parser
//! lives in `vypusk-formats` (fuzzed alone); the server names it from here.

pub use vypusk_formats::licenses_csv::*;
