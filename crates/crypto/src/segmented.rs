//! Segmented (streaming) encryption for files of any size with constant memory.
//!
//! A file is cut into fixed-size plaintext segments; each is sealed with AES-256-GCM under a
//! per-file key. The nonce of segment `i` is `prefix(7) ‖ i(4, BE) ‖ final(1)`, so every segment
//! is bound to its position and to whether it ends the file: reordering, dropping a segment,
//! truncating at a segment boundary (the new last segment was not sealed as final) or splicing
//! a segment from another file (another key and prefix) all fail authentication. The header —
//! format, algorithm, segment size and nonce prefix — is authenticated as associated data of
//! every segment, together with the caller's associated data. A range read decrypts only the
//! segments it touches: segment `i` starts at `HEADER_LEN + i * (segment_size + TAG_LEN)`.
//!
//! ```text
//! header: format(1)=0x01 ‖ algorithm(1)=0x01 ‖ segment_size(4, BE) ‖ nonce_prefix(7)
//! body:   segment_0 ‖ segment_1 ‖ … ‖ segment_n (the last one sealed as final, possibly empty)
//! ```

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use zeroize::Zeroizing;

use crate::{random, AssociatedData, CryptoError, Data, Key};

/// Format byte of the segmented layout. Frozen.
pub const FORMAT_V1: u8 = 0x01;
/// Algorithm byte for AES-256-GCM. Frozen.
pub const ALG_AES_256_GCM: u8 = 0x01;
/// Bytes of the header.
pub const HEADER_LEN: usize = 1 + 1 + 4 + 7;
/// Bytes of each segment's tag.
pub const TAG_LEN: usize = 16;
/// Default plaintext bytes per segment.
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;
const MAX_SEGMENTS: u64 = u32::MAX as u64;

/// The parsed header of a segmented file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub segment_size: u32,
    nonce_prefix: [u8; 7],
}

impl FileHeader {
    /// A new header with a random nonce prefix.
    pub fn new(segment_size: u32) -> Result<Self, CryptoError> {
        if !(16..=16 * 1024 * 1024).contains(&segment_size) {
            return Err(CryptoError::InvalidKey(format!(
                "segment size {segment_size} is out of range"
            )));
        }
        Ok(Self {
            segment_size,
            nonce_prefix: random::bytes::<7>()?,
        })
    }

    /// The header's bytes, which start the stored object.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = FORMAT_V1;
        out[1] = ALG_AES_256_GCM;
        out[2..6].copy_from_slice(&self.segment_size.to_be_bytes());
        out[6..].copy_from_slice(&self.nonce_prefix);
        out
    }

    /// Parses a stored header.
    pub fn parse(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() < HEADER_LEN {
            return Err(CryptoError::Truncated { len: bytes.len() });
        }
        if bytes[0] != FORMAT_V1 || bytes[1] != ALG_AES_256_GCM {
            return Err(CryptoError::UnsupportedFormat {
                format: bytes[0],
                algorithm: bytes[1],
            });
        }
        let segment_size = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
        if !(16..=16 * 1024 * 1024).contains(&segment_size) {
            return Err(CryptoError::Integrity);
        }
        let mut nonce_prefix = [0u8; 7];
        nonce_prefix.copy_from_slice(&bytes[6..HEADER_LEN]);
        Ok(Self {
            segment_size,
            nonce_prefix,
        })
    }

    /// Where segment `index` starts in the stored object.
    pub fn segment_offset(&self, index: u64) -> u64 {
        HEADER_LEN as u64 + index * (u64::from(self.segment_size) + TAG_LEN as u64)
    }

    /// The stored size of a file of `plaintext_len` bytes.
    pub fn stored_len(&self, plaintext_len: u64) -> u64 {
        let segments = plaintext_len / u64::from(self.segment_size) + 1;
        HEADER_LEN as u64 + plaintext_len + segments * TAG_LEN as u64
    }

    /// How many segments a file of `plaintext_len` bytes has (the last may be empty).
    pub fn segment_count(&self, plaintext_len: u64) -> u64 {
        plaintext_len / u64::from(self.segment_size) + 1
    }

    fn nonce(&self, index: u64, last: bool) -> Result<Nonce, CryptoError> {
        if index >= MAX_SEGMENTS {
            return Err(CryptoError::InvalidKey(
                "the file has too many segments".into(),
            ));
        }
        let mut n = [0u8; 12];
        n[..7].copy_from_slice(&self.nonce_prefix);
        n[7..11].copy_from_slice(&(index as u32).to_be_bytes());
        n[11] = u8::from(last);
        Ok(Nonce::assume_unique_for_key(n))
    }
}

/// Seals and opens the segments of one file.
pub struct SegmentCipher {
    key: LessSafeKey,
    header: FileHeader,
    aad: Vec<u8>,
}

impl SegmentCipher {
    /// A cipher for the file whose per-file key is derived from `data_key` and `file_id`.
    pub fn new(
        data_key: &Key<Data>,
        file_id: &[u8],
        header: FileHeader,
        ad: &AssociatedData,
    ) -> Result<Self, CryptoError> {
        let mut label = String::from("file/");
        label.push_str(
            &file_id
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        );
        let file_key: Key<Data> = data_key.derive(&label)?;
        let bytes = Zeroizing::new(*file_key.expose_bytes());
        let unbound = UnboundKey::new(&AES_256_GCM, bytes.as_slice())
            .map_err(|_| CryptoError::InvalidKey("rejected by AES-256-GCM".into()))?;
        let mut aad = header.to_bytes().to_vec();
        aad.extend_from_slice(ad.as_bytes());
        Ok(Self {
            key: LessSafeKey::new(unbound),
            header,
            aad,
        })
    }

    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// Seals segment `index`; every segment but the last must be exactly `segment_size` bytes.
    pub fn seal(&self, index: u64, plaintext: &[u8], last: bool) -> Result<Vec<u8>, CryptoError> {
        let size = self.header.segment_size as usize;
        if plaintext.len() > size || (!last && plaintext.len() != size) {
            return Err(CryptoError::InvalidKey(
                "a segment has the wrong length".into(),
            ));
        }
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                self.header.nonce(index, last)?,
                Aad::from(self.aad.as_slice()),
                &mut buf,
            )
            .map_err(|_| CryptoError::Integrity)?;
        Ok(buf)
    }

    /// Seals segment `index` where it lies (no copy) and returns its tag, to be appended right
    /// after it; the same length rules as [`Self::seal`].
    pub fn seal_in_place(
        &self,
        index: u64,
        segment: &mut [u8],
        last: bool,
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let size = self.header.segment_size as usize;
        if segment.len() > size || (!last && segment.len() != size) {
            return Err(CryptoError::InvalidKey(
                "a segment has the wrong length".into(),
            ));
        }
        let tag = self
            .key
            .seal_in_place_separate_tag(
                self.header.nonce(index, last)?,
                Aad::from(self.aad.as_slice()),
                segment,
            )
            .map_err(|_| CryptoError::Integrity)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens segment `index`; `last` must say whether it is the file's final segment.
    pub fn open(
        &self,
        index: u64,
        ciphertext: &[u8],
        last: bool,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = self.open_in_place(index, &mut buf, last)?;
        buf.truncate(len);
        Ok(buf)
    }

    /// Opens segment `index` where it lies (no copy); returns the plaintext's length, which
    /// is a prefix of `sealed`. On failure the buffer's contents are unspecified: drop them.
    pub fn open_in_place(
        &self,
        index: u64,
        sealed: &mut [u8],
        last: bool,
    ) -> Result<usize, CryptoError> {
        if sealed.len() < TAG_LEN || sealed.len() > self.header.segment_size as usize + TAG_LEN {
            return Err(CryptoError::Integrity);
        }
        self.key
            .open_in_place(
                self.header.nonce(index, last)?,
                Aad::from(self.aad.as_slice()),
                sealed,
            )
            .map(|plain| plain.len())
            .map_err(|_| CryptoError::Integrity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(file_id: &[u8], header: FileHeader) -> SegmentCipher {
        let data_key = Key::<Data>::from_bytes(&[7u8; 32]).unwrap();
        SegmentCipher::new(
            &data_key,
            file_id,
            header,
            &AssociatedData::new("file").field("ns").field(file_id),
        )
        .unwrap()
    }

    #[test]
    fn in_place_forms_match_the_copying_ones() {
        let c = cipher(b"file-x", FileHeader::new(32).unwrap());
        let plain = [7u8; 32];
        let sealed = c.seal(3, &plain, false).unwrap();
        let mut in_place = plain;
        let tag = c.seal_in_place(3, &mut in_place, false).unwrap();
        assert_eq!([&in_place[..], &tag[..]].concat(), sealed);
        let mut buf = sealed.clone();
        let n = c.open_in_place(3, &mut buf, false).unwrap();
        assert_eq!(&buf[..n], &plain[..]);
        let mut wrong = sealed.clone();
        assert!(
            c.open_in_place(3, &mut wrong, true).is_err(),
            "final flag is bound"
        );
        assert!(
            c.seal_in_place(0, &mut [0u8; 5], false).is_err(),
            "short non-final segment"
        );
    }

    /// Encrypts `plain` into header ‖ segments.
    fn encrypt(c: &SegmentCipher, plain: &[u8]) -> Vec<u8> {
        let size = c.header().segment_size as usize;
        let mut out = c.header().to_bytes().to_vec();
        let count = c.header().segment_count(plain.len() as u64) as usize;
        for i in 0..count {
            let chunk = &plain[(i * size).min(plain.len())..((i + 1) * size).min(plain.len())];
            out.extend(c.seal(i as u64, chunk, i + 1 == count).unwrap());
        }
        out
    }

    /// Decrypts a whole stored object, knowing its length.
    fn decrypt(c: &SegmentCipher, stored: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let seg = c.header().segment_size as usize + TAG_LEN;
        let body = &stored[HEADER_LEN..];
        let count = body.len().div_ceil(seg).max(1);
        let mut out = Vec::new();
        for i in 0..count {
            let part = &body[i * seg..((i + 1) * seg).min(body.len())];
            out.extend_from_slice(&c.open(i as u64, part, i + 1 == count)?);
        }
        Ok(out)
    }

    #[test]
    fn roundtrip_sizes_and_layout() {
        let header = FileHeader::new(32).unwrap();
        let c = cipher(b"f1", header);
        for len in [0usize, 1, 31, 32, 33, 64, 100] {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let stored = encrypt(&c, &plain);
            assert_eq!(
                stored.len() as u64,
                header.stored_len(len as u64),
                "len {len}"
            );
            assert_eq!(decrypt(&c, &stored).unwrap(), plain, "len {len}");
        }
        let parsed = FileHeader::parse(&header.to_bytes()).unwrap();
        assert_eq!(parsed, header);
    }

    #[test]
    fn a_range_read_opens_only_its_segment() {
        let header = FileHeader::new(32).unwrap();
        let c = cipher(b"f1", header);
        let plain: Vec<u8> = (0..100u8).collect();
        let stored = encrypt(&c, &plain);
        let at = header.segment_offset(2) as usize;
        let seg = c.open(2, &stored[at..at + 32 + TAG_LEN], false).unwrap();
        assert_eq!(seg.as_slice(), &plain[64..96]);
    }

    #[test]
    fn tampering_truncation_reordering_and_splicing_are_detected() {
        let header = FileHeader::new(32).unwrap();
        let c = cipher(b"f1", header);
        let plain: Vec<u8> = (0..100u8).collect();
        let stored = encrypt(&c, &plain);
        let seg = 32 + TAG_LEN;
        for i in [0, HEADER_LEN, HEADER_LEN + 40, stored.len() - 1] {
            let mut bad = stored.clone();
            bad[i] ^= 1;
            assert!(
                FileHeader::parse(&bad)
                    .map(|h| decrypt(&cipher(b"f1", h), &bad))
                    .map_or(true, |r| r.is_err()),
                "flip at {i}"
            );
        }
        // Truncated at a segment boundary: the new last segment was not sealed as final.
        assert!(decrypt(&c, &stored[..HEADER_LEN + 2 * seg]).is_err());
        // Two segments swapped.
        let mut swapped = stored[..HEADER_LEN].to_vec();
        swapped.extend_from_slice(&stored[HEADER_LEN + seg..HEADER_LEN + 2 * seg]);
        swapped.extend_from_slice(&stored[HEADER_LEN..HEADER_LEN + seg]);
        swapped.extend_from_slice(&stored[HEADER_LEN + 2 * seg..]);
        assert!(decrypt(&c, &swapped).is_err());
        // A segment from another file (same size, same position).
        let other = cipher(b"f2", FileHeader::new(32).unwrap());
        let other_stored = encrypt(&other, &plain);
        let mut spliced = stored.clone();
        spliced[HEADER_LEN..HEADER_LEN + seg]
            .copy_from_slice(&other_stored[HEADER_LEN..HEADER_LEN + seg]);
        assert!(decrypt(&c, &spliced).is_err());
    }

    #[test]
    fn wrong_segment_lengths_are_refused() {
        let c = cipher(b"f1", FileHeader::new(32).unwrap());
        assert!(
            c.seal(0, &[0u8; 31], false).is_err(),
            "only the last segment may be short"
        );
        assert!(c.seal(0, &[0u8; 33], true).is_err());
        assert!(FileHeader::new(8).is_err());
    }
}
