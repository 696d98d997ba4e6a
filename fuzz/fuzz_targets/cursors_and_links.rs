//! Page cursors and download links, as clients send them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_core::fuzzing;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = fuzzing::events_cursor(text);
        let _ = fuzzing::files_cursor(text);
        assert!(!fuzzing::download_link(text), "a forged download link verified");
    }
});
