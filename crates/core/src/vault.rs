//! The vault: opening a store with its root key, and the one entry point every operation goes
//! through ([`Vault::execute`]: authorize, resolve, work, audit — described by [`Op`]).

use std::sync::Arc;

use strongroom_crypto::token::ApiToken;
use strongroom_crypto::{root_key, Index, Key, Root};
use strongroom_objects::BlobStore;
use strongroom_storage::{AuditEntry, Storage};

use crate::audit::anchor;
use crate::audit::writer::AuditWriter;
use crate::clock::Clock;
use crate::keyring::Keyring;
use crate::operation::{Access, Durability, Op};
use crate::tokens::TokenCache;
use crate::users::UserRef;
use crate::{CoreError, CoreResult, Policy, Principal};

pub(crate) const ROOT_CHECK_META: &str = "root_key_check";

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
    /// The erasure ledger outside the store (`crate::erasure_ledger`), if configured.
    pub erasure_ledger: Option<BlobStore>,
    /// Webhooks may target private, loopback and link-local addresses.
    pub webhook_allow_private: bool,
    /// The pause after a webhook's first failed attempt (doubling from there).
    pub webhook_retry_base_ms: i64,
    /// How long a sender holds the deliveries it claimed (a node that dies mid-delivery
    /// leaves them to the others after this).
    pub webhook_claim_ms: i64,
    /// Stored bytes per object piece of new files.
    pub file_piece_size: u64,
    /// Largest file accepted, whatever a namespace's policy says.
    pub max_file_size: u64,
    /// An upload not completed after this long is swept (its pieces and row deleted).
    pub upload_stale_ms: i64,
    /// How failed authentications lock a client address or token id out.
    pub lockout: crate::guard::LockoutPolicy,
    /// Start even though the audit log no longer holds the entry the database anchored (it was
    /// deleted, truncated or replaced): the loss is recorded as an `audit.reset` entry and a
    /// new anchor is set. Without it such a store refuses to open.
    pub accept_audit_loss: bool,
    /// Where the audit journal lives (a single node on SQLite): entries are durable once
    /// written there, and copied into the audit table in the background. `None` appends to
    /// the table directly (several nodes on PostgreSQL share the table's chain).
    pub audit_journal: Option<std::path::PathBuf>,
}

impl Default for VaultSettings {
    fn default() -> Self {
        Self {
            key_cache_ttl_ms: 10_000,
            data_key_cache: 65_536,
            token_cache_ttl_ms: 2_000,
            default_max_versions: 10,
            files: None,
            erasure_ledger: None,
            webhook_allow_private: false,
            webhook_retry_base_ms: 5_000,
            webhook_claim_ms: 60_000,
            file_piece_size: strongroom_objects::DEFAULT_PIECE_SIZE,
            max_file_size: 16 << 30,
            upload_stale_ms: 24 * 3600 * 1000,
            lockout: crate::guard::LockoutPolicy::default(),
            accept_audit_loss: false,
            audit_journal: None,
        }
    }
}

struct Inner {
    storage: Arc<dyn Storage>,
    keyring: Keyring,
    audit: AuditWriter,
    tokens: TokenCache,
    clock: Arc<dyn Clock>,
    settings: VaultSettings,
    counters: Counters,
    jobs: crate::jobs::JobBoard,
    guard: crate::guard::Guard,
    /// Authenticates the rows that decide access ([`crate::row_auth`]).
    row_key: Key<Index>,
    /// Hashes the names audit entries carry ([`crate::sealed_names`]).
    audit_name_key: Key<Index>,
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
    /// Webhook events delivered (a 2xx from the receiver).
    pub webhook_deliveries: std::sync::atomic::AtomicU64,
    /// Webhook delivery attempts that failed (to be retried, or given up).
    pub webhook_delivery_failures: std::sync::atomic::AtomicU64,
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
        let derive = |label: &str| -> CoreResult<Key<Index>> {
            root.derive(label)
                .map_err(|e| CoreError::Internal(e.to_string()))
        };
        let anchor_key = derive("audit-anchor")?;
        let row_key = derive("row-auth")?;
        let audit_name_key = crate::audit::epochs::name_key(&*storage, &root)?;
        let audit = AuditWriter::start(
            storage.clone(),
            derive("audit-chain")?,
            derive("audit-anchor")?,
            settings
                .audit_journal
                .as_deref()
                .map(|path| (path, settings.accept_audit_loss)),
        )?;
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
                jobs: Default::default(),
                guard: Default::default(),
                row_key,
                audit_name_key,
                clock,
                settings,
            }),
        };
        vault.open_audit_log(&anchor_key)?;
        vault.store_id()?;
        if first_open {
            vault.mark_rows_authenticated()?;
            vault
                .storage()
                .put_meta(crate::sealed_names::SEALED_META, b"1")?;
        } else {
            vault.authenticate_legacy_rows()?;
            vault.seal_legacy_names()?;
        }
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

    /// The storage backend. Every storage call of the vault goes through here, which checks
    /// that it is not made on an async worker thread ([`crate::blocking`]).
    #[track_caller]
    pub(crate) fn storage(&self) -> &Arc<dyn Storage> {
        crate::blocking::check();
        &self.inner.storage
    }

    /// The storage handle itself, to hand on (no call is made through it here).
    pub(crate) fn storage_handle(&self) -> Arc<dyn Storage> {
        self.inner.storage.clone()
    }

    pub(crate) fn guard(&self) -> &crate::guard::Guard {
        &self.inner.guard
    }

    pub(crate) fn job_board(&self) -> &crate::jobs::JobBoard {
        &self.inner.jobs
    }

    pub(crate) fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    pub(crate) fn audit_log(&self) -> &AuditWriter {
        &self.inner.audit
    }

    pub(crate) fn token_cache(&self) -> &TokenCache {
        &self.inner.tokens
    }

    pub(crate) fn settings(&self) -> &VaultSettings {
        &self.inner.settings
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// A MAC key derived from the root key for `label` (e.g. `audit-chain`).
    pub(crate) fn row_key(&self) -> &Key<Index> {
        &self.inner.row_key
    }

    pub(crate) fn audit_name_key(&self) -> &Key<Index> {
        &self.inner.audit_name_key
    }

    pub(crate) fn derived_index_key(&self, label: &str) -> CoreResult<Key<Index>> {
        self.keyring()
            .root()
            .derive(label)
            .map_err(|e| CoreError::Internal(e.to_string()))
    }

    /// Readiness: the backend answers and the audit log can be written (a node that would
    /// refuse every audited operation should not be sent traffic).
    pub fn ping(&self) -> CoreResult<()> {
        self.storage().ping().map_err(CoreError::from)?;
        self.audit_log().admit()
    }

    /// Writes every queued audit entry now.
    pub fn flush_audit(&self) -> CoreResult<()> {
        self.audit_log().flush()
    }

    /// Default versions kept per credential.
    pub fn default_max_versions(&self) -> u32 {
        self.settings().default_max_versions
    }

    pub(crate) fn token_cache_ttl_ms(&self) -> i64 {
        self.settings().token_cache_ttl_ms
    }
}

/// What an operation acts on, for authorization and its audit entry.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    /// The namespace (empty for store-wide operations).
    pub ns: &'a str,
    /// The item acted on (a file id, a token id, a count), or empty.
    target: &'a str,
    /// Whether `target` is an app-chosen name (a credential name, an event type), which the
    /// entry carries only as its audit name ([`crate::sealed_names`]).
    is_name: bool,
}

impl<'a> At<'a> {
    /// A target audited as it is: ids, counts, operator-chosen schema names.
    pub(crate) fn new(ns: &'a str, target: &'a str) -> Self {
        Self {
            ns,
            target,
            is_name: false,
        }
    }

    /// A target that is an app-chosen name: audited as its keyed hash, never in the clear.
    pub(crate) fn name(ns: &'a str, name: &'a str) -> Self {
        Self {
            ns,
            target: name,
            is_name: true,
        }
    }
}

/// What an operation resolved before its work: nothing, or the user it acts on (whose keyed
/// hash goes into the audit entry).
pub(crate) trait Subject {
    fn audited_user(&self) -> &[u8] {
        &[]
    }
}

impl Subject for () {}

impl Subject for UserRef {
    fn audited_user(&self) -> &[u8] {
        &self.hash
    }
}

/// Checked input of an operation that acts on no one user (a page size, a cursor, settings).
pub(crate) struct Input<T>(pub T);

impl<T> Subject for Input<T> {}

/// A user known only by keyed hash (an upload completing for the user it began for).
pub(crate) struct UserHash(pub Vec<u8>);

impl Subject for UserHash {
    fn audited_user(&self) -> &[u8] {
        &self.0
    }
}

impl Vault {
    /// The one entry point of every operation a caller reaches. In order: refuses while the
    /// audit log cannot be written; authorizes `who` for `op` in `at.ns` (as described by
    /// [`Op::describe`]; a denial counts towards the token's suspension); `resolve`s what the
    /// operation acts on (input checks, the user); runs `work`; audits the outcome — and, for
    /// operations whose entry must be durable, withholds the result unless the entry is stored.
    pub(crate) fn execute<S: Subject, T>(
        &self,
        who: &Principal,
        op: Op,
        at: At<'_>,
        resolve: impl FnOnce() -> CoreResult<S>,
        work: impl FnOnce(&S) -> CoreResult<T>,
    ) -> CoreResult<T> {
        self.audit_log().admit()?;
        let subject = self.authorize(who, op, at.ns).and_then(|()| {
            if !at.ns.is_empty() || matches!(op.access(), Access::In(_)) {
                crate::names::namespace(at.ns)?;
            }
            resolve()
        });
        let (user, result) = match subject {
            Ok(s) => (s.audited_user().to_vec(), work(&s)),
            Err(e) => (Vec::new(), Err(e)),
        };
        self.conclude(who, op, at, &user, result)
    }

    /// [`Vault::execute`] for an operation on one user of a namespace: `check` holds the
    /// caller's own input checks (run after authorization), then the user is resolved.
    #[allow(
        clippy::too_many_arguments,
        reason = "each caller names every part of its audit entry"
    )]
    pub(crate) fn execute_on_user<T>(
        &self,
        who: &Principal,
        op: Op,
        at: At<'_>,
        user_id: &str,
        check: impl FnOnce() -> CoreResult<()>,
        work: impl FnOnce(&UserRef) -> CoreResult<T>,
    ) -> CoreResult<T> {
        self.execute(
            who,
            op,
            at,
            || {
                check()?;
                self.resolve_user(at.ns, user_id)
            },
            work,
        )
    }

    /// Whether `who` may perform `op` in `ns`, as [`Op::describe`] says.
    pub(crate) fn authorize(&self, who: &Principal, op: Op, ns: &str) -> CoreResult<()> {
        who.require_op(op, ns)
    }

    /// Checks access before any input is read (the server does this for every route, with the
    /// route's operation, before parsing the body). Allowed: `Ok` and nothing is written.
    /// Denied: the denial is audited (durably) and counted towards the token's suspension,
    /// exactly as a denial inside [`Vault::execute`] would be.
    pub fn check_access(&self, who: &Principal, op: Op, ns: &str) -> CoreResult<()> {
        match self.authorize(who, op, ns) {
            Ok(()) => Ok(()),
            Err(denied) => {
                self.audit_log().admit()?;
                self.conclude(who, op, At::new(ns, ""), &[], Err(denied))
            }
        }
    }

    /// Audits an operation's outcome as its description says, and hands the result back —
    /// unless its entry had to be stored first and could not be.
    fn conclude<T>(
        &self,
        who: &Principal,
        op: Op,
        at: At<'_>,
        user: &[u8],
        result: CoreResult<T>,
    ) -> CoreResult<T> {
        if let Err(CoreError::Forbidden(_)) = &result {
            self.note_denial(who, at.ns);
        }
        if let Err(CoreError::Integrity(what)) = &result {
            self.announce_integrity_error(op, at.ns, user, what);
        }
        let ticket = self.record_entry(who, op, at, user, result.as_ref().map(|_| ()));
        if op.durability() == Durability::BeforeAnswer {
            self.audit_log().wait_durable(ticket)?;
        }
        result
    }

    /// Tells the namespace's webhooks that stored data failed authentication (best effort: there
    /// is no change to write it with, and the operation's own answer does not wait on it).
    fn announce_integrity_error(&self, op: Op, ns: &str, user: &[u8], what: &str) {
        if ns.is_empty() {
            return;
        }
        let data = serde_json::json!({"operation": op.action(), "what": what});
        let emitted = self
            .wanted_event(ns, "integrity_error", user, data)
            .and_then(|event| match event {
                Some(event) => Ok(self.storage().emit_webhook_event(&event).map(|_| ())?),
                None => Ok(()),
            });
        if let Err(err) = emitted {
            tracing::warn!(error = %err, "could not queue the integrity_error webhook event");
        }
    }

    /// Queues the audit entry of an outcome; returns its ticket.
    fn record_entry(
        &self,
        who: &Principal,
        op: Op,
        at: At<'_>,
        user: &[u8],
        result: Result<(), &CoreError>,
    ) -> u64 {
        let outcome = match result {
            Ok(()) => "ok",
            Err(e) => e.outcome(),
        };
        if let Err(CoreError::Integrity(what)) = result {
            tracing::warn!(
                action = op.action(),
                namespace = at.ns,
                what,
                "integrity failure on stored data"
            );
        }
        self.audit_log().record(AuditEntry {
            time: self.now_ms(),
            token_id: who.token_id.clone(),
            action: op.action().to_string(),
            namespace: at.ns.to_string(),
            user_hash: hex::encode(user),
            target: if at.is_name && !at.target.is_empty() {
                self.audit_name(at.target)
            } else {
                at.target.to_string()
            },
            outcome: outcome.to_string(),
        })
    }

    /// Records what the vault did on its own (a job's work, one step of a composite
    /// operation, a refused authentication): no authorization, queued (see [`Op::describe`]).
    pub(crate) fn record_internal<T>(
        &self,
        who: &Principal,
        op: Op,
        at: At<'_>,
        user: &[u8],
        result: &CoreResult<T>,
    ) {
        debug_assert_eq!(op.access(), Access::Internal, "{op:?} is not internal");
        self.record_entry(who, op, at, user, result.as_ref().map(|_| ()));
    }

    /// [`Vault::record_internal`] for a failure.
    pub(crate) fn record_internal_failure(
        &self,
        who: &Principal,
        op: Op,
        at: At<'_>,
        user: &[u8],
        error: &CoreError,
    ) {
        debug_assert_eq!(op.access(), Access::Internal, "{op:?} is not internal");
        self.record_entry(who, op, at, user, Err(error));
    }

    /// Records a failure found after the answer began (a download cut off by damage found
    /// mid-stream): queued, since nothing can be withheld any more.
    pub(crate) fn record_after_answer(
        &self,
        who: &Principal,
        op: Op,
        at: At<'_>,
        user: &[u8],
        error: &CoreError,
    ) {
        self.record_entry(who, op, at, user, Err(error));
    }

    /// Whether background work may run now: not while the audit log cannot be written.
    pub(crate) fn audit_admits(&self) -> CoreResult<()> {
        self.audit_log().admit()
    }

    /// At open: checks the audit log against the anchor in the main database, and takes its
    /// head as this node's starting point. A log that lost the anchored entry refuses to open
    /// unless the settings accept the loss, which is then recorded as `audit.reset`.
    fn open_audit_log(&self, anchor_key: &Key<Index>) -> CoreResult<()> {
        let storage = self.storage().as_ref();
        let tail = storage.audit_tail()?;
        let problem = match anchor::load(storage, anchor_key) {
            Ok(anchor::Stored::Pending) => None,
            Ok(anchor::Stored::Anchored(a)) => {
                anchor::missing_from_log(storage, &a)?.map(|p| (p, a.seq))
            }
            Err(CoreError::AuditLogDamaged(p)) => Some((p, 0)),
            Err(other) => return Err(other),
        };
        if let Some(t) = &tail {
            self.audit_log().set_head(t.seq, t.hash.clone());
        }
        match problem {
            None => {
                // Anchor the head now (a new or upgraded store, or simply a fresh start).
                if let Some(t) = tail {
                    anchor::store(
                        storage,
                        anchor_key,
                        &anchor::Anchor {
                            seq: t.seq,
                            hash: t.hash,
                        },
                    )?;
                }
                Ok(())
            }
            Some((problem, _)) if !self.settings().accept_audit_loss => {
                Err(CoreError::AuditLogDamaged(problem))
            }
            Some((problem, anchored)) => {
                tracing::error!(
                    problem,
                    "starting with a damaged audit log, as asked (--accept-audit-loss)"
                );
                let who = Principal::system("recovery");
                let lost = if anchored > 0 {
                    format!("entries up to {anchored} were anchored and are lost")
                } else {
                    "the anchor itself was lost".to_string()
                };
                self.record_internal(
                    &who,
                    Op::AuditReset,
                    At::new("", &lost),
                    &[],
                    &Ok::<(), CoreError>(()),
                );
                self.audit_log().flush()
            }
        }
    }
}
