//! Names that cross the wire and end up as paths on disk.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid file name {name:?}: {why}")]
pub struct NameError {
    pub name: String,
    pub why: &'static str,
}

/// A plain file name (SPEC §3): no `/`, `\`, `..`, NUL or control characters, at most 255
/// bytes, not `.`. Also refused: a leading dot (a hidden file the installer would not show),
/// Unicode format characters such as U+202E RIGHT-TO-LEFT OVERRIDE (they make `exe.zip` out of
/// `piz.exe`; `char::is_control` misses them) and line or paragraph separators. Both the server
/// (on upload) and the updater (before writing) check it with this one rule, so a name the
/// server accepts is one the updater installs, and no name can leave its directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileName(String);

impl FileName {
    pub fn parse(name: &str) -> Result<FileName, NameError> {
        let fail = |why| {
            Err(NameError {
                name: name.chars().take(300).collect(),
                why,
            })
        };
        if name.is_empty() {
            return fail("empty");
        }
        if name.len() > 255 {
            return fail("longer than 255 bytes");
        }
        if name == "." || name.contains("..") {
            return fail("contains '..' or is '.'");
        }
        if name.contains('/') || name.contains('\\') {
            return fail("contains a path separator");
        }
        if name.starts_with('.') {
            return fail("starts with a dot (a hidden file)");
        }
        if name.chars().any(char::is_control) {
            return fail("contains a control character");
        }
        if name.chars().any(is_invisible_format) {
            return fail("contains an invisible formatting character (such as U+202E)");
        }
        // Windows drive-relative names such as `C:evil` would leave the directory there.
        if name.contains(':') {
            return fail("contains ':'");
        }
        if name.trim() != name {
            return fail("starts or ends with whitespace");
        }
        Ok(FileName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Format characters (general category Cf: bidirectional overrides, zero-width joiners,
/// the BOM, …) and line/paragraph separators: they change how a name reads without being seen.
fn is_invisible_format(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// True when two names differ only in case, compared with full Unicode case folding (`ß` and
/// `SS`, `Ё` and `ё`): on a case-insensitive file system (Windows, macOS) they are one file.
pub fn same_name_ignoring_case(a: &str, b: &str) -> bool {
    unicase::UniCase::new(a) == unicase::UniCase::new(b)
}

/// The first pair of `names` that differ only in case, if any.
pub fn case_collision<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<(&'a str, &'a str)> {
    let mut seen = std::collections::HashMap::new();
    for name in names {
        if let Some(first) = seen.insert(unicase::UniCase::new(name), name) {
            return Some((first, name));
        }
    }
    None
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for ok in [
            "PT40.zip",
            "PT40_UT_KA_ERP_2.4.11.4.ZIP",
            "Расширение.cfe",
            "a b.zip",
            "x",
        ] {
            assert!(FileName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_path_tricks() {
        let long = "a".repeat(256);
        for bad in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/b",
            "a\\b",
            "/abs",
            "C:evil",
            "a\0b",
            "a\nb",
            "x..zip",
            long.as_str(),
            " lead",
            ".hidden",
            ".zip",
            "evil\u{202E}piz.exe",
            "a\u{200B}b.zip",
            "a\u{2066}b.zip",
            "\u{FEFF}setup.zip",
            "a\u{2028}b",
            "a\u{00AD}b",
        ] {
            assert!(FileName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn case_folding_finds_names_that_are_one_file() {
        assert!(same_name_ignoring_case("Setup.zip", "setup.zip"));
        assert!(same_name_ignoring_case("Расширение.cfe", "РАСШИРЕНИЕ.CFE"));
        assert!(same_name_ignoring_case("straße.zip", "STRASSE.ZIP"));
        assert!(!same_name_ignoring_case("a.zip", "b.zip"));
        assert_eq!(
            case_collision(["a.zip", "Setup.zip", "b.zip", "setup.zip"]),
            Some(("Setup.zip", "setup.zip"))
        );
        assert_eq!(case_collision(["a.zip", "b.zip"]), None);
    }
}
