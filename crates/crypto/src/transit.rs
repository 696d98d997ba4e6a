//! Transit encryption ("encryption as a service", Vault's Transit engine): keys that never
//! leave the server encrypt and decrypt data the caller keeps.
//!
//! Layout of one ciphertext body (Vault's `aes256-gcm96`, so the shape is familiar; the bytes
//! are not portable between Vault and Strongroom since the keys are not):
//!
//! ```text
//! nonce (12, random) ‖ AES-256-GCM ciphertext ‖ tag (16)
//! ```
//!
//! The caller's `associated_data` is the AEAD's associated data, as given (Vault's semantics).
//! A *derived* key encrypts under a per-context key: HKDF-Expand (SHA-256, one block) of the
//! transit key with info `"strongroom/v1/transit-context" ‖ context` — a context never gives
//! the same key as another. Frozen; pinned by a vector.

use aws_lc_rs::aead::{Aad, Nonce, NONCE_LEN};
use zeroize::Zeroizing;

use crate::envelope::TAG_LEN;
use crate::keys::Key;
use crate::{random, CryptoError};

/// Marker: a transit key (a named key of a namespace's Transit engine, or one derived from it).
pub enum Transit {}

impl crate::keys::Macs for Transit {}

/// The smallest valid ciphertext body.
pub const MIN_LEN: usize = NONCE_LEN + TAG_LEN;

impl Key<Transit> {
    /// The key for one `context` of a derived transit key.
    pub fn for_context(&self, context: &[u8]) -> Result<Key<Transit>, CryptoError> {
        let mut info = Vec::with_capacity(context.len() + 40);
        info.extend_from_slice(b"strongroom/v1/transit-context");
        info.extend_from_slice(context);
        info.push(1);
        let okm = Zeroizing::new(self.mac(&info));
        Key::from_bytes(okm.as_slice())
    }

    /// Encrypts `plaintext` bound to the caller's `associated_data`.
    pub fn encrypt(
        &self,
        associated_data: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let nonce = random::bytes::<NONCE_LEN>()?;
        let mut body = plaintext.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data),
                &mut body,
            )
            .map_err(|_| CryptoError::Integrity)?;
        let mut out = Vec::with_capacity(NONCE_LEN + body.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decrypts a body made by [`Key::encrypt`] with the same associated data; anything else
    /// (altered, truncated, another key or context) is [`CryptoError::Integrity`].
    pub fn decrypt(
        &self,
        associated_data: &[u8],
        body: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if body.len() < MIN_LEN {
            return Err(CryptoError::Truncated { len: body.len() });
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&body[..NONCE_LEN]);
        let mut sealed = Zeroizing::new(body[NONCE_LEN..].to_vec());
        let len = self
            .aead()
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data),
                &mut sealed,
            )
            .map_err(|_| CryptoError::Integrity)?
            .len();
        sealed.truncate(len);
        Ok(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key<Transit> {
        let bytes: Vec<u8> = (0..32).collect();
        Key::from_bytes(&bytes).unwrap()
    }

    #[test]
    fn round_trip_and_every_change_refused() {
        let k = key();
        let body = k.encrypt(b"ad", b"hello").unwrap();
        assert_eq!(body.len(), MIN_LEN + 5);
        assert_eq!(k.decrypt(b"ad", &body).unwrap().as_slice(), b"hello");
        assert!(k.decrypt(b"other", &body).is_err());
        assert!(k.decrypt(b"", &body).is_err());
        for i in 0..body.len() {
            let mut bad = body.clone();
            bad[i] ^= 1;
            assert!(k.decrypt(b"ad", &bad).is_err(), "byte {i}");
        }
        assert!(k.decrypt(b"ad", &body[..MIN_LEN - 1]).is_err());
        let other = k.for_context(b"user-1").unwrap();
        assert!(other.decrypt(b"ad", &body).is_err());
    }

    /// Frozen: computed outside this code base (Python: `cryptography` AES-GCM and `hmac`).
    #[test]
    fn formats_are_pinned() {
        let k = key();
        let derived = k.for_context(b"user-1").unwrap();
        assert_eq!(
            hex::encode(derived.expose_bytes()),
            "3d03391cb5eedfc1aaa9ef482c527787ec2453fbc496c15354ee4fc8c6498d14"
        );
        let fixture =
            hex::decode("6465666768696a6b6c6d6e6f207eb20a16d6c442ee179ec4e3b510c10112bef447")
                .unwrap();
        assert_eq!(k.decrypt(b"ad", &fixture).unwrap().as_slice(), b"hello");
    }
}
