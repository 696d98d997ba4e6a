//! Metadata of encrypted files: the rows, the quota check and the trait each backend implements.
//! The bytes themselves live in an object store (`strongroom-objects`); a row names its object
//! by a random id and moves `uploading → ready → deleting`, so an object never exists without
//! a row that leads the sweeper to it.

use crate::StorageResult;

/// Where a file is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Pieces are being written; `size` holds the bytes reserved against the quota.
    Uploading,
    /// Complete and readable.
    Ready,
    /// Being deleted; invisible, its pieces may still exist.
    Deleting,
}

impl FileState {
    pub fn as_i64(self) -> i64 {
        match self {
            Self::Uploading => 0,
            Self::Ready => 1,
            Self::Deleting => 2,
        }
    }

    pub fn from_i64(v: i64) -> Option<Self> {
        match v {
            0 => Some(Self::Uploading),
            1 => Some(Self::Ready),
            2 => Some(Self::Deleting),
            _ => None,
        }
    }
}

/// One file's metadata row. `sealed` (name, content type, SHA-256) is encrypted under the
/// owner's data key and empty until the upload completes; `header` is the segmented-encryption
/// header, also stored at the start of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub namespace: String,
    pub user_hash: Vec<u8>,
    pub file_id: String,
    pub object_id: String,
    pub state: FileState,
    pub size: u64,
    pub piece_size: u64,
    pub header: Vec<u8>,
    pub sealed: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Limits checked when a file is admitted and again when it completes. `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileQuota {
    pub user_bytes: Option<u64>,
    pub user_files: Option<u64>,
    pub namespace_bytes: Option<u64>,
    pub namespace_files: Option<u64>,
}

/// Bytes and files counted against a quota (uploads in progress included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileUsage {
    pub bytes: u64,
    pub files: u64,
}

/// Which limit a write would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaBreach {
    UserBytes { limit: u64 },
    UserFiles { limit: u64 },
    NamespaceBytes { limit: u64 },
    NamespaceFiles { limit: u64 },
}

impl FileQuota {
    /// No limit at all (backends skip the usage queries).
    pub fn is_unlimited(&self) -> bool {
        *self == FileQuota::default()
    }

    /// The first limit broken by adding one file of `size` bytes to the usage `user` /
    /// `namespace` (which do not include it).
    pub fn breach_adding(
        &self,
        user: FileUsage,
        namespace: FileUsage,
        size: u64,
    ) -> Option<QuotaBreach> {
        let add = |u: FileUsage| FileUsage {
            bytes: u.bytes.saturating_add(size),
            files: u.files + 1,
        };
        let (user, namespace) = (add(user), add(namespace));
        let over = |limit: Option<u64>, used: u64| limit.filter(|l| used > *l);
        if let Some(limit) = over(self.user_files, user.files) {
            return Some(QuotaBreach::UserFiles { limit });
        }
        if let Some(limit) = over(self.user_bytes, user.bytes) {
            return Some(QuotaBreach::UserBytes { limit });
        }
        if let Some(limit) = over(self.namespace_files, namespace.files) {
            return Some(QuotaBreach::NamespaceFiles { limit });
        }
        if let Some(limit) = over(self.namespace_bytes, namespace.bytes) {
            return Some(QuotaBreach::NamespaceBytes { limit });
        }
        None
    }
}

/// File metadata in a backend. Quota checks run inside the writing transaction, serialised per
/// namespace, so concurrent uploads cannot together exceed a limit.
pub trait FileStore {
    /// Inserts an `Uploading` row reserving `row.size` bytes, unless that breaks `quota`.
    fn begin_file(&self, row: &FileRow, quota: &FileQuota) -> StorageResult<Option<QuotaBreach>>;
    /// Moves an `Uploading` row whose user still exists to `Ready` with its final size and
    /// sealed metadata, unless that breaks `quota`.
    fn complete_file(
        &self,
        namespace: &str,
        file_id: &str,
        size: u64,
        sealed: &[u8],
        now: i64,
        quota: &FileQuota,
    ) -> StorageResult<FileCompletion>;
    /// Records progress of an `Uploading` row (so the sweeper does not take a slow upload for
    /// an abandoned one); false when the row is no longer uploading (swept, or user erased).
    fn touch_upload(&self, namespace: &str, file_id: &str, now: i64) -> StorageResult<bool>;
    /// A `Ready` file whose user still exists.
    fn get_file(&self, namespace: &str, file_id: &str) -> StorageResult<Option<FileRow>>;
    /// A user's `Ready` files, oldest first (then by id), after the position `after` —
    /// `(created_at, file_id)` of the last file of the previous page, which need not exist
    /// any more.
    fn list_files(
        &self,
        namespace: &str,
        user_hash: &[u8],
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> StorageResult<Vec<FileRow>>;
    /// Usage of one user (`Some`) or of the whole namespace (`None`), uploads included.
    fn file_usage(&self, namespace: &str, user_hash: Option<&[u8]>) -> StorageResult<FileUsage>;
    /// Marks a file `Deleting` (from any other state); returns the row as it was.
    fn mark_file_deleting(&self, namespace: &str, file_id: &str) -> StorageResult<Option<FileRow>>;
    /// Removes a row once its pieces are gone.
    fn delete_file_row(&self, namespace: &str, file_id: &str) -> StorageResult<bool>;
    /// Rows to sweep: `Deleting` ones, and `Uploading` ones not touched since `stale_before`.
    fn stale_files(&self, stale_before: i64, limit: usize) -> StorageResult<Vec<FileRow>>;
    /// Every row of a user, whatever its state (for the erasure purge).
    fn user_file_rows(
        &self,
        namespace: &str,
        user_hash: &[u8],
        limit: usize,
    ) -> StorageResult<Vec<FileRow>>;
    /// Stores (`Some`) or clears a namespace's file policy (opaque JSON for the core).
    fn set_file_policy(&self, namespace: &str, policy: Option<&[u8]>) -> StorageResult<()>;
    fn get_file_policy(&self, namespace: &str) -> StorageResult<Option<Vec<u8>>>;
    /// Records the use of a one-time link; false when it was used before.
    fn consume_link(&self, link_id: &str, expires_at: i64) -> StorageResult<bool>;
    /// Forgets uses of links that have expired anyway.
    fn purge_used_links(&self, now: i64) -> StorageResult<u64>;
}

/// What [`FileStore::complete_file`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileCompletion {
    Completed,
    /// The row is gone, no longer uploading, or its user was erased.
    Gone,
    Exceeded(QuotaBreach),
}
