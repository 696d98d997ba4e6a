//! The ciphertext envelope: Strongroom's frozen on-disk format for every encrypted value.
//!
//! ```text
//! offset  size  field
//! 0       1     format version   (FORMAT_V1 = 0x01)
//! 1       1     algorithm        (ALG_AES_256_GCM = 0x01)
//! 2       4     key version      (big-endian u32; which version of the key sealed it)
//! 6       12    nonce            (random per message)
//! 18      n+16  ciphertext and GCM tag
//! ```
//!
//! The 18-byte header is authenticated: it is prepended to the caller's associated data, so a
//! header edited to claim another key version or algorithm fails the integrity check. These
//! constants are frozen: a new layout gets a new format byte, and old ones keep decrypting.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, NONCE_LEN};
use zeroize::Zeroizing;

use crate::associated_data::AssociatedData;
use crate::{random, CryptoError};

/// Format byte of the only layout so far. Frozen.
pub const FORMAT_V1: u8 = 0x01;
/// Algorithm byte for AES-256-GCM. Frozen.
pub const ALG_AES_256_GCM: u8 = 0x01;
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 2 + 4 + NONCE_LEN;
/// Bytes of the authentication tag.
pub const TAG_LEN: usize = 16;

/// The parsed, not yet authenticated, header of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub format: u8,
    pub algorithm: u8,
    pub key_version: u32,
}

/// Reads the header of an envelope without decrypting it (e.g. to pick the key version).
pub fn header(envelope: &[u8]) -> Result<Header, CryptoError> {
    if envelope.len() < HEADER_LEN + TAG_LEN {
        return Err(CryptoError::Truncated {
            len: envelope.len(),
        });
    }
    let header = Header {
        format: envelope[0],
        algorithm: envelope[1],
        key_version: u32::from_be_bytes([envelope[2], envelope[3], envelope[4], envelope[5]]),
    };
    if header.format != FORMAT_V1 || header.algorithm != ALG_AES_256_GCM {
        return Err(CryptoError::UnsupportedFormat {
            format: header.format,
            algorithm: header.algorithm,
        });
    }
    Ok(header)
}

pub(crate) fn seal(
    key: &LessSafeKey,
    key_version: u32,
    ad: &AssociatedData,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let nonce_bytes = random::bytes::<NONCE_LEN>()?;
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    out.push(FORMAT_V1);
    out.push(ALG_AES_256_GCM);
    out.extend_from_slice(&key_version.to_be_bytes());
    out.extend_from_slice(&nonce_bytes);
    let aad = full_aad(&out[..HEADER_LEN], ad);
    out.extend_from_slice(plaintext);
    let mut body = out.split_off(HEADER_LEN);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce_bytes),
        Aad::from(&aad),
        &mut body,
    )
    .map_err(|_| CryptoError::Integrity)?;
    out.extend_from_slice(&body);
    Ok(out)
}

pub(crate) fn open(
    key: &LessSafeKey,
    ad: &AssociatedData,
    envelope: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    header(envelope)?;
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&envelope[6..HEADER_LEN]);
    let aad = full_aad(&envelope[..HEADER_LEN], ad);
    let mut body = Zeroizing::new(envelope[HEADER_LEN..].to_vec());
    let plain_len = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad),
            &mut body,
        )
        .map_err(|_| CryptoError::Integrity)?
        .len();
    body.truncate(plain_len);
    Ok(body)
}

fn full_aad(header: &[u8], ad: &AssociatedData) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + ad.as_bytes().len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(ad.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Data, Key};

    #[test]
    fn header_records_key_version() {
        let key = Key::<Data>::generate().unwrap();
        let sealed = key.seal(42, &AssociatedData::new("t"), b"abc").unwrap();
        let h = header(&sealed).unwrap();
        assert_eq!(h.key_version, 42);
        assert_eq!(sealed.len(), HEADER_LEN + 3 + TAG_LEN);
    }

    #[test]
    fn unknown_format_is_refused() {
        let key = Key::<Data>::generate().unwrap();
        let mut sealed = key.seal(1, &AssociatedData::new("t"), b"abc").unwrap();
        sealed[0] = 9;
        assert!(matches!(
            header(&sealed),
            Err(CryptoError::UnsupportedFormat { .. })
        ));
    }

    #[test]
    fn truncated_is_refused() {
        assert!(matches!(
            header(&[1, 1, 0]),
            Err(CryptoError::Truncated { .. })
        ));
    }
}
