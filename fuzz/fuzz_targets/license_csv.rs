//! The license CSV import (SPEC §5): never panics; a refused file names at least one bad line,
//! every error starts with `line N: ` for a line that exists; an accepted file gives licenses
//! that pass the API's own validation, each key once.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use vypusk_formats::licenses_csv;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // csv counts a line at each `\n`, `\r` or `\r\n`.
    let lines = text.matches(['\n', '\r']).count() as u64 + 1;
    match licenses_csv::parse(text) {
        Err(errors) => {
            assert!(!errors.is_empty(), "refused without a reason");
            for e in &errors {
                let n: u64 = e
                    .strip_prefix("line ")
                    .and_then(|rest| rest.split_once(": "))
                    .and_then(|(n, _)| n.parse().ok())
                    .unwrap_or_else(|| panic!("error without a line number: {e:?}"));
                assert!((1..=lines).contains(&n), "line {n} of {lines}: {e:?}");
            }
            let message = licenses_csv::error_message(&errors);
            assert!(message.starts_with("the CSV has "), "{message}");
        }
        Ok(licenses) => {
            let mut keys = HashSet::new();
            for license in &licenses {
                assert_eq!(licenses_csv::validate(license), Ok(()), "{license:?}");
                assert!(keys.insert(license.key.as_str()), "{} twice", license.key);
            }
        }
    }
});
