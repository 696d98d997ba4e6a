//! The export archive's entry headers: any name, size and time make a well-formed ustar
//! header (valid checksum, the name never spilling into other fields).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_server::tar::{file_header, padding, BLOCK};

fuzz_target!(|input: (&str, u64, u64)| {
    let (name, size, mtime) = input;
    let h = file_header(name, size, mtime);
    assert_eq!(h.len(), BLOCK);
    let stored = std::str::from_utf8(&h[148..154]).expect("checksum is ASCII octal");
    let stored = u32::from_str_radix(stored, 8).expect("checksum is octal");
    let mut copy = h;
    copy[148..156].copy_from_slice(b"        ");
    assert_eq!(stored, copy.iter().map(|&b| u32::from(b)).sum::<u32>());
    assert_eq!(&h[257..263], b"ustar\0");
    assert!((padding(size) + (size % BLOCK as u64) as usize) % BLOCK == 0);
});
