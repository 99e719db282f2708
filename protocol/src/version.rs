//! Versions in the two schemes of SPEC §3.
//!
//! `1c` versions compare part by part numerically with missing parts as 0, so `4.0` equals
//! `4.0.0.0`; equality, ordering and hashing all follow that rule. Display keeps the parts as
//! written, so a version reads back the way the vendor typed it.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// At most this many dot-separated parts in a `1c` version.
pub const MAX_1C_PARTS: usize = 8;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum VersionScheme {
    /// Dot-separated non-negative integers, e.g. `2.5.8.191`.
    #[default]
    #[serde(rename = "1c")]
    OneC,
    /// SemVer 2.0.
    Semver,
}

impl VersionScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionScheme::OneC => "1c",
            VersionScheme::Semver => "semver",
        }
    }
}

impl FromStr for VersionScheme {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1c" => Ok(VersionScheme::OneC),
            "semver" => Ok(VersionScheme::Semver),
            other => Err(VersionError(format!(
                "unknown version scheme {other:?} (expected \"1c\" or \"semver\")"
            ))),
        }
    }
}

impl fmt::Display for VersionScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VersionError(String);

/// A parsed version of either scheme.
#[derive(Debug, Clone)]
pub enum Version {
    OneC(OneCVersion),
    Semver(semver::Version),
}

impl Version {
    pub fn parse(scheme: VersionScheme, text: &str) -> Result<Version, VersionError> {
        match scheme {
            VersionScheme::OneC => OneCVersion::parse(text).map(Version::OneC),
            VersionScheme::Semver => semver::Version::parse(text)
                .map(Version::Semver)
                .map_err(|e| VersionError(format!("invalid semver version {text:?}: {e}"))),
        }
    }

    /// Configuration versions (`CONF_VERSION`, `min_1c_version`) are always `1c`.
    pub fn parse_1c(text: &str) -> Result<Version, VersionError> {
        Version::parse(VersionScheme::OneC, text)
    }

    pub fn scheme(&self) -> VersionScheme {
        match self {
            Version::OneC(_) => VersionScheme::OneC,
            Version::Semver(_) => VersionScheme::Semver,
        }
    }

    /// A string equal for equal versions (`4.0` and `4.0.0.0` give `4`), for unique indexes.
    pub fn normalized(&self) -> String {
        match self {
            Version::OneC(v) => {
                let parts = v.significant_parts();
                if parts.is_empty() {
                    "0".to_owned()
                } else {
                    parts
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(".")
                }
            }
            // Build metadata has no part in precedence (SemVer 2.0 §10).
            Version::Semver(v) => semver::Version {
                build: semver::BuildMetadata::EMPTY,
                ..v.clone()
            }
            .to_string(),
        }
    }

    pub fn is_prerelease(&self) -> bool {
        match self {
            Version::OneC(_) => false,
            Version::Semver(v) => !v.pre.is_empty(),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::OneC(v) => v.fmt(f),
            Version::Semver(v) => v.fmt(f),
        }
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    /// Versions of different schemes never meet in one distribution; ordering them by scheme
    /// only keeps `Ord` total.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Version::OneC(a), Version::OneC(b)) => a.cmp(b),
            // Precedence, not `semver::Version`'s total order: `1.2.3+a` equals `1.2.3+b`.
            (Version::Semver(a), Version::Semver(b)) => a.cmp_precedence(b),
            (Version::OneC(_), Version::Semver(_)) => Ordering::Less,
            (Version::Semver(_), Version::OneC(_)) => Ordering::Greater,
        }
    }
}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Version::OneC(v) => v.hash(state),
            Version::Semver(v) => {
                // Consistent with `Eq`: build metadata is left out.
                (v.major, v.minor, v.patch, &v.pre).hash(state);
            }
        }
    }
}

/// A `1c` version: `2.5.8.191`.
#[derive(Debug, Clone)]
pub struct OneCVersion {
    parts: Vec<u32>,
}

impl OneCVersion {
    pub fn parse(text: &str) -> Result<OneCVersion, VersionError> {
        let fail = |why: &str| Err(VersionError(format!("invalid version {text:?}: {why}")));
        if text.is_empty() {
            return fail("empty");
        }
        let mut parts = Vec::new();
        for part in text.split('.') {
            if part.is_empty() {
                return fail("empty part (leading, trailing or double dot)");
            }
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return fail("parts must be non-negative integers");
            }
            if parts.len() == MAX_1C_PARTS {
                return fail("more than 8 parts");
            }
            match part.parse::<u32>() {
                Ok(n) => parts.push(n),
                Err(_) => return fail("a part does not fit in 32 bits"),
            }
        }
        Ok(OneCVersion { parts })
    }

    pub fn from_parts(parts: Vec<u32>) -> Option<OneCVersion> {
        (!parts.is_empty() && parts.len() <= MAX_1C_PARTS).then_some(OneCVersion { parts })
    }

    pub fn parts(&self) -> &[u32] {
        &self.parts
    }

    /// Parts without trailing zeros: the value that equality and hashing see.
    fn significant_parts(&self) -> &[u32] {
        let len = self
            .parts
            .iter()
            .rposition(|&p| p != 0)
            .map_or(0, |i| i + 1);
        &self.parts[..len]
    }
}

impl fmt::Display for OneCVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{part}")?;
        }
        Ok(())
    }
}

impl PartialEq for OneCVersion {
    fn eq(&self, other: &Self) -> bool {
        self.significant_parts() == other.significant_parts()
    }
}
impl Eq for OneCVersion {}

impl PartialOrd for OneCVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OneCVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.parts.len().max(other.parts.len());
        for i in 0..len {
            let a = self.parts.get(i).copied().unwrap_or(0);
            let b = other.parts.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        Ordering::Equal
    }
}

impl Hash for OneCVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.significant_parts().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> Version {
        Version::parse_1c(s).unwrap()
    }

    #[test]
    fn numeric_not_lexicographic_order() {
        assert!(v("4.0.4.9") < v("4.0.4.10"));
        assert!(v("4.0.4.10") < v("4.0.4.11"));
        assert!(v("2.5.8.191") > v("2.5.8.20"));
        assert!(v("11.5") > v("2.99.99"));
    }

    #[test]
    fn missing_parts_are_zero() {
        assert_eq!(v("4.0"), v("4.0.0.0"));
        assert_eq!(v("4"), v("4.0"));
        assert!(v("4.0.0.1") > v("4.0"));
        assert_eq!(v("4.0.0.0").normalized(), "4");
        assert_eq!(v("0.0").normalized(), "0");
    }

    #[test]
    fn display_keeps_written_parts() {
        assert_eq!(v("4.0").to_string(), "4.0");
        assert_eq!(v("2024.1.114").to_string(), "2024.1.114");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "1..2",
            ".1",
            "1.",
            "v1.2",
            "-1",
            "+1",
            "1.2.3.4.5.6.7.8.9",
            "4294967296",
            "1.99999999999",
            " 1.2",
            "1.2 ",
            "1,2",
            "1.a",
            "１.２",
        ] {
            assert!(Version::parse_1c(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(Version::parse_1c("1.2.3.4.5.6.7.8").is_ok());
        assert!(Version::parse_1c("4294967295").is_ok());
    }

    #[test]
    fn semver_scheme() {
        let a = Version::parse(VersionScheme::Semver, "1.2.3-beta.1").unwrap();
        let b = Version::parse(VersionScheme::Semver, "1.2.3").unwrap();
        assert!(a < b);
        assert!(a.is_prerelease());
        assert!(Version::parse(VersionScheme::Semver, "1.2").is_err());
        assert!(Version::parse(VersionScheme::Semver, "v1.2.3").is_err());
    }

    #[test]
    fn semver_build_metadata_has_no_precedence() {
        use std::collections::HashSet;
        let a = Version::parse(VersionScheme::Semver, "1.2.3+a").unwrap();
        let b = Version::parse(VersionScheme::Semver, "1.2.3+b").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.normalized(), "1.2.3");
        assert_eq!(a.normalized(), b.normalized());
        assert_eq!(HashSet::from([a.clone(), b.clone()]).len(), 1);
        assert_eq!(
            a.to_string(),
            "1.2.3+a",
            "display keeps what the vendor wrote"
        );
        let pre = Version::parse(VersionScheme::Semver, "1.2.3-rc.1+x").unwrap();
        assert_eq!(pre.normalized(), "1.2.3-rc.1");
        assert!(pre < a);
    }

    #[test]
    fn scheme_names() {
        assert_eq!("1c".parse::<VersionScheme>().unwrap(), VersionScheme::OneC);
        assert_eq!(
            "semver".parse::<VersionScheme>().unwrap(),
            VersionScheme::Semver
        );
        assert!("SemVer2".parse::<VersionScheme>().is_err());
    }

    fn parts() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec(prop_oneof![0u32..20, any::<u32>()], 1..=8)
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(p in parts()) {
            let text = p.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
            let parsed = Version::parse_1c(&text).unwrap();
            prop_assert_eq!(parsed.to_string(), text.clone());
            prop_assert_eq!(Version::parse_1c(&parsed.to_string()).unwrap(), parsed);
        }

        #[test]
        fn order_is_total_and_consistent(a in parts(), b in parts(), c in parts()) {
            let (a, b, c) = (
                Version::OneC(OneCVersion::from_parts(a).unwrap()),
                Version::OneC(OneCVersion::from_parts(b).unwrap()),
                Version::OneC(OneCVersion::from_parts(c).unwrap()),
            );
            // antisymmetry
            prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
            // transitivity
            if a <= b && b <= c { prop_assert!(a <= c); }
            // equality agrees with ordering and with the normalized form
            prop_assert_eq!(a == b, a.normalized() == b.normalized());
        }

        #[test]
        fn trailing_zeros_do_not_matter(p in parts(), zeros in 0usize..4) {
            let mut longer = p.clone();
            longer.extend(std::iter::repeat_n(0, zeros.min(8 - p.len())));
            prop_assert_eq!(
                Version::OneC(OneCVersion::from_parts(p).unwrap()),
                Version::OneC(OneCVersion::from_parts(longer).unwrap())
            );
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Version::parse_1c(&s);
            let _ = Version::parse(VersionScheme::Semver, &s);
        }
    }
}
