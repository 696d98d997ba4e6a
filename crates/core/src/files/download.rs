//! Streaming download: reads only the stored bytes of the segments a range touches, opens each
//! segment before any of its bytes are returned, and trims the first and last to the range.
//! Memory stays at one segment plus four 1 MiB read-ahead blocks, whatever the file size. A segment
//! that fails authentication ends the stream with an integrity error; no byte of it is returned.

use std::ops::Range;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use strongroom_crypto::segmented::{SegmentCipher, TAG_LEN};
use strongroom_objects::{ByteReceiver, ObjectResult};
use strongroom_storage::FileRow;

use super::FileInfo;
use crate::operation::Op;
use crate::vault::At;
use crate::{CoreError, CoreResult, Principal, Vault};

/// A requested byte range, as HTTP `Range: bytes=…` expresses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `first-last`, both inclusive.
    Bounded { first: u64, last: u64 },
    /// `first-`: to the end.
    From(u64),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The half-open plaintext range this selects in a file of `size` bytes.
    pub fn resolve(self, size: u64) -> CoreResult<Range<u64>> {
        let unsatisfiable = Err(CoreError::RangeNotSatisfiable { size });
        match self {
            ByteRange::Bounded { first, last } if first <= last && first < size => {
                Ok(first..last.saturating_add(1).min(size))
            }
            ByteRange::From(first) if first < size => Ok(first..size),
            ByteRange::Suffix(n) if n > 0 && size > 0 => Ok(size - n.min(size)..size),
            _ => unsatisfiable,
        }
    }
}

/// Who opened the reader, for auditing a failure found while streaming.
struct Audited {
    who: Principal,
    op: Op,
    namespace: String,
    user_hash: Vec<u8>,
    file_id: String,
}

/// The decrypted contents of one file (or a range of it), chunk by chunk.
pub struct FileReader {
    vault: Vault,
    audited: Audited,
    info: FileInfo,
    range: Range<u64>,
    partial: bool,
    cipher: SegmentCipher,
    segment_size: u64,
    segment_count: u64,
    next_segment: u64,
    last_segment: u64,
    stored: ByteReceiver<ObjectResult<Bytes>>,
    /// The unopened rest of the newest stored block.
    current: BytesMut,
    failed: bool,
}

impl Vault {
    /// Opens a user's file for reading (needs `read`); `range` selects part of it.
    pub fn open_file(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        file_id: &str,
        range: Option<ByteRange>,
    ) -> CoreResult<FileReader> {
        self.file_op(who, Op::FileRead, ns, user_id, file_id, |user| {
            let row = self.user_file(user, file_id)?;
            self.file_reader(&row, range, who, Op::FileRead)
        })
    }

    /// Opens a user's file for their export archive (needs `export`).
    pub fn open_file_for_export(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        file_id: &str,
    ) -> CoreResult<FileReader> {
        self.file_op(who, Op::FileExport, ns, user_id, file_id, |user| {
            let row = self.user_file(user, file_id)?;
            self.file_reader(&row, None, who, Op::FileExport)
        })
    }

    /// A reader of a resolved file; failures found while streaming are audited under `op`.
    pub(crate) fn file_reader(
        &self,
        row: &FileRow,
        range: Option<ByteRange>,
        who: &Principal,
        op: Op,
    ) -> CoreResult<FileReader> {
        let blobs = self.blobs()?.clone();
        let key = self.file_owner_key(row)?;
        let info = self.file_info(row, &key)?;
        let cipher = self.file_cipher(row, &key)?;
        let header = *cipher.header();
        let size = row.size;
        let segment_size = u64::from(header.segment_size);
        let segment_count = header.segment_count(size);
        let (range, partial) = match range {
            Some(r) => (r.resolve(size)?, true),
            None => (0..size, false),
        };
        let first_segment = range.start / segment_size;
        // A read that reaches the end also reads the final segment, so a truncated file is
        // always detected there (when the size is a multiple of the segment size, the final
        // segment is empty and follows the last byte).
        let last_segment = if range.end == size {
            segment_count - 1
        } else {
            (range.end - 1) / segment_size
        };
        let stored_start = header.segment_offset(first_segment);
        let stored_end = header.segment_offset(last_segment)
            + segment_plain_len(size, segment_size, last_segment)
            + TAG_LEN as u64;
        let stored = blobs.read_range(&row.object_id, row.piece_size, stored_start..stored_end)?;
        Ok(FileReader {
            vault: self.clone(),
            audited: Audited {
                who: who.clone(),
                op,
                namespace: row.namespace.clone(),
                user_hash: row.user_hash.clone(),
                file_id: row.file_id.clone(),
            },
            info,
            range,
            partial,
            cipher,
            segment_size,
            segment_count,
            next_segment: first_segment,
            last_segment,
            stored,
            current: BytesMut::new(),
            failed: false,
        })
    }
}

/// Plaintext bytes in segment `index` of a file of `size` bytes.
fn segment_plain_len(size: u64, segment_size: u64, index: u64) -> u64 {
    size.saturating_sub(index * segment_size).min(segment_size)
}

impl FileReader {
    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    /// The plaintext bytes this reader returns.
    pub fn range(&self) -> Range<u64> {
        self.range.clone()
    }

    /// Whether a range was asked for (HTTP 206).
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// The next decrypted chunk; `None` at the end. After an error, always `None`.
    pub async fn next_chunk(&mut self) -> Option<CoreResult<Bytes>> {
        while !self.failed && self.next_segment <= self.last_segment {
            match self.next_segment_plaintext().await {
                Ok(Some(bytes)) if !bytes.is_empty() => {
                    self.vault
                        .counters()
                        .file_bytes_downloaded
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    return Some(Ok(bytes));
                }
                Ok(_) => continue,
                Err(e) => {
                    self.failed = true;
                    self.report(&e);
                    return Some(Err(e));
                }
            }
        }
        None
    }

    async fn next_segment_plaintext(&mut self) -> CoreResult<Option<Bytes>> {
        let index = self.next_segment;
        let size = self.info.size;
        let need = (segment_plain_len(size, self.segment_size, index) + TAG_LEN as u64) as usize;
        // Decrypted where it lies and handed out without another copy.
        let mut segment = self.take_sealed(need).await?;
        let last = index + 1 == self.segment_count;
        let len = self
            .cipher
            .open_in_place(index, &mut segment, last)
            .map_err(|e| CoreError::from_crypto("file", e))?;
        segment.truncate(len);
        self.next_segment += 1;
        let seg_start = index * self.segment_size;
        let from = (self.range.start.saturating_sub(seg_start) as usize).min(len);
        let to = (self.range.end.saturating_sub(seg_start) as usize).clamp(from, len);
        Ok(Some(segment.freeze().slice(from..to)))
    }

    /// The next `need` stored bytes. A segment inside one block is a slice of it (no copy: a
    /// uniquely owned block is opened where the store put it); only a segment that straddles
    /// two blocks is assembled, at most one per block.
    async fn take_sealed(&mut self, need: usize) -> CoreResult<BytesMut> {
        if self.current.is_empty() {
            self.current = self.next_block().await?;
        }
        if self.current.len() >= need {
            return Ok(self.current.split_to(need));
        }
        let mut sealed = BytesMut::with_capacity(need);
        sealed.extend_from_slice(&self.current.split());
        while sealed.len() < need {
            let mut block = self.next_block().await?;
            let take = (need - sealed.len()).min(block.len());
            sealed.extend_from_slice(&block.split_to(take));
            self.current = block;
        }
        Ok(sealed)
    }

    /// The next stored block; a stream that ends early is a truncated file.
    async fn next_block(&mut self) -> CoreResult<BytesMut> {
        match self.stored.recv().await {
            Some(Ok(block)) => Ok(BytesMut::from(block)),
            Some(Err(e)) => Err(e.into()),
            None => Err(CoreError::Integrity("file")),
        }
    }

    /// Audits a failure found while streaming (the open itself was audited as it happened).
    fn report(&self, e: &CoreError) {
        if let CoreError::Integrity(what) = e {
            tracing::warn!(what, "integrity failure while streaming a file");
            self.vault
                .counters()
                .file_integrity_failures
                .fetch_add(1, Ordering::Relaxed);
        }
        let a = &self.audited;
        let at = At::new(&a.namespace, &a.file_id);
        self.vault
            .record_after_answer(&a.who, a.op, at, &a.user_hash, e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_like_http() {
        let r = |b: ByteRange, size| b.resolve(size).ok();
        assert_eq!(
            r(ByteRange::Bounded { first: 0, last: 9 }, 100),
            Some(0..10)
        );
        assert_eq!(
            r(
                ByteRange::Bounded {
                    first: 90,
                    last: 200
                },
                100
            ),
            Some(90..100)
        );
        assert_eq!(r(ByteRange::From(99), 100), Some(99..100));
        assert_eq!(r(ByteRange::Suffix(10), 100), Some(90..100));
        assert_eq!(r(ByteRange::Suffix(500), 100), Some(0..100));
        assert_eq!(r(ByteRange::From(100), 100), None);
        assert_eq!(r(ByteRange::Bounded { first: 5, last: 4 }, 100), None);
        assert_eq!(r(ByteRange::Suffix(0), 100), None);
        assert_eq!(r(ByteRange::Suffix(1), 0), None);
    }
}
