//! Users inside a namespace: their rows are keyed by a keyed hash of the app's user id, the id
//! itself is stored encrypted under the user's own data key, and the data key is created on the
//! user's first write.

use std::sync::Arc;

use serde::Serialize;
use strongroom_crypto::{Data, Key};
use strongroom_storage::{StorageError, UserRow};

use crate::keyring::{contexts, NamespaceKeys};
use crate::operation::Op;
use crate::vault::{At, Input};
use crate::{names, CoreError, CoreResult, Page, Principal, Vault};

/// A user as listed to an authorized caller.
#[derive(Debug, Clone, Serialize)]
pub struct UserSummary {
    pub user: String,
    pub created_at: String,
}

/// A resolved user: namespace keys and the keyed hash of the id.
pub(crate) struct UserRef {
    pub keys: Arc<NamespaceKeys>,
    pub hash: Vec<u8>,
}

impl Vault {
    /// Validates the ids and computes the user's keyed hash.
    pub(crate) fn resolve_user(&self, namespace: &str, user_id: &str) -> CoreResult<UserRef> {
        names::namespace(namespace)?;
        names::user_id(user_id)?;
        let keys = self.keyring().namespace(namespace)?;
        let hash = keys.user_hash(user_id);
        Ok(UserRef { keys, hash })
    }

    /// The user's data key if the user exists.
    pub(crate) fn existing_user_key(&self, user: &UserRef) -> CoreResult<Option<Arc<Key<Data>>>> {
        if let Some(key) = self.keyring().cached_data_key(&user.keys.name, &user.hash) {
            return Ok(Some(key));
        }
        match self.storage().get_user(&user.keys.name, &user.hash)? {
            Some(row) => self.keyring().data_key(&user.keys, &row).map(Some),
            None => Ok(None),
        }
    }

    /// The user's data key, creating the user (and key) on first use.
    pub(crate) fn user_key_for_write(
        &self,
        user: &UserRef,
        user_id: &str,
    ) -> CoreResult<Arc<Key<Data>>> {
        if let Some(key) = self.existing_user_key(user)? {
            return Ok(key);
        }
        // A new user is wrapped under the primary version as the database has it now, not as
        // this node cached it: another node may have rotated (and be about to retire) since.
        if self
            .storage()
            .erasure_pending(&user.keys.name, &user.hash)?
        {
            return Err(CoreError::ErasureInProgress);
        }
        let fresh = self.keyring().reload(&user.keys.name)?;
        let ns = &fresh;
        let row = self.new_user_row(ns, user, user_id)?;
        match self.storage().insert_user(&row) {
            Ok(()) => self.keyring().data_key(ns, &row),
            // A concurrent first write created the user: use theirs.
            Err(StorageError::AlreadyExists) => self
                .existing_user_key(user)?
                .ok_or_else(|| CoreError::Internal("user vanished after insert conflict".into())),
            Err(other) => Err(other.into()),
        }
    }

    /// A new user's row: a fresh data key wrapped under `ns`'s primary key version, and the
    /// user's id sealed under the data key.
    fn new_user_row(
        &self,
        ns: &NamespaceKeys,
        user: &UserRef,
        user_id: &str,
    ) -> CoreResult<UserRow> {
        let data_key = Key::<Data>::generate().map_err(|e| CoreError::Internal(e.to_string()))?;
        let wrapped_key = ns
            .primary_kek()?
            .wrap(
                ns.primary,
                &contexts::user_key(&ns.name, &user.hash),
                &data_key,
            )
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        let encrypted_id = data_key
            .seal(
                1,
                &contexts::user_id(&ns.name, &user.hash),
                user_id.as_bytes(),
            )
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(UserRow {
            namespace: ns.name.clone(),
            user_hash: user.hash.clone(),
            encrypted_id,
            wrapped_key,
            kek_version: ns.primary,
            created_at: self.now_ms(),
        })
    }

    /// Creates the users among `users` (of namespace `ns`) that do not exist yet, in one
    /// transaction, under the primary key version as the database has it now (read once for
    /// all), and caches their keys — so the writes of a batch that follow find them. Users
    /// being erased, and users another writer creates meanwhile, are left to the per-item
    /// path (which refuses or reads them).
    pub(crate) fn create_users(&self, ns: &str, users: &[(&UserRef, &str)]) -> CoreResult<()> {
        let mut missing: Vec<(&UserRef, &str)> = Vec::new();
        for &(user, user_id) in users {
            if missing.iter().any(|(m, _)| m.hash == user.hash)
                || self.existing_user_key(user)?.is_some()
                || self.storage().erasure_pending(ns, &user.hash)?
            {
                continue;
            }
            missing.push((user, user_id));
        }
        if missing.is_empty() {
            return Ok(());
        }
        let fresh = self.keyring().reload(ns)?;
        let rows = missing
            .iter()
            .map(|(user, user_id)| self.new_user_row(&fresh, user, user_id))
            .collect::<CoreResult<Vec<_>>>()?;
        let inserted = self.storage().insert_users(&rows)?;
        for (row, new) in rows.iter().zip(inserted) {
            if new {
                self.keyring().data_key(&fresh, row)?;
            }
        }
        Ok(())
    }

    /// Lists the users of a namespace, decrypting their ids (needs `list`).
    pub fn list_users(
        &self,
        who: &Principal,
        namespace: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> CoreResult<Page<UserSummary>> {
        let parse = || {
            let after = cursor
                .map(|c| {
                    hex::decode(c).map_err(|_| CoreError::Invalid {
                        field: "cursor",
                        rule: "is not a cursor from a previous page".into(),
                    })
                })
                .transpose()?;
            Ok(Input((after, page_limit(limit)?)))
        };
        self.execute(
            who,
            Op::UserList,
            At::new(namespace, ""),
            parse,
            |Input((after, limit))| {
                let (after, limit) = (after.clone(), *limit);
                let keys = self.keyring().namespace(namespace)?;
                let rows = self
                    .storage()
                    .list_users(namespace, after.as_deref(), limit)?;
                let next_cursor = (rows.len() == limit)
                    .then(|| rows.last().map(|r| hex::encode(&r.user_hash)))
                    .flatten();
                let mut items = Vec::with_capacity(rows.len());
                for row in rows {
                    let user = self.decrypt_user_id(&keys, &row)?;
                    if user == crate::records::NAMESPACE_OWNER {
                        continue;
                    }
                    items.push(UserSummary {
                        user,
                        created_at: crate::clock::rfc3339(row.created_at),
                    });
                }
                Ok(Page { items, next_cursor })
            },
        )
    }
}

impl Vault {
    /// Decrypts a user's own id from the user row.
    pub(crate) fn user_id_of(&self, user: &UserRef) -> CoreResult<String> {
        let row = self
            .storage()
            .get_user(&user.keys.name, &user.hash)?
            .ok_or(CoreError::NotFound("user"))?;
        self.decrypt_user_id(&user.keys, &row)
    }

    /// The app's own user id, decrypted from a user row with the user's data key.
    pub(crate) fn decrypt_user_id(
        &self,
        keys: &NamespaceKeys,
        row: &UserRow,
    ) -> CoreResult<String> {
        let key = self.keyring().data_key(keys, row)?;
        let id = key
            .open(
                &contexts::user_id(&keys.name, &row.user_hash),
                &row.encrypted_id,
            )
            .map_err(|e| CoreError::from_crypto("user id", e))?;
        String::from_utf8(id.to_vec()).map_err(|_| CoreError::Integrity("user id"))
    }
}

/// Checks a page size: 1..=1000.
pub(crate) fn page_limit(limit: usize) -> CoreResult<usize> {
    if (1..=1000).contains(&limit) {
        Ok(limit)
    } else {
        Err(CoreError::Invalid {
            field: "limit",
            rule: format!("must be between 1 and 1000, got {limit}"),
        })
    }
}
