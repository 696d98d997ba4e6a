//! The root key sealed under a passphrase (Argon2id), so it never sits on disk in the clear.
//!
//! Frozen format 1 (pinned by a vector computed with Python's `argon2-cffi`):
//!
//! ```text
//! 0x01 ‖ m_cost KiB (u32 BE) ‖ t_cost (u32 BE) ‖ lanes (u32 BE) ‖ salt (16) ‖ envelope
//! ```
//!
//! The envelope is the root key sealed (AES-256-GCM, [`crate::envelope`]) under the 32-byte
//! Argon2id output, with associated data `"root-key-passphrase"` and the parameters, so an
//! edited parameter fails authentication instead of deriving another key. A wrong passphrase
//! is an integrity failure, indistinguishable from a damaged blob.

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::associated_data::AssociatedData;
use crate::keys::{Key, Root};
use crate::{random, CryptoError};

const FORMAT: u8 = 1;
const SALT_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 12 + SALT_LEN;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    pub t_cost: u32,
    pub lanes: u32,
}

impl KdfParams {
    /// The default: 128 MiB, 3 passes, 1 lane — well above OWASP's Argon2id minimum (19 MiB,
    /// 2 passes); ~0.5 s on this project's 2-core test machine (release build, measured by
    /// timing `serve --passphrase-file` starts; BENCHMARKS.md). Paid once per unseal, and by
    /// every guess at the passphrase. Stored with each sealed key, so changing it never breaks
    /// an existing store.
    pub const DEFAULT: KdfParams = KdfParams {
        m_cost: 128 * 1024,
        t_cost: 3,
        lanes: 1,
    };
    /// Cheap parameters for tests only.
    pub const TEST: KdfParams = KdfParams {
        m_cost: 19 * 1024,
        t_cost: 2,
        lanes: 1,
    };
}

fn ad(p: &KdfParams) -> AssociatedData {
    AssociatedData::new("root-key-passphrase")
        .number(u64::from(p.m_cost))
        .number(u64::from(p.t_cost))
        .number(u64::from(p.lanes))
}

/// The key Argon2id derives from `passphrase` and `salt`.
pub fn derive(
    passphrase: &[u8],
    salt: &[u8],
    p: &KdfParams,
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let params = Params::new(p.m_cost, p.t_cost, p.lanes, Some(32))
        .map_err(|e| CryptoError::InvalidKey(format!("argon2 parameters: {e}")))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, out.as_mut())
        .map_err(|e| CryptoError::InvalidKey(format!("argon2: {e}")))?;
    Ok(out)
}

/// `root` sealed under `passphrase`.
pub fn seal_root(
    root: &Key<Root>,
    passphrase: &[u8],
    p: KdfParams,
) -> Result<Vec<u8>, CryptoError> {
    let salt = random::bytes::<SALT_LEN>()?;
    let kek: Key<Root> = Key::from_bytes(derive(passphrase, &salt, &p)?.as_slice())?;
    let mut out = Vec::with_capacity(HEADER_LEN + 80);
    out.push(FORMAT);
    for v in [p.m_cost, p.t_cost, p.lanes] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&salt);
    out.extend_from_slice(&kek.wrap(0, &ad(&p), root)?);
    Ok(out)
}

/// The parameters a sealed blob names.
pub fn params_of(blob: &[u8]) -> Result<KdfParams, CryptoError> {
    if blob.len() < HEADER_LEN || blob[0] != FORMAT {
        return Err(CryptoError::Integrity);
    }
    let word = |i: usize| u32::from_be_bytes([blob[i], blob[i + 1], blob[i + 2], blob[i + 3]]);
    Ok(KdfParams {
        m_cost: word(1),
        t_cost: word(5),
        lanes: word(9),
    })
}

/// The root key in `blob`; a wrong passphrase or an edited blob is [`CryptoError::Integrity`].
pub fn open_root(blob: &[u8], passphrase: &[u8]) -> Result<Key<Root>, CryptoError> {
    let p = params_of(blob)?;
    // Refuse absurd costs before deriving (a damaged or hostile blob must not exhaust memory).
    if p.m_cost > 4 * 1024 * 1024 || p.t_cost > 64 || p.lanes == 0 || p.lanes > 16 {
        return Err(CryptoError::Integrity);
    }
    let salt = &blob[13..HEADER_LEN];
    let kek: Key<Root> = Key::from_bytes(derive(passphrase, salt, &p)?.as_slice())?;
    kek.unwrap(&ad(&p), &blob[HEADER_LEN..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_refuses() {
        let root = Key::<Root>::generate().unwrap();
        let blob = seal_root(&root, b"correct horse", KdfParams::TEST).unwrap();
        assert_eq!(params_of(&blob).unwrap(), KdfParams::TEST);
        let back = open_root(&blob, b"correct horse").unwrap();
        assert_eq!(back.expose_bytes(), root.expose_bytes());
        assert!(open_root(&blob, b"wrong").is_err());
        let mut edited = blob.clone();
        edited[8] ^= 1; // t_cost
        assert!(open_root(&edited, b"correct horse").is_err());
        assert!(open_root(&blob[..10], b"correct horse").is_err());
    }

    /// Frozen: Python `argon2.low_level.hash_secret_raw(b"pw", b"0123456789abcdef", 2, 19456, 1,
    /// 32, Type.ID)`.
    #[test]
    fn argon2id_is_pinned() {
        let out = derive(b"pw", b"0123456789abcdef", &KdfParams::TEST).unwrap();
        assert_eq!(
            hex::encode(out.as_slice()),
            "aa11986f53323c413e6844bf08de8d0900cb42b5af9b3c88f960319d7d992e62"
        );
    }
}
