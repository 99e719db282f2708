//! Properties shared by several fuzz targets.

use vypusk_protocol::FileName;

/// What every accepted file name must satisfy (SPEC §3): it stays inside the directory it is
/// written into, on Linux and on Windows.
pub fn assert_safe_file_name(name: &FileName, input: &str) {
    let s = name.as_str();
    assert_eq!(s, input, "an accepted name is kept as given");
    assert!(!s.is_empty() && s.len() <= 255, "{s:?}: length");
    assert!(s != "." && !s.contains(".."), "{s:?}: dots");
    assert!(!s.contains(['/', '\\', ':']), "{s:?}: separator");
    assert!(!s.chars().any(char::is_control), "{s:?}: control character");
    assert_eq!(s.trim(), s, "{s:?}: surrounding whitespace");
}
