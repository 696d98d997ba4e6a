//! The envelope of every stored ciphertext: header parsing and authenticated opening never
//! panic, and nothing but the one valid ciphertext opens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_crypto::{envelope, AssociatedData, Data, Key};

fuzz_target!(|data: &[u8]| {
    let _ = envelope::header(data);
    let key: Key<Data> = Key::from_bytes(&[9u8; 32]).unwrap();
    let ad = AssociatedData::new("credential").field("app").number(1);
    assert!(key.open(&ad, data).is_err(), "a forged envelope opened");
});
