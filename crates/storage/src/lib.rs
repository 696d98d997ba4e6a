//! Strongroom's storage layer: one trait per concern, over opaque bytes.
//!
//! Backends (SQLite now, PostgreSQL next) implement these traits; they never see plaintext or
//! keys — only ciphertexts, wrapped keys, keyed hashes and non-secret metadata. Every trait is
//! object-safe, so the domain holds a backend as `Arc<dyn Storage>`. Operations that must be
//! atomic (check-and-set writes, key rotation, audit chaining) are single trait methods, so each
//! backend can run them in one transaction and report a lost race as [`StorageError::Conflict`],
//! distinct from a failing database ([`StorageError::Unavailable`], [`StorageError::Backend`]).
//!
//! [`conformance`] is the test suite every backend runs unchanged.

pub mod conformance;
pub mod copy;
mod error;
mod files;
mod rows;
mod webhooks;

pub use error::{StorageError, StorageResult};
pub use files::*;
pub use rows::*;
pub use webhooks::*;

/// Small key/value settings of the store itself (schema facts, the root key check value).
pub trait MetaStore {
    fn get_meta(&self, key: &str) -> StorageResult<Option<Vec<u8>>>;
    /// Stores `value` unless `key` exists; returns whether it was stored.
    fn put_meta_if_absent(&self, key: &str, value: &[u8]) -> StorageResult<bool>;
    /// Stores `value` under `key`, replacing what was there.
    fn put_meta(&self, key: &str, value: &[u8]) -> StorageResult<()>;
}

/// Namespaces and their versioned key-encryption keys.
pub trait NamespaceStore {
    /// Creates a namespace with its first key; [`StorageError::AlreadyExists`] if the name is taken.
    fn create_namespace(&self, namespace: &NamespaceRow, first_key: &KekRow) -> StorageResult<()>;
    fn get_namespace(&self, name: &str) -> StorageResult<Option<NamespaceRow>>;
    fn list_namespaces(&self) -> StorageResult<Vec<NamespaceRow>>;
    fn list_keks(&self, namespace: &str) -> StorageResult<Vec<KekRow>>;
    /// Adds `key` and makes it primary, if the primary version is still `expected_primary`;
    /// emits `event` to the webhook outbox in the same transaction.
    fn add_primary_kek(
        &self,
        key: &KekRow,
        expected_primary: u32,
        event: Option<&NewWebhookEvent>,
    ) -> StorageResult<()>;
    fn set_min_decrypt_version(&self, namespace: &str, version: u32) -> StorageResult<()>;
    /// Replaces a namespace's wrapped index key and the wrapped keys of the given versions, in
    /// one transaction (a root-key rotation re-wraps them all under the new root key).
    fn set_namespace_wrapping(
        &self,
        namespace: &str,
        wrapped_index_key: &[u8],
        keks: &[(u32, Vec<u8>)],
    ) -> StorageResult<()>;
}

/// Users (keyed by a keyed hash of their id) and their wrapped data keys.
pub trait UserStore {
    fn get_user(&self, namespace: &str, user_hash: &[u8]) -> StorageResult<Option<UserRow>>;
    /// Inserts a user; [`StorageError::AlreadyExists`] if a concurrent writer got there first.
    fn insert_user(&self, user: &UserRow) -> StorageResult<()>;
    /// Inserts several users in one transaction; for each, whether it was inserted (`false`:
    /// a user with that hash already existed and is left as it is).
    fn insert_users(&self, users: &[UserRow]) -> StorageResult<Vec<bool>>;
    /// Users ordered by hash, after `after` (exclusive).
    fn list_users(
        &self,
        namespace: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> StorageResult<Vec<UserRow>>;
    /// Users whose data key is wrapped under a key version below `version`, ordered by hash.
    fn users_below_kek(
        &self,
        namespace: &str,
        version: u32,
        after: Option<&[u8]>,
        limit: usize,
    ) -> StorageResult<Vec<UserRow>>;
    fn count_users_below_kek(&self, namespace: &str, version: u32) -> StorageResult<u64>;
    /// Replaces wrapped keys in one transaction; each update applies only if the user's key
    /// version is still the `from_version` it was read at. Returns how many applied.
    fn rewrap_users(&self, namespace: &str, updates: &[Rewrap]) -> StorageResult<u64>;
}

/// The oldest version a credential keeps when its newest is `current` and it keeps
/// `max_versions` (at least 1): versions below it are pruned.
pub fn oldest_kept(current: u64, max_versions: u32) -> u64 {
    current
        .saturating_sub(u64::from(max_versions.max(1)) - 1)
        .max(1)
}

/// Versioned credentials of a user.
pub trait CredentialStore {
    fn get_credential_meta(&self, key: &ItemKey) -> StorageResult<Option<ItemMeta>>;
    /// The metadata and one version (the current one when `version` is `None`); nothing once
    /// the user's row (and so its data key) is gone.
    fn get_credential_version(
        &self,
        key: &ItemKey,
        version: Option<u64>,
    ) -> StorageResult<Option<(ItemMeta, VersionRow)>>;
    /// [`CredentialStore::get_credential_version`] with the row of the user it belongs to, in
    /// the same read: a reader that does not hold the user's data key unwrapped needs no
    /// second query (or round trip) for it.
    fn get_credential_version_and_user(
        &self,
        key: &ItemKey,
        version: Option<u64>,
    ) -> StorageResult<Option<(ItemMeta, VersionRow, UserRow)>>;
    /// Writes the next version, if the current version is `expected_current` (when given;
    /// 0 = the credential must not exist), and prunes to the credential's `max_versions`.
    /// `seal` is called inside the transaction with the new version number; an `Err` from it
    /// aborts with [`StorageError::Aborted`] and nothing is written. `pointer` makes the
    /// stored [`ItemMeta::pointer`] for the new version.
    fn put_credential_version(
        &self,
        key: &ItemKey,
        expected_current: Option<u64>,
        new: &NewVersion,
        seal: &SealFn<'_>,
        pointer: &PointerFn<'_>,
    ) -> StorageResult<ItemMeta>;
    /// Several [`CredentialStore::put_credential_version`]s in one transaction, in the order
    /// given. A lost check-and-set ([`StorageError::Conflict`]) or a refused seal
    /// ([`StorageError::Aborted`]) is that item's result — nothing of it is written — and the
    /// others go on; any other failure aborts the whole batch.
    fn put_credential_versions(
        &self,
        items: &[BatchWrite<'_>],
    ) -> StorageResult<Vec<StorageResult<ItemMeta>>>;
    /// Credentials whose pointer is not authenticated yet (written before it existed), after
    /// `after` in key order, with their current version.
    fn credentials_without_pointer(
        &self,
        after: Option<&ItemKey>,
        limit: usize,
    ) -> StorageResult<Vec<(ItemKey, u64)>>;
    /// Stores the pointer authenticator of a credential if its current version is still
    /// `current_version` and it has none; returns whether it did.
    fn set_credential_pointer(
        &self,
        key: &ItemKey,
        current_version: u64,
        pointer: &[u8],
    ) -> StorageResult<bool>;
    /// Every credential with a current version, after `after` in key order: its current
    /// version and pointer authenticator (if any).
    fn credential_pointers(
        &self,
        after: Option<&ItemKey>,
        limit: usize,
    ) -> StorageResult<Vec<CredentialPointer>>;
    /// Replaces the pointer authenticator of a credential whose current version is still
    /// `current_version` (a root-key rotation re-authenticates it); returns whether it did.
    fn replace_credential_pointer(
        &self,
        key: &ItemKey,
        current_version: u64,
        pointer: &[u8],
    ) -> StorageResult<bool>;
    /// Every retained version, oldest first, without ciphertexts.
    fn list_credential_versions(&self, key: &ItemKey) -> StorageResult<Vec<VersionRow>>;
    /// Marks versions deleted at `deleted_at`, or undeleted when `None`. Returns how many changed.
    fn set_credential_deleted(
        &self,
        key: &ItemKey,
        versions: &[u64],
        deleted_at: Option<i64>,
    ) -> StorageResult<u64>;
    /// Erases the ciphertext of versions for good. Returns how many changed.
    fn destroy_credential_versions(&self, key: &ItemKey, versions: &[u64]) -> StorageResult<u64>;
    /// Removes the credential, its metadata and every version.
    fn delete_credential(&self, key: &ItemKey) -> StorageResult<bool>;
    /// A user's credentials in name-id order, after `after` (exclusive); none once the user's
    /// row is gone.
    fn list_credentials(
        &self,
        namespace: &str,
        user_hash: &[u8],
        after: Option<&str>,
        limit: usize,
    ) -> StorageResult<Vec<(String, ItemMeta)>>;
    /// Sets how many versions a credential keeps and, in the same transaction, removes the
    /// oldest beyond that (see [`oldest_kept`]). Returns false when the credential does not
    /// exist.
    fn set_credential_max_versions(&self, key: &ItemKey, max_versions: u32) -> StorageResult<bool>;
    /// Credentials written before names were sealed (no sealed name), after `after` in key
    /// order, with their metadata.
    fn credentials_with_plain_names(
        &self,
        after: Option<&ItemKey>,
        limit: usize,
    ) -> StorageResult<Vec<(ItemKey, ItemMeta)>>;
    /// In one transaction, re-keys a credential written before names were sealed from its plain
    /// name to `name_id` — its metadata, every version and its refresh status — storing
    /// `sealed_name` and `pointer` (the current-version authenticator for the new key). Only if
    /// the credential still has no sealed name and nothing is stored under `name_id` yet;
    /// returns whether it did.
    fn seal_credential_name(
        &self,
        key: &ItemKey,
        name_id: &str,
        sealed_name: &[u8],
        pointer: &[u8],
    ) -> StorageResult<bool>;
}

/// API tokens (digests only) and their policies (opaque bytes).
pub trait TokenStore {
    fn insert_token(&self, token: &TokenRow) -> StorageResult<()>;
    fn get_token(&self, id: &str) -> StorageResult<Option<TokenRow>>;
    fn list_tokens(&self, after: Option<&str>, limit: usize) -> StorageResult<Vec<TokenRow>>;
    /// Marks a token revoked and stores its policy re-authenticated for that state; returns
    /// false if it does not exist or was already revoked.
    fn revoke_token(&self, id: &str, revoked_at: i64, policy: &[u8]) -> StorageResult<bool>;
    /// Replaces a token's stored policy bytes (authenticating rows written before they were).
    fn set_token_policy(&self, id: &str, policy: &[u8]) -> StorageResult<bool>;
}

/// The hash-chained audit log.
pub trait AuditStore {
    /// Appends entries in order, in one transaction, each with `seq` = previous + 1 and
    /// `hash = chain(previous hash, seq, entry)`. The previous entry is read inside the same
    /// transaction, so concurrent appenders always produce a single chain. Returns the new
    /// tail (the last entry appended). `chain` may refuse (the tail is not what the caller
    /// knows it must be): then nothing is written and the error is [`StorageError::Aborted`].
    fn append_audit(
        &self,
        entries: &[AuditEntry],
        chain: &AuditChainFn<'_>,
    ) -> StorageResult<AuditTail>;
    /// The newest entry's sequence number and hash, if any.
    fn audit_tail(&self) -> StorageResult<Option<AuditTail>>;
    /// Entries matching `filter`, in sequence order.
    fn query_audit(&self, filter: &AuditFilter) -> StorageResult<Vec<AuditRow>>;
}

/// Computes an entry's chain hash from the previous hash and the entry's sequence number, or
/// refuses to extend the chain at that sequence number.
pub type AuditChainFn<'a> = dyn Fn(&[u8], u64, &AuditEntry) -> Result<Vec<u8>, String> + 'a;

/// Leases: at most one holder per name at a time, with an expiry, so a background job runs on
/// one node of a cluster and moves to another when its holder dies.
pub trait LeaseStore {
    /// Takes `name` for `owner` until `expires_at` if it is free, expired at `now`, or already
    /// held by `owner` (a renewal). Returns whether `owner` holds it now.
    fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: i64,
        expires_at: i64,
    ) -> StorageResult<bool>;
    /// Releases `name` only if `owner` holds it; returns whether it did.
    fn release_lease(&self, name: &str, owner: &str) -> StorageResult<bool>;
    fn get_lease(&self, name: &str) -> StorageResult<Option<LeaseRow>>;
}

/// Records: JSON documents in named collections, per user or per namespace, with optional
/// expiry and keyed-hash index entries for equality look-ups and unique fields.
pub trait RecordStore {
    /// Creates or replaces a collection's settings (opaque bytes).
    fn put_collection(
        &self,
        namespace: &str,
        name: &str,
        settings: &[u8],
        now: i64,
    ) -> StorageResult<()>;
    fn get_collection(&self, namespace: &str, name: &str) -> StorageResult<Option<Vec<u8>>>;
    fn list_collections(&self, namespace: &str) -> StorageResult<Vec<(String, Vec<u8>)>>;
    /// Writes the next version of a record if the current (unexpired) version is
    /// `expected_version` (when given; 0 = must not exist), replacing its index entries.
    /// A unique entry already held by another live record fails with
    /// [`StorageError::UniqueViolation`]. `seal(version)` makes the ciphertext.
    fn put_record(&self, write: &RecordWrite, seal: &SealFn<'_>) -> StorageResult<u64>;
    /// A record unless missing, expired at `now`, or its user's row is gone.
    fn get_record(&self, key: &RecordKey, now: i64) -> StorageResult<Option<RecordRow>>;
    fn delete_record(&self, key: &RecordKey) -> StorageResult<bool>;
    /// Live records of one owner, by key, after `after`.
    fn list_records(
        &self,
        namespace: &str,
        collection: &str,
        user_hash: &[u8],
        after: Option<&str>,
        limit: usize,
        now: i64,
    ) -> StorageResult<Vec<RecordRow>>;
    /// The collection's settings and up to `limit` live records whose `field` index entry has
    /// `value_hash`, by owner and key, each with its owner's row — one read (a look-up is a
    /// single round trip on a networked database).
    fn lookup_records(
        &self,
        namespace: &str,
        collection: &str,
        field: &str,
        value_hash: &[u8],
        now: i64,
        limit: usize,
    ) -> StorageResult<RecordLookup>;
    /// Deletes up to `limit` records expired at `now`; returns how many.
    fn purge_expired_records(&self, now: i64, limit: usize) -> StorageResult<u64>;
    /// Records written before keys were sealed (no sealed key), after `after` in key order.
    fn records_with_plain_keys(
        &self,
        after: Option<&RecordKey>,
        limit: usize,
    ) -> StorageResult<Vec<RecordKey>>;
    /// In one transaction, re-keys a record written before keys were sealed from its plain key
    /// to `key_id` — the record and its index entries — storing `sealed_key`. Only if it still
    /// has no sealed key and nothing is stored under `key_id` yet; returns whether it did.
    fn seal_record_key(
        &self,
        key: &RecordKey,
        key_id: &str,
        sealed_key: &[u8],
    ) -> StorageResult<bool>;
}

/// Named keys of each namespace's Transit engine (encryption as a service).
pub trait TransitStore {
    fn get_transit_key(&self, namespace: &str, name: &str) -> StorageResult<Option<TransitKeyRow>>;
    /// A namespace's key names in order.
    fn list_transit_keys(&self, namespace: &str) -> StorageResult<Vec<String>>;
    /// Creates the key (`expected_revision` `None`: it must not exist) or replaces it if its
    /// revision is still `expected_revision`. Returns whether it wrote; `false` is a lost race.
    fn put_transit_key(
        &self,
        row: &TransitKeyRow,
        expected_revision: Option<u64>,
    ) -> StorageResult<bool>;
    fn delete_transit_key(&self, namespace: &str, name: &str) -> StorageResult<bool>;
}

/// OAuth providers of a namespace, and the refresh status of each OAuth credential.
pub trait OAuthStore {
    /// Creates or replaces a provider: its public configuration and its sealed client secret.
    fn put_provider(
        &self,
        namespace: &str,
        name: &str,
        config: &[u8],
        sealed_secret: &[u8],
    ) -> StorageResult<()>;
    /// The configuration and sealed secret of a provider.
    fn get_provider(
        &self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<(Vec<u8>, Vec<u8>)>>;
    fn list_providers(&self, namespace: &str) -> StorageResult<Vec<(String, Vec<u8>)>>;
    fn delete_provider(&self, namespace: &str, name: &str) -> StorageResult<bool>;
    /// Records a credential's refresh status. `verified` / `verified_at` left `None` keep the
    /// stored verification (it describes the grant, not a refresh).
    fn set_credential_status(&self, status: &CredentialStatusRow) -> StorageResult<()>;
    /// [`OAuthStore::set_credential_status`] and, in the same transaction, `event` to the
    /// webhook outbox (a refresh failure, a recovery: no change without its event).
    fn set_credential_status_emitting(
        &self,
        status: &CredentialStatusRow,
        event: &NewWebhookEvent,
    ) -> StorageResult<()>;
    fn get_credential_status(&self, key: &ItemKey) -> StorageResult<Option<CredentialStatusRow>>;
    /// Credentials whose background refresh is due at `now`, in every namespace, soonest first.
    fn due_refreshes(&self, now: i64, limit: usize) -> StorageResult<Vec<CredentialStatusRow>>;
    /// Statuses of a namespace (optionally one status only), by user hash and name.
    fn list_credential_statuses(
        &self,
        namespace: &str,
        status: Option<&str>,
        limit: usize,
    ) -> StorageResult<Vec<CredentialStatusRow>>;
}

/// Per-user, append-only, encrypted events.
pub trait EventStore {
    /// Appends events in one transaction.
    fn append_events(&self, events: &[EventRow]) -> StorageResult<()>;
    /// A user's events, newest first (time, then id, descending); none once the user's row is
    /// gone.
    fn query_events(&self, query: &EventQuery) -> StorageResult<Vec<EventRow>>;
    /// Events of every user of a namespace, newest first (time, user hash, id, descending);
    /// only users whose row exists.
    fn query_namespace_events(&self, query: &NamespaceEventQuery) -> StorageResult<Vec<EventRow>>;
    /// How many events of `type_hash` each `bucket_ms`-wide time bucket in `[since, until]`
    /// holds (a bucket starts at a multiple of `bucket_ms`), ascending, empty buckets left out;
    /// only users whose row exists. Reads no ciphertext.
    fn count_events(
        &self,
        namespace: &str,
        type_hash: &[u8],
        since: i64,
        until: i64,
        bucket_ms: i64,
    ) -> StorageResult<Vec<(i64, u64)>>;
    /// Deletes up to `limit` events of `namespace` older than `before`; returns how many.
    fn delete_events_before(
        &self,
        namespace: &str,
        before: i64,
        limit: usize,
    ) -> StorageResult<u64>;
    /// Sets (or with `None` clears) how many days a namespace keeps events.
    fn set_event_retention(&self, namespace: &str, days: Option<u32>) -> StorageResult<()>;
    /// Every namespace with a retention, and its days.
    fn event_retentions(&self) -> StorageResult<Vec<(String, u32)>>;
}

/// Erasing a user: the wrapped data key is deleted first (crypto-shredding: every ciphertext
/// of the user becomes unreadable at once), then the user's rows are purged in batches. A
/// pending-erasure row records the work so an interrupted purge is finished later.
pub trait ErasureStore {
    /// In one transaction: deletes the user's row (with its wrapped data key), records a
    /// pending erasure, adds it to the erasure ledger as `ledger_id` (not yet shipped) and
    /// emits `event` to the webhook outbox. Returns false (and records nothing) if the user
    /// does not exist.
    fn begin_erasure(
        &self,
        namespace: &str,
        user_hash: &[u8],
        now: i64,
        ledger_id: &str,
        event: Option<&NewWebhookEvent>,
    ) -> StorageResult<bool>;
    /// Applies an erasure from the ledger kept outside this store (after a restore): in one
    /// transaction, records the ledger entry (as shipped: it came from there) unless it is
    /// already here, and — if the user's row exists — deletes it and records a pending erasure,
    /// as [`ErasureStore::begin_erasure`]. Returns whether a user row was deleted.
    fn replay_erasure(&self, entry: &LedgerRow) -> StorageResult<bool>;
    /// Ledger entries not yet copied to the ledger outside the store, oldest first.
    fn unshipped_ledger(&self, limit: usize) -> StorageResult<Vec<LedgerRow>>;
    /// Marks ledger entries as copied outside the store.
    fn mark_ledger_shipped(&self, ids: &[String]) -> StorageResult<()>;
    /// Whether the ledger holds the entry `id`.
    fn ledger_contains(&self, id: &str) -> StorageResult<bool>;
    /// How many entries the ledger holds and the greatest id among them.
    fn ledger_head(&self) -> StorageResult<(u64, Option<String>)>;
    /// Whether an erasure of this user is recorded and not finished.
    fn erasure_pending(&self, namespace: &str, user_hash: &[u8]) -> StorageResult<bool>;
    /// Deletes up to `limit` of the user's stored rows (records, events, versions, metadata);
    /// returns how many it deleted.
    fn purge_user_items(
        &self,
        namespace: &str,
        user_hash: &[u8],
        limit: usize,
    ) -> StorageResult<u64>;
    /// Rows still stored for the user (records, events, credential versions and metadata).
    fn count_user_items(&self, namespace: &str, user_hash: &[u8]) -> StorageResult<u64>;
    /// Removes the pending-erasure record; returns whether there was one.
    fn finish_erasure(&self, namespace: &str, user_hash: &[u8]) -> StorageResult<bool>;
    /// Erasures not finished yet, oldest first.
    fn pending_erasures(&self, limit: usize) -> StorageResult<Vec<ErasureRow>>;
}

/// Authentication failures per client address, shared by every node, so a lock-out decided on
/// one node holds on all of them.
pub trait LockoutStore {
    /// Counts a failed authentication from `client` at `now`. A count older than `window_ms`
    /// (or whose lock has ended) starts again at 1. When the count reaches `threshold` the client
    /// is locked until `now + lockout_ms`, and the `on_lock` events are emitted to the webhook
    /// outbox in the same transaction. Returns the end of the client's lock, if locked.
    fn record_auth_failure(
        &self,
        client: &str,
        now: i64,
        window_ms: i64,
        threshold: u32,
        lockout_ms: i64,
        on_lock: &[NewWebhookEvent],
    ) -> StorageResult<Option<i64>>;
    /// Clients locked out at `now`, with the end of each lock.
    fn active_lockouts(&self, now: i64) -> StorageResult<Vec<(String, i64)>>;
    /// Forgets `client`'s failures and lock (an operator lifting a suspension); returns
    /// whether there were any.
    fn clear_lockout(&self, client: &str) -> StorageResult<bool>;
}

/// Liveness of the backend.
pub trait Health {
    fn ping(&self) -> StorageResult<()>;
}

/// Everything a backend provides, as one object-safe trait.
pub trait Storage:
    MetaStore
    + NamespaceStore
    + UserStore
    + CredentialStore
    + TokenStore
    + AuditStore
    + LeaseStore
    + LockoutStore
    + ErasureStore
    + EventStore
    + RecordStore
    + OAuthStore
    + FileStore
    + TransitStore
    + WebhookStore
    + Health
    + Send
    + Sync
{
}

impl<T> Storage for T where
    T: MetaStore
        + NamespaceStore
        + UserStore
        + CredentialStore
        + TokenStore
        + AuditStore
        + LeaseStore
        + LockoutStore
        + ErasureStore
        + EventStore
        + RecordStore
        + OAuthStore
        + FileStore
        + TransitStore
        + WebhookStore
        + Health
        + Send
        + Sync
{
}
