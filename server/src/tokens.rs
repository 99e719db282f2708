//! Download tokens (SPEC §4.6): HMAC-SHA256-signed, expiring capabilities naming a file, the
//! license (if any), whether to count the download, and the check that issued them (for
//! statistics). The token is `base64url(payload).base64url(mac)`; the secret lives in the data
//! directory.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const SECRET_FILE: &str = "token-secret";
/// Expiry is rounded up to this step so identical checks within it give identical answers,
/// whose signatures the signer then caches.
const EXPIRY_STEP_SECS: i64 = 60;

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

#[derive(Clone)]
pub struct TokenSigner {
    secret: Vec<u8>,
    ttl_secs: i64,
}

impl TokenSigner {
    pub fn new(secret: Vec<u8>, ttl_secs: u64) -> Self {
        TokenSigner {
            secret,
            ttl_secs: ttl_secs.min(i64::MAX as u64 / 2) as i64,
        }
    }

    /// Expiry for a token issued at `now`: at least `ttl` away, rounded up to the step. A
    /// lifetime shorter than the step is not rounded at all.
    pub fn expiry(&self, now: i64) -> i64 {
        let raw = now.saturating_add(self.ttl_secs);
        if self.ttl_secs < EXPIRY_STEP_SECS {
            return raw;
        }
        raw.div_euclid(EXPIRY_STEP_SECS) * EXPIRY_STEP_SECS + EXPIRY_STEP_SECS
    }

    pub fn issue(&self, grant: &DownloadGrant) -> String {
        let payload = serde_json::to_vec(grant).expect("grant serializes");
        let payload = B64.encode(payload);
        let mac = self.mac(payload.as_bytes());
        format!("{payload}.{}", B64.encode(mac))
    }

    pub fn verify(&self, token: &str, now: i64) -> Result<DownloadGrant, TokenError> {
        let (payload, mac) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let mac = B64.decode(mac).map_err(|_| TokenError::Malformed)?;
        let mut check = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        check.update(payload.as_bytes());
        check
            .verify_slice(&mac)
            .map_err(|_| TokenError::BadSignature)?;
        let bytes = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
        let grant: DownloadGrant =
            serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
        if grant.e < now {
            return Err(TokenError::Expired);
        }
        Ok(grant)
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }
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
        let s = TokenSigner::new(b"secret".to_vec(), 3600);
        let e = s.expiry(1_000_000);
        assert!(e >= 1_003_600 && e % 60 == 0);
        let t = s.issue(&grant(e));
        assert_eq!(s.verify(&t, 1_000_000).unwrap(), grant(e));
        assert_eq!(s.verify(&t, e + 1), Err(TokenError::Expired));
        // Short lifetimes are not stretched to the rounding step.
        let short = TokenSigner::new(b"secret".to_vec(), 3);
        assert_eq!(short.expiry(1_000_000), 1_000_003);
    }

    #[test]
    fn forgery_is_detected() {
        let s = TokenSigner::new(b"secret".to_vec(), 3600);
        let t = s.issue(&grant(2_000_000));
        let other = TokenSigner::new(b"other".to_vec(), 3600);
        assert_eq!(other.verify(&t, 0), Err(TokenError::BadSignature));
        // Same MAC, different payload (another file id).
        let (_, mac) = t.split_once('.').unwrap();
        let mut g = grant(2_000_000);
        g.f = 8;
        let forged = format!("{}.{mac}", B64.encode(serde_json::to_vec(&g).unwrap()));
        assert_eq!(s.verify(&forged, 0), Err(TokenError::BadSignature));
        assert_eq!(s.verify("garbage", 0), Err(TokenError::Malformed));
        assert_eq!(s.verify("a.b.c", 0), Err(TokenError::Malformed));
    }
}
