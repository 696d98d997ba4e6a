//! Sealing: the incident-response switch.
//!
//! A [`Node`] owns this process's vault and background jobs. Sealed, it holds no key at all —
//! the vault (root key, namespace keys, data-key cache, derived keys) is dropped, and dropping
//! zeroizes every key — and every operation answers [`CoreError::Sealed`] (503 `sealed`);
//! health and seal status still answer. Unsealing opens the vault again from key material the
//! caller brings (the root key itself, or the passphrase it is sealed under), checked against
//! the store's key check value.
//!
//! Sealing is cluster-wide: the sealing node writes a seal mark into the shared database
//! (`meta['sealed']`: when and which token) before dropping its keys, and every node follows
//! the mark within a second ([`Node::follow_cluster`], run by the server's refresher).
//! Unsealing is per node and clears the mark, so the other nodes stay sealed until each is
//! unsealed. A database writer can set the mark (refusing service, which it can do anyway) but
//! cannot unseal anything: that needs the key material.

mod init;
pub mod kms;
pub mod move_root;
pub mod rotate_root;
mod shares;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use strongroom_crypto::passphrase::KdfParams;
use strongroom_crypto::{Key, Root};
use strongroom_storage::Storage;

use crate::clock::{rfc3339, Clock};
use crate::jobs::{Job, JobRunner, JobSettings};
use crate::operation::Op;
use crate::vault::At;
use crate::{CoreError, CoreResult, Opened, Principal, Vault, VaultSettings};

pub use init::InitWith;
pub use shares::{ShamirStatus, SHAMIR_META};

const SEAL_META: &str = "sealed";
/// Where a passphrase-sealed root key is kept (in the shared database, for every node).
pub const PASSPHRASE_META: &str = "root_key_passphrase";

/// A stored copy of the root key under `key` (empty means cleared: `meta` has no delete).
pub(crate) fn stored_meta(storage: &dyn Storage, key: &str) -> CoreResult<Option<Vec<u8>>> {
    Ok(storage.get_meta(key)?.filter(|v| !v.is_empty()))
}

pub(crate) fn meta_present(storage: &dyn Storage, key: &str) -> CoreResult<bool> {
    Ok(stored_meta(storage, key)?.is_some())
}

/// Whether `storage` has ever been opened with a root key (it holds a key check value).
pub fn store_has_root_key(storage: &dyn Storage) -> CoreResult<bool> {
    Ok(storage.get_meta(crate::vault::ROOT_CHECK_META)?.is_some())
}

/// The root key `material` opens, reading the stored copies it needs (passphrase-sealed,
/// KMS-wrapped, split into shares) through `meta` — a store's `meta` table, or the copies a
/// backup's manifest carries. Not checked against a key check value (see [`check_root`]).
pub fn open_root_from(
    meta: &dyn Fn(&str) -> CoreResult<Option<Vec<u8>>>,
    kms: Option<&kms::Kms>,
    material: UnsealMaterial,
) -> CoreResult<Key<Root>> {
    Ok(match material {
        UnsealMaterial::RootKey(key) => key,
        UnsealMaterial::Passphrase(passphrase) => {
            let blob = meta(PASSPHRASE_META)?.ok_or_else(|| CoreError::Invalid {
                field: "passphrase",
                rule: "this store's root key is not sealed under a passphrase; unseal with the root key".into(),
            })?;
            strongroom_crypto::passphrase::open_root(&blob, passphrase.as_bytes())
                .map_err(|_| CoreError::WrongRootKey)?
        }
        UnsealMaterial::Kms => {
            let kms = kms.ok_or_else(|| CoreError::Invalid {
                field: "kms",
                rule: "this node has no KMS configured (start it with --kms-region and AWS credentials)".into(),
            })?;
            let blob = meta(kms::KMS_META)?.ok_or_else(|| CoreError::Invalid {
                field: "kms",
                rule: "this store's root key is not wrapped by KMS".into(),
            })?;
            kms.unwrap(&blob)?
        }
        UnsealMaterial::Shares(texts) => {
            let blob = meta(SHAMIR_META)?.ok_or_else(|| CoreError::Invalid {
                field: "shares",
                rule: "this store's root key is not split into shares".into(),
            })?;
            let mut parsed = Vec::with_capacity(texts.len());
            for text in &texts {
                parsed.push(
                    strongroom_crypto::shamir::parse_share(text).ok_or(CoreError::Invalid {
                        field: "share",
                        rule:
                            "must be one of this store's unseal shares: 33 bytes in standard base64"
                                .into(),
                    })?,
                );
            }
            strongroom_crypto::shamir::open_root(&blob, &parsed)
                .map_err(|_| CoreError::WrongRootKey)?
        }
    })
}

/// Checks `root` against a store's key check value (`meta['root_check']` as stored).
pub fn check_root(root: &Key<Root>, check_value: &[u8]) -> CoreResult<()> {
    if strongroom_crypto::root_key::verify_check(root, check_value) {
        Ok(())
    } else {
        Err(CoreError::WrongRootKey)
    }
}

/// The `meta` key of a store's root key check value.
pub const ROOT_CHECK_META: &str = crate::vault::ROOT_CHECK_META;

/// The `meta` keys that say where a store's root key is and how to check it: what a backup
/// carries beside the data so it can be opened before anything is restored.
pub const ROOT_META_KEYS: [&str; 4] =
    [ROOT_CHECK_META, PASSPHRASE_META, kms::KMS_META, SHAMIR_META];

/// Where the root key of a store with these stored copies comes from (`None`: the root key
/// itself, a file or the environment).
pub fn source_from(
    meta: &dyn Fn(&str) -> CoreResult<Option<Vec<u8>>>,
) -> CoreResult<Option<KeySource>> {
    Ok(if meta(SHAMIR_META)?.is_some() {
        Some(KeySource::Shamir)
    } else if meta(PASSPHRASE_META)?.is_some() {
        Some(KeySource::Passphrase)
    } else if meta(kms::KMS_META)?.is_some() {
        Some(KeySource::Kms)
    } else {
        None
    })
}

/// What unseals a node.
pub enum UnsealMaterial {
    /// The root key itself (file or environment source).
    RootKey(Key<Root>),
    /// The passphrase the root key is sealed under in the store.
    Passphrase(zeroize::Zeroizing<String>),
    /// Ask the node's KMS to unwrap the root key stored wrapped ([`kms::KMS_META`]).
    Kms,
    /// Enough Shamir shares at once (standard base64 each).
    Shares(Vec<zeroize::Zeroizing<String>>),
}

impl UnsealMaterial {
    /// The root key as text (standard base64, as `strongroom keygen` prints it).
    pub fn root_key_text(text: &str) -> CoreResult<Self> {
        strongroom_crypto::root_key::decode(text)
            .map(UnsealMaterial::RootKey)
            .map_err(|_| CoreError::Invalid {
                field: "key",
                rule: "must be a root key: 32 bytes in standard base64".into(),
            })
    }
}

/// Where this node's root key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    File,
    Env,
    Passphrase,
    /// Shamir shares of an unseal key, submitted one by one.
    Shamir,
    /// Wrapped by an AWS KMS key; nodes unseal by asking KMS (auto-unseal).
    Kms,
}

/// What `seal-status` answers (without a token: it names no token and no key).
#[derive(Debug, Clone, Serialize)]
pub struct SealStatus {
    /// This node holds no key.
    pub sealed: bool,
    /// Where this node's root key comes from.
    pub key_source: KeySource,
    /// The store keeps the root key sealed under a passphrase (nodes unseal with it).
    pub passphrase_sealed: bool,
    /// When the root key is split into shares: the threshold, the count, and this node's
    /// unseal progress.
    pub shamir: Option<ShamirStatus>,
    /// Set while the cluster's seal mark stands: when an operator sealed it (the audit log
    /// names the token).
    pub cluster_sealed_at: Option<String>,
}

struct Running {
    vault: Vault,
    jobs: Option<JobRunner>,
}

/// This process's vault, sealed or not.
pub struct Node {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    settings: VaultSettings,
    jobs: Option<(Vec<Arc<dyn Job>>, JobSettings)>,
    source: KeySource,
    running: RwLock<Option<Running>>,
    /// One unseal at a time (a passphrase costs a second of Argon2id; attempts queue).
    unsealing: Mutex<()>,
    /// Shares submitted so far towards an unseal (this node only; never stored).
    progress: Mutex<Option<shares::Progress>>,
    /// The KMS this node unwraps the root key with, if configured.
    kms: Option<kms::Kms>,
    /// Set when the start's KMS unseal failed for a passing reason: the refresher retries.
    retry_kms: AtomicBool,
    last_kms_try: Mutex<Option<Instant>>,
}

/// How often a node whose KMS was unreachable at start asks again.
const KMS_RETRY: Duration = Duration::from_secs(5);

impl Node {
    /// A sealed node over `storage`; [`Node::unseal`] opens it.
    pub fn sealed(
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        settings: VaultSettings,
        jobs: Option<(Vec<Arc<dyn Job>>, JobSettings)>,
        source: KeySource,
    ) -> Self {
        Self {
            storage,
            clock,
            settings,
            jobs,
            source,
            running: RwLock::new(None),
            unsealing: Mutex::new(()),
            progress: Mutex::new(None),
            kms: None,
            retry_kms: AtomicBool::new(false),
            last_kms_try: Mutex::new(None),
        }
    }

    /// This node unwraps the root key with `kms` ([`UnsealMaterial::Kms`]).
    pub fn with_kms(mut self, kms: kms::Kms) -> Self {
        self.kms = Some(kms);
        self
    }

    /// Keep asking KMS (every few seconds, from [`Node::follow_cluster`]) until it unseals:
    /// for a start whose KMS unseal failed for a passing reason.
    pub fn retry_kms_unseal(&self) {
        *self.last_kms_try.lock() = Some(Instant::now());
        self.retry_kms.store(true, Ordering::SeqCst);
    }

    /// A node serving `vault`, already open, without background jobs (embedding and tests).
    pub fn serving(vault: Vault, source: KeySource) -> Self {
        let node = Self::sealed(
            vault.storage_handle(),
            vault.clock().clone(),
            vault.settings().clone(),
            None,
            source,
        );
        *node.running.write() = Some(Running { vault, jobs: None });
        node
    }

    /// The cluster's seal mark stands (a node sealed it and no node was unsealed since).
    pub fn cluster_sealed(&self) -> CoreResult<bool> {
        Ok(self
            .store()
            .get_meta(SEAL_META)?
            .is_some_and(|v| !v.is_empty()))
    }

    /// The storage, checked like the vault's: never called from an async worker.
    #[track_caller]
    fn store(&self) -> &Arc<dyn Storage> {
        crate::blocking::check();
        &self.storage
    }

    /// The vault, unless sealed.
    pub fn vault(&self) -> CoreResult<Vault> {
        self.running
            .read()
            .as_ref()
            .map(|r| r.vault.clone())
            .ok_or(CoreError::Sealed)
    }

    pub fn is_sealed(&self) -> bool {
        self.running.read().is_none()
    }

    pub fn source(&self) -> KeySource {
        self.source
    }

    /// Opens the vault with `material`. Returns what opening returns (a bootstrap token on a
    /// brand-new store). Unsealing clears the cluster's seal mark.
    pub fn unseal(&self, material: UnsealMaterial) -> CoreResult<Opened> {
        let used = match &material {
            UnsealMaterial::RootKey(_) => match self.source {
                KeySource::Env => KeySource::Env,
                _ => KeySource::File,
            },
            UnsealMaterial::Passphrase(_) => KeySource::Passphrase,
            UnsealMaterial::Kms => KeySource::Kms,
            UnsealMaterial::Shares(_) => KeySource::Shamir,
        };
        self.unseal_with(material, used)
    }

    /// [`Node::unseal`], audited as unsealed by `used` (the material brought, which may differ
    /// from the node's configured source: a root key given to a passphrase store).
    pub(super) fn unseal_with(
        &self,
        material: UnsealMaterial,
        used: KeySource,
    ) -> CoreResult<Opened> {
        let _one_at_a_time = self.unsealing.lock();
        if !self.is_sealed() {
            return Err(CoreError::NotSealed);
        }
        rotate_root::refuse_while_rotating(&**self.store())?;
        let root = self.open_root(material)?;
        let opened = Vault::open(
            self.store().clone(),
            root,
            self.clock.clone(),
            self.settings.clone(),
        )?;
        if self.cluster_sealed()? {
            self.store().put_meta(SEAL_META, b"")?;
        }
        let jobs = self.jobs.as_ref().map(|(jobs, settings)| {
            JobRunner::start(opened.vault.clone(), jobs.clone(), settings.clone())
        });
        opened.vault.record_unseal(used);
        *self.running.write() = Some(Running {
            vault: opened.vault.clone(),
            jobs,
        });
        tracing::info!(source = ?self.source, "unsealed");
        Ok(opened)
    }

    /// The root key `material` opens (not yet checked against the store).
    fn open_root(&self, material: UnsealMaterial) -> CoreResult<Key<Root>> {
        let store = self.store().clone();
        open_root_from(
            &|key| stored_meta(&*store, key),
            self.kms.as_ref(),
            material,
        )
    }

    /// Seals the root key under `passphrase` in the store, so that nodes unseal with the
    /// passphrase and no key file is needed. Checked against the store first: a key that does
    /// not open this store is refused. Replaces an earlier passphrase.
    pub fn seal_root_under_passphrase(
        storage: &dyn Storage,
        root: &Key<Root>,
        passphrase: &[u8],
        params: KdfParams,
    ) -> CoreResult<()> {
        if let Some(stored) = storage.get_meta(crate::vault::ROOT_CHECK_META)? {
            if !strongroom_crypto::root_key::verify_check(root, &stored) {
                return Err(CoreError::WrongRootKey);
            }
        }
        let blob = strongroom_crypto::passphrase::seal_root(root, passphrase, params)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        storage.put_meta(PASSPHRASE_META, &blob)?;
        Ok(())
    }

    /// Wraps the root key under `kms` in the store, so that nodes unseal by asking KMS and no
    /// key file is needed. Checked against the store first, as for a passphrase.
    pub fn wrap_root_under_kms(
        storage: &dyn Storage,
        root: &Key<Root>,
        kms: &kms::Kms,
    ) -> CoreResult<()> {
        if let Some(stored) = storage.get_meta(crate::vault::ROOT_CHECK_META)? {
            if !strongroom_crypto::root_key::verify_check(root, &stored) {
                return Err(CoreError::WrongRootKey);
            }
        }
        let blob = kms.wrap(root)?;
        // Read back through KMS before it replaces anything: a key that wraps but cannot
        // unwrap (a one-way grant) would leave a store nobody opens.
        let back = kms.unwrap(&blob)?;
        if back.expose_bytes() != root.expose_bytes() {
            return Err(CoreError::Integrity("KMS's answer"));
        }
        storage.put_meta(kms::KMS_META, &blob)?;
        Ok(())
    }

    /// Seals the cluster (operators): the entry is stored first, then the seal mark, then this
    /// node drops every key.
    pub fn seal(&self, who: &Principal) -> CoreResult<()> {
        let vault = self.vault()?;
        vault.authorize_seal(who)?;
        let mark = serde_json::json!({"at": self.clock.now_ms(), "by": who.token_id}).to_string();
        self.store().put_meta(SEAL_META, mark.as_bytes())?;
        drop(vault);
        self.seal_locally("sealed by an operator");
        Ok(())
    }

    /// Drops the vault and stops the jobs (their keys go with them).
    fn seal_locally(&self, why: &str) {
        self.retry_kms.store(false, Ordering::SeqCst);
        let taken = self.running.write().take();
        if let Some(running) = taken {
            if let Some(jobs) = running.jobs {
                jobs.stop();
            }
            if let Err(err) = running.vault.flush_audit() {
                tracing::error!(error = %err, "the audit log could not be flushed while sealing");
            }
            drop(running.vault);
            tracing::warn!(
                why,
                "sealed: every key was dropped from memory; unseal to serve again"
            );
        }
    }

    /// Follows a seal made on another node (called every second).
    pub fn follow_cluster(&self) -> CoreResult<()> {
        if self.is_sealed() {
            return self.retry_kms_if_due();
        }
        if self.cluster_sealed()? {
            self.seal_locally("another node sealed the cluster");
        }
        Ok(())
    }

    /// Auto-unseal after KMS was unreachable at start (never after an operator's seal).
    fn retry_kms_if_due(&self) -> CoreResult<()> {
        if !self.retry_kms.load(Ordering::SeqCst) || self.cluster_sealed()? {
            return Ok(());
        }
        {
            let mut last = self.last_kms_try.lock();
            if last.is_some_and(|at| at.elapsed() < KMS_RETRY) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        match self.unseal(UnsealMaterial::Kms) {
            Ok(_) | Err(CoreError::NotSealed) => {
                self.retry_kms.store(false, Ordering::SeqCst);
                tracing::info!("auto-unsealed: KMS answered");
            }
            Err(
                err @ CoreError::KeyService {
                    transient: true, ..
                },
            ) => {
                tracing::warn!(error = %err, "still sealed: KMS did not answer; retrying");
            }
            Err(err) => {
                self.retry_kms.store(false, Ordering::SeqCst);
                tracing::error!(error = %err, "auto-unseal failed; unseal with `strongroom unseal --kms`");
            }
        }
        Ok(())
    }

    pub fn status(&self) -> CoreResult<SealStatus> {
        let mark = self.store().get_meta(SEAL_META)?.filter(|v| !v.is_empty());
        let mark: Option<serde_json::Value> = mark.and_then(|m| serde_json::from_slice(&m).ok());
        Ok(SealStatus {
            sealed: self.is_sealed(),
            key_source: self.source,
            passphrase_sealed: meta_present(&**self.store(), PASSPHRASE_META)?,
            shamir: self.shamir_status()?,
            cluster_sealed_at: mark.and_then(|m| m["at"].as_i64()).map(rfc3339),
        })
    }

    /// Stops the jobs and flushes the audit log (at shutdown).
    pub fn shutdown(&self) -> CoreResult<()> {
        let taken = self.running.write().take();
        if let Some(running) = taken {
            if let Some(jobs) = running.jobs {
                jobs.stop();
            }
            running.vault.flush_audit()?;
        }
        Ok(())
    }
}

impl Vault {
    /// Authorizes and audits (durably) a seal, before any key is dropped.
    fn authorize_seal(&self, who: &Principal) -> CoreResult<()> {
        self.execute(who, Op::SysSeal, At::new("", ""), || Ok(()), |()| Ok(()))
    }

    fn record_unseal(&self, source: KeySource) {
        let who = Principal::system(match source {
            KeySource::File => "unseal-key-file",
            KeySource::Env => "unseal-key-env",
            KeySource::Passphrase => "unseal-passphrase",
            KeySource::Shamir => "unseal-shares",
            KeySource::Kms => "unseal-kms",
        });
        self.record_internal(
            &who,
            Op::SysUnseal,
            At::new("", ""),
            &[],
            &Ok::<(), CoreError>(()),
        );
    }
}
