//! Encrypted user files: policies and quotas, metadata, listing, deletion, the sweeper and the
//! erasure purge. Contents are streamed by [`upload::UploadWriter`] and [`download::FileReader`];
//! signed download links are in [`links`].
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
pub mod upload;

use serde::{Deserialize, Serialize};
use strongroom_crypto::segmented::{FileHeader, SegmentCipher};
use strongroom_objects::BlobStore;
use strongroom_storage::{FileQuota, FileRow, QuotaBreach};

use crate::clock::rfc3339;
use crate::keyring::contexts;
use crate::users::{page_limit, UserRef};
use crate::{names, Capability, CoreError, CoreResult, Page, Principal, Vault};

pub use download::{ByteRange, FileReader};
pub use links::{DownloadLink, LinkRequest};
pub use upload::{FinishedUpload, UploadWriter};

/// Rows handled per sweep or purge step.
const SWEEP_BATCH: usize = 100;

/// A namespace's file limits, set by an operator. Absent fields are unlimited (the server's
/// maximum file size still applies).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_max_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_max_files: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_max_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_max_files: Option<u64>,
    /// Exact types (`image/png`) or families (`image/*`); absent allows every type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_content_types: Option<Vec<String>>,
}

impl FilePolicy {
    fn quota(&self) -> FileQuota {
        FileQuota {
            user_bytes: self.user_max_bytes,
            user_files: self.user_max_files,
            namespace_bytes: self.namespace_max_bytes,
            namespace_files: self.namespace_max_files,
        }
    }

    fn validate(&self) -> CoreResult<()> {
        if let Some(types) = &self.allowed_content_types {
            if types.len() > 100 {
                return Err(CoreError::Invalid {
                    field: "allowed_content_types",
                    rule: "lists at most 100 types".into(),
                });
            }
            for t in types {
                let family = t.strip_suffix("/*").map(|f| format!("{f}/x"));
                content_type_essence(family.as_deref().unwrap_or(t)).map_err(|_| {
                    CoreError::Invalid {
                        field: "allowed_content_types",
                        rule: format!("`{t}` is not a content type (type/subtype or type/*)"),
                    }
                })?;
            }
        }
        Ok(())
    }

    fn allows(&self, content_type: &str) -> bool {
        let Some(types) = &self.allowed_content_types else {
            return true;
        };
        let essence = content_type_essence(content_type).unwrap_or_default();
        let family = essence.split('/').next().unwrap_or_default();
        types.iter().any(|t| {
            let t = t.to_ascii_lowercase();
            t == essence || t.strip_suffix("/*") == Some(family)
        })
    }
}

/// A namespace's policy and what it currently holds.
#[derive(Debug, Clone, Serialize)]
pub struct FilePolicyView {
    pub policy: FilePolicy,
    /// The server-wide maximum file size, which caps the policy's.
    pub server_max_file_size: u64,
    pub usage: FileUsageView,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct FileUsageView {
    pub bytes: u64,
    pub files: u64,
}

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

/// Checks a file name: 1–255 bytes, no control characters, not `.` or `..`, no `/` or `\`.
pub fn check_file_name(name: &str) -> CoreResult<()> {
    let bad = |rule: &str| {
        Err(CoreError::Invalid {
            field: "name",
            rule: rule.into(),
        })
    };
    if name.is_empty() || name.len() > 255 {
        return bad("must be 1 to 255 bytes");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return bad("may not contain control characters, `/` or `\\`");
    }
    if name == "." || name == ".." {
        return bad("may not be `.` or `..`");
    }
    Ok(())
}

/// The lower-cased `type/subtype` of a content type, parameters dropped.
fn content_type_essence(value: &str) -> Result<String, ()> {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match essence.split_once('/') {
        Some((t, sub)) if token(t) && token(sub) => Ok(essence),
        _ => Err(()),
    }
}

fn check_content_type(value: &str) -> CoreResult<()> {
    let printable = value.len() <= 255 && value.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !printable || content_type_essence(value).is_err() {
        return Err(CoreError::Invalid {
            field: "content_type",
            rule:
                "must be a media type such as `application/pdf` (type/subtype, optional parameters)"
                    .into(),
        });
    }
    Ok(())
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
fn parse_cursor(cursor: &str) -> CoreResult<(i64, String)> {
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

fn breach_message(b: QuotaBreach) -> CoreError {
    CoreError::QuotaExceeded(match b {
        QuotaBreach::UserBytes { limit } => {
            format!("the user's file quota of {limit} bytes would be exceeded")
        }
        QuotaBreach::UserFiles { limit } => {
            format!("the user's quota of {limit} files would be exceeded")
        }
        QuotaBreach::NamespaceBytes { limit } => {
            format!("the namespace's file quota of {limit} bytes would be exceeded")
        }
        QuotaBreach::NamespaceFiles { limit } => {
            format!("the namespace's quota of {limit} files would be exceeded")
        }
    })
}

impl Vault {
    fn blobs(&self) -> CoreResult<&BlobStore> {
        self.settings()
            .files
            .as_ref()
            .ok_or(CoreError::FilesNotConfigured)
    }

    fn file_policy(&self, ns: &str) -> CoreResult<FilePolicy> {
        match self.storage().get_file_policy(ns)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| CoreError::Internal(format!("stored file policy: {e}"))),
            None => Ok(FilePolicy::default()),
        }
    }

    /// Sets a namespace's file policy (operator only). Existing files are not touched.
    pub fn set_file_policy(
        &self,
        who: &Principal,
        ns: &str,
        policy: FilePolicy,
    ) -> CoreResult<FilePolicyView> {
        self.audited_now(who, "file.policy.set", ns, &[], "", || {
            names::namespace(ns)?;
            who.require(Capability::Admin, ns)?;
            self.keyring().namespace(ns)?;
            policy.validate()?;
            let bytes =
                serde_json::to_vec(&policy).map_err(|e| CoreError::Internal(e.to_string()))?;
            let stored = (policy != FilePolicy::default()).then_some(bytes.as_slice());
            self.storage().set_file_policy(ns, stored)?;
            self.policy_view(ns, policy)
        })
    }

    /// A namespace's file policy and usage (needs `list`).
    pub fn get_file_policy(&self, who: &Principal, ns: &str) -> CoreResult<FilePolicyView> {
        self.audited(who, "file.policy.get", ns, &[], "", || {
            names::namespace(ns)?;
            who.require(Capability::List, ns)?;
            self.keyring().namespace(ns)?;
            let policy = self.file_policy(ns)?;
            self.policy_view(ns, policy)
        })
    }

    fn policy_view(&self, ns: &str, policy: FilePolicy) -> CoreResult<FilePolicyView> {
        let usage = self.storage().file_usage(ns, None)?;
        Ok(FilePolicyView {
            policy,
            server_max_file_size: self.settings().max_file_size,
            usage: FileUsageView {
                bytes: usage.bytes,
                files: usage.files,
            },
        })
    }

    /// Runs a per-user file operation: validation, capability, user resolution and audit.
    fn file_op<T>(
        &self,
        who: &Principal,
        (action, cap): (&str, Capability),
        ns: &str,
        user_id: &str,
        target: &str,
        work: impl FnOnce(&UserRef) -> CoreResult<T>,
    ) -> CoreResult<T> {
        self.on_user(who, (action, cap), ns, user_id, target, Ok(()), false, work)
    }

    /// A user's ready file, checked to belong to that user.
    fn user_file(&self, user: &UserRef, file_id: &str) -> CoreResult<FileRow> {
        check_file_id(file_id)?;
        match self.storage().get_file(&user.keys.name, file_id)? {
            Some(row) if row.user_hash == user.hash => Ok(row),
            _ => Err(CoreError::NotFound("file")),
        }
    }

    /// The data key of a file's owner (the owner must still exist).
    fn file_owner_key(
        &self,
        row: &FileRow,
    ) -> CoreResult<std::sync::Arc<strongroom_crypto::Key<strongroom_crypto::Data>>> {
        let keys = self.keyring().namespace(&row.namespace)?;
        let user = UserRef {
            keys,
            hash: row.user_hash.clone(),
        };
        self.existing_user_key(&user)?
            .ok_or(CoreError::NotFound("file"))
    }

    /// Decrypts a row's sealed metadata into what callers see.
    fn file_info(&self, row: &FileRow) -> CoreResult<FileInfo> {
        let key = self.file_owner_key(row)?;
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

    /// The segment cipher of a stored file.
    fn file_cipher(&self, row: &FileRow) -> CoreResult<SegmentCipher> {
        let key = self.file_owner_key(row)?;
        let header =
            FileHeader::parse(&row.header).map_err(|e| CoreError::from_crypto("file", e))?;
        SegmentCipher::new(
            &key,
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
        self.file_op(
            who,
            ("file.info", Capability::Read),
            ns,
            user_id,
            file_id,
            |user| {
                let row = self.user_file(user, file_id)?;
                self.file_info(&row)
            },
        )
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
        self.file_op(
            who,
            ("file.list", Capability::List),
            ns,
            user_id,
            "",
            |user| {
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
                let items = rows
                    .iter()
                    .map(|r| self.file_info(r))
                    .collect::<CoreResult<Vec<_>>>()?;
                Ok(Page { items, next_cursor })
            },
        )
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
            for r in &rows {
                out.push(self.file_info(r)?);
            }
        }
        Ok(out)
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
        self.file_op(who, ("file.delete", Capability::Delete), ns, user_id, file_id, |user| {
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
            self.audited(
                &who,
                "file.sweep",
                &row.namespace,
                &row.user_hash,
                &row.file_id,
                || self.remove_file_row(row),
            )?;
        }
        Ok(stale.len() == SWEEP_BATCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_allowlists() {
        let p = FilePolicy {
            allowed_content_types: Some(vec!["image/*".into(), "application/pdf".into()]),
            ..FilePolicy::default()
        };
        p.validate().unwrap();
        assert!(p.allows("image/png"));
        assert!(p.allows("Application/PDF; charset=binary"));
        assert!(!p.allows("text/html"));
        assert!(!p.allows("imagex/png"));
        assert!(FilePolicy::default().allows("anything/at-all"));
        for bad in [
            "",
            "text",
            "text/",
            "/x",
            "te xt/plain",
            "text/plain\r\nX: y",
        ] {
            assert!(check_content_type(bad).is_err(), "{bad:?}");
        }
        check_content_type("text/plain; charset=utf-8").unwrap();
        let bad_policy = FilePolicy {
            allowed_content_types: Some(vec!["nope".into()]),
            ..FilePolicy::default()
        };
        assert!(bad_policy.validate().is_err());
    }

    #[test]
    fn file_names() {
        check_file_name("Lecture 3 — notes.pdf").unwrap();
        for bad in ["", ".", "..", "a/b", "a\\b", "a\nb", &"x".repeat(256)] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
    }
}
