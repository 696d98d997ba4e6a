//! Purpose-typed 256-bit keys.
//!
//! `Key<Root>` wraps namespace keys; `Key<Kek>` (a namespace key-encryption key) wraps user data
//! keys; `Key<Data>` encrypts a user's data; `Key<Index>` computes keyed hashes (blind indexes of
//! user ids). The purpose parameter makes it a compile error to, say, encrypt data directly under
//! a root key. Keys derive no `Debug`, `Clone`, `Serialize` or `PartialEq`; their bytes are
//! zeroized on drop and reachable only through [`Key::expose_bytes`].

use std::marker::PhantomData;
use std::sync::OnceLock;

use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::associated_data::AssociatedData;
use crate::{envelope, random, CryptoError};

/// Length in bytes of every Strongroom key.
pub const KEY_LEN: usize = 32;

/// Marker: the root key, from which everything else is wrapped or derived.
pub enum Root {}
/// Marker: a namespace key-encryption key (versioned), which wraps user data keys.
pub enum Kek {}
/// Marker: a per-user data key, which encrypts that user's data.
pub enum Data {}
/// Marker: a keyed-hash key (blind index of user ids, audit chain).
pub enum Index {}

/// Purposes whose keys may encrypt (seal) and decrypt (open).
pub trait Encrypts {}
impl Encrypts for Root {}
impl Encrypts for Kek {}
impl Encrypts for Data {}

/// Purposes whose keys may compute keyed hashes or derive sub-keys.
pub trait Macs {}
impl Macs for Root {}
impl Macs for Index {}
impl Macs for Data {}

/// A 256-bit key for purpose `P`.
pub struct Key<P> {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    aead: LessSafeKey,
    /// The HMAC state, built on first use (only index and root keys are ever used to MAC, so
    /// the many cached data keys do not pay for it).
    mac: OnceLock<Box<hmac::Key>>,
    purpose: PhantomData<fn() -> P>,
}

impl<P> Key<P> {
    /// Builds a key from raw bytes (the caller's copy should itself be zeroized).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            CryptoError::InvalidKey(format!("expected {KEY_LEN} bytes, got {}", bytes.len()))
        })?;
        let bytes = Zeroizing::new(array);
        let unbound = UnboundKey::new(&AES_256_GCM, bytes.as_slice())
            .map_err(|_| CryptoError::InvalidKey("rejected by AES-256-GCM".into()))?;
        Ok(Self {
            aead: LessSafeKey::new(unbound),
            mac: OnceLock::new(),
            bytes,
            purpose: PhantomData,
        })
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let bytes = Zeroizing::new(random::bytes::<KEY_LEN>()?);
        Self::from_bytes(bytes.as_slice())
    }

    /// The raw key bytes. Only for writing the root key file and for wrapping.
    pub fn expose_bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
    /// The AEAD state, for the crate's own ciphertext layouts.
    pub(crate) fn aead(&self) -> &LessSafeKey {
        &self.aead
    }
}

impl<P: Encrypts> Key<P> {
    /// Encrypts `plaintext` bound to `ad`; `key_version` is recorded in the envelope header.
    pub fn seal(
        &self,
        key_version: u32,
        ad: &AssociatedData,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        envelope::seal(&self.aead, key_version, ad, plaintext)
    }

    /// Decrypts an envelope made by [`Key::seal`] with the same `ad`; anything else is
    /// [`CryptoError::Integrity`].
    pub fn open(
        &self,
        ad: &AssociatedData,
        envelope_bytes: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        envelope::open(&self.aead, ad, envelope_bytes)
    }

    /// Encrypts another key under this one.
    pub fn wrap<Q>(
        &self,
        key_version: u32,
        ad: &AssociatedData,
        key: &Key<Q>,
    ) -> Result<Vec<u8>, CryptoError> {
        self.seal(key_version, ad, key.expose_bytes())
    }

    /// Decrypts a key wrapped by [`Key::wrap`].
    pub fn unwrap<Q>(&self, ad: &AssociatedData, wrapped: &[u8]) -> Result<Key<Q>, CryptoError> {
        let bytes = self.open(ad, wrapped)?;
        Key::from_bytes(&bytes).map_err(|_| CryptoError::Integrity)
    }
}

impl<P: Macs> Key<P> {
    /// HMAC-SHA256 of `message` under this key.
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let key = self
            .mac
            .get_or_init(|| Box::new(hmac::Key::new(hmac::HMAC_SHA256, self.bytes.as_slice())));
        let tag = hmac::sign(key, message);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Derives a sub-key for `label` (HKDF-Expand with SHA-256, one block: the parent key is
    /// already uniformly random, so it serves directly as the pseudo-random key).
    pub fn derive<Q>(&self, label: &str) -> Result<Key<Q>, CryptoError> {
        let mut info = Vec::with_capacity(label.len() + 32);
        info.extend_from_slice(b"strongroom/v1/derive/");
        info.extend_from_slice(label.as_bytes());
        info.push(1);
        let okm = Zeroizing::new(self.mac(&info));
        Key::from_bytes(okm.as_slice())
    }
}

impl<P> std::fmt::Debug for Key<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad() -> AssociatedData {
        AssociatedData::new("test").field("ns").number(1)
    }

    #[test]
    fn seal_open_roundtrip() {
        let key = Key::<Data>::generate().unwrap();
        let sealed = key.seal(1, &ad(), b"hello").unwrap();
        assert_eq!(key.open(&ad(), &sealed).unwrap().as_slice(), b"hello");
    }

    #[test]
    fn wrong_associated_data_is_an_integrity_error() {
        let key = Key::<Data>::generate().unwrap();
        let sealed = key.seal(1, &ad(), b"hello").unwrap();
        let other = AssociatedData::new("test").field("ns").number(2);
        assert!(matches!(
            key.open(&other, &sealed),
            Err(CryptoError::Integrity)
        ));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let key = Key::<Data>::generate().unwrap();
        let sealed = key.seal(7, &ad(), b"some secret").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(key.open(&ad(), &bad).is_err(), "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn wrong_key_is_an_integrity_error() {
        let a = Key::<Data>::generate().unwrap();
        let b = Key::<Data>::generate().unwrap();
        let sealed = a.seal(1, &ad(), b"x").unwrap();
        assert!(matches!(
            b.open(&ad(), &sealed),
            Err(CryptoError::Integrity)
        ));
    }

    #[test]
    fn wrap_unwrap_roundtrip() {
        let kek = Key::<Kek>::generate().unwrap();
        let dek = Key::<Data>::generate().unwrap();
        let wrapped = kek.wrap(3, &ad(), &dek).unwrap();
        let back: Key<Data> = kek.unwrap(&ad(), &wrapped).unwrap();
        assert_eq!(back.expose_bytes(), dek.expose_bytes());
    }

    #[test]
    fn debug_is_redacted() {
        let key = Key::<Root>::from_bytes(&[0x41; 32]).unwrap();
        let printed = format!("{key:?}");
        assert_eq!(printed, "Key([redacted])");
    }

    #[test]
    fn derived_keys_differ_by_label() {
        let root = Key::<Root>::generate().unwrap();
        let a: Key<Index> = root.derive("a").unwrap();
        let b: Key<Index> = root.derive("b").unwrap();
        assert_ne!(a.expose_bytes(), b.expose_bytes());
        let a2: Key<Index> = root.derive("a").unwrap();
        assert_eq!(a.expose_bytes(), a2.expose_bytes());
    }
}
