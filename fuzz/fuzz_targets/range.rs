//! The `Range` header (SPEC §4.6, RFC 9110 §14): a satisfiable range lies within the file, is
//! never empty, and comes only from `bytes=` with digits; well-formed single ranges give exactly
//! what RFC 9110 §14.1.2 says.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vypusk_formats::{RangeRequest, parse_range};

#[derive(Arbitrary, Debug)]
enum Spec {
    /// Any header text.
    Raw(String),
    /// `bytes=FIRST-LAST` with either side left out.
    Single {
        first: Option<u64>,
        last: Option<u64>,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Small sizes exercise the edges (0, 1, a range past the end) more often.
    small_size: Option<u16>,
    size: u64,
    spec: Spec,
}

fuzz_target!(|input: Input| {
    let size = input.small_size.map_or(input.size, u64::from);
    let (spec, single) = match input.spec {
        Spec::Raw(text) => (text, None),
        Spec::Single { first, last } => {
            let show = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
            (
                format!("bytes={}-{}", show(first), show(last)),
                Some((first, last)),
            )
        }
    };
    let answer = parse_range(&spec, size);
    match &answer {
        RangeRequest::Satisfiable(r) => {
            assert!(
                r.start < r.end && r.end <= size,
                "{spec:?} size {size}: {r:?}"
            );
            let digits = spec.trim().strip_prefix("bytes=").expect("a bytes= range");
            assert!(
                digits
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b' ' | b'\t')),
                "{spec:?} is not a bytes= range of digits but was served as {r:?}"
            );
        }
        RangeRequest::Unsatisfiable => {
            assert!(
                spec.trim().starts_with("bytes="),
                "{spec:?}: 416 for a non-byte range"
            );
        }
        RangeRequest::Ignored => {}
    }
    if let Some((first, last)) = single {
        let expected = match (first, last) {
            (None, None) => Some(RangeRequest::Ignored),
            // A suffix: the last N bytes; none of an empty file, and `-0` asks for nothing.
            (None, Some(n)) if n == 0 || size == 0 => Some(RangeRequest::Unsatisfiable),
            (None, Some(n)) => Some(RangeRequest::Satisfiable(size - n.min(size)..size)),
            // An invalid range (last < first) may be ignored or refused (RFC 9110 §14.2).
            (Some(f), Some(l)) if l < f => None,
            (Some(f), _) if f >= size => Some(RangeRequest::Unsatisfiable),
            (Some(f), l) => Some(RangeRequest::Satisfiable(
                f..l.map_or(size, |l| l.min(size - 1) + 1),
            )),
        };
        match expected {
            Some(expected) => assert_eq!(answer, expected, "{spec:?} size {size}"),
            None => assert_ne!(
                std::mem::discriminant(&answer),
                std::mem::discriminant(&RangeRequest::Satisfiable(0..1)),
                "{spec:?} size {size}"
            ),
        }
    }
});
