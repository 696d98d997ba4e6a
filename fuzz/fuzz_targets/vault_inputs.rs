//! What the Vault-compatible API and stored configuration parse: transit ciphertexts as
//! clients send them, and configuration JSON read leniently from authenticated rows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_core::fuzzing;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = fuzzing::transit_ciphertext(text);
    }
    let _ = fuzzing::stored_config(data);
});
