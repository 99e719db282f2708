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
    assert!(!s.starts_with('.'), "{s:?}: hidden file");
    // Bidirectional overrides, zero-width and other format characters (issue 7, defect 9).
    assert!(
        !s.chars().any(
            |c| matches!(c, '\u{00AD}' | '\u{061C}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}' | '\u{2028}' | '\u{2029}')
        ),
        "{s:?}: invisible formatting character"
    );
}
