//! Names that cross the wire and end up as paths on disk.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid file name {name:?}: {why}")]
pub struct NameError {
    pub name: String,
    pub why: &'static str,
}

/// A plain file name (SPEC §3): no `/`, `\`, `..`, NUL or control characters, at most 255
/// bytes, not `.`. Both the server (on upload) and the updater (before writing) check it, so a
/// name can never leave the directory it is written into.
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
        if name.chars().any(char::is_control) {
            return fail("contains a control character");
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
        ] {
            assert!(FileName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
