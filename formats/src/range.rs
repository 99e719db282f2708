//! The `Range` header of downloads (SPEC §4.6; RFC 9110 §14.2): one `bytes=` range, or the
//! whole file.

use std::ops::Range;

#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    Satisfiable(Range<u64>),
    /// Malformed or multi-range: answered with the whole file, as RFC 9110 allows.
    Ignored,
    Unsatisfiable,
}

/// Optional whitespace of RFC 9110 §5.6.3: spaces and tabs only.
const OWS: [char; 2] = [' ', '\t'];

/// One `bytes=` range against a file of `size` bytes. Positions are ASCII digits only
/// (RFC 9110 §14.1.1 `1*DIGIT`): `u64::from_str` alone would also take a sign.
pub fn parse_range(spec: &str, size: u64) -> RangeRequest {
    let Some(ranges) = spec.trim_matches(OWS).strip_prefix("bytes=") else {
        return RangeRequest::Ignored;
    };
    if ranges.contains(',') {
        return RangeRequest::Ignored;
    }
    let Some((start, end)) = ranges.trim_matches(OWS).split_once('-') else {
        return RangeRequest::Ignored;
    };
    let (start, end) = (start.trim_matches(OWS), end.trim_matches(OWS));
    let parse = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (start.is_empty(), end.is_empty()) {
        // bytes=-N: the last N bytes
        (true, false) => match parse(end) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(n) if size > 0 => RangeRequest::Satisfiable(size.saturating_sub(n)..size),
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Ignored,
        },
        (false, _) => {
            let Some(first) = parse(start) else {
                return RangeRequest::Ignored;
            };
            if first >= size {
                return RangeRequest::Unsatisfiable;
            }
            let last = if end.is_empty() {
                Some(size.saturating_sub(1))
            } else {
                parse(end)
            };
            let Some(last) = last else {
                return RangeRequest::Ignored;
            };
            if last < first {
                return RangeRequest::Ignored;
            }
            RangeRequest::Satisfiable(first..last.min(size - 1) + 1)
        }
        (true, true) => RangeRequest::Ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-99", 1000), Satisfiable(0..100));
        assert_eq!(parse_range("bytes=900-", 1000), Satisfiable(900..1000));
        assert_eq!(parse_range("bytes=-100", 1000), Satisfiable(900..1000));
        assert_eq!(parse_range("bytes=-5000", 1000), Satisfiable(0..1000));
        assert_eq!(parse_range("bytes=990-2000", 1000), Satisfiable(990..1000));
        assert_eq!(parse_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), Ignored);
        assert_eq!(parse_range("items=0-1", 1000), Ignored);
        assert_eq!(parse_range("bytes=5-1", 1000), Ignored);
        assert_eq!(parse_range("bytes=x-1", 1000), Ignored);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range(" bytes= 0 - 99\t", 1000), Satisfiable(0..100));
    }

    /// Found by the `range` fuzz target: whitespace other than SP/HTAB and signed numbers
    /// were taken as parts of a range.
    #[test]
    fn positions_are_digits_between_spaces_and_tabs() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=\r-9 ", 1000), Ignored);
        assert_eq!(parse_range("bytes=\u{a0}0-9", 1000), Ignored);
        assert_eq!(parse_range("\u{2003}bytes=0-9", 1000), Ignored);
        assert_eq!(parse_range("bytes=+5-10", 1000), Ignored);
        assert_eq!(parse_range("bytes=5-+10", 1000), Ignored);
        assert_eq!(parse_range("bytes=-+5", 1000), Ignored);
    }
}
