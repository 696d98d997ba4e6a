//! The `Range` header of a download.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = strongroom_server::range::parse(data);
});
