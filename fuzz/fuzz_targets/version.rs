//! `Version` of both schemes (SPEC §3): `1c` parsing agrees with a reference grammar, Display
//! output parses back to an equal version, and equality, ordering, hashing and `normalized`
//! agree with each other on up to three versions (one per input line).
#![no_main]

use std::cmp::Ordering;
use std::hash::{DefaultHasher, Hash, Hasher};

use libfuzzer_sys::fuzz_target;
use vypusk_protocol::{Version, VersionScheme};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.split('\n').take(3).collect();
    for scheme in [VersionScheme::OneC, VersionScheme::Semver] {
        let versions: Vec<(Version, &str)> = lines
            .iter()
            .filter_map(|line| check_one(scheme, line).map(|v| (v, *line)))
            .collect();
        for (a, ta) in &versions {
            for (b, tb) in &versions {
                check_pair(scheme, a, ta, b, tb);
                for (c, _) in &versions {
                    if a <= b && b <= c {
                        assert!(a <= c, "ordering is not transitive: {a} {b} {c}");
                    }
                }
            }
        }
    }
});

fn check_one(scheme: VersionScheme, text: &str) -> Option<Version> {
    let parsed = Version::parse(scheme, text);
    if scheme == VersionScheme::OneC {
        assert_eq!(
            parsed.is_ok(),
            reference_1c(text).is_some(),
            "{text:?}: {parsed:?}"
        );
    }
    let v = parsed.ok()?;
    assert_eq!(v.scheme(), scheme);
    let shown = v.to_string();
    let again = Version::parse(scheme, &shown).expect("Display output parses");
    assert_eq!(again, v, "{text:?} -> {shown:?}");
    assert_eq!(again.to_string(), shown, "Display is stable");
    assert_eq!(again.normalized(), v.normalized());
    assert_eq!(hash(&again), hash(&v));
    let normal = Version::parse(scheme, &v.normalized()).expect("the normalized form parses");
    assert_eq!(normal, v, "{text:?} normalized {:?}", v.normalized());
    Some(v)
}

fn check_pair(scheme: VersionScheme, a: &Version, ta: &str, b: &Version, tb: &str) {
    assert_eq!(a.cmp(b), b.cmp(a).reverse(), "{a} {b}: antisymmetry");
    assert_eq!(a == b, a.cmp(b) == Ordering::Equal, "{a} {b}: eq vs cmp");
    assert_eq!(
        a == b,
        a.normalized() == b.normalized(),
        "{a} {b}: eq vs normalized"
    );
    if a == b {
        assert_eq!(hash(a), hash(b), "{a} {b}: equal versions hash alike");
    }
    if scheme == VersionScheme::OneC {
        let (ra, rb) = (reference_1c(ta).unwrap(), reference_1c(tb).unwrap());
        assert_eq!(
            a.cmp(b),
            reference_cmp(&ra, &rb),
            "{ta:?} {tb:?}: numeric order"
        );
    }
}

/// SPEC §3: one to eight dot-separated parts of ASCII digits, each fitting u32.
fn reference_1c(text: &str) -> Option<Vec<u64>> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 8 {
        return None;
    }
    parts
        .iter()
        .map(|p| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let value = p.trim_start_matches('0').bytes().try_fold(0u64, |n, d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })?;
            (value <= u64::from(u32::MAX)).then_some(value)
        })
        .collect()
}

/// Part by part, missing parts are 0.
fn reference_cmp(a: &[u64], b: &[u64]) -> Ordering {
    (0..a.len().max(b.len()))
        .map(|i| a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn hash(v: &Version) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}
