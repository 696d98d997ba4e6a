//! The audit chain's anchor: the sequence number and hash of the chain head, authenticated
//! under a key derived from the root key, kept in the main database (`meta`), outside the audit
//! log itself. On SQLite the log is its own file, so a deleted, replaced or truncated log no
//! longer looks like a fresh, valid chain: the entry the anchor names must exist with that
//! hash, at start and for `audit verify`. On PostgreSQL it catches truncating or replacing the
//! audit table. It is written at most every second and at every flush, so removing the newest
//! second of entries is the limit of what it can tell (an attacker who can write both the
//! database and the log can roll both back together — only a copy kept elsewhere catches that).
//!
//! The row exists from the first migration on (empty: "anchor at the next opportunity"), so
//! deleting it is itself detected.
//!
//! Format (frozen, version 1): `0x01 ‖ seq (u64 BE) ‖ hash length (u8) ‖ hash ‖
//! HMAC-SHA-256(anchor key, "audit-anchor" ‖ seq ‖ hash)`.

use strongroom_crypto::{AssociatedData, Index, Key};
use strongroom_storage::{AuditFilter, Storage};

use crate::{CoreError, CoreResult};

/// The `meta` key holding the anchor.
pub(crate) const META_KEY: &str = "audit_anchor";
const VERSION: u8 = 1;
const MAC_LEN: usize = 32;

/// A chain head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub seq: u64,
    pub hash: Vec<u8>,
}

fn mac(key: &Key<Index>, seq: u64, hash: &[u8]) -> [u8; MAC_LEN] {
    key.mac(
        AssociatedData::new("audit-anchor")
            .number(seq)
            .field(hash)
            .as_bytes(),
    )
}

pub(crate) fn encode(key: &Key<Index>, anchor: &Anchor) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 8 + 1 + anchor.hash.len() + MAC_LEN);
    out.push(VERSION);
    out.extend_from_slice(&anchor.seq.to_be_bytes());
    out.push(anchor.hash.len() as u8);
    out.extend_from_slice(&anchor.hash);
    out.extend_from_slice(&mac(key, anchor.seq, &anchor.hash));
    out
}

/// Decodes and authenticates a stored anchor.
pub(crate) fn decode(key: &Key<Index>, bytes: &[u8]) -> Result<Anchor, &'static str> {
    let bad = "the audit anchor in the database was altered (it does not authenticate)";
    let (&version, rest) = bytes.split_first().ok_or(bad)?;
    if version != VERSION || rest.len() < 9 {
        return Err(bad);
    }
    let seq = u64::from_be_bytes(rest[..8].try_into().map_err(|_| bad)?);
    let len = rest[8] as usize;
    let rest = &rest[9..];
    if rest.len() != len + MAC_LEN {
        return Err(bad);
    }
    let (hash, tag) = rest.split_at(len);
    let expected = mac(key, seq, hash);
    if !strongroom_crypto::keyed_hash::constant_time_eq(&expected, tag) {
        return Err(bad);
    }
    Ok(Anchor {
        seq,
        hash: hash.to_vec(),
    })
}

pub(crate) fn store(storage: &dyn Storage, key: &Key<Index>, anchor: &Anchor) -> CoreResult<()> {
    storage.put_meta(META_KEY, &encode(key, anchor))?;
    Ok(())
}

/// What the database says about the chain head.
pub(crate) enum Stored {
    /// Not anchored yet (a new or upgraded store): anchor at the next opportunity.
    Pending,
    Anchored(Anchor),
}

/// Reads the anchor; a missing row or one that does not authenticate is damage.
pub(crate) fn load(storage: &dyn Storage, key: &Key<Index>) -> CoreResult<Stored> {
    match storage.get_meta(META_KEY)? {
        None => Err(CoreError::AuditLogDamaged(
            "the audit anchor was removed from the database".into(),
        )),
        Some(bytes) if bytes.is_empty() => Ok(Stored::Pending),
        Some(bytes) => decode(key, &bytes)
            .map(Stored::Anchored)
            .map_err(|m| CoreError::AuditLogDamaged(m.into())),
    }
}

/// Checks that the log still holds the anchored entry, unchanged. `Ok(None)` when it does;
/// otherwise what is wrong, in words for an operator.
pub(crate) fn missing_from_log(
    storage: &dyn Storage,
    anchor: &Anchor,
) -> CoreResult<Option<String>> {
    if anchor.seq == 0 {
        return Ok(None);
    }
    let found = storage
        .query_audit(&AuditFilter {
            after_seq: Some(anchor.seq - 1),
            limit: 1,
            ..AuditFilter::default()
        })?
        .into_iter()
        .next();
    Ok(match found {
        Some(row) if row.seq == anchor.seq && row.hash == anchor.hash => None,
        Some(row) if row.seq == anchor.seq => Some(format!(
            "audit entry {} is not the entry the database anchored: the audit log was replaced",
            anchor.seq
        )),
        _ => Some(format!(
            "the audit log ends before entry {}, which the database anchored: entries were removed (the log was deleted, truncated or replaced)",
            anchor.seq
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_round_trip_and_every_flipped_byte_is_refused() {
        let key = Key::<Index>::generate().unwrap();
        let anchor = Anchor {
            seq: 4242,
            hash: vec![7; 32],
        };
        let bytes = encode(&key, &anchor);
        assert_eq!(decode(&key, &bytes).unwrap(), anchor);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(decode(&key, &bad).is_err(), "byte {i}");
        }
        assert!(decode(&key, &bytes[..bytes.len() - 1]).is_err());
        let other = Key::<Index>::generate().unwrap();
        assert!(decode(&other, &bytes).is_err());
    }

    /// The format is frozen: this vector must keep decoding.
    #[test]
    fn format_is_pinned() {
        let key = Key::<Index>::from_bytes(&[3u8; 32]).unwrap();
        let bytes = encode(
            &key,
            &Anchor {
                seq: 1,
                hash: vec![0xab, 0xcd],
            },
        );
        assert_eq!(hex::encode(&bytes[..12]), "01000000000000000102abcd");
        // HMAC-SHA-256 computed outside this code base (Python's hmac module) over the
        // length-prefixed fields: the MAC input is frozen too.
        assert_eq!(
            hex::encode(&bytes[12..]),
            "5df346191fc640dcbf9aba3140f3fbe0c4007d9cb0831743ca2093397948ee8b"
        );
        assert_eq!(bytes.len(), 12 + 32);
    }
}
