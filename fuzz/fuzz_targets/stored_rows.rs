//! Bytes read back from the database: authenticated rows, the audit anchor, and the stored
//! configuration JSON they carry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_core::fuzzing;

fuzz_target!(|data: &[u8]| {
    assert!(!fuzzing::authenticated_row(data) || data.first() == Some(&b'{'), "a forged row authenticated");
    assert!(!fuzzing::audit_anchor(data), "a forged anchor authenticated");
    let _ = serde_json::from_slice::<strongroom_core::Policy>(data);
    let _ = serde_json::from_slice::<strongroom_core::oauth::ProviderConfig>(data);
    let _ = serde_json::from_slice::<strongroom_core::records::CollectionSettings>(data);
    let _ = serde_json::from_slice::<strongroom_core::files::FilePolicy>(data);
});
