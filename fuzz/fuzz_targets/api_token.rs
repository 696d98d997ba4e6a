//! A presented bearer token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_crypto::token::ApiToken;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(token) = ApiToken::parse(text) {
            assert_eq!(token.id().len(), 16);
            assert!(!token.matches(&[0u8; 32]));
        }
    }
});
