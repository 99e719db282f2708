//! The server's parsers of untrusted input, as plain functions without I/O: the body of the
//! client protocol's requests (SPEC §4, §4.1, §4.3), download tokens (SPEC §4.6), the `Range`
//! header (SPEC §4.6), the license CSV import (SPEC §5) and the identifiers of SPEC §3.
//!
//! They live outside `vypusk-server` so that the fuzz targets (`fuzz/`) build them without
//! sea-orm and the AWS SDK, and outside `vypusk-protocol` so that `vypusk-update` stays free of
//! csv, chrono and hmac.

pub mod check_request;
pub mod identifiers;
pub mod licenses_csv;
pub mod range;
pub mod token;

pub use check_request::{BodyError, CheckRequestBody, FieldError, parse_flag};
pub use identifiers::{DistributionCode, LicenseKey};
pub use range::{RangeRequest, parse_range};
pub use token::{DownloadGrant, TokenError};
