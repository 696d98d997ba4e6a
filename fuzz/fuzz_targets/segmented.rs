//! A stored file: its header and any segment, opened as first, middle or last.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_crypto::segmented::{FileHeader, SegmentCipher};
use strongroom_crypto::{AssociatedData, Data, Key};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = FileHeader::parse(data) else {
        return;
    };
    let _ = header.segment_count(data.len() as u64);
    let _ = header.stored_len(data.len() as u64);
    let key: Key<Data> = Key::from_bytes(&[9u8; 32]).unwrap();
    let ad = AssociatedData::new("file").field("app").field("f1");
    let cipher = SegmentCipher::new(&key, b"0123456789abcdef", header, &ad).unwrap();
    let body = &data[strongroom_crypto::segmented::HEADER_LEN..];
    for (index, last) in [(0, false), (0, true), (1, true)] {
        assert!(cipher.open(index, body, last).is_err(), "a forged segment opened");
    }
});
