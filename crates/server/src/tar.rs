//! Just enough POSIX ustar to stream an export archive: one 512-byte header per entry, the
//! contents, zero padding to a 512-byte boundary, and two zero blocks at the end. Sizes past
//! ustar's 8 GiB octal field use the GNU base-256 form that every common `tar` reads.

pub const BLOCK: usize = 512;

/// The header block of a regular file `name` (at most 100 bytes) of `size` bytes.
pub fn file_header(name: &str, size: u64, mtime_secs: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let name = name.as_bytes();
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], 0o600);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    if size < 0o77777777777 {
        octal(&mut h[124..136], size);
    } else {
        // GNU base-256: high bit set, big-endian value in the remaining 11 bytes.
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut h[136..148], mtime_secs);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

/// Zero bytes that pad an entry of `size` bytes to the next block.
pub fn padding(size: u64) -> usize {
    (BLOCK - (size % BLOCK as u64) as usize) % BLOCK
}

/// Writes `value` as zero-padded octal filling `field` but its last byte (a NUL).
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    field[..width].copy_from_slice(&text.as_bytes()[text.len() - width..]);
    field[width] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_have_a_valid_checksum_and_fields() {
        let h = file_header("files/abc", 1234, 1_700_000_000);
        assert_eq!(&h[..9], b"files/abc");
        assert_eq!(&h[124..136], b"00000002322\0");
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut copy = h;
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|&b| u32::from(b)).sum::<u32>());
        assert_eq!(padding(1234), 512 - 1234 % 512);
        assert_eq!(padding(1024), 0);
        let big = file_header("x", 10 << 30, 0);
        assert_eq!(big[124], 0x80);
    }
}
