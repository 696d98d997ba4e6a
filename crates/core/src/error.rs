//! The domain's error type. Each variant maps to one HTTP status and stable code in the server;
//! messages name the field and rule broken but never echo secrets or raw user ids.

use strongroom_crypto::CryptoError;
use strongroom_objects::ObjectError;
use strongroom_storage::StorageError;

/// Why a domain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Caller input broke a documented rule.
    #[error("{field}: {rule}")]
    Invalid { field: &'static str, rule: String },
    /// No such thing (or the caller may not know it exists).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The name is taken.
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// A check-and-set precondition failed (or a concurrent writer won the race).
    #[error("version conflict: {0}")]
    Conflict(String),
    /// The user was erased and the purge of their rows is still running.
    #[error("this user was erased and the purge is still running; retry when it has finished")]
    ErasureInProgress,
    /// A setting that cannot change once set (a collection's scope).
    #[error("{field}: {rule}")]
    Immutable {
        field: &'static str,
        rule: &'static str,
    },
    /// Revoking this token would leave no active operator token.
    #[error(
        "this is the last active operator token; create another operator token before revoking it"
    )]
    LastOperatorToken,
    /// A unique field already holds that value in another record.
    #[error("{0}")]
    UniqueViolation(String),
    /// The provider refused the refresh grant (e.g. `invalid_grant`): the user must log in again.
    #[error("the provider refused the refresh ({0}); the user must authorize again")]
    NeedsReauthorization(String),
    /// Refreshing failed for now (provider down, 5xx, malformed answer); retry later.
    #[error("refreshing the token failed ({0}); retry later")]
    RefreshFailed(String),
    /// The last refresh failed and its back-off runs: callers share that failure instead of
    /// calling the provider again.
    #[error(
        "refreshing the token failed ({code}); the next attempt is allowed in {retry_after_secs} s"
    )]
    RefreshBackingOff { code: String, retry_after_secs: u64 },
    /// A webhook receiver did not take an event (recorded on the delivery; never answered to
    /// an API caller).
    #[error("the webhook receiver did not take the event ({0})")]
    WebhookFailed(String),
    /// The provider's revocation endpoint could not revoke the grant; retry later.
    #[error(
        "revoking the grant at the provider failed ({0}); the credential was kept, retry later"
    )]
    RevocationFailed(String),
    /// The provider's "who am I" URL could not be asked; retry later.
    #[error("verifying the credential with the provider failed ({0}); retry later")]
    VerificationFailed(String),
    /// The requested version is soft-deleted (can be undeleted).
    #[error("version {0} is deleted")]
    Deleted(u64),
    /// The requested version was destroyed for good.
    #[error("version {0} is destroyed")]
    Destroyed(u64),
    /// No valid credentials were presented.
    #[error("authentication required: {0}")]
    Unauthenticated(&'static str),
    /// The principal's policy does not allow this.
    #[error("permission denied: {0}")]
    Forbidden(String),
    /// Too many failed authentications for this client address or token id.
    #[error("too many failed authentications; retry in {retry_after_secs} s")]
    LockedOut { retry_after_secs: u64 },
    /// This (valid) token collected too many authorization denials and is suspended.
    #[error("this token is suspended after repeated authorization denials; retry in {retry_after_secs} s or ask an operator to lift it")]
    TokenSuspended { retry_after_secs: u64 },
    /// Stored ciphertext failed authentication: edited, moved, or wrong key.
    #[error(
        "integrity check failed for stored {0}; it was altered or moved and will not be returned"
    )]
    Integrity(&'static str),
    /// Data is wrapped under a key version below the namespace's minimum decryption version.
    #[error("key version {version} is retired (minimum is {minimum}); rewrap before retiring")]
    KeyRetired { version: u32, minimum: u32 },
    /// A key version cannot be retired while data still depends on it.
    #[error(
        "{users} user keys are still wrapped under versions below {version}; run keys rewrap first"
    )]
    KeysStillInUse { version: u32, users: u64 },
    /// An unseal of a node that is not sealed.
    #[error("this node is not sealed")]
    NotSealed,
    /// The node is sealed: it holds no key and serves nothing until unsealed.
    #[error(
        "this node is sealed: it holds no keys and serves no data until an operator unseals it"
    )]
    Sealed,
    /// The root key does not match this store.
    #[error("the root key does not match this data store (key check failed); refusing to start with the wrong key")]
    WrongRootKey,
    /// The key service that wraps the root key (KMS) failed: `transient` when it is
    /// unreachable or busy (retry), else it refused (permissions, a missing or disabled key).
    #[error("the key service (KMS) failed: {reason}")]
    KeyService { transient: bool, reason: String },
    /// A file is larger than the namespace's (or server's) maximum file size.
    #[error("the file is larger than the maximum file size of {limit} bytes")]
    FileTooLarge { limit: u64 },
    /// Storing the file would exceed a quota.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The namespace's content-type allowlist does not include this type.
    #[error("content type `{0}` is not allowed in this namespace")]
    UnsupportedContentType(String),
    /// A byte range outside the file.
    #[error("the requested range is not within the file ({size} bytes)")]
    RangeNotSatisfiable { size: u64 },
    /// A download link that is malformed, forged, or for another purpose.
    #[error("the link is not valid")]
    InvalidLink,
    /// A download link past its expiry.
    #[error("the link has expired")]
    LinkExpired,
    /// A one-time download link that was already used.
    #[error("the link was already used (it is one-time)")]
    LinkUsed,
    /// No object storage is configured for files.
    #[error("file storage is not configured on this server")]
    FilesNotConfigured,
    /// The object store (local folder or S3) did not answer; retry.
    #[error("file storage is temporarily unavailable")]
    ObjectsUnavailable(String),
    /// The storage backend is temporarily unavailable; retry.
    #[error("storage temporarily unavailable")]
    Unavailable(#[source] StorageError),
    /// A disk is full (the database's or the audit log's); writes resume when space returns.
    #[error("{0}")]
    InsufficientStorage(String),
    /// The audit log cannot store entries right now; audited operations are refused.
    #[error("{0}")]
    AuditUnavailable(String),
    /// The audit log no longer holds what the database anchored (deleted, truncated, replaced).
    #[error("the audit log is damaged: {0}")]
    AuditLogDamaged(String),
    /// Anything else: a bug or a broken backend. Details are logged, not sent to clients.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type CoreResult<T> = Result<T, CoreError>;

impl From<StorageError> for CoreError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Unavailable(_) => CoreError::Unavailable(err),
            StorageError::Full(_) => CoreError::InsufficientStorage(
                "the database's disk is full; writes are refused until space is freed".into(),
            ),
            StorageError::Conflict(msg) => CoreError::Conflict(msg),
            StorageError::AlreadyExists => CoreError::AlreadyExists("row"),
            StorageError::Aborted(msg) => CoreError::Internal(format!("write aborted: {msg}")),
            StorageError::Backend(msg) => CoreError::Internal(format!("storage: {msg}")),
            // A row that does not decode was damaged or edited: the same as a ciphertext that
            // fails authentication, never a panic or an internal error.
            StorageError::Corrupt(msg) => {
                tracing::warn!(detail = %msg, "a stored row does not decode");
                CoreError::Integrity("row")
            }
            StorageError::UniqueViolation(field) => CoreError::UniqueViolation(format!(
                "{field}: another record of this collection already has that value (the field is unique)"
            )),
        }
    }
}

impl From<ObjectError> for CoreError {
    fn from(err: ObjectError) -> Self {
        match err {
            // A piece the metadata promises is gone or short: stored data was damaged.
            ObjectError::Missing(_) => CoreError::Integrity("file"),
            ObjectError::Unavailable(msg) => CoreError::ObjectsUnavailable(msg),
            ObjectError::Config(msg) => CoreError::Internal(format!("files: {msg}")),
        }
    }
}

impl CoreError {
    /// Maps a crypto failure while opening stored `what`.
    pub(crate) fn from_crypto(what: &'static str, err: CryptoError) -> Self {
        match err {
            CryptoError::Integrity
            | CryptoError::Truncated { .. }
            | CryptoError::UnsupportedFormat { .. } => CoreError::Integrity(what),
            other => CoreError::Internal(other.to_string()),
        }
    }

    /// The audit outcome word for this error.
    pub fn outcome(&self) -> &'static str {
        match self {
            CoreError::Invalid { .. } => "invalid",
            CoreError::NotFound(_) | CoreError::Deleted(_) | CoreError::Destroyed(_) => "not_found",
            CoreError::AlreadyExists(_)
            | CoreError::Conflict(_)
            | CoreError::ErasureInProgress
            | CoreError::Immutable { .. }
            | CoreError::LastOperatorToken
            | CoreError::UniqueViolation(_)
            | CoreError::KeysStillInUse { .. }
            | CoreError::NotSealed => "conflict",
            CoreError::Unauthenticated(_)
            | CoreError::Forbidden(_)
            | CoreError::LockedOut { .. }
            | CoreError::TokenSuspended { .. } => "denied",
            CoreError::Integrity(_)
            | CoreError::KeyRetired { .. }
            | CoreError::WrongRootKey
            | CoreError::AuditLogDamaged(_) => "integrity_error",
            CoreError::NeedsReauthorization(_)
            | CoreError::RefreshFailed(_)
            | CoreError::RefreshBackingOff { .. }
            | CoreError::WebhookFailed(_)
            | CoreError::RevocationFailed(_)
            | CoreError::VerificationFailed(_)
            | CoreError::KeyService { .. } => "upstream_error",
            CoreError::FileTooLarge { .. }
            | CoreError::QuotaExceeded(_)
            | CoreError::UnsupportedContentType(_)
            | CoreError::RangeNotSatisfiable { .. } => "invalid",
            CoreError::InvalidLink | CoreError::LinkExpired | CoreError::LinkUsed => "denied",
            CoreError::Unavailable(_)
            | CoreError::InsufficientStorage(_)
            | CoreError::AuditUnavailable(_)
            | CoreError::Sealed
            | CoreError::Internal(_)
            | CoreError::FilesNotConfigured
            | CoreError::ObjectsUnavailable(_) => "error",
        }
    }
}
