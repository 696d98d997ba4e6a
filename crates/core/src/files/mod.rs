//! Encrypted user files: metadata, listing, deletion, the sweeper and the erasure purge.
//! Contents are streamed by [`upload::UploadWriter`] and [`download::FileReader`]; signed
//! download links are in [`links`]; a namespace's limits and the name and type checks are in
//! `policy`.
//!
//! A file is encrypted in fixed-size segments (`strongroom_crypto::segmented`) under a key
//! derived from its owner's data key and its id, so erasing the user (shredding the data key)
//! makes every file unreadable at once; the objects are deleted by the purge. The object store
//! only ever sees random object ids and ciphertext; name, content type and checksum are sealed
//! in the metadata row.
//!
//! Metadata operations are synchronous like the rest of the vault; only piece I/O is async.

pub mod download;
pub mod links;
mod policy;
pub mod upload;

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use strongroom_crypto::segmented::{FileHeader, SegmentCipher};
use strongroom_crypto::{Data, Key};
use strongroom_objects::BlobStore;
use strongroom_storage::FileRow;

use crate::clock::rfc3339;
use crate::keyring::contexts;
use crate::operation::Op;
use crate::users::{page_limit, UserRef};
use crate::vault::At;
use crate::{CoreError, CoreResult, Page, Principal, Vault};

pub use download::{ByteRange, FileReader};
pub use links::{DownloadLink, LinkRequest};
use policy::{breach_message, check_content_type};
pub use policy::{check_file_name, FilePolicy, FilePolicyView, FileUsageView};
pub use upload::{FinishedUpload, UploadWriter};

/// Rows handled per sweep or purge step.
const SWEEP_BATCH: usize = 100;

/// What an upload declares before its body.
#[derive(Debug, Clone, Default)]
pub struct NewFile {
    pub name: String,
    /// Defaults to `application/octet-stream`.
    pub content_type: Option<String>,
    /// The body's length when known (`Content-Length`): checked against limits before any
    /// byte is read, and reserved against the quota while the upload runs.
    pub declared_size: Option<u64>,
    /// Hex SHA-256 the plaintext must have; a mismatch rejects the upload.
    pub expected_sha256: Option<String>,
}

/// A stored file as shown to callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the plaintext.
    pub sha256: String,
    pub created_at: String,
}

/// The sealed part of a file's metadata.
#[derive(Serialize, Deserialize)]
struct SealedMetadata {
    name: String,
    content_type: String,
    sha256: String,
}

/// File ids are 32 lowercase hex characters.
fn check_file_id(id: &str) -> CoreResult<()> {
    if id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(CoreError::Invalid {
            field: "file",
            rule: "is not a file id (32 lowercase hex characters)".into(),
        })
    }
}

/// A page cursor: `<created_at ms>.<file id>` of the last file of the previous page (a
/// position, so it stays valid when that file is deleted meanwhile).
pub(crate) fn parse_cursor(cursor: &str) -> CoreResult<(i64, String)> {
    let bad = || CoreError::Invalid {
        field: "cursor",
        rule: "is not a cursor from a previous page".into(),
    };
    let (time, id) = cursor.split_once('.').ok_or_else(bad)?;
    let time = time.parse::<i64>().map_err(|_| bad())?;
    check_file_id(id).map_err(|_| bad())?;
    Ok((time, id.to_string()))
}

fn random_id() -> CoreResult<String> {
    strongroom_crypto::random::bytes::<16>()
        .map(hex::encode)
        .map_err(|e| CoreError::Internal(e.to_string()))
}

impl Vault {
    fn blobs(&self) -> CoreResult<&BlobStore> {
        self.settings()
            .files
            .as_ref()
            .ok_or(CoreError::FilesNotConfigured)
    }

    /// Runs a per-user file operation on `file_id` (empty for operations on no one file).
    fn file_op<T>(
        &self,
        who: &Principal,
        op: Op,
        ns: &str,
        user_id: &str,
        file_id: &str,
        work: impl FnOnce(&UserRef) -> CoreResult<T>,
    ) -> CoreResult<T> {
        let check = || match file_id {
            "" => Ok(()),
            id => check_file_id(id),
        };
        self.execute_on_user(who, op, At::new(ns, file_id), user_id, check, work)
    }

    /// A user's ready file, checked to belong to that user.
    fn user_file(&self, user: &UserRef, file_id: &str) -> CoreResult<FileRow> {
        check_file_id(file_id)?;
        match self.storage().get_file(&user.keys.name, file_id)? {
            Some(row) if row.user_hash == user.hash => Ok(row),
            _ => Err(CoreError::NotFound("file")),
        }
    }

    /// The data key of a file's owner (the owner must still exist). Looked up once per
    /// operation: every file of one user shares it.
    fn file_owner_key(&self, row: &FileRow) -> CoreResult<Arc<Key<Data>>> {
        let keys = self.keyring().namespace(&row.namespace)?;
        let user = UserRef {
            keys,
            hash: row.user_hash.clone(),
        };
        self.existing_user_key(&user)?
            .ok_or(CoreError::NotFound("file"))
    }

    /// Decrypts a row's sealed metadata, under its owner's `key`, into what callers see.
    fn file_info(&self, row: &FileRow, key: &Key<Data>) -> CoreResult<FileInfo> {
        let plain = key
            .open(
                &contexts::file_metadata(&row.namespace, &row.user_hash, &row.file_id),
                &row.sealed,
            )
            .map_err(|e| CoreError::from_crypto("file metadata", e))?;
        let meta: SealedMetadata =
            serde_json::from_slice(&plain).map_err(|_| CoreError::Integrity("file metadata"))?;
        Ok(FileInfo {
            id: row.file_id.clone(),
            name: meta.name,
            content_type: meta.content_type,
            size: row.size,
            sha256: meta.sha256,
            created_at: rfc3339(row.created_at),
        })
    }

    /// The segment cipher of a stored file, under its owner's `key`.
    fn file_cipher(&self, row: &FileRow, key: &Key<Data>) -> CoreResult<SegmentCipher> {
        let header =
            FileHeader::parse(&row.header).map_err(|e| CoreError::from_crypto("file", e))?;
        SegmentCipher::new(
            key,
            row.file_id.as_bytes(),
            header,
            &contexts::file(&row.namespace, &row.user_hash, &row.file_id),
        )
        .map_err(|e| CoreError::from_crypto("file", e))
    }

    /// A file's metadata (needs `read`).
    pub fn get_file_info(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        file_id: &str,
    ) -> CoreResult<FileInfo> {
        self.file_op(who, Op::FileInfo, ns, user_id, file_id, |user| {
            let row = self.user_file(user, file_id)?;
            let key = self.file_owner_key(&row)?;
            self.file_info(&row, &key)
        })
    }

    /// A user's files, oldest first (needs `list`).
    pub fn list_files(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> CoreResult<Page<FileInfo>> {
        self.file_op(who, Op::FileList, ns, user_id, "", |user| {
            let after = cursor.map(parse_cursor).transpose()?;
            let limit = page_limit(limit)?;
            let rows = self.storage().list_files(
                ns,
                &user.hash,
                after.as_ref().map(|(t, id)| (*t, id.as_str())),
                limit,
            )?;
            let next_cursor = (rows.len() == limit)
                .then(|| {
                    rows.last()
                        .map(|r| format!("{}.{}", r.created_at, r.file_id))
                })
                .flatten();
            Ok(Page {
                items: self.files_info(&rows)?,
                next_cursor,
            })
        })
    }

    /// Every file of a user, for the export (the caller holds `export`, checked by the caller).
    pub(crate) fn all_user_files(&self, user: &UserRef) -> CoreResult<Vec<FileInfo>> {
        let mut out = Vec::new();
        let mut after: Option<(i64, String)> = None;
        loop {
            let position = after.as_ref().map(|(t, id)| (*t, id.as_str()));
            let rows = self
                .storage()
                .list_files(&user.keys.name, &user.hash, position, 1000)?;
            let Some(last) = rows.last() else { break };
            after = Some((last.created_at, last.file_id.clone()));
            out.extend(self.files_info(&rows)?);
        }
        Ok(out)
    }

    /// The metadata of one user's files, with one key look-up for all of them.
    fn files_info(&self, rows: &[FileRow]) -> CoreResult<Vec<FileInfo>> {
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let key = self.file_owner_key(first)?;
        rows.iter().map(|r| self.file_info(r, &key)).collect()
    }

    /// Deletes a file (needs `delete`). The row is marked first, so the file disappears at once
    /// and a crash midway leaves the sweeper a row to finish from.
    pub fn delete_file(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        file_id: &str,
    ) -> CoreResult<()> {
        self.file_op(who, Op::FileDelete, ns, user_id, file_id, |user| {
            let row = self.user_file(user, file_id)?;
            self.blobs()?;
            self.storage().mark_file_deleting(ns, &row.file_id)?;
            // The file is gone for every caller now; if the object store fails, the sweeper
            // finishes from the marked row.
            if let Err(e) = self.remove_file_row(&row) {
                tracing::warn!(error = %e, "deleting a file's pieces failed; the sweeper will retry");
            }
            Ok(())
        })
    }

    /// Removes the pieces and row of one file that is being abandoned or swept.
    pub(crate) fn remove_file_row(&self, row: &FileRow) -> CoreResult<()> {
        self.blobs()?.delete_object_blocking(&row.object_id)?;
        self.storage()
            .delete_file_row(&row.namespace, &row.file_id)?;
        Ok(())
    }

    /// Purges up to `limit` files of an erased user; returns how many went.
    pub(crate) fn purge_user_files(
        &self,
        ns: &str,
        user_hash: &[u8],
        limit: usize,
    ) -> CoreResult<u64> {
        let rows = self.storage().user_file_rows(ns, user_hash, limit)?;
        for row in &rows {
            self.remove_file_row(row)?;
        }
        Ok(rows.len() as u64)
    }

    /// Background work: removes deleted files' leftovers and uploads abandoned for longer than
    /// `upload_stale_ms` (a node died mid-upload), and forgets expired one-time link uses.
    pub(crate) fn sweep_files(&self) -> CoreResult<bool> {
        let now = self.now_ms();
        self.storage().purge_used_links(now)?;
        if self.settings().files.is_none() {
            return Ok(false);
        }
        let stale = self
            .storage()
            .stale_files(now - self.settings().upload_stale_ms, SWEEP_BATCH)?;
        if stale.is_empty() {
            return Ok(false);
        }
        let who = Principal::system("job:file-sweep");
        for row in &stale {
            let removed = self.remove_file_row(row);
            let at = At::new(&row.namespace, &row.file_id);
            self.record_internal(&who, Op::FileSweep, at, &row.user_hash, &removed);
            removed?;
        }
        Ok(stale.len() == SWEEP_BATCH)
    }
}
