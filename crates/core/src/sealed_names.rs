//! Names never reach storage or the audit log in the clear.
//!
//! A credential's name and a record's key are chosen by the app, and can be end-user data (a
//! cache keyed by what a user searched for). Storage keys their rows by a **name id** — the
//! name's keyed hash under the namespace's index key, `~` followed by 43 base64url characters
//! (`~` is outside every name's charset, so an id never equals a name) — and keeps the name
//! itself only **sealed** under the owner's data key, bound to the id, for listing. Erasing the
//! user (destroying the data key) therefore shreds the names too. Audit entries name their
//! target by an **audit name**: a keyed hash under a root-derived key, the same in every
//! namespace, so `audit query --name` works across them and a name is never readable in a
//! log that outlives erasure.
//!
//! Stores written before this were re-keyed once on open ([`Vault::seal_legacy_names`]):
//! each credential (with its versions and refresh status) and each record (with its index
//! entries) moves from its plain name to its id in one transaction, and its name is sealed.
//! Ciphertexts are untouched: their associated data binds the name itself, which is what the
//! sealed copy gives back. Audit entries written before keep their plain targets (the chain
//! forbids rewriting them).
//!
//! Key-id encodings (frozen, pinned in `format_vectors.rs`): the HMAC input is the
//! length-prefixed [`AssociatedData`] of `"credential-name" ‖ name`, `"record-key" ‖
//! collection ‖ key`, `"audit-name" ‖ name` (audit names keep the first 16 bytes).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use strongroom_crypto::{AssociatedData, Data, Index, Key};
use strongroom_storage::Storage;

use crate::keyring::{contexts, NamespaceKeys};
use crate::users::UserRef;
use crate::{CoreError, CoreResult, Vault};

/// What starts every name id (never a character of a name).
const ID_PREFIX: char = '~';
/// `meta` key recording that no name is stored in the clear any more.
pub(crate) const SEALED_META: &str = "names_sealed";
/// Bytes of the keyed hash kept in an audit name (collisions only widen a filter).
const AUDIT_NAME_BYTES: usize = 16;

fn encode(mac: &[u8]) -> String {
    let mut id = String::with_capacity(1 + 43);
    id.push(ID_PREFIX);
    id.push_str(&URL_SAFE_NO_PAD.encode(mac));
    id
}

/// The id under which a credential named `name` is stored, under a namespace's index key.
pub(crate) fn credential_id(index_key: &Key<Index>, name: &str) -> String {
    let input = AssociatedData::new("credential-name").field(name);
    encode(&index_key.mac(input.as_bytes()))
}

/// The id under which a record keyed `key` in `collection` is stored.
pub(crate) fn record_key_id(index_key: &Key<Index>, collection: &str, key: &str) -> String {
    let input = AssociatedData::new("record-key")
        .field(collection)
        .field(key);
    encode(&index_key.mac(input.as_bytes()))
}

impl NamespaceKeys {
    /// The id under which this namespace stores a credential named `name`.
    pub(crate) fn credential_id(&self, name: &str) -> String {
        credential_id(&self.index_key, name)
    }

    /// The id under which this namespace stores a record keyed `key` in `collection`.
    pub(crate) fn record_key_id(&self, collection: &str, key: &str) -> String {
        record_key_id(&self.index_key, collection, key)
    }
}

/// A name as audit entries carry it.
pub(crate) fn audit_name(key: &Key<Index>, name: &str) -> String {
    let input = AssociatedData::new("audit-name").field(name);
    encode(&key.mac(input.as_bytes())[..AUDIT_NAME_BYTES])
}

/// Whether `value` has the shape of a name id (a listing cursor is the last id of a page).
pub(crate) fn check_cursor(value: &str) -> CoreResult<()> {
    let well_formed = value.len() == 44
        && value.starts_with(ID_PREFIX)
        && value[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if well_formed {
        Ok(())
    } else {
        Err(CoreError::Invalid {
            field: "cursor",
            rule: "is not a cursor from a previous page".into(),
        })
    }
}

/// `name` sealed under the owner's data key, bound to where it is stored.
pub(crate) fn seal(key: &Key<Data>, ad: &AssociatedData, name: &str) -> CoreResult<Vec<u8>> {
    key.seal(1, ad, name.as_bytes())
        .map_err(|e| CoreError::Internal(e.to_string()))
}

/// The name sealed in `sealed`; a missing, moved or altered copy is an integrity error.
pub(crate) fn open(
    key: &Key<Data>,
    ad: &AssociatedData,
    sealed: Option<&[u8]>,
    what: &'static str,
) -> CoreResult<String> {
    let sealed = sealed.ok_or(CoreError::Integrity(what))?;
    let plain = key
        .open(ad, sealed)
        .map_err(|e| CoreError::from_crypto(what, e))?;
    String::from_utf8(plain.to_vec()).map_err(|_| CoreError::Integrity(what))
}

/// Associated data of a credential's sealed name.
pub(crate) fn credential_ad(ns: &str, user_hash: &[u8], name_id: &str) -> AssociatedData {
    contexts::credential_name(ns, user_hash, name_id)
}

/// Associated data of a record's sealed key.
pub(crate) fn record_ad(
    ns: &str,
    collection: &str,
    user_hash: &[u8],
    key_id: &str,
) -> AssociatedData {
    contexts::record_key(ns, collection, user_hash, key_id)
}

/// How many names the upgrade sealed.
#[derive(Debug, Default)]
struct Sealed {
    credentials: u64,
    records: u64,
    /// Rows whose owner has no data key any more (an erasure not yet purged): re-keyed with an
    /// empty sealed copy, since nobody can read them again anyway.
    ownerless: u64,
}

impl Vault {
    /// The audit name of `name` (see the module documentation).
    pub(crate) fn audit_name(&self, name: &str) -> String {
        audit_name(self.audit_name_key(), name)
    }

    /// Re-keys every credential and record stored under its plain name, once per store.
    /// Resumable and idempotent across nodes: each row moves in its own transaction, only
    /// while it still has no sealed name.
    pub(crate) fn seal_legacy_names(&self) -> CoreResult<()> {
        let storage = self.storage().clone();
        if storage.get_meta(SEALED_META)?.is_some() {
            return Ok(());
        }
        let mut done = Sealed::default();
        self.seal_credential_names(storage.as_ref(), &mut done)?;
        self.seal_record_keys(storage.as_ref(), &mut done)?;
        storage.put_meta(SEALED_META, b"1")?;
        tracing::info!(
            credentials = done.credentials,
            records = done.records,
            ownerless = done.ownerless,
            "sealed the names of credentials and records (one-time upgrade)"
        );
        Ok(())
    }

    /// The owner's data key, or `None` once the owner is erased.
    fn legacy_owner_key(
        &self,
        ns: &str,
        user_hash: &[u8],
    ) -> CoreResult<Option<std::sync::Arc<Key<Data>>>> {
        let owner = UserRef {
            keys: self.keyring().namespace(ns)?,
            hash: user_hash.to_vec(),
        };
        self.existing_user_key(&owner)
    }

    fn seal_credential_names(&self, storage: &dyn Storage, done: &mut Sealed) -> CoreResult<()> {
        let mut after = None;
        loop {
            let page = storage.credentials_with_plain_names(after.as_ref(), 500)?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            after = Some(last.clone());
            for (item, meta) in &page {
                let keys = self.keyring().namespace(&item.namespace)?;
                let id = keys.credential_id(&item.name);
                let sealed = match self.legacy_owner_key(&item.namespace, &item.user_hash)? {
                    Some(key) => seal(
                        &key,
                        &credential_ad(&item.namespace, &item.user_hash, &id),
                        &item.name,
                    )?,
                    None => {
                        done.ownerless += 1;
                        Vec::new()
                    }
                };
                // The pointer moves with the row only if it was authentic under the plain
                // name; otherwise the row keeps failing as it did.
                let renamed = strongroom_storage::ItemKey {
                    name: id.clone(),
                    ..item.clone()
                };
                let pointer = match self.check_credential_pointer(item, meta) {
                    Ok(()) => self.credential_pointer(&renamed, meta.current_version),
                    Err(_) => Vec::new(),
                };
                if storage.seal_credential_name(item, &id, &sealed, &pointer)? {
                    done.credentials += 1;
                }
            }
        }
    }

    fn seal_record_keys(&self, storage: &dyn Storage, done: &mut Sealed) -> CoreResult<()> {
        let mut after = None;
        loop {
            let page = storage.records_with_plain_keys(after.as_ref(), 500)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.clone());
            for rk in &page {
                let keys = self.keyring().namespace(&rk.namespace)?;
                let id = keys.record_key_id(&rk.collection, &rk.key);
                let sealed = match self.legacy_owner_key(&rk.namespace, &rk.user_hash)? {
                    Some(key) => seal(
                        &key,
                        &record_ad(&rk.namespace, &rk.collection, &rk.user_hash, &id),
                        &rk.key,
                    )?,
                    None => {
                        done.ownerless += 1;
                        Vec::new()
                    }
                };
                if storage.seal_record_key(rk, &id, &sealed)? {
                    done.records += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_name_ids() {
        let key = Key::<Index>::from_bytes(&[7u8; 32]).unwrap();
        let id = encode(&key.mac(b"x"));
        assert_eq!(id.len(), 44);
        assert!(check_cursor(&id).is_ok());
        for bad in [
            "",
            "spotify",
            "~",
            &id[1..],
            &format!("{id}a"),
            &id.replace('~', "!"),
        ] {
            assert!(check_cursor(bad).is_err(), "{bad:?}");
        }
        assert_eq!(audit_name(&key, "spotify").len(), 1 + 22);
    }
}
