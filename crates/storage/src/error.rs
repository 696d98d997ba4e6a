//! The storage layer's error type: a lost race is not a broken database.

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A check-and-set or conditional update found the state changed; retrying may succeed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller's callback aborted the transaction; nothing was written.
    #[error("aborted: {0}")]
    Aborted(String),
    /// A unique index entry for this field value is held by another live record.
    #[error("unique field {0} already holds that value")]
    UniqueViolation(String),
    /// A row with that key already exists.
    #[error("already exists")]
    AlreadyExists,
    /// The database is unreachable or busy; the operation did not happen and may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The disk the database (or its audit log) writes to is full.
    #[error("disk full: {0}")]
    Full(String),
    /// The database failed in a way retrying will not fix.
    #[error("storage failure: {0}")]
    Backend(String),
    /// A stored row does not have the expected shape.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type StorageResult<T> = Result<T, StorageError>;
