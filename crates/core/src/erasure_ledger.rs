//! The erasure ledger: erased stays erased, also after a restore from a backup.
//!
//! Every erasure is recorded, in the same transaction that shreds the user's key, in the
//! store's `erasure_ledger` table (namespace, keyed user hash, time and a random id — nothing
//! else). When the operator configures a ledger location outside the store (`serve
//! --erasure-ledger DIR | s3://bucket/prefix`), each entry is also written there as one small
//! object, `erasures/<store id>/<entry id>.json`: at once by the erase call (waiting at most
//! [`SHIP_WAIT`]) and otherwise by the `erasure-ledger` job, which ships whatever is not yet
//! shipped — so an unreachable location delays the copy but never refuses an erasure.
//!
//! A restore ([`Vault::replay_erasures`]) reads the outside ledger and applies every entry of
//! this store that the restored database does not hold (it holds exactly the erasures made
//! before its snapshot, in the same table), then purges what they leave. Entries are
//! authenticated (HMAC under a key derived from the audit-name key, which survives root-key
//! rotations), so whoever can write the ledger location cannot make a restore erase users:
//! an entry that does not authenticate stops the replay with an integrity error.
//!
//! Entry ids are `<erased_at ms, 16 digits>-<16 hex random>`: unique across nodes without
//! coordination and sorted by time.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strongroom_crypto::{AssociatedData, Index, Key};
use strongroom_objects::BlobStore;
use strongroom_storage::LedgerRow;

use crate::operation::Op;
use crate::vault::At;
use crate::{CoreError, CoreResult, Principal, Vault};

/// How long an erase call waits for its entry to reach the outside ledger.
pub const SHIP_WAIT: Duration = Duration::from_secs(2);
/// The `meta` key of this store's id (random, made at first open, carried by backups).
pub(crate) const STORE_ID_META: &str = "store_id";
const FORMAT: u64 = 1;
const SHIP_BATCH: usize = 200;

/// An erasure ledger entry as stored outside the store.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutsideEntry {
    format: u64,
    store: String,
    id: String,
    namespace: String,
    /// The keyed user hash, hex.
    user_hash: String,
    erased_at: i64,
    /// HMAC-SHA-256 over the fields above, hex.
    mac: String,
}

/// What a replay of the outside ledger did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayReport {
    /// Entries of this store in the outside ledger.
    pub entries: u64,
    /// Of those, already in the restored store (erasures from before its snapshot).
    pub already_applied: u64,
    /// Entries applied now.
    pub replayed: u64,
    /// Users the replayed entries erased (the others were not in the restored store).
    pub users_erased: u64,
    /// Rows purged after the replay (records, events, credentials, files).
    pub items_purged: u64,
}

/// A new ledger entry id for an erasure at `now`.
pub(crate) fn new_id(now: i64) -> CoreResult<String> {
    let random =
        strongroom_crypto::random::bytes::<8>().map_err(|e| CoreError::Internal(e.to_string()))?;
    Ok(format!("{:016}-{}", now.max(0), hex::encode(random)))
}

fn valid_id(id: &str) -> bool {
    let (time, random) = id.split_at(id.len().min(16));
    id.len() == 33
        && time.bytes().all(|b| b.is_ascii_digit())
        && random.starts_with('-')
        && random[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn prefix(store: &str) -> String {
    format!("erasures/{store}")
}

fn object_path(store: &str, id: &str) -> String {
    format!("{}/{id}.json", prefix(store))
}

fn mac(key: &Key<Index>, store: &str, row: &LedgerRow) -> String {
    hex::encode(
        key.mac(
            AssociatedData::new("erasure-ledger")
                .field(store.as_bytes())
                .field(row.id.as_bytes())
                .field(row.namespace.as_bytes())
                .field(&row.user_hash)
                .number(row.erased_at as u64)
                .as_bytes(),
        ),
    )
}

fn encode(key: &Key<Index>, store: &str, row: &LedgerRow) -> CoreResult<Vec<u8>> {
    serde_json::to_vec(&OutsideEntry {
        format: FORMAT,
        store: store.to_string(),
        id: row.id.clone(),
        namespace: row.namespace.clone(),
        user_hash: hex::encode(&row.user_hash),
        erased_at: row.erased_at,
        mac: mac(key, store, row),
    })
    .map_err(|e| CoreError::Internal(e.to_string()))
}

/// Decodes and authenticates an outside entry found at `path`.
fn decode(key: &Key<Index>, store: &str, path: &str, bytes: &[u8]) -> CoreResult<LedgerRow> {
    let bad = |why: &str| {
        tracing::error!(
            object = path,
            why,
            "an erasure ledger entry does not authenticate"
        );
        CoreError::Integrity("erasure ledger entry")
    };
    let entry: OutsideEntry = serde_json::from_slice(bytes).map_err(|_| bad("not an entry"))?;
    if entry.format != FORMAT {
        return Err(bad("unknown format"));
    }
    let row = LedgerRow {
        id: entry.id,
        namespace: entry.namespace,
        user_hash: hex::decode(&entry.user_hash).map_err(|_| bad("user hash is not hex"))?,
        erased_at: entry.erased_at,
    };
    let expected = mac(key, store, &row);
    let authentic = entry.store == store
        && valid_id(&row.id)
        && path == object_path(store, &row.id)
        && strongroom_crypto::keyed_hash::constant_time_eq(
            expected.as_bytes(),
            entry.mac.as_bytes(),
        );
    if !authentic {
        return Err(bad("MAC, store or name does not match"));
    }
    Ok(row)
}

impl Vault {
    fn ledger_key(&self) -> CoreResult<Key<Index>> {
        self.audit_name_key()
            .derive("erasure-ledger")
            .map_err(|e| CoreError::Internal(e.to_string()))
    }

    /// This store's id (made at first open; a restored store keeps its own).
    pub fn store_id(&self) -> CoreResult<String> {
        let fresh = hex::encode(
            strongroom_crypto::random::bytes::<16>()
                .map_err(|e| CoreError::Internal(e.to_string()))?,
        );
        self.storage()
            .put_meta_if_absent(STORE_ID_META, fresh.as_bytes())?;
        let stored = self
            .storage()
            .get_meta(STORE_ID_META)?
            .ok_or_else(|| CoreError::Internal("the store id vanished".into()))?;
        let id = String::from_utf8(stored).map_err(|_| CoreError::Integrity("store id"))?;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CoreError::Integrity("store id"));
        }
        Ok(id)
    }

    /// Copies unshipped ledger entries to the outside ledger, if one is configured. `Ok(true)`
    /// when more may be waiting.
    pub(crate) fn ship_ledger(&self) -> CoreResult<bool> {
        let Some(outside) = self.settings().erasure_ledger.clone() else {
            return Ok(false);
        };
        let rows = self.storage().unshipped_ledger(SHIP_BATCH)?;
        if rows.is_empty() {
            return Ok(false);
        }
        let store = self.store_id()?;
        let key = self.ledger_key()?;
        let who = Principal::system("job:erasure-ledger");
        let mut shipped = Vec::with_capacity(rows.len());
        let mut outcome = Ok(());
        for row in &rows {
            let body = encode(&key, &store, row)?;
            match outside.put_named(&object_path(&store, &row.id), Bytes::from(body)) {
                Ok(()) => shipped.push(row.id.clone()),
                Err(e) => {
                    outcome = Err(CoreError::from(e));
                    break;
                }
            }
        }
        if !shipped.is_empty() {
            self.storage().mark_ledger_shipped(&shipped)?;
        }
        let count = shipped.len().to_string();
        self.record_internal(
            &who,
            Op::ErasureLedgerShip,
            At::new("", &count),
            &[],
            &outcome,
        );
        outcome.map(|()| rows.len() == SHIP_BATCH)
    }

    /// Ships the ledger now, waiting at most [`SHIP_WAIT`]; whether everything was shipped in
    /// time (if not, the shipping goes on and the `erasure-ledger` job finishes it).
    pub(crate) fn ship_ledger_soon(&self) -> Option<bool> {
        self.settings().erasure_ledger.as_ref()?;
        let (done, wait) = std::sync::mpsc::channel();
        let vault = self.clone();
        let spawned = std::thread::Builder::new()
            .name("erasure-ledger-ship".into())
            .spawn(move || {
                let shipped =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| vault.ship_ledger()));
                let _ = done.send(matches!(shipped, Ok(Ok(_))));
            });
        Some(spawned.is_ok() && wait.recv_timeout(SHIP_WAIT).unwrap_or(false))
    }

    /// Applies every entry of this store's outside ledger that the store does not hold yet
    /// (the erasures made after the backup it was restored from), then purges what they
    /// leave — files included. For a restored store, before it serves.
    pub fn replay_erasures(&self, outside: &BlobStore) -> CoreResult<ReplayReport> {
        let store = self.store_id()?;
        let key = self.ledger_key()?;
        let who = Principal::system("restore");
        let mut report = ReplayReport::default();
        let listed = outside.list_named(&prefix(&store))?;
        for (path, _) in listed {
            let bytes = outside
                .get_named(&path)?
                .ok_or_else(|| CoreError::ObjectsUnavailable(format!("{path} vanished")))?;
            let row = decode(&key, &store, &path, &bytes)?;
            report.entries += 1;
            if self.storage().ledger_contains(&row.id)? {
                report.already_applied += 1;
                continue;
            }
            self.keyring()
                .forget_data_key(&row.namespace, &row.user_hash);
            let erased = self.storage().replay_erasure(&row).map_err(CoreError::from);
            self.record_internal(
                &who,
                Op::UserEraseReplay,
                At::new(&row.namespace, ""),
                &row.user_hash,
                &erased,
            );
            report.replayed += 1;
            report.users_erased += u64::from(erased?);
        }
        while let Some(next) = self.storage().pending_erasures(1)?.pop() {
            let (purged, done) = self.purge_user_fully(&next.namespace, &next.user_hash)?;
            report.items_purged += purged;
            if !done {
                return Err(CoreError::Internal(
                    "an erased user's rows could not all be purged".into(),
                ));
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> LedgerRow {
        LedgerRow {
            id: "0001764800000000-0011223344556677".into(),
            namespace: "app".into(),
            user_hash: vec![7; 32],
            erased_at: 1_764_800_000_000,
        }
    }

    #[test]
    fn ids_sort_by_time_and_are_recognised() {
        let a = new_id(5).unwrap();
        let b = new_id(1_764_800_000_000).unwrap();
        assert!(valid_id(&a) && valid_id(&b), "{a} {b}");
        assert!(a < b);
        assert!(!valid_id("../../etc/passwd"));
        assert!(!valid_id(&format!("{a}x")));
    }

    #[test]
    fn entries_authenticate_and_refuse_every_edit() {
        let key = Key::<Index>::generate().unwrap();
        let r = row();
        assert!(valid_id(&r.id), "{}", r.id);
        let path = object_path("ab", &r.id);
        let bytes = encode(&key, "ab", &r).unwrap();
        assert_eq!(decode(&key, "ab", &path, &bytes).unwrap(), r);
        let text = String::from_utf8(bytes.clone()).unwrap();
        let edits = [
            text.replace("\"app\"", "\"other\""),
            text.replace(&hex::encode([7u8; 32]), &hex::encode([8u8; 32])),
            text.replace("1764800000000,", "1764800000001,"),
        ];
        for edited in edits {
            assert_ne!(edited, text);
            assert!(decode(&key, "ab", &path, edited.as_bytes()).is_err());
        }
        assert!(decode(&key, "cd", &object_path("cd", &r.id), &bytes).is_err());
        assert!(decode(&key, "ab", "erasures/ab/elsewhere.json", &bytes).is_err());
        let other = Key::<Index>::generate().unwrap();
        assert!(decode(&other, "ab", &path, &bytes).is_err());
    }
}
