//! The vault: opening a store with its root key, and the shared plumbing every operation uses
//! (storage, keyring, clock, and the `audited` wrapper that records each outcome).

use std::sync::Arc;

use strongroom_crypto::token::ApiToken;
use strongroom_crypto::{root_key, Index, Key, Root};
use strongroom_objects::BlobStore;
use strongroom_storage::{AuditEntry, Storage};

use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::keyring::Keyring;
use crate::tokens::TokenCache;
use crate::{CoreError, CoreResult, Policy, Principal};

const ROOT_CHECK_META: &str = "root_key_check";

/// Tunables of a vault.
#[derive(Debug, Clone)]
pub struct VaultSettings {
    /// How long unwrapped namespace keys are trusted before re-reading them (multi-node rotation).
    pub key_cache_ttl_ms: i64,
    /// How many user data keys stay unwrapped in memory.
    pub data_key_cache: usize,
    /// How long a validated API token is trusted before re-reading it (multi-node revocation).
    pub token_cache_ttl_ms: i64,
    /// Versions kept per credential unless the write says otherwise.
    pub default_max_versions: u32,
    /// Where file contents go (`None`: file operations answer "not configured").
    pub files: Option<BlobStore>,
    /// Stored bytes per object piece of new files.
    pub file_piece_size: u64,
    /// Largest file accepted, whatever a namespace's policy says.
    pub max_file_size: u64,
    /// An upload not completed after this long is swept (its pieces and row deleted).
    pub upload_stale_ms: i64,
}

impl Default for VaultSettings {
    fn default() -> Self {
        Self {
            key_cache_ttl_ms: 10_000,
            data_key_cache: 65_536,
            token_cache_ttl_ms: 2_000,
            default_max_versions: 10,
            files: None,
            file_piece_size: strongroom_objects::DEFAULT_PIECE_SIZE,
            max_file_size: 16 << 30,
            upload_stale_ms: 24 * 3600 * 1000,
        }
    }
}

struct Inner {
    storage: Arc<dyn Storage>,
    keyring: Keyring,
    audit: AuditLog,
    tokens: TokenCache,
    clock: Arc<dyn Clock>,
    settings: VaultSettings,
    counters: Counters,
}

/// Counters this node exposes as metrics.
#[derive(Default)]
pub struct Counters {
    /// OAuth refreshes that failed (provider error, `invalid_grant`, unreachable, …).
    pub oauth_refresh_failures: std::sync::atomic::AtomicU64,
    /// OAuth refreshes that succeeded.
    pub oauth_refreshes: std::sync::atomic::AtomicU64,
    /// Plaintext bytes of files stored.
    pub file_bytes_uploaded: std::sync::atomic::AtomicU64,
    /// Plaintext bytes of files returned.
    pub file_bytes_downloaded: std::sync::atomic::AtomicU64,
    /// File reads stopped by an integrity failure.
    pub file_integrity_failures: std::sync::atomic::AtomicU64,
}

/// A handle on an open store. Cheap to clone; all clones share caches and the audit writer.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

/// What [`Vault::open`] returns.
pub struct Opened {
    pub vault: Vault,
    /// On the very first open of a store: an operator token, to be shown once and never again.
    pub bootstrap_token: Option<ApiToken>,
}

impl Vault {
    /// Opens a store with its root key. The first open records a key check value and creates
    /// a bootstrap operator token; later opens refuse a root key that does not match.
    pub fn open(
        storage: Arc<dyn Storage>,
        root: Key<Root>,
        clock: Arc<dyn Clock>,
        settings: VaultSettings,
    ) -> CoreResult<Opened> {
        let check = root_key::check_value(&root).map_err(|e| CoreError::Internal(e.to_string()))?;
        let first_open = storage.put_meta_if_absent(ROOT_CHECK_META, &check)?;
        if !first_open {
            let stored = storage
                .get_meta(ROOT_CHECK_META)?
                .ok_or_else(|| CoreError::Internal("root key check vanished".into()))?;
            if !root_key::verify_check(&root, &stored) {
                return Err(CoreError::WrongRootKey);
            }
        }
        let chain_key: Key<Index> = root
            .derive("audit-chain")
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        let audit = AuditLog::start(storage.clone(), chain_key);
        let keyring = Keyring::new(
            root,
            storage.clone(),
            clock.clone(),
            settings.key_cache_ttl_ms,
            settings.data_key_cache,
        );
        let vault = Vault {
            inner: Arc::new(Inner {
                storage,
                keyring,
                audit,
                tokens: TokenCache::default(),
                counters: Counters::default(),
                clock,
                settings,
            }),
        };
        let bootstrap_token = if first_open {
            let system = Principal::system("bootstrap");
            let (_, token) =
                vault.create_token(&system, "bootstrap-admin", Policy::operator(), None)?;
            Some(token)
        } else {
            None
        };
        Ok(Opened {
            vault,
            bootstrap_token,
        })
    }

    /// This node's counters (for metrics).
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    pub(crate) fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    pub(crate) fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    pub(crate) fn audit_log(&self) -> &AuditLog {
        &self.inner.audit
    }

    pub(crate) fn token_cache(&self) -> &TokenCache {
        &self.inner.tokens
    }

    pub(crate) fn settings(&self) -> &VaultSettings {
        &self.inner.settings
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    pub(crate) fn audit_chain_key(&self) -> CoreResult<Key<Index>> {
        self.keyring()
            .root()
            .derive("audit-chain")
            .map_err(|e| CoreError::Internal(e.to_string()))
    }

    /// Whether the backend answers (readiness).
    pub fn ping(&self) -> CoreResult<()> {
        self.storage().ping().map_err(CoreError::from)
    }

    /// Writes every queued audit entry now.
    pub fn flush_audit(&self) -> CoreResult<()> {
        self.audit_log().flush()
    }

    /// Records an audit entry for an outcome decided outside the vault (e.g. a failed login).
    pub fn record_audit(&self, token_id: &str, action: &str, namespace: &str, outcome: &str) {
        self.audit_log().record(AuditEntry {
            time: self.now_ms(),
            token_id: token_id.to_string(),
            action: action.to_string(),
            namespace: namespace.to_string(),
            user_hash: String::new(),
            target: String::new(),
            outcome: outcome.to_string(),
        });
    }

    /// Runs `work` and queues an audit entry with its outcome.
    pub(crate) fn audited<T>(
        &self,
        who: &Principal,
        action: &str,
        namespace: &str,
        user_hash: &[u8],
        target: &str,
        work: impl FnOnce() -> CoreResult<T>,
    ) -> CoreResult<T> {
        let result = work();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        if let Err(CoreError::Integrity(what)) = &result {
            tracing::warn!(action, namespace, what, "integrity failure on stored data");
        }
        self.audit_log().record(AuditEntry {
            time: self.now_ms(),
            token_id: who.token_id.clone(),
            action: action.to_string(),
            namespace: namespace.to_string(),
            user_hash: hex::encode(user_hash),
            target: target.to_string(),
            outcome: outcome.to_string(),
        });
        result
    }

    /// Like [`Vault::audited`], but the entry is stored before returning (operator actions).
    pub(crate) fn audited_now<T>(
        &self,
        who: &Principal,
        action: &str,
        namespace: &str,
        user_hash: &[u8],
        target: &str,
        work: impl FnOnce() -> CoreResult<T>,
    ) -> CoreResult<T> {
        let result = self.audited(who, action, namespace, user_hash, target, work);
        self.audit_log().flush()?;
        result
    }

    /// Default versions kept per credential.
    pub(crate) fn default_max_versions(&self) -> u32 {
        self.settings().default_max_versions
    }

    pub(crate) fn token_cache_ttl_ms(&self) -> i64 {
        self.settings().token_cache_ttl_ms
    }
}
