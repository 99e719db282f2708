//! Identifiers that come from outside (SPEC §3), parsed into newtypes: a value of these types
//! is valid by construction.

use std::fmt;

/// `[A-Za-z0-9_.-]{1,64}` (SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DistributionCode(String);

impl DistributionCode {
    pub fn parse(code: &str) -> Result<Self, String> {
        let ok = !code.is_empty()
            && code.len() <= 64
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(DistributionCode(code.to_owned()))
        } else {
            Err(format!(
                "invalid distribution code {:?}: 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'",
                truncate(code)
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DistributionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `[A-Za-z0-9-]{4,64}` (SPEC §3), e.g. `MIKO-XXXXX-XXXXX-XXXXX-XXXXX`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LicenseKey(String);

impl LicenseKey {
    pub fn parse(key: &str) -> Result<Self, String> {
        let ok = (4..=64).contains(&key.len())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(LicenseKey(key.to_owned()))
        } else {
            Err(format!(
                "malformed license key {:?}: 4 to 64 characters of A-Z, a-z, 0-9 and '-'",
                truncate(key)
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Lowercase hex SHA-256, the form `getModuleFile` accepts instead of the key itself.
    pub fn sha256_hex(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Display for LicenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert!(DistributionCode::parse("PT40_UT_CRM3").is_ok());
        assert!(DistributionCode::parse("a.b-c").is_ok());
        for bad in ["", "a b", "a/b", "Тип", &"x".repeat(65)] {
            assert!(DistributionCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys() {
        assert!(LicenseKey::parse("MIKO-XXXXX-XXXXX-XXXXX-XXXXX").is_ok());
        for bad in [
            "abc",
            "MIKO XXXX",
            "MIKO_1234",
            "ключ-1234",
            &"x".repeat(65),
        ] {
            assert!(LicenseKey::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            LicenseKey::parse("abcd").unwrap().sha256_hex(),
            "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"
        );
    }
}
