//! Download tokens (SPEC §4.6): HMAC-SHA256-signed, expiring capabilities naming a file, the
//! license (if any), whether to count the download, and the check that issued them (for
//! statistics). The token is `base64url(json payload).base64url(mac)`, the MAC taken over the
//! payload's base64 text. The secret is the caller's (the server keeps it in its data
//! directory); this module only encodes and verifies.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadGrant {
    /// Distribution id.
    pub d: i32,
    /// File id.
    pub f: i32,
    /// License key, when the distribution is paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<String>,
    /// Count this download (`COUNT_DOWNLOADS=Y`).
    #[serde(default)]
    pub c: bool,
    /// Expiry, unix seconds.
    pub e: i64,
    /// The check's CONF, CONF_VERSION and INSTALLED_VERSION, for statistics.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub conf: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cv: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub iv: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the download link is malformed")]
    Malformed,
    #[error("the download link's signature is not valid")]
    BadSignature,
    #[error("the download link has expired; ask for releases again")]
    Expired,
}

/// The token for `grant`, signed with `secret`.
pub fn encode(secret: &[u8], grant: &DownloadGrant) -> String {
    let payload = serde_json::to_vec(grant).expect("grant serializes");
    let payload = B64.encode(payload);
    let mac = mac(secret, payload.as_bytes()).finalize().into_bytes();
    format!("{payload}.{}", B64.encode(mac))
}

/// The grant of a token signed with `secret` that has not expired at `now` (unix seconds).
/// The MAC is checked before the payload is decoded, so a forged payload is never parsed.
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<DownloadGrant, TokenError> {
    let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    // The engine refuses non-canonical base64 (padding, stray trailing bits), so no two token
    // texts carry the same MAC.
    let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
    mac(secret, payload.as_bytes())
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    let bytes = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
    let grant: DownloadGrant = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    if grant.e < now {
        return Err(TokenError::Expired);
    }
    Ok(grant)
}

fn mac(secret: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(payload);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(e: i64) -> DownloadGrant {
        DownloadGrant {
            d: 1,
            f: 7,
            k: Some("MIKO-1234".into()),
            c: true,
            e,
            conf: "УТ".into(),
            cv: "11.5".into(),
            iv: "4.0".into(),
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let t = encode(b"secret", &grant(2_000_000));
        assert_eq!(verify(b"secret", &t, 2_000_000), Ok(grant(2_000_000)));
        assert_eq!(verify(b"secret", &t, 2_000_001), Err(TokenError::Expired));
    }

    #[test]
    fn forgery_is_detected() {
        let t = encode(b"secret", &grant(2_000_000));
        assert_eq!(verify(b"other", &t, 0), Err(TokenError::BadSignature));
        // Same MAC, different payload (another file id).
        let (_, tag) = t.split_once('.').unwrap();
        let mut g = grant(2_000_000);
        g.f = 8;
        let forged = format!("{}.{tag}", B64.encode(serde_json::to_vec(&g).unwrap()));
        assert_eq!(verify(b"secret", &forged, 0), Err(TokenError::BadSignature));
        assert_eq!(verify(b"secret", "garbage", 0), Err(TokenError::Malformed));
        assert_eq!(verify(b"secret", "a.b.c", 0), Err(TokenError::Malformed));
    }

    #[test]
    fn every_single_byte_change_fails() {
        let t = encode(b"secret", &grant(2_000_000));
        for i in 0..t.len() {
            for b in [b'A', b'B', b'Q', b'g', b'w', b'-', b'_', b'.', b'0'] {
                let mut bytes = t.clone().into_bytes();
                if bytes[i] == b {
                    continue;
                }
                bytes[i] = b;
                let changed = String::from_utf8(bytes).unwrap();
                assert!(verify(b"secret", &changed, 0).is_err(), "{changed}");
            }
        }
    }
}
