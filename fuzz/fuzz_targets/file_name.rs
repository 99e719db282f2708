//! File names (SPEC §3, `vypusk_protocol::FileName`, shared by the server and `vypusk-update`):
//! an accepted name never leaves the directory it is written into.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vypusk_fuzz::assert_safe_file_name;
use vypusk_protocol::FileName;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match FileName::parse(text) {
        Ok(name) => assert_safe_file_name(&name, text),
        Err(e) => assert!(e.name.chars().count() <= 300, "the error quotes too much"),
    }
});
