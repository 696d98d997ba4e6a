//! The bounded cache of unwrapped user data keys, looked up on every read of a user's data.
//!
//! Entries are found by the user's 32-byte hash (the keyed hash of the id under the
//! namespace's index key) and remember their namespace: a look-up copies nothing, allocates
//! nothing and hashes eight bytes. Those bytes are an HMAC output under a key no client knows,
//! so they are uniformly spread and cannot be chosen to collide — taking them as the table's
//! hash is as good as hashing them again. An entry whose namespace differs from the one asked
//! for is a miss. Evicting or forgetting a key drops it, which zeroizes it.

use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;
use strongroom_crypto::{Data, Key};

/// A user hash as the cache's key.
#[derive(Clone, Copy, PartialEq, Eq)]
struct UserHash([u8; 32]);

impl UserHash {
    fn of(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl Hash for UserHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// Passes on the eight bytes [`UserHash`] gives it (see the module's note on why that is safe).
#[derive(Default)]
struct TakeHashBytes(u64);

impl Hasher for TakeHashBytes {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `UserHash`; fold anything else in so the hasher stays total.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
}

struct Entry {
    namespace: Box<str>,
    key: Arc<Key<Data>>,
}

/// Unwrapped user data keys by (namespace, user hash), least recently used evicted first.
pub(crate) struct DataKeyCache {
    entries: Mutex<LruCache<UserHash, Entry, BuildHasherDefault<TakeHashBytes>>>,
}

impl DataKeyCache {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            entries: Mutex::new(LruCache::with_hasher(capacity, Default::default())),
        }
    }

    pub(crate) fn get(&self, namespace: &str, user_hash: &[u8]) -> Option<Arc<Key<Data>>> {
        let id = UserHash::of(user_hash)?;
        let mut entries = self.entries.lock();
        let entry = entries.get(&id)?;
        (&*entry.namespace == namespace).then(|| entry.key.clone())
    }

    /// Caches a key (a hash of another length than 32 bytes is never cached).
    pub(crate) fn put(&self, namespace: &str, user_hash: &[u8], key: Arc<Key<Data>>) {
        if let Some(id) = UserHash::of(user_hash) {
            let namespace = namespace.into();
            self.entries.lock().put(id, Entry { namespace, key });
        }
    }

    /// Drops one user's key, if it is the one cached under that hash.
    pub(crate) fn forget(&self, namespace: &str, user_hash: &[u8]) {
        let Some(id) = UserHash::of(user_hash) else {
            return;
        };
        let mut entries = self.entries.lock();
        if entries
            .peek(&id)
            .is_some_and(|e| &*e.namespace == namespace)
        {
            entries.pop(&id);
        }
    }

    pub(crate) fn clear(&self) {
        self.entries.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Arc<Key<Data>> {
        Arc::new(Key::generate().expect("a fresh key"))
    }

    fn hash(n: u8) -> Vec<u8> {
        vec![n; 32]
    }

    #[test]
    fn a_key_is_found_only_under_its_own_namespace() {
        let cache = DataKeyCache::new(8);
        let k = key();
        cache.put("app", &hash(1), k.clone());
        assert!(Arc::ptr_eq(&cache.get("app", &hash(1)).unwrap(), &k));
        assert!(cache.get("other", &hash(1)).is_none());
        assert!(cache.get("app", &hash(2)).is_none());
        // Forgetting under another namespace leaves it; under its own, drops it.
        cache.forget("other", &hash(1));
        assert!(cache.get("app", &hash(1)).is_some());
        cache.forget("app", &hash(1));
        assert!(cache.get("app", &hash(1)).is_none());
    }

    #[test]
    fn the_least_recently_used_key_is_evicted() {
        let cache = DataKeyCache::new(2);
        cache.put("app", &hash(1), key());
        cache.put("app", &hash(2), key());
        assert!(cache.get("app", &hash(1)).is_some());
        cache.put("app", &hash(3), key());
        assert!(cache.get("app", &hash(2)).is_none());
        assert!(cache.get("app", &hash(1)).is_some());
        assert!(cache.get("app", &hash(3)).is_some());
        cache.clear();
        assert!(cache.get("app", &hash(1)).is_none());
    }

    #[test]
    fn hashes_of_another_length_are_never_cached() {
        let cache = DataKeyCache::new(8);
        cache.put("app", &[7u8; 31], key());
        assert!(cache.get("app", &[7u8; 31]).is_none());
        cache.forget("app", &[7u8; 31]);
    }

    #[test]
    fn hashes_differing_only_after_eight_bytes_are_distinct_entries() {
        let cache = DataKeyCache::new(8);
        let (a, b) = (key(), key());
        let mut h2 = hash(1);
        h2[31] = 9;
        cache.put("app", &hash(1), a.clone());
        cache.put("app", &h2, b.clone());
        assert!(Arc::ptr_eq(&cache.get("app", &hash(1)).unwrap(), &a));
        assert!(Arc::ptr_eq(&cache.get("app", &h2).unwrap(), &b));
    }
}
