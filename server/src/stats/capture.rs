//! What the hot paths hand to the recorder: plain values, no database handles.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sha2::Digest;

/// File in the data directory holding the salt of client-address hashes.
pub const SALT_FILE: &str = "stats-salt";

/// One answered `getAvailableReleases` / `getLatestRelease`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckEvent {
    pub at: DateTime<Utc>,
    pub distribution_id: i32,
    /// Paid distributions identify installations by license key, free ones by address.
    pub paid: bool,
    pub installed_version: String,
    pub conf: String,
    pub conf_version: String,
    /// Newest release in the answer; empty when nothing was offered.
    pub offered_version: String,
    pub license_key: Option<String>,
    /// The `KEY` the check sent when it names no license (a mistyped or leaked key, or a
    /// guess); `None` when the key was known or absent.
    pub unknown_key: Option<String>,
    /// Hashed by the writer, never stored as is.
    pub client: IpAddr,
}

/// One request of a counted download, sent when its response body ends or is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadEvent {
    pub at: DateTime<Utc>,
    pub distribution_id: i32,
    pub release_id: i32,
    pub file_id: i32,
    pub license_key: Option<String>,
    pub conf: String,
    pub conf_version: String,
    pub installed_version: String,
    /// Bytes this request handed to the connection.
    pub bytes: u64,
    /// This request started at the file's first byte (no `Range`, a range starting at 0, or
    /// a range ignored for a stale `If-Range`): it begins a download, which counts one.
    /// Requests starting later continue a download and never count anew.
    pub first_byte: bool,
    /// This request delivered through the file's last byte.
    pub completed: bool,
    /// Equal for every request through one link (token and file, or key hash, file and day):
    /// the link's requests share one raw row that counts its starts and completions.
    pub dedup_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Check(CheckEvent),
    Download(DownloadEvent),
}

/// `YYYY-MM-DD` of a UTC time: the roll-ups' day.
pub fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// The client address hashed with the per-install salt: 32 hex digits. IPv4-mapped IPv6
/// addresses hash like the IPv4 address.
pub fn client_hash(salt: &[u8], ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    let mut hasher = sha2::Sha256::new();
    hasher.update((salt.len() as u64).to_be_bytes());
    hasher.update(salt);
    match ip {
        IpAddr::V4(a) => hasher.update(a.octets()),
        IpAddr::V6(a) => hasher.update(a.octets()),
    }
    let mut hex = hex::encode(hasher.finalize());
    hex.truncate(32);
    hex
}

/// Who an installation is: `key:<license key>` for paid distributions (when the check named
/// one), otherwise `addr:<hashed address>`. CONF is the other half of the identity.
pub fn installation(paid: bool, license_key: Option<&str>, client_hash: &str) -> String {
    match license_key.filter(|k| paid && !k.is_empty()) {
        Some(key) => format!("key:{key}"),
        None => format!("addr:{client_hash}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_depend_on_salt_and_address_only() {
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let b: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(client_hash(b"s", a), client_hash(b"s", mapped));
        assert_ne!(client_hash(b"s", a), client_hash(b"s", b));
        assert_ne!(client_hash(b"s", a), client_hash(b"t", a));
        assert_eq!(client_hash(b"s", a).len(), 32);
    }

    #[test]
    fn installations() {
        assert_eq!(installation(true, Some("K-1"), "ab"), "key:K-1");
        assert_eq!(installation(false, Some("K-1"), "ab"), "addr:ab");
        assert_eq!(installation(true, None, "ab"), "addr:ab");
    }

    #[test]
    fn days_are_utc() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T23:30:00-03:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(day_of(t), "2026-11-23");
    }
}
