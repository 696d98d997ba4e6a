//! Audit keys across root-key rotations.
//!
//! The chain key is derived from the root key, so a rotation starts a new chain key: the
//! entries up to the rotation stay verifiable under the old one, kept as an *epoch* — the last
//! sequence number it covers and the key, wrapped under the current root key with that number
//! in the associated data (an epoch cannot be moved to cover other entries). `verify` takes
//! each entry's key from the epochs, else the current root's. Stored in
//! `meta['audit_chain_epochs']` (frozen format 1, JSON):
//! `{"format": 1, "epochs": [{"until_seq": N, "key": "<wrapped, base64>"}]}`, oldest first.
//!
//! The audit-name key (which hashes credential names in audit targets) is kept across
//! rotations instead, so `audit query --name` finds entries from before a rotation: after the
//! first rotation it is stored wrapped under the current root key in `meta['audit_name_key']`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use strongroom_crypto::{AssociatedData, Index, Key, Root};
use strongroom_storage::Storage;

use crate::{CoreError, CoreResult};

pub(crate) const EPOCHS_META: &str = "audit_chain_epochs";
pub(crate) const NAME_KEY_META: &str = "audit_name_key";
const FORMAT: u64 = 1;

/// The chain key of the entries up to `until_seq` (and after the previous epoch's).
pub(crate) struct Epoch {
    pub until_seq: u64,
    pub key: Key<Index>,
}

#[derive(Serialize, Deserialize)]
struct StoredEpoch {
    until_seq: u64,
    key: String,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    format: u64,
    epochs: Vec<StoredEpoch>,
}

fn epoch_ad(until_seq: u64) -> AssociatedData {
    AssociatedData::new("audit-chain-epoch").number(until_seq)
}

fn name_key_ad() -> AssociatedData {
    AssociatedData::new("audit-name-key")
}

fn damaged() -> CoreError {
    CoreError::AuditLogDamaged(
        "the chain keys of earlier root keys do not authenticate (meta audit_chain_epochs)".into(),
    )
}

/// The stored epochs, opened with the current root key (none before any rotation).
pub(crate) fn load(storage: &dyn Storage, root: &Key<Root>) -> CoreResult<Vec<Epoch>> {
    let Some(bytes) = storage.get_meta(EPOCHS_META)?.filter(|b| !b.is_empty()) else {
        return Ok(Vec::new());
    };
    let stored: Stored = serde_json::from_slice(&bytes).map_err(|_| damaged())?;
    if stored.format != FORMAT {
        return Err(damaged());
    }
    stored
        .epochs
        .iter()
        .map(|e| {
            let wrapped = STANDARD.decode(&e.key).map_err(|_| damaged())?;
            let key = root
                .unwrap(&epoch_ad(e.until_seq), &wrapped)
                .map_err(|_| damaged())?;
            Ok(Epoch {
                until_seq: e.until_seq,
                key,
            })
        })
        .collect()
}

/// `epochs` as stored under `root`.
pub(crate) fn encode(root: &Key<Root>, epochs: &[Epoch]) -> CoreResult<Vec<u8>> {
    let epochs = epochs
        .iter()
        .map(|e| {
            let wrapped = root
                .wrap(0, &epoch_ad(e.until_seq), &e.key)
                .map_err(|e| CoreError::Internal(e.to_string()))?;
            Ok(StoredEpoch {
                until_seq: e.until_seq,
                key: STANDARD.encode(wrapped),
            })
        })
        .collect::<CoreResult<Vec<_>>>()?;
    serde_json::to_vec(&Stored {
        format: FORMAT,
        epochs,
    })
    .map_err(|e| CoreError::Internal(e.to_string()))
}

/// The key that chains entry `seq`.
pub(crate) fn key_for<'a>(
    epochs: &'a [Epoch],
    current: &'a Key<Index>,
    seq: u64,
) -> &'a Key<Index> {
    epochs
        .iter()
        .find(|e| seq <= e.until_seq)
        .map_or(current, |e| &e.key)
}

/// The audit-name key: stored under the root key after a rotation, else derived from it.
pub(crate) fn name_key(storage: &dyn Storage, root: &Key<Root>) -> CoreResult<Key<Index>> {
    match storage.get_meta(NAME_KEY_META)?.filter(|b| !b.is_empty()) {
        Some(wrapped) => root
            .unwrap(&name_key_ad(), &wrapped)
            .map_err(|_| CoreError::Integrity("audit-name key")),
        None => root
            .derive("audit-name")
            .map_err(|e| CoreError::Internal(e.to_string())),
    }
}

/// The audit-name key as stored under `root`.
pub(crate) fn encode_name_key(root: &Key<Root>, key: &Key<Index>) -> CoreResult<Vec<u8>> {
    root.wrap(0, &name_key_ad(), key)
        .map_err(|e| CoreError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_storage::MetaStore;

    #[test]
    fn each_entry_takes_the_key_of_its_epoch() {
        let a = Key::<Index>::generate().unwrap();
        let b = Key::<Index>::generate().unwrap();
        let now = Key::<Index>::generate().unwrap();
        let epochs = [
            Epoch {
                until_seq: 10,
                key: a,
            },
            Epoch {
                until_seq: 20,
                key: b,
            },
        ];
        let id = |k: &Key<Index>| k.expose_bytes().to_vec();
        assert_eq!(id(key_for(&epochs, &now, 1)), id(&epochs[0].key));
        assert_eq!(id(key_for(&epochs, &now, 10)), id(&epochs[0].key));
        assert_eq!(id(key_for(&epochs, &now, 11)), id(&epochs[1].key));
        assert_eq!(id(key_for(&epochs, &now, 21)), id(&now));
    }

    #[test]
    fn an_epoch_cannot_be_moved_to_other_entries() {
        let root = Key::<Root>::generate().unwrap();
        let epochs = [Epoch {
            until_seq: 10,
            key: Key::<Index>::generate().unwrap(),
        }];
        let stored = encode(&root, &epochs).unwrap();
        let moved = String::from_utf8(stored)
            .unwrap()
            .replace("\"until_seq\":10", "\"until_seq\":99");
        let dir = tempfile::tempdir().unwrap();
        let store = strongroom_sqlite::SqliteStore::open(&dir.path().join("s.db")).unwrap();
        store.put_meta(EPOCHS_META, moved.as_bytes()).unwrap();
        assert!(matches!(
            load(&store, &root),
            Err(CoreError::AuditLogDamaged(_))
        ));
    }
}
