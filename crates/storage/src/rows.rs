//! Plain row types exchanged with backends. Byte fields are ciphertexts, wrapped keys or keyed
//! hashes; nothing here is plaintext user data. Times are Unix milliseconds.

/// A namespace (one app or tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceRow {
    pub name: String,
    pub created_at: i64,
    /// The namespace's blind-index key, wrapped under the root key.
    pub wrapped_index_key: Vec<u8>,
    /// The key-encryption-key version new data keys are wrapped under.
    pub primary_kek_version: u32,
    /// Key versions below this may no longer decrypt.
    pub min_decrypt_version: u32,
}

/// One version of a namespace key-encryption key, wrapped under the root key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekRow {
    pub namespace: String,
    pub version: u32,
    pub wrapped_key: Vec<u8>,
    pub created_at: i64,
}

/// A user: keyed hash of the id, the id itself encrypted, and the wrapped data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub namespace: String,
    pub user_hash: Vec<u8>,
    pub encrypted_id: Vec<u8>,
    pub wrapped_key: Vec<u8>,
    pub kek_version: u32,
    pub created_at: i64,
}

/// One re-wrapped user data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrap {
    pub user_hash: Vec<u8>,
    pub from_version: u32,
    pub to_version: u32,
    pub wrapped_key: Vec<u8>,
}

/// Identifies a credential: namespace, user (keyed hash), name id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemKey {
    pub namespace: String,
    pub user_hash: Vec<u8>,
    /// The name's keyed hash as core encodes it (`~` and 43 base64url characters), never the
    /// name itself — except in rows written before names were sealed, which core re-keys once
    /// (see [`crate::CredentialStore::seal_credential_name`]).
    pub name: String,
}

impl ItemKey {
    /// The parts of a key-order cursor: rows after `after` (all rows when `None`).
    pub fn cursor(after: Option<&ItemKey>) -> (&str, &[u8], &str) {
        match after {
            Some(k) => (
                k.namespace.as_str(),
                k.user_hash.as_slice(),
                k.name.as_str(),
            ),
            None => ("", &[][..], ""),
        }
    }
}

/// A credential's version bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemMeta {
    pub current_version: u64,
    pub oldest_version: u64,
    pub max_versions: u32,
    pub created_at: i64,
    pub updated_at: i64,
    /// Authenticates `current_version` for this credential (made by core, opaque here), so a
    /// lowered pointer is detected; `None` only on rows written before it existed.
    pub pointer: Option<Vec<u8>>,
    /// The name sealed under the owner's data key (for listing); `None` only on rows written
    /// before names were sealed.
    pub sealed_name: Option<Vec<u8>>,
}

/// One stored version of a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRow {
    pub version: u64,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
    pub destroyed: bool,
    /// `None` once destroyed (and in version listings).
    pub ciphertext: Option<Vec<u8>>,
}

/// How to write the next version of a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    pub created_at: i64,
    /// Versions to keep from now on; `None` keeps the credential's setting, or
    /// `default_max_versions` for a new credential.
    pub max_versions: Option<u32>,
    pub default_max_versions: u32,
    /// The name sealed under the owner's data key, stored with the metadata (`None` writes a
    /// row as stores did before names were sealed: only the upgrade's tests do).
    pub sealed_name: Option<Vec<u8>>,
    /// A token set's refresh status, written in the version's transaction (a stored token set
    /// is never left without its schedule, nor a schedule without its version).
    pub status: Option<StatusOnWrite>,
}

/// The status a credential write stores with its version, and the event that tells of it (a
/// recovery from a failure), when one is wanted: both in the version's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOnWrite {
    pub status: CredentialStatusRow,
    pub event: Option<crate::NewWebhookEvent>,
}

/// Produces the ciphertext of the version numbered by its argument, inside the write
/// transaction (the version is part of the associated data). An `Err` aborts the write.
pub type SealFn<'a> = dyn Fn(u64) -> Result<Vec<u8>, String> + 'a;

/// Produces the authenticator of a credential's current-version pointer for the version numbered
/// by its argument, inside the write transaction.
pub type PointerFn<'a> = dyn Fn(u64) -> Vec<u8> + 'a;

/// One write of a batch ([`crate::CredentialStore::put_credential_versions`]).
pub struct BatchWrite<'a> {
    pub key: &'a ItemKey,
    pub expected_current: Option<u64>,
    pub new: &'a NewVersion,
    pub seal: &'a SealFn<'a>,
    pub pointer: &'a PointerFn<'a>,
}

/// An API token: only the digest of its secret, and its policy as opaque bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub secret_hash: Vec<u8>,
    pub name: String,
    pub policy: Vec<u8>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// An audit entry before it is chained. No field may hold a secret or a raw user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub time: i64,
    pub token_id: String,
    pub action: String,
    pub namespace: String,
    /// Hex keyed hash of the user id, or empty.
    pub user_hash: String,
    /// The item acted on (e.g. a credential name or token id), or empty.
    pub target: String,
    pub outcome: String,
}

/// A stored, chained audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: u64,
    pub entry: AuditEntry,
    pub hash: Vec<u8>,
}

/// The newest entry of the audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTail {
    pub seq: u64,
    pub hash: Vec<u8>,
}

/// Which audit entries to read. All bounds are inclusive except `after_seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub after_seq: Option<u64>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub token_id: Option<String>,
    pub action: Option<String>,
    /// Exactly this target (core passes a name's keyed hash for a filter by name).
    pub target: Option<String>,
    pub namespace: Option<String>,
    /// Hex keyed hash of a user id (core computes it from the id and the namespace).
    pub user_hash: Option<String>,
    pub outcome: Option<String>,
    /// Newest first: `after_seq` is then the sequence number the page ends *before*.
    pub newest_first: bool,
    pub limit: usize,
}

/// A lease and its current holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub name: String,
    pub owner: String,
    pub expires_at: i64,
}

/// An erasure whose purge has not finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRow {
    pub namespace: String,
    pub user_hash: Vec<u8>,
    pub started_at: i64,
}

/// One erasure as the erasure ledger keeps it: an id unique across nodes (it sorts by time),
/// the namespace, the keyed hash of the user, and when — nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub id: String,
    pub namespace: String,
    pub user_hash: Vec<u8>,
    pub erased_at: i64,
}

/// One stored event: the type only as a keyed hash, everything else sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub namespace: String,
    pub user_hash: Vec<u8>,
    pub time: i64,
    /// Random, unique within a user and time.
    pub id: Vec<u8>,
    pub type_hash: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Which events to read. Times are inclusive; `before` is an exclusive (time, id) cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    pub namespace: String,
    pub user_hash: Vec<u8>,
    pub type_hash: Option<Vec<u8>>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub before: Option<(i64, Vec<u8>)>,
    pub limit: usize,
}

/// Which events of a whole namespace to read (newest first).
#[derive(Debug, Clone)]
pub struct NamespaceEventQuery {
    pub namespace: String,
    pub type_hash: Option<Vec<u8>>,
    /// Unix ms, inclusive.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only events before this (time, user hash, id): the previous page's last.
    pub before: Option<(i64, Vec<u8>, Vec<u8>)>,
    pub limit: usize,
}

/// Identifies a record: namespace, collection, owner (user hash; the namespace's own
/// pseudo-user for namespace-wide collections), key id (the key's keyed hash as core encodes
/// it, never the key itself — except in rows written before keys were sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKey {
    pub namespace: String,
    pub collection: String,
    pub user_hash: Vec<u8>,
    pub key: String,
}

/// One keyed-hash index entry of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub field: String,
    pub value_hash: Vec<u8>,
    pub unique: bool,
}

/// A record write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordWrite {
    pub key: RecordKey,
    pub expected_version: Option<u64>,
    pub expires_at: Option<i64>,
    pub now: i64,
    pub index: Vec<IndexEntry>,
    /// The key sealed under the owner's data key, stored with the record (`None` writes a row
    /// as stores did before keys were sealed: only the upgrade's tests do).
    pub sealed_key: Option<Vec<u8>>,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub user_hash: Vec<u8>,
    pub key: String,
    pub version: u64,
    pub expires_at: Option<i64>,
    pub updated_at: i64,
    pub ciphertext: Vec<u8>,
    /// The key sealed under the owner's data key; `None` only on rows written before keys
    /// were sealed.
    pub sealed_key: Option<Vec<u8>>,
}

/// What an equality look-up on a record index finds, read in one statement: the collection's
/// stored settings (`None`: no such collection) and the live records whose index entry holds
/// the value, each with its owner's user row (to open the record and name its owner without
/// another read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLookup {
    pub settings: Option<Vec<u8>>,
    pub found: Vec<(RecordRow, UserRow)>,
}

/// The refresh status of one OAuth credential. `error` is the provider's error code, never a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialStatusRow {
    pub key: ItemKey,
    pub status: String,
    pub error: Option<String>,
    pub updated_at: i64,
    /// When the background refresher should next refresh it (`None`: never).
    pub refresh_due_at: Option<i64>,
    /// Refresh failures in a row (for back-off).
    pub failures: u32,
    /// The last "who am I" check: whether the provider accepted the token, and when.
    pub verified: Option<bool>,
    pub verified_at: Option<i64>,
    /// The credential's name sealed under the owner's data key (the status outlives a revoked
    /// credential, so it keeps its own copy); writing `None` keeps the stored one.
    pub sealed_name: Option<Vec<u8>>,
}

/// A named key of a namespace's Transit engine: its versions (wrapped under the namespace's
/// key-encryption keys) and settings, as one authenticated body. `revision` counts writes, so
/// a change is check-and-set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitKeyRow {
    pub namespace: String,
    pub name: String,
    pub revision: u64,
    pub body: Vec<u8>,
}

/// A credential's current version and its pointer authenticator (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialPointer {
    pub key: ItemKey,
    pub current_version: u64,
    pub pointer: Option<Vec<u8>>,
}
