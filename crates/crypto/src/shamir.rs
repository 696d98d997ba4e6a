//! The root key sealed under an unseal key that is split into Shamir shares (GF(256), the
//! reviewed `vsss-rs` crate), so no single person — and no file — holds it.
//!
//! As in Vault, the shares are of a random 32-byte *unseal key*, and the root key is sealed
//! under it; so re-splitting (new holders, another threshold) never changes the root key.
//! Frozen format 1 of the stored blob:
//!
//! ```text
//! 0x01 ‖ threshold (1) ‖ shares (1) ‖ envelope
//! ```
//!
//! The envelope seals the root key under the unseal key with associated data
//! `"root-key-shamir"`, threshold and share count, so an edited header fails authentication.
//! A share is `id (1) ‖ 32 bytes`, shown as standard base64 (what Vault's CLI takes). Too few
//! or wrong shares combine to a wrong unseal key, which fails authentication: an integrity
//! error, never a wrong root key.

use std::convert::Infallible;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::Zeroizing;

use crate::associated_data::AssociatedData;
use crate::keys::{Key, Root};
use crate::{random, CryptoError};

const FORMAT: u8 = 1;
const HEADER_LEN: usize = 3;
/// Bytes of one share: its id, then one byte per byte of the unseal key.
pub const SHARE_LEN: usize = 33;

/// The root key split this way: the blob to store and the shares to hand out (once).
pub struct Split {
    pub blob: Vec<u8>,
    pub shares: Vec<Zeroizing<String>>,
}

fn ad(threshold: u8, shares: u8) -> AssociatedData {
    AssociatedData::new("root-key-shamir")
        .number(u64::from(threshold))
        .number(u64::from(shares))
}

/// Randomness for the split, drawn ahead from the system generator (`vsss-rs` asks for an
/// infallible generator; ours can fail). A refill that fails is remembered and fails the split.
struct Drawn {
    bytes: Zeroizing<Vec<u8>>,
    at: usize,
    failed: bool,
}

impl Drawn {
    fn new(len: usize) -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        random::fill(&mut bytes)?;
        Ok(Self {
            bytes,
            at: 0,
            failed: false,
        })
    }
}

impl rand_core::TryRng for Drawn {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for d in dst {
            if self.at == self.bytes.len() {
                self.failed |= random::fill(&mut self.bytes).is_err();
                self.at = 0;
            }
            *d = self.bytes[self.at];
            self.at += 1;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Drawn {}

/// Seals `root` under a new unseal key split into `shares` shares, any `threshold` of which
/// rebuild it (2 ≤ threshold ≤ shares ≤ 16).
pub fn split_root(root: &Key<Root>, threshold: u8, shares: u8) -> Result<Split, CryptoError> {
    if threshold < 2 || threshold > shares || shares > 16 {
        return Err(CryptoError::InvalidKey(
            "shares: need 2 ≤ threshold ≤ shares ≤ 16".into(),
        ));
    }
    let unseal_key = Key::<Root>::generate()?;
    let mut rng = Drawn::new(4096)?;
    let parts = vsss_rs::Gf256::split_bytes(
        usize::from(threshold),
        usize::from(shares),
        unseal_key.expose_bytes(),
        &mut rng,
    )
    .map_err(|e| CryptoError::InvalidKey(format!("splitting: {e:?}")))?;
    if rng.failed {
        return Err(CryptoError::Random);
    }
    let mut blob = vec![FORMAT, threshold, shares];
    blob.extend_from_slice(&unseal_key.wrap(0, &ad(threshold, shares), root)?);
    let shares = parts
        .into_iter()
        .map(|p| Zeroizing::new(STANDARD.encode(Zeroizing::new(p).as_slice())))
        .collect();
    Ok(Split { blob, shares })
}

/// `(threshold, shares)` of a stored blob.
pub fn params_of(blob: &[u8]) -> Result<(u8, u8), CryptoError> {
    if blob.len() <= HEADER_LEN || blob[0] != FORMAT || blob[1] < 2 || blob[1] > blob[2] {
        return Err(CryptoError::Integrity);
    }
    Ok((blob[1], blob[2]))
}

/// One share from its text; `None` if it is not one (wrong length, alphabet or id 0).
pub fn parse_share(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let bytes = Zeroizing::new(STANDARD.decode(text.trim()).ok()?);
    (bytes.len() == SHARE_LEN && bytes[0] != 0).then_some(bytes)
}

/// The share's id (shares with the same id are the same share).
pub fn share_id(share: &[u8]) -> u8 {
    share.first().copied().unwrap_or(0)
}

/// The root key from at least the threshold of distinct shares.
pub fn open_root(blob: &[u8], shares: &[Zeroizing<Vec<u8>>]) -> Result<Key<Root>, CryptoError> {
    let (unseal_key, threshold, count) = unseal_key(blob, shares)?;
    unseal_key.unwrap(&ad(threshold, count), &blob[HEADER_LEN..])
}

/// The blob with `new_root` sealed under the same unseal key (a root-key rotation keeps every
/// holder's share); the shares must open `blob` first.
pub fn reseal_root(
    blob: &[u8],
    shares: &[Zeroizing<Vec<u8>>],
    new_root: &Key<Root>,
) -> Result<Vec<u8>, CryptoError> {
    let (unseal_key, threshold, count) = unseal_key(blob, shares)?;
    let _old: Key<Root> = unseal_key.unwrap(&ad(threshold, count), &blob[HEADER_LEN..])?;
    let mut out = blob[..HEADER_LEN].to_vec();
    out.extend_from_slice(&unseal_key.wrap(0, &ad(threshold, count), new_root)?);
    Ok(out)
}

fn unseal_key(
    blob: &[u8],
    shares: &[Zeroizing<Vec<u8>>],
) -> Result<(Key<Root>, u8, u8), CryptoError> {
    let (threshold, count) = params_of(blob)?;
    if shares.len() < usize::from(threshold) {
        return Err(CryptoError::Integrity);
    }
    let parts: Vec<Vec<u8>> = shares.iter().map(|s| s.to_vec()).collect();
    let combined = vsss_rs::Gf256::combine_bytes(&parts).map_err(|_| CryptoError::Integrity);
    for mut p in parts {
        zeroize::Zeroize::zeroize(&mut p);
    }
    let unseal_key = Zeroizing::new(combined?);
    let unseal_key: Key<Root> = Key::from_bytes(&unseal_key).map_err(|_| CryptoError::Integrity)?;
    Ok((unseal_key, threshold, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(split: &Split, which: &[usize]) -> Vec<Zeroizing<Vec<u8>>> {
        which
            .iter()
            .map(|&i| parse_share(&split.shares[i]).unwrap())
            .collect()
    }

    #[test]
    fn any_threshold_of_shares_opens_and_fewer_or_wrong_do_not() {
        let root = Key::<Root>::generate().unwrap();
        let split = split_root(&root, 3, 5).unwrap();
        assert_eq!(split.shares.len(), 5);
        assert_eq!(params_of(&split.blob).unwrap(), (3, 5));
        for which in [[0, 1, 2], [4, 2, 0], [1, 3, 4]] {
            let opened = open_root(&split.blob, &parsed(&split, &which)).unwrap();
            assert_eq!(opened.expose_bytes(), root.expose_bytes());
        }
        assert!(open_root(&split.blob, &parsed(&split, &[0, 1])).is_err());
        let mut bad = parsed(&split, &[0, 1, 2]);
        bad[1][7] ^= 1;
        assert!(matches!(
            open_root(&split.blob, &bad),
            Err(CryptoError::Integrity)
        ));
        let other = split_root(&root, 3, 5).unwrap();
        let mixed = vec![
            parse_share(&split.shares[0]).unwrap(),
            parse_share(&other.shares[1]).unwrap(),
            parse_share(&split.shares[2]).unwrap(),
        ];
        assert!(open_root(&split.blob, &mixed).is_err());
        let mut edited = split.blob.clone();
        edited[1] = 2;
        assert!(open_root(&edited, &parsed(&split, &[0, 1, 2])).is_err());
    }

    #[test]
    fn a_resealed_blob_opens_to_the_new_root_with_the_same_shares() {
        let root = Key::<Root>::generate().unwrap();
        let split = split_root(&root, 2, 3).unwrap();
        let next = Key::<Root>::generate().unwrap();
        let blob = reseal_root(&split.blob, &parsed(&split, &[0, 2]), &next).unwrap();
        let opened = open_root(&blob, &parsed(&split, &[1, 2])).unwrap();
        assert_eq!(opened.expose_bytes(), next.expose_bytes());
        let other = split_root(&root, 2, 3).unwrap();
        assert!(reseal_root(&split.blob, &parsed(&other, &[0, 1]), &next).is_err());
    }

    #[test]
    fn refuses_bad_parameters_and_shares() {
        let root = Key::<Root>::generate().unwrap();
        for (t, n) in [(1, 3), (4, 3), (2, 17), (0, 0)] {
            assert!(split_root(&root, t, n).is_err(), "{t} of {n}");
        }
        assert!(parse_share("not base64!").is_none());
        assert!(parse_share(&STANDARD.encode([0u8; SHARE_LEN])).is_none());
        assert!(parse_share(&STANDARD.encode([1u8; 32])).is_none());
    }
}
