//! Download tokens (SPEC §4.6, issue 9): one HMAC-signed, expiring capability per release of an
//! answer, naming the license by id (never by key). The secret is shared by all instances
//! through the database (`identity`). The codec is `vypusk_formats::token` (fuzzed alone); this
//! signer holds the secret and the lifetime.

pub use vypusk_formats::token::{DownloadGrant, TokenError, TokenKey};

pub const SECRET_FILE: &str = "token-secret";
/// Expiry is rounded up to this step so identical checks within it give identical answers,
/// whose signatures the signer then caches.
const EXPIRY_STEP_SECS: i64 = 60;

#[derive(Clone)]
pub struct TokenSigner {
    key: TokenKey,
    ttl_secs: i64,
}

impl TokenSigner {
    pub fn new(secret: Vec<u8>, ttl_secs: u64) -> Self {
        TokenSigner {
            key: TokenKey::new(&secret),
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

    pub fn key(&self) -> &TokenKey {
        &self.key
    }

    pub fn verify(&self, token: &str, now: i64) -> Result<DownloadGrant, TokenError> {
        self.key.verify(token, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(e: i64) -> DownloadGrant {
        DownloadGrant {
            distribution: 1,
            release: 7,
            license: Some(3),
            count: true,
            expires: e,
            conf: "УТ".into(),
            conf_version: "11.5".into(),
            installed_version: "4.0".into(),
        }
    }

    /// The codec itself (round trip, forgery, malformed tokens) is tested and fuzzed in
    /// `vypusk_formats::token`; here, what the signer adds: the rounded expiry and its secret.
    #[test]
    fn expiry_is_rounded_and_the_secret_is_used() {
        let s = TokenSigner::new(b"secret".to_vec(), 3600);
        let e = s.expiry(1_000_000);
        assert!(e >= 1_003_600 && e % 60 == 0);
        let t = s.key().encode(&grant(e));
        assert_eq!(s.verify(&t, 1_000_000).unwrap(), grant(e));
        assert_eq!(s.verify(&t, e + 1), Err(TokenError::Expired));
        let other = TokenSigner::new(b"other".to_vec(), 3600);
        assert_eq!(other.verify(&t, 0), Err(TokenError::BadSignature));
        // Short lifetimes are not stretched to the rounding step.
        let short = TokenSigner::new(b"secret".to_vec(), 3);
        assert_eq!(short.expiry(1_000_000), 1_000_003);
    }
}
