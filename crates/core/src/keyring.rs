//! The key hierarchy at run time: root key → namespace keys → user data keys.
//!
//! Namespace keys (the versioned KEKs and the blind-index key) are unwrapped once and cached;
//! the cache entry is re-read after `key_cache_ttl` and whenever a key version it does not know
//! is met, so a rotation made elsewhere is picked up. User data keys are cached in a bounded
//! LRU; an evicted key is dropped, which zeroizes it. All associated-data layouts used for keys
//! are defined here and in [`contexts`], and are frozen.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use strongroom_crypto::{envelope, Data, Index, Kek, Key, Root};
use strongroom_storage::{Storage, UserRow};

use crate::clock::Clock;
use crate::data_key_cache::DataKeyCache;
use crate::{CoreError, CoreResult};

/// The associated data of every ciphertext kind. Frozen: changing one makes old data unreadable.
pub mod contexts {
    use strongroom_crypto::AssociatedData;

    pub fn kek(namespace: &str, version: u32) -> AssociatedData {
        AssociatedData::new("namespace-kek")
            .field(namespace)
            .number(u64::from(version))
    }
    pub fn index_key(namespace: &str) -> AssociatedData {
        AssociatedData::new("namespace-index-key").field(namespace)
    }
    pub fn user_key(namespace: &str, user_hash: &[u8]) -> AssociatedData {
        AssociatedData::new("user-data-key")
            .field(namespace)
            .field(user_hash)
    }
    pub fn user_id(namespace: &str, user_hash: &[u8]) -> AssociatedData {
        AssociatedData::new("user-id")
            .field(namespace)
            .field(user_hash)
    }
    pub fn event(namespace: &str, user_hash: &[u8], time: i64, id: &[u8]) -> AssociatedData {
        AssociatedData::new("event")
            .field(namespace)
            .field(user_hash)
            .number(time as u64)
            .field(id)
    }
    pub fn record(
        namespace: &str,
        collection: &str,
        user_hash: &[u8],
        key: &str,
        version: u64,
    ) -> AssociatedData {
        AssociatedData::new("record")
            .field(namespace)
            .field(collection)
            .field(user_hash)
            .field(key)
            .number(version)
    }
    /// Every segment of a stored file (the per-file key also binds the file id).
    pub fn file(namespace: &str, user_hash: &[u8], file_id: &str) -> AssociatedData {
        AssociatedData::new("file")
            .field(namespace)
            .field(user_hash)
            .field(file_id)
    }
    /// A file's sealed metadata (name, content type, SHA-256).
    pub fn file_metadata(namespace: &str, user_hash: &[u8], file_id: &str) -> AssociatedData {
        AssociatedData::new("file-metadata")
            .field(namespace)
            .field(user_hash)
            .field(file_id)
    }
    pub fn webhook_secret(namespace: &str, webhook: &str) -> AssociatedData {
        AssociatedData::new("webhook-secret")
            .field(namespace)
            .field(webhook)
    }
    pub fn webhook_event(namespace: &str, event_id: &str) -> AssociatedData {
        AssociatedData::new("webhook-event")
            .field(namespace)
            .field(event_id)
    }
    pub fn provider_secret(namespace: &str, provider: &str) -> AssociatedData {
        AssociatedData::new("provider-secret")
            .field(namespace)
            .field(provider)
    }
    pub fn credential(
        namespace: &str,
        user_hash: &[u8],
        name: &str,
        version: u64,
    ) -> AssociatedData {
        AssociatedData::new("credential")
            .field(namespace)
            .field(user_hash)
            .field(name)
            .number(version)
    }
    /// A version of a transit key, wrapped under a namespace key-encryption key.
    pub fn transit_key(namespace: &str, name: &str, version: u32) -> AssociatedData {
        AssociatedData::new("transit-key")
            .field(namespace)
            .field(name)
            .number(u64::from(version))
    }
    /// A credential's name, sealed for listing; bound to the name id its rows are stored under.
    pub fn credential_name(namespace: &str, user_hash: &[u8], name_id: &str) -> AssociatedData {
        AssociatedData::new("credential-name")
            .field(namespace)
            .field(user_hash)
            .field(name_id)
    }
    /// A record's key, sealed for listing; bound to the key id the record is stored under.
    pub fn record_key(
        namespace: &str,
        collection: &str,
        user_hash: &[u8],
        key_id: &str,
    ) -> AssociatedData {
        AssociatedData::new("record-key")
            .field(namespace)
            .field(collection)
            .field(user_hash)
            .field(key_id)
    }
}

/// A namespace's unwrapped keys.
pub struct NamespaceKeys {
    pub name: String,
    pub index_key: Key<Index>,
    pub keks: BTreeMap<u32, Key<Kek>>,
    pub primary: u32,
    pub min_decrypt: u32,
    loaded_at: i64,
}

impl NamespaceKeys {
    /// The keyed hash under which a user's rows are stored (the blind index of the id).
    pub fn user_hash(&self, user_id: &str) -> Vec<u8> {
        self.index_key.mac(user_id.as_bytes()).to_vec()
    }

    /// The primary key-encryption key.
    pub fn primary_kek(&self) -> CoreResult<&Key<Kek>> {
        self.keks
            .get(&self.primary)
            .ok_or_else(|| CoreError::Internal("primary key version missing".into()))
    }
}

/// Cached, unwrapped keys over the storage backend.
pub struct Keyring {
    root: Key<Root>,
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    ttl_ms: i64,
    namespaces: RwLock<HashMap<String, Arc<NamespaceKeys>>>,
    data_keys: DataKeyCache,
}

impl Keyring {
    pub fn new(
        root: Key<Root>,
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        ttl_ms: i64,
        data_key_capacity: usize,
    ) -> Self {
        Self {
            root,
            storage,
            clock,
            ttl_ms,
            namespaces: RwLock::new(HashMap::new()),
            data_keys: DataKeyCache::new(data_key_capacity),
        }
    }

    pub fn root(&self) -> &Key<Root> {
        &self.root
    }

    /// The namespace's keys, from cache when fresh. `NotFound` if there is no such namespace.
    pub fn namespace(&self, name: &str) -> CoreResult<Arc<NamespaceKeys>> {
        let now = self.clock.now_ms();
        if let Some(keys) = self.namespaces.read().get(name) {
            if now - keys.loaded_at < self.ttl_ms {
                return Ok(keys.clone());
            }
        }
        self.reload(name)
    }

    /// Re-reads the namespace's keys from storage.
    pub fn reload(&self, name: &str) -> CoreResult<Arc<NamespaceKeys>> {
        crate::blocking::check();
        let row = self
            .storage
            .get_namespace(name)?
            .ok_or(CoreError::NotFound("namespace"))?;
        let index_key = self
            .root
            .unwrap(&contexts::index_key(name), &row.wrapped_index_key)
            .map_err(|e| CoreError::from_crypto("namespace index key", e))?;
        let mut keks = BTreeMap::new();
        for kek in self.storage.list_keks(name)? {
            let key = self
                .root
                .unwrap(&contexts::kek(name, kek.version), &kek.wrapped_key)
                .map_err(|e| CoreError::from_crypto("namespace key", e))?;
            keks.insert(kek.version, key);
        }
        let keys = Arc::new(NamespaceKeys {
            name: name.to_string(),
            index_key,
            keks,
            primary: row.primary_kek_version,
            min_decrypt: row.min_decrypt_version,
            loaded_at: self.clock.now_ms(),
        });
        self.namespaces
            .write()
            .insert(name.to_string(), keys.clone());
        Ok(keys)
    }

    /// Forgets the cached keys of a namespace (after a change made through this node).
    pub fn invalidate(&self, name: &str) {
        self.namespaces.write().remove(name);
    }

    /// A user's data key if it is cached (no storage read).
    pub fn cached_data_key(&self, ns: &str, user_hash: &[u8]) -> Option<Arc<Key<Data>>> {
        self.data_keys.get(ns, user_hash)
    }

    /// A user's data key, from cache or by unwrapping the stored row.
    pub fn data_key(&self, ns: &NamespaceKeys, user: &UserRow) -> CoreResult<Arc<Key<Data>>> {
        if let Some(key) = self.data_keys.get(&ns.name, &user.user_hash) {
            return Ok(key);
        }
        let key = Arc::new(self.unwrap_user_key(ns, user)?);
        self.data_keys.put(&ns.name, &user.user_hash, key.clone());
        Ok(key)
    }

    /// Unwraps a user's data key from its row, honouring the minimum decryption version.
    pub fn unwrap_user_key(&self, ns: &NamespaceKeys, user: &UserRow) -> CoreResult<Key<Data>> {
        let version = envelope::header(&user.wrapped_key)
            .map_err(|e| CoreError::from_crypto("user key", e))?
            .key_version;
        let fresh;
        let ns = if ns.keks.contains_key(&version) {
            ns
        } else {
            fresh = self.reload(&ns.name)?;
            &fresh
        };
        if version < ns.min_decrypt {
            return Err(CoreError::KeyRetired {
                version,
                minimum: ns.min_decrypt,
            });
        }
        let kek = ns
            .keks
            .get(&version)
            .ok_or(CoreError::Integrity("user key"))?;
        kek.unwrap(
            &contexts::user_key(&ns.name, &user.user_hash),
            &user.wrapped_key,
        )
        .map_err(|e| CoreError::from_crypto("user key", e))
    }

    /// Drops one user's cached data key (erasure), which zeroizes it.
    pub fn forget_data_key(&self, ns: &str, user_hash: &[u8]) {
        self.data_keys.forget(ns, user_hash);
    }

    /// Drops every cached data key (e.g. on seal).
    pub fn forget_data_keys(&self) {
        self.data_keys.clear();
    }
}
