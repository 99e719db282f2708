//! Wire types of the vypusk client protocol (SPEC §4), the `Version` type (SPEC §3) and the
//! check of `Licence-Signature` (SPEC §4.7). No I/O: the server and `vypusk-update` share it.

pub mod bundle;
pub mod compat;
pub mod names;
pub mod signature;
pub mod version;
pub mod wire;

pub use names::{FileName, NameError, case_collision, same_name_ignoring_case};
pub use signature::{PinnedKeys, PublicKey, SignatureError, verify_response};
pub use version::{Version, VersionError, VersionScheme};

/// Header the client sends with a fresh random value; the server echoes it and signs it.
pub const HEADER_QUERY_ID: &str = "Licence-QueryID";
/// Base64 RSA PKCS#1 v1.5 SHA-256 signature over QueryID bytes + body bytes.
pub const HEADER_SIGNATURE: &str = "Licence-Signature";
/// The server's version.
pub const HEADER_SERVER_VERSION: &str = "Licence-ServerVersion";
