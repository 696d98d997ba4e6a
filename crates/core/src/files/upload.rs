//! Streaming upload: plaintext in, sealed segments out, cut into fixed-size pieces that are
//! written as soon as they fill (the next piece fills while the previous one is written).
//! Memory stays at two pieces per upload,
//! whatever the file size. The metadata row exists (as `uploading`) before the first piece is
//! written and becomes `ready` only after the last one, so no object is ever without a row.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use strongroom_crypto::keyed_hash::Sha256;
use strongroom_crypto::segmented::{FileHeader, SegmentCipher, DEFAULT_SEGMENT_SIZE, TAG_LEN};
use strongroom_crypto::{Data, Key};
use strongroom_objects::{BlobStore, InFlight, PendingPut};
use strongroom_storage::{FileCompletion, FileQuota, FileRow, FileState};

use super::{
    breach_message, check_content_type, check_file_name, random_id, FileInfo, FilePolicy, NewFile,
    SealedMetadata,
};
use crate::clock::rfc3339;
use crate::keyring::contexts;
use crate::operation::Op;
use crate::vault::{At, UserHash};
use crate::{CoreError, CoreResult, Principal, Vault};

/// How often a running upload records progress in its row (one small write).
const PROGRESS_EVERY_MS: i64 = 30_000;

/// Which limit bounds an upload's bytes (for the error when it is crossed).
#[derive(Debug, Clone, Copy)]
enum Bound {
    MaxFileSize(u64),
    Quota,
}

/// An upload in progress. Dropping it without [`UploadWriter::finish`] abandons the upload:
/// its pieces and row are removed in the background (and by the sweeper after a crash).
pub struct UploadWriter {
    vault: Vault,
    blobs: BlobStore,
    inflight: InFlight,
    row: FileRow,
    who: Principal,
    name: String,
    content_type: String,
    expected_sha256: Option<[u8; 32]>,
    quota: FileQuota,
    cipher: SegmentCipher,
    /// The owner's data key, which also seals the metadata at commit.
    data_key: Arc<Key<Data>>,
    segment_size: usize,
    /// Plaintext bytes of the segment being filled, at the tail of `piece` (sealed in place
    /// once full, so the piece buffer is the only copy).
    segment_len: usize,
    segment_index: u64,
    /// Ciphertext not yet written as a piece.
    piece: BytesMut,
    piece_index: u64,
    /// The previous piece, still being written while this one fills (one at a time, so an
    /// upload holds at most two pieces).
    writing: Option<PendingPut>,
    size: u64,
    limit: u64,
    bound: Bound,
    sha256: Sha256,
    settled: bool,
}

/// An upload whose pieces are all written; [`FinishedUpload::commit`] makes it visible.
pub struct FinishedUpload {
    writer: UploadWriter,
    sha256: [u8; 32],
}

impl Vault {
    /// Starts an upload of a file for `user_id` (needs `write`): checks the name, content type,
    /// declared size, policy and quotas, and records the upload. The owner's data key is
    /// created on the user's first write. Audited as `file.upload.start`, and the completed
    /// upload as `file.upload` with the file's id.
    pub fn begin_upload(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        new: NewFile,
    ) -> CoreResult<UploadWriter> {
        self.file_op(who, Op::FileUploadStart, ns, user_id, "", |user| {
            check_file_name(&new.name)?;
            let content_type = new
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".to_string());
            check_content_type(&content_type)?;
            let expected_sha256 = parse_sha256(new.expected_sha256.as_deref())?;
            let blobs = self.blobs()?.clone();
            let policy = self.file_policy(ns)?;
            if !policy.allows(&content_type) {
                return Err(CoreError::UnsupportedContentType(content_type));
            }
            let (limit, bound) = self.upload_limit(ns, &user.hash, &policy, new.declared_size)?;
            let data_key = self.user_key_for_write(user, user_id)?;
            let file_id = random_id()?;
            let header = FileHeader::new(DEFAULT_SEGMENT_SIZE)
                .map_err(|e| CoreError::Internal(e.to_string()))?;
            let cipher = SegmentCipher::new(
                &data_key,
                file_id.as_bytes(),
                header,
                &contexts::file(ns, &user.hash, &file_id),
            )
            .map_err(|e| CoreError::Internal(e.to_string()))?;
            let now = self.now_ms();
            let row = FileRow {
                namespace: ns.to_string(),
                user_hash: user.hash.clone(),
                file_id,
                object_id: random_id()?,
                state: FileState::Uploading,
                size: new.declared_size.unwrap_or(0),
                piece_size: self.settings().file_piece_size,
                header: header.to_bytes().to_vec(),
                sealed: Vec::new(),
                created_at: now,
                updated_at: now,
            };
            let quota = policy.quota();
            if let Some(b) = self.storage().begin_file(&row, &quota)? {
                return Err(breach_message(b));
            }
            let mut piece = BytesMut::with_capacity(
                row.piece_size as usize + header.segment_size as usize + TAG_LEN,
            );
            piece.extend_from_slice(&header.to_bytes());
            Ok(UploadWriter {
                vault: self.clone(),
                blobs,
                inflight: InFlight::default(),
                segment_size: header.segment_size as usize,
                segment_len: 0,
                segment_index: 0,
                piece,
                piece_index: 0,
                writing: None,
                size: 0,
                limit,
                bound,
                sha256: Sha256::default(),
                row,
                who: who.clone(),
                name: new.name,
                content_type,
                expected_sha256,
                quota,
                cipher,
                data_key,
                settled: false,
            })
        })
    }

    /// How many bytes this upload may carry, and which limit that is: the maximum file size
    /// (the policy's, capped by the server's), or what the byte quotas leave now (concurrent
    /// uploads are checked again when each completes). A declared size above it fails at once.
    fn upload_limit(
        &self,
        ns: &str,
        user_hash: &[u8],
        policy: &FilePolicy,
        declared: Option<u64>,
    ) -> CoreResult<(u64, Bound)> {
        let max_file_size = policy
            .max_file_size
            .unwrap_or(u64::MAX)
            .min(self.settings().max_file_size);
        if declared.is_some_and(|d| d > max_file_size) {
            return Err(CoreError::FileTooLarge {
                limit: max_file_size,
            });
        }
        let quota = policy.quota();
        if quota.user_bytes.is_none() && quota.namespace_bytes.is_none() {
            return Ok((max_file_size, Bound::MaxFileSize(max_file_size)));
        }
        let used_user = self.storage().file_usage(ns, Some(user_hash))?.bytes;
        let used_ns = self.storage().file_usage(ns, None)?.bytes;
        let room = [
            quota.user_bytes.map(|l| l.saturating_sub(used_user)),
            quota.namespace_bytes.map(|l| l.saturating_sub(used_ns)),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u64::MAX);
        Ok(if room < max_file_size {
            (room, Bound::Quota)
        } else {
            (max_file_size, Bound::MaxFileSize(max_file_size))
        })
    }
}

/// The optional hex SHA-256 an upload must match.
fn parse_sha256(hex_text: Option<&str>) -> CoreResult<Option<[u8; 32]>> {
    hex_text
        .map(|h| {
            hex::decode(h)
                .ok()
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
                .ok_or(CoreError::Invalid {
                    field: "sha256",
                    rule: "must be 64 hex characters".into(),
                })
        })
        .transpose()
}

impl UploadWriter {
    /// Encrypts `data` and writes every piece it fills.
    pub async fn write(&mut self, mut data: &[u8]) -> CoreResult<()> {
        let new_size = self.size + data.len() as u64;
        if new_size > self.limit {
            return Err(match self.bound {
                Bound::MaxFileSize(limit) => CoreError::FileTooLarge { limit },
                Bound::Quota => CoreError::QuotaExceeded(
                    "the upload would exceed the file quota (user or namespace bytes)".into(),
                ),
            });
        }
        self.size = new_size;
        self.sha256.update(data);
        while !data.is_empty() {
            let room = self.segment_size - self.segment_len;
            let take = room.min(data.len());
            self.piece.extend_from_slice(&data[..take]);
            self.segment_len += take;
            data = &data[take..];
            if self.segment_len == self.segment_size {
                self.seal_segment(false)?;
                self.flush_full_pieces().await?;
            }
        }
        Ok(())
    }

    /// Seals the segment at the tail of the piece buffer where it lies. Pieces are cut only
    /// after this, so only sealed bytes ever leave.
    fn seal_segment(&mut self, last: bool) -> CoreResult<()> {
        let start = self.piece.len() - self.segment_len;
        let tag = self
            .cipher
            .seal_in_place(self.segment_index, &mut self.piece[start..], last)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        self.piece.extend_from_slice(&tag);
        self.segment_len = 0;
        self.segment_index += 1;
        Ok(())
    }

    async fn flush_full_pieces(&mut self) -> CoreResult<()> {
        let piece_size = self.row.piece_size as usize;
        while self.piece.len() >= piece_size {
            // The next piece gets a buffer of its own (the full one is shared with its write
            // until that finishes), sized once, so an upload holds two piece buffers at most.
            let mut next = BytesMut::with_capacity(piece_size + self.segment_size + TAG_LEN);
            next.extend_from_slice(&self.piece[piece_size..]);
            self.piece.truncate(piece_size);
            let full = std::mem::replace(&mut self.piece, next).freeze();
            self.put_piece(full).await?;
        }
        Ok(())
    }

    /// Starts writing a piece once the previous one has been written. Every
    /// [`PROGRESS_EVERY_MS`] the row records progress, so the sweeper only takes uploads that
    /// stopped moving; an upload swept or erased meanwhile stops here.
    async fn put_piece(&mut self, bytes: Bytes) -> CoreResult<()> {
        if let Some(previous) = self.writing.take() {
            previous.finish().await?;
        }
        let now = self.vault.now_ms();
        if now - self.row.updated_at >= PROGRESS_EVERY_MS {
            let (vault, ns, file_id) = (
                self.vault.clone(),
                self.row.namespace.clone(),
                self.row.file_id.clone(),
            );
            let touched =
                crate::blocking::run(move || vault.storage().touch_upload(&ns, &file_id, now))
                    .await
                    .map_err(CoreError::Internal)??;
            if !touched {
                return Err(CoreError::NotFound("upload"));
            }
            self.row.updated_at = now;
        }
        self.writing = Some(self.blobs.start_put(
            &self.row.object_id,
            self.piece_index,
            bytes,
            &self.inflight,
        )?);
        self.piece_index += 1;
        Ok(())
    }

    /// Seals the final segment, writes the last piece and checks the declared SHA-256. The file
    /// is not visible until [`FinishedUpload::commit`]. On an error the upload is abandoned
    /// (as by [`UploadWriter::abandon`]) before this returns.
    pub async fn finish(mut self) -> CoreResult<FinishedUpload> {
        match self.write_tail().await {
            Ok(sha256) => Ok(FinishedUpload {
                writer: self,
                sha256,
            }),
            Err(e) => {
                self.abandon().await;
                Err(e)
            }
        }
    }

    async fn write_tail(&mut self) -> CoreResult<[u8; 32]> {
        self.seal_segment(true)?;
        self.flush_full_pieces().await?;
        if !self.piece.is_empty() {
            let rest = std::mem::take(&mut self.piece).freeze();
            self.put_piece(rest).await?;
        }
        if let Some(last) = self.writing.take() {
            last.finish().await?;
        }
        let sha256 = std::mem::take(&mut self.sha256).finish();
        match self.expected_sha256 {
            Some(expected) if expected != sha256 => Err(CoreError::Invalid {
                field: "sha256",
                rule: "the uploaded bytes do not match the declared SHA-256".into(),
            }),
            _ => Ok(sha256),
        }
    }

    /// Gives the upload up (the client went away, a limit was crossed): its row stops counting
    /// against the quotas before this returns — on the blocking pool, never on this worker —
    /// and its pieces are removed by a thread of their own (or by the sweeper after a crash).
    pub async fn abandon(mut self) {
        self.settled = true;
        let (vault, row) = (self.vault.clone(), self.row.clone());
        let marked = crate::blocking::run(move || {
            vault
                .storage()
                .mark_file_deleting(&row.namespace, &row.file_id)
        })
        .await;
        let marked = !matches!(marked, Err(_) | Ok(Err(_)));
        self.clean_up_in_background(marked);
    }

    /// Waits for in-flight piece writes, then deletes the pieces and the row (marking the row
    /// first unless `marked`), on a thread of its own.
    fn clean_up_in_background(&self, marked: bool) {
        let vault = self.vault.clone();
        let row = self.row.clone();
        let inflight = self.inflight.clone();
        let spawned = std::thread::Builder::new()
            .name("upload-cleanup".into())
            .spawn(move || {
                if !marked {
                    if let Err(e) = vault.storage().mark_file_deleting(&row.namespace, &row.file_id) {
                        tracing::warn!(error = %e, "marking an abandoned upload failed; the sweeper will retry");
                        return;
                    }
                }
                // A piece write may still be running if the caller was cancelled mid-write.
                if !inflight.wait_idle(std::time::Duration::from_secs(120)) {
                    tracing::warn!("a piece write of an abandoned upload is still running; the sweeper will finish");
                    return;
                }
                if let Err(e) = vault.remove_file_row(&row) {
                    tracing::warn!(error = %e, "cleaning up an abandoned upload failed; the sweeper will retry");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start upload cleanup; the sweeper will do it");
        }
    }
}

impl FinishedUpload {
    /// Records the file as complete (checking quotas once more) and returns its metadata.
    /// Blocking: run it where database calls may block.
    pub fn commit(mut self) -> CoreResult<FileInfo> {
        let w = &mut self.writer;
        let vault = w.vault.clone();
        let ns = w.row.namespace.clone();
        let hash = w.row.user_hash.clone();
        let file_id = w.row.file_id.clone();
        let who = w.who.clone();
        let resolve = || Ok(UserHash(hash.clone()));
        vault.execute(
            &who,
            Op::FileUpload,
            At::new(&ns, &file_id),
            resolve,
            |_| {
                let meta = SealedMetadata {
                    name: w.name.clone(),
                    content_type: w.content_type.clone(),
                    sha256: hex::encode(self.sha256),
                };
                let plain =
                    serde_json::to_vec(&meta).map_err(|e| CoreError::Internal(e.to_string()))?;
                let sealed = w
                    .data_key
                    .seal(1, &contexts::file_metadata(&ns, &hash, &file_id), &plain)
                    .map_err(|e| CoreError::Internal(e.to_string()))?;
                let now = vault.now_ms();
                match vault
                    .storage()
                    .complete_file(&ns, &file_id, w.size, &sealed, now, &w.quota)?
                {
                    FileCompletion::Completed => {
                        w.settled = true;
                        vault
                            .counters()
                            .file_bytes_uploaded
                            .fetch_add(w.size, std::sync::atomic::Ordering::Relaxed);
                        Ok(FileInfo {
                            id: file_id.clone(),
                            name: meta.name,
                            content_type: meta.content_type,
                            size: w.size,
                            sha256: meta.sha256,
                            created_at: rfc3339(w.row.created_at),
                        })
                    }
                    FileCompletion::Exceeded(b) => Err(breach_message(b)),
                    // Swept as stale, or the user was erased meanwhile.
                    FileCompletion::Gone => Err(CoreError::NotFound("upload")),
                }
            },
        )
    }
}

impl Drop for UploadWriter {
    /// An upload dropped unsettled (a cancelled request, a refused commit) is abandoned. Where
    /// this thread may block (the blocking pool, a plain thread) the row is marked at once, so
    /// its quota is free before the caller hears of the failure; on an async worker — a
    /// request cancelled mid-body — the clean-up thread marks it.
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let marked = crate::blocking::may_block()
            && self
                .vault
                .storage()
                .mark_file_deleting(&self.row.namespace, &self.row.file_id)
                .is_ok();
        self.clean_up_in_background(marked);
    }
}
