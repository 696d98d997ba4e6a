//! Namespaces and their key lifecycle: create, rotate (new primary version, no downtime),
//! rewrap (move user data keys to the primary version), and retire old versions by raising the
//! minimum decryption version.

use serde::Serialize;
use strongroom_crypto::{Index, Kek, Key};
use strongroom_storage::{KekRow, NamespaceRow, Rewrap, StorageError};

use crate::clock::rfc3339;
use crate::keyring::{contexts, NamespaceKeys};
use crate::operation::Op;
use crate::vault::At;
use crate::{CoreError, CoreResult, Principal, Vault};

const REWRAP_BATCH: usize = 1000;

/// A namespace as listed.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceInfo {
    pub name: String,
    pub created_at: String,
    pub primary_key_version: u32,
    pub min_decrypt_version: u32,
}

/// The state of a namespace's keys.
#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    pub namespace: String,
    pub primary_version: u32,
    pub min_decrypt_version: u32,
    pub versions: Vec<KeyVersion>,
    /// Users whose data key is still wrapped under an older version.
    pub users_on_old_versions: u64,
    /// The scheduled rotation, when the namespace has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<crate::key_rotation::RotationSchedule>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyVersion {
    pub version: u32,
    pub created_at: String,
}

/// What a rewrap did.
#[derive(Debug, Clone, Serialize)]
pub struct RewrapReport {
    pub namespace: String,
    pub primary_version: u32,
    /// User data keys re-wrapped under the primary version.
    pub rewrapped: u64,
    /// Transit key versions re-wrapped under the primary version.
    pub transit_versions_rewrapped: u64,
    pub remaining: u64,
}

fn ns_info(row: &NamespaceRow) -> NamespaceInfo {
    NamespaceInfo {
        name: row.name.clone(),
        created_at: rfc3339(row.created_at),
        primary_key_version: row.primary_kek_version,
        min_decrypt_version: row.min_decrypt_version,
    }
}

fn internal(e: impl std::fmt::Display) -> CoreError {
    CoreError::Internal(e.to_string())
}

impl Vault {
    /// Creates a namespace with a fresh blind-index key and key version 1 (operators only).
    pub fn create_namespace(&self, who: &Principal, name: &str) -> CoreResult<NamespaceInfo> {
        self.execute(
            who,
            Op::NamespaceCreate,
            At::new(name, ""),
            || Ok(()),
            |()| {
                let root = self.keyring().root();
                let index_key = Key::<Index>::generate().map_err(internal)?;
                let kek = Key::<Kek>::generate().map_err(internal)?;
                let now = self.now_ms();
                let row = NamespaceRow {
                    name: name.to_string(),
                    created_at: now,
                    wrapped_index_key: root
                        .wrap(0, &contexts::index_key(name), &index_key)
                        .map_err(internal)?,
                    primary_kek_version: 1,
                    min_decrypt_version: 1,
                };
                let first = KekRow {
                    namespace: name.to_string(),
                    version: 1,
                    wrapped_key: root
                        .wrap(0, &contexts::kek(name, 1), &kek)
                        .map_err(internal)?,
                    created_at: now,
                };
                match self.storage().create_namespace(&row, &first) {
                    Ok(()) => Ok(ns_info(&row)),
                    Err(StorageError::AlreadyExists) => Err(CoreError::AlreadyExists("namespace")),
                    Err(e) => Err(e.into()),
                }
            },
        )
    }

    /// The namespaces this principal may see.
    pub fn list_namespaces(&self, who: &Principal) -> CoreResult<Vec<NamespaceInfo>> {
        self.execute(
            who,
            Op::NamespaceList,
            At::new("", ""),
            || Ok(()),
            |()| {
                let rows = self.storage().list_namespaces()?;
                Ok(rows
                    .iter()
                    .filter(|r| {
                        who.policy
                            .namespaces
                            .iter()
                            .any(|n| n == "*" || *n == r.name)
                    })
                    .map(ns_info)
                    .collect())
            },
        )
    }

    /// Key versions and how many users still depend on old ones (`admin` on the namespace).
    pub fn key_status(&self, who: &Principal, namespace: &str) -> CoreResult<KeyStatus> {
        self.execute(
            who,
            Op::KeysStatus,
            At::new(namespace, ""),
            || Ok(()),
            |()| self.key_status_of(namespace),
        )
    }

    fn key_status_of(&self, namespace: &str) -> CoreResult<KeyStatus> {
        {
            let row = self
                .storage()
                .get_namespace(namespace)?
                .ok_or(CoreError::NotFound("namespace"))?;
            let versions = self
                .storage()
                .list_keks(namespace)?
                .iter()
                .map(|k| KeyVersion {
                    version: k.version,
                    created_at: rfc3339(k.created_at),
                })
                .collect();
            Ok(KeyStatus {
                namespace: namespace.to_string(),
                primary_version: row.primary_kek_version,
                min_decrypt_version: row.min_decrypt_version,
                versions,
                users_on_old_versions: self
                    .storage()
                    .count_users_below_kek(namespace, row.primary_kek_version)?,
                rotation: self.rotation_schedule(namespace)?,
            })
        }
    }

    /// Adds a new key version and makes it primary. Existing data stays readable: old versions
    /// keep decrypting until retired.
    pub fn rotate_key(&self, who: &Principal, namespace: &str) -> CoreResult<KeyStatus> {
        self.execute(
            who,
            Op::KeysRotate,
            At::new(namespace, ""),
            || Ok(()),
            |()| {
                self.rotate_namespace_key(namespace)?;
                self.key_status_of(namespace)
            },
        )
    }

    /// Adds key version n+1 and makes it primary, check-and-set on the primary version read
    /// (so two nodes rotating at once make one new version). Returns the new version.
    pub(crate) fn rotate_namespace_key(&self, namespace: &str) -> CoreResult<u32> {
        let row = self
            .storage()
            .get_namespace(namespace)?
            .ok_or(CoreError::NotFound("namespace"))?;
        let version = row.primary_kek_version + 1;
        let kek = Key::<Kek>::generate().map_err(internal)?;
        let new = KekRow {
            namespace: namespace.to_string(),
            version,
            wrapped_key: self
                .keyring()
                .root()
                .wrap(0, &contexts::kek(namespace, version), &kek)
                .map_err(internal)?,
            created_at: self.now_ms(),
        };
        let event = self.wanted_event(
            namespace,
            "keys.rotated",
            &[],
            serde_json::json!({"version": version, "previous_version": row.primary_kek_version}),
        )?;
        self.storage()
            .add_primary_kek(&new, row.primary_kek_version, event.as_ref())?;
        self.keyring().invalidate(namespace);
        Ok(version)
    }

    /// Re-wraps every user data key still under an older version with the primary version.
    /// Safe to run while serving: each row is updated only if unchanged since it was read.
    pub fn rewrap(&self, who: &Principal, namespace: &str) -> CoreResult<RewrapReport> {
        self.execute(
            who,
            Op::KeysRewrap,
            At::new(namespace, ""),
            || Ok(()),
            |()| {
                let keys = self.keyring().reload(namespace)?;
                let mut rewrapped = 0u64;
                let mut after: Option<Vec<u8>> = None;
                loop {
                    let (done, last) = self.rewrap_batch(&keys, after.as_deref())?;
                    rewrapped += done;
                    match last {
                        Some(last) => after = Some(last),
                        None => break,
                    }
                }
                let transit_versions_rewrapped = self.rewrap_transit_keys(&keys)?;
                Ok(RewrapReport {
                    namespace: namespace.to_string(),
                    primary_version: keys.primary,
                    rewrapped,
                    transit_versions_rewrapped,
                    remaining: self
                        .storage()
                        .count_users_below_kek(namespace, keys.primary)?,
                })
            },
        )
    }

    /// Re-wraps one batch of user keys below the primary version, after `after`. Returns how
    /// many were re-wrapped and the last user hash seen (`None` when there were none left).
    pub(crate) fn rewrap_batch(
        &self,
        keys: &NamespaceKeys,
        after: Option<&[u8]>,
    ) -> CoreResult<(u64, Option<Vec<u8>>)> {
        let namespace = keys.name.as_str();
        let primary = keys.primary_kek()?;
        let batch = self
            .storage()
            .users_below_kek(namespace, keys.primary, after, REWRAP_BATCH)?;
        let Some(last) = batch.last() else {
            return Ok((0, None));
        };
        let last = last.user_hash.clone();
        let mut updates = Vec::with_capacity(batch.len());
        for user in &batch {
            let data_key = self.keyring().unwrap_user_key(keys, user)?;
            let ad = contexts::user_key(namespace, &user.user_hash);
            updates.push(Rewrap {
                user_hash: user.user_hash.clone(),
                from_version: user.kek_version,
                to_version: keys.primary,
                wrapped_key: primary
                    .wrap(keys.primary, &ad, &data_key)
                    .map_err(internal)?,
            });
        }
        Ok((
            self.storage().rewrap_users(namespace, &updates)?,
            Some(last),
        ))
    }

    /// Background work: re-wraps one batch in the first namespace that has user keys under an
    /// old version. `Ok(true)` when it did something (so more may be waiting).
    pub(crate) fn rewrap_some(&self) -> CoreResult<bool> {
        for ns in self.storage().list_namespaces()? {
            if self
                .storage()
                .count_users_below_kek(&ns.name, ns.primary_kek_version)?
                == 0
            {
                if self.transit_versions_below(&ns.name, ns.primary_kek_version)? > 0 {
                    let keys = self.keyring().reload(&ns.name)?;
                    let who = Principal::system("job:key-rewrap");
                    let done = self.rewrap_transit_keys(&keys);
                    let at = At::new(&ns.name, "transit");
                    self.record_internal(&who, Op::KeysRewrapBatch, at, &[], &done);
                    return Ok(done? > 0);
                }
                continue;
            }
            let keys = self.keyring().reload(&ns.name)?;
            let who = Principal::system("job:key-rewrap");
            let done = self.rewrap_batch(&keys, None).map(|(done, _)| done);
            self.record_internal(&who, Op::KeysRewrapBatch, At::new(&ns.name, ""), &[], &done);
            return Ok(done? > 0);
        }
        Ok(false)
    }

    /// Retires key versions below `version`: they will no longer decrypt. Refused while any
    /// user key still depends on them.
    pub fn set_min_decrypt_version(
        &self,
        who: &Principal,
        namespace: &str,
        version: u32,
    ) -> CoreResult<KeyStatus> {
        self.execute(
            who,
            Op::KeysSetMinVersion,
            At::new(namespace, &version.to_string()),
            || Ok(()),
            |()| {
                self.retire_below(namespace, version)?;
                self.key_status_of(namespace)
            },
        )
    }

    /// Raises the minimum decryption version to `version`, refused while a user key or a
    /// transit key version still depends on an older one.
    pub(crate) fn retire_below(&self, namespace: &str, version: u32) -> CoreResult<()> {
        let row = self
            .storage()
            .get_namespace(namespace)?
            .ok_or(CoreError::NotFound("namespace"))?;
        if version == 0 || version > row.primary_kek_version {
            return Err(CoreError::Invalid {
                field: "version",
                rule: format!(
                    "must be between 1 and the primary version {}",
                    row.primary_kek_version
                ),
            });
        }
        let users = self.storage().count_users_below_kek(namespace, version)?
            + self.transit_versions_below(namespace, version)?;
        if users > 0 {
            return Err(CoreError::KeysStillInUse { version, users });
        }
        self.storage().set_min_decrypt_version(namespace, version)?;
        self.keyring().invalidate(namespace);
        Ok(())
    }
}
