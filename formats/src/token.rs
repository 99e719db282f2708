//! Download tokens (SPEC §4.6, refined by issue 9): one HMAC-signed, expiring capability per
//! release in an answer. A token names the distribution and the release, the license by its
//! database id (never its key, in any encoding: links end up in proxy logs), whether to count
//! the download, and, only when counting, the check's CONF, CONF_VERSION and INSTALLED_VERSION
//! for statistics. The file is named by the URL's last segment, so one token serves every file
//! of its release and no other release.
//!
//! Wire form: `base64url(payload ‖ mac)` without padding, where `mac` is the first 16 bytes of
//! HMAC-SHA256(secret, payload) and the payload is
//!
//! ```text
//! version (1) · flags (bit 0: count, bit 1: license) · varint distribution · varint release
//! · [varint license] · varint expiry (unix s, zigzag)
//! · [when counting: varint len + UTF-8, three times: conf, conf version, installed version]
//! ```
//!
//! The MAC is checked before the payload is parsed, so a forged payload is never decoded, and
//! the parser is strict (minimal varints, no trailing bytes), so one grant has one text.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const FORMAT_VERSION: u8 = 1;
const FLAG_COUNT: u8 = 1;
const FLAG_LICENSE: u8 = 2;
/// A truncated HMAC-SHA256 (RFC 2104 §5): 128 bits are far beyond online guessing.
const MAC_LEN: usize = 16;
/// Longest statistics field kept in a token; longer ones are cut at a character boundary (the
/// request that produced them is limited to 1 MiB, links should stay short).
const MAX_FIELD: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadGrant {
    pub distribution: i32,
    pub release: i32,
    /// The license's id, when the distribution is paid and the check named a known key.
    pub license: Option<i32>,
    /// Count this download (`COUNT_DOWNLOADS=Y`).
    pub count: bool,
    /// Expiry, unix seconds.
    pub expires: i64,
    /// The check's CONF, CONF_VERSION and INSTALLED_VERSION; carried only when `count`.
    pub conf: String,
    pub conf_version: String,
    pub installed_version: String,
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

/// A secret with its HMAC state prepared once: a check issues several tokens, and keying HMAC
/// is half of the work for a payload this short.
#[derive(Clone)]
pub struct TokenKey(Hmac<Sha256>);

impl TokenKey {
    pub fn new(secret: &[u8]) -> TokenKey {
        TokenKey(Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length"))
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(payload);
        mac
    }

    /// The token for `grant`.
    pub fn encode(&self, grant: &DownloadGrant) -> String {
        encode_with(self, grant)
    }

    /// The grant of a token that has not expired at `now` (unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<DownloadGrant, TokenError> {
        verify_with(self, token, now)
    }
}

/// The token for `grant`, signed with `secret`.
pub fn encode(secret: &[u8], grant: &DownloadGrant) -> String {
    TokenKey::new(secret).encode(grant)
}

fn encode_with(key: &TokenKey, grant: &DownloadGrant) -> String {
    let mut bytes = Vec::with_capacity(32 + MAC_LEN);
    let mut flags = 0;
    if grant.count {
        flags |= FLAG_COUNT;
    }
    if grant.license.is_some() {
        flags |= FLAG_LICENSE;
    }
    bytes.push(FORMAT_VERSION);
    bytes.push(flags);
    put_varint(&mut bytes, u64::from(grant.distribution as u32));
    put_varint(&mut bytes, u64::from(grant.release as u32));
    if let Some(license) = grant.license {
        put_varint(&mut bytes, u64::from(license as u32));
    }
    put_varint(&mut bytes, zigzag(grant.expires));
    if grant.count {
        for field in [&grant.conf, &grant.conf_version, &grant.installed_version] {
            let field = truncate(field);
            put_varint(&mut bytes, field.len() as u64);
            bytes.extend_from_slice(field.as_bytes());
        }
    }
    let tag = key.mac(&bytes).finalize().into_bytes();
    bytes.extend_from_slice(&tag[..MAC_LEN]);
    B64.encode(&bytes)
}

/// The grant of a token signed with `secret` that has not expired at `now` (unix seconds).
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<DownloadGrant, TokenError> {
    TokenKey::new(secret).verify(token, now)
}

fn verify_with(key: &TokenKey, token: &str, now: i64) -> Result<DownloadGrant, TokenError> {
    // Bounded before decoding: no valid token is longer.
    if token.len() > 4 * (3 * MAX_FIELD * 2 + 64) {
        return Err(TokenError::Malformed);
    }
    // The engine refuses non-canonical base64 (padding, stray trailing bits), so no two token
    // texts carry the same bytes.
    let bytes = B64.decode(token).map_err(|_| TokenError::Malformed)?;
    if bytes.len() < 2 + MAC_LEN {
        return Err(TokenError::Malformed);
    }
    let (payload, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    key.mac(payload)
        .verify_truncated_left(tag)
        .map_err(|_| TokenError::BadSignature)?;
    let grant = parse(payload).ok_or(TokenError::Malformed)?;
    if grant.expires < now {
        return Err(TokenError::Expired);
    }
    Ok(grant)
}

fn parse(payload: &[u8]) -> Option<DownloadGrant> {
    let mut r = Reader(payload);
    if r.byte()? != FORMAT_VERSION {
        return None;
    }
    let flags = r.byte()?;
    if flags & !(FLAG_COUNT | FLAG_LICENSE) != 0 {
        return None;
    }
    let distribution = r.id()?;
    let release = r.id()?;
    let license = if flags & FLAG_LICENSE != 0 {
        Some(r.id()?)
    } else {
        None
    };
    let expires = unzigzag(r.varint()?);
    let count = flags & FLAG_COUNT != 0;
    let (mut conf, mut conf_version, mut installed_version) = Default::default();
    if count {
        conf = r.text()?;
        conf_version = r.text()?;
        installed_version = r.text()?;
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(DownloadGrant {
        distribution,
        release,
        license,
        count,
        expires,
        conf,
        conf_version,
        installed_version,
    })
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// LEB128, at most 10 bytes, minimal (no trailing zero groups).
    fn varint(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            let group = u64::from(b & 0x7f);
            if i == 9 && group > 1 {
                return None;
            }
            value |= group << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return None;
                }
                return Some(value);
            }
        }
        None
    }

    fn id(&mut self) -> Option<i32> {
        u32::try_from(self.varint()?).ok().map(|v| v as i32)
    }

    fn text(&mut self) -> Option<String> {
        let len = usize::try_from(self.varint()?).ok()?;
        if len > MAX_FIELD || len > self.0.len() {
            return None;
        }
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8(text.to_vec()).ok()
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn truncate(s: &str) -> &str {
    if s.len() <= MAX_FIELD {
        return s;
    }
    let mut end = MAX_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
fn mac(secret: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    TokenKey::new(secret).mac(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires: i64) -> DownloadGrant {
        DownloadGrant {
            distribution: 1,
            release: 7,
            license: Some(42),
            count: true,
            expires,
            conf: "УправлениеТорговлей".into(),
            conf_version: "11.5".into(),
            installed_version: "4.0".into(),
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let t = encode(b"secret", &grant(2_000_000));
        assert_eq!(verify(b"secret", &t, 2_000_000), Ok(grant(2_000_000)));
        assert_eq!(verify(b"secret", &t, 2_000_001), Err(TokenError::Expired));
        // Without counting, the statistics fields are not carried: a short link.
        let plain = DownloadGrant {
            count: false,
            license: None,
            conf: String::new(),
            conf_version: String::new(),
            installed_version: String::new(),
            ..grant(2_000_000)
        };
        let t = encode(b"secret", &plain);
        assert!(t.len() <= 40, "{t}");
        assert_eq!(verify(b"secret", &t, 0), Ok(plain));
        for extreme in [i64::MIN, -1, 0, i64::MAX] {
            let g = DownloadGrant {
                distribution: i32::MAX,
                release: i32::MIN,
                license: Some(-1),
                ..grant(extreme)
            };
            assert_eq!(verify(b"s", &encode(b"s", &g), i64::MIN), Ok(g));
        }
    }

    #[test]
    fn long_fields_are_cut_at_a_character_boundary() {
        let mut g = grant(10);
        g.conf = "Ж".repeat(300);
        let back = verify(b"s", &encode(b"s", &g), 0).unwrap();
        assert_eq!(back.conf, "Ж".repeat(128));
    }

    #[test]
    fn forgery_is_detected() {
        let t = encode(b"secret", &grant(2_000_000));
        assert_eq!(verify(b"other", &t, 0), Err(TokenError::BadSignature));
        // Same MAC, different payload (another release).
        let bytes = B64.decode(&t).unwrap();
        let (payload, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut other = payload.to_vec();
        other[3] ^= 1;
        other.extend_from_slice(tag);
        assert_eq!(
            verify(b"secret", &B64.encode(other), 0),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verify(b"secret", "garbage", 0), Err(TokenError::Malformed));
        assert_eq!(verify(b"secret", "a.b", 0), Err(TokenError::Malformed));
        assert_eq!(verify(b"secret", "", 0), Err(TokenError::Malformed));
    }

    #[test]
    fn a_signed_but_malformed_payload_is_refused() {
        for payload in [
            &[2, 0, 1, 1, 0][..],                           // unknown version
            &[1, 4, 1, 1, 0],                               // unknown flag
            &[1, 0, 1, 1, 0, 0],                            // trailing byte
            &[1, 0, 0x81, 0x00, 1, 0],                      // non-minimal varint
            &[1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 1, 1, 0], // id beyond u32
            &[1, 1, 1, 1, 0, 1, 0xff, 0, 0],                // invalid UTF-8 in a field
            &[1, 2, 1, 1],                                  // license flag without a license
        ] {
            let mut bytes = payload.to_vec();
            let tag = mac(b"s", payload).finalize().into_bytes();
            bytes.extend_from_slice(&tag[..MAC_LEN]);
            assert_eq!(
                verify(b"s", &B64.encode(bytes), i64::MIN),
                Err(TokenError::Malformed),
                "{payload:?}"
            );
        }
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
