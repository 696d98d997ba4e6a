//! The audit journal: an append-only file of chained entries in front of the audit table.
//!
//! With a journal (a single node on SQLite: `VaultSettings::audit_journal`), an operation's
//! entry is durable once it is in this file — one `write(2)` of a length-prefixed record
//! holding its sequence number, its chain hash and its fields — and the audit writer copies
//! journaled entries into the database table in the background, checking that each continues
//! the table's chain. A written record survives a killed process (it is in the page cache, as a
//! WAL commit with `synchronous=NORMAL` is), not a power loss: the durability the data itself
//! has. At open, records the table does not have yet are copied in (crash recovery) before the
//! anchor is checked; a last record torn by a crash is dropped (it was never acknowledged: a
//! record is acknowledged only after its whole write returned). Once everything is copied the
//! file is emptied, so it stays small.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use strongroom_crypto::{Index, Key};
use strongroom_storage::AuditEntry;

use super::chain_hash;

/// A record written to the journal.
#[derive(Debug, Clone)]
pub(crate) struct Journaled {
    pub seq: u64,
    pub hash: Vec<u8>,
    pub entry: AuditEntry,
}

/// Why a journal write failed.
pub(crate) enum WriteError {
    DiskFull,
    Other(std::io::Error),
}

/// The open journal: where the next record goes and what it chains onto.
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    /// Bytes of whole records in the file.
    len: u64,
    /// The last sequence number written (or copied from the table) and its hash.
    seq: u64,
    prev: Vec<u8>,
}

/// The largest record accepted when reading (entries are small; anything larger is damage).
const MAX_RECORD: usize = 64 * 1024;

impl Journal {
    /// Opens (creating, owner-only) the journal at `path`; returns it with the whole records it
    /// holds, in order. A torn last record is cut off; damage before the end is an error.
    pub(crate) fn open(path: &Path) -> Result<(Journal, Vec<Journaled>), String> {
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .map_err(|e| format!("cannot open the audit journal {}: {e}", path.display()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read the audit journal {}: {e}", path.display()))?;
        let (records, whole) = decode_all(&bytes)
            .map_err(|e| format!("the audit journal {} is damaged: {e}", path.display()))?;
        if whole < bytes.len() {
            tracing::warn!(
                dropped_bytes = bytes.len() - whole,
                "the audit journal ended in a torn record (a crash mid-write); it was never acknowledged and is dropped"
            );
            file.set_len(whole as u64)
                .map_err(|e| format!("cannot repair the audit journal: {e}"))?;
        }
        let journal = Journal {
            file,
            path: path.to_path_buf(),
            len: whole as u64,
            seq: 0,
            prev: Vec::new(),
        };
        Ok((journal, records))
    }

    /// Chains `entry` onto the last record and writes it in one `write(2)`; returns its
    /// sequence number and chain hash. On failure nothing of it stays in the file.
    pub(crate) fn append(
        &mut self,
        key: &Key<Index>,
        entry: &AuditEntry,
    ) -> Result<(u64, Vec<u8>), WriteError> {
        let seq = self.seq + 1;
        let hash = chain_hash(key, &self.prev, seq, entry);
        let bytes = encode(seq, &hash, entry).map_err(WriteError::Other)?;
        if let Err(err) = self.file.write_all(&bytes) {
            // A partial write would leave a torn record in the middle of the file.
            let _ = self.file.set_len(self.len);
            return Err(match err.raw_os_error() {
                Some(28) | Some(122) => WriteError::DiskFull,
                _ => WriteError::Other(err),
            });
        }
        self.len += bytes.len() as u64;
        self.seq = seq;
        self.prev.clone_from(&hash);
        Ok((seq, hash))
    }

    /// Empties the file (everything in it is in the table) and continues after `seq`/`hash`.
    pub(crate) fn restart_after(&mut self, seq: u64, hash: Vec<u8>) -> std::io::Result<()> {
        if self.len > 0 {
            self.file.set_len(0)?;
            self.len = 0;
        }
        self.seq = seq;
        self.prev = hash;
        Ok(())
    }

    /// Moves a journal that does not continue the log aside (kept for the operator) and starts
    /// an empty one.
    pub(crate) fn set_aside(&mut self, now_ms: i64) -> std::io::Result<PathBuf> {
        let aside = self.path.with_extension(format!("rejected-{now_ms}"));
        std::fs::copy(&self.path, &aside)?;
        self.file.set_len(0)?;
        self.len = 0;
        Ok(aside)
    }

    /// Bytes of records in the file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

/// A record's body as written: the entry's fields, its sequence number and its chain hash.
#[derive(serde::Serialize)]
struct Body<'a> {
    seq: u64,
    hash: String,
    time: i64,
    token_id: &'a str,
    action: &'a str,
    namespace: &'a str,
    user_hash: &'a str,
    target: &'a str,
    outcome: &'a str,
}

/// A length-prefixed record: written into one buffer, with no intermediate JSON tree (this runs
/// for every audited read).
fn encode(seq: u64, hash: &[u8], e: &AuditEntry) -> std::io::Result<Vec<u8>> {
    let body = Body {
        seq,
        hash: hex::encode(hash),
        time: e.time,
        token_id: &e.token_id,
        action: &e.action,
        namespace: &e.namespace,
        user_hash: &e.user_hash,
        target: &e.target,
        outcome: &e.outcome,
    };
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&[0; 4]);
    serde_json::to_writer(&mut out, &body)?;
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_le_bytes());
    Ok(out)
}

/// The records of `bytes` and how many bytes they span (a torn last record is left out).
fn decode_all(bytes: &[u8]) -> Result<(Vec<Journaled>, usize), String> {
    let mut records = Vec::new();
    let mut at = 0usize;
    while bytes.len() - at >= 4 {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default()) as usize;
        if len == 0 || len > MAX_RECORD {
            return Err(format!("a record at byte {at} has an impossible length"));
        }
        let Some(body) = bytes.get(at + 4..at + 4 + len) else {
            break; // torn: the crash came mid-write
        };
        let record =
            decode(body).ok_or_else(|| format!("the record at byte {at} is unreadable"))?;
        if let Some(last) = records.last() {
            let last: &Journaled = last;
            if record.seq != last.seq + 1 {
                return Err(format!(
                    "entry {} follows entry {} (records are missing)",
                    record.seq, last.seq
                ));
            }
        }
        records.push(record);
        at += 4 + len;
    }
    Ok((records, at))
}

fn decode(body: &[u8]) -> Option<Journaled> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let text = |name: &str| v.get(name)?.as_str().map(str::to_string);
    Some(Journaled {
        seq: v.get("seq")?.as_u64()?,
        hash: hex::decode(text("hash")?).ok()?,
        entry: AuditEntry {
            time: v.get("time")?.as_i64()?,
            token_id: text("token_id")?,
            action: text("action")?,
            namespace: text("namespace")?,
            user_hash: text("user_hash")?,
            target: text("target")?,
            outcome: text("outcome")?,
        },
    })
}

/// Checks that `records` continue a table ending at (`seq`, `hash`) and chain correctly;
/// returns those the table does not hold yet.
pub(crate) fn beyond(
    key: &Key<Index>,
    records: Vec<Journaled>,
    seq: u64,
    hash: &[u8],
) -> Result<Vec<Journaled>, String> {
    let pending: Vec<Journaled> = records.into_iter().filter(|r| r.seq > seq).collect();
    let mut prev = hash.to_vec();
    for (expected, r) in (seq + 1..).zip(pending.iter()) {
        if r.seq != expected {
            return Err(format!(
                "the audit journal continues at entry {} but the audit log ends at entry {seq}: entries are missing",
                r.seq
            ));
        }
        if chain_hash(key, &prev, r.seq, &r.entry) != r.hash {
            return Err(format!(
                "entry {} of the audit journal does not chain onto the audit log (altered, or the log was replaced)",
                r.seq
            ));
        }
        prev.clone_from(&r.hash);
    }
    Ok(pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            time: 5,
            token_id: "t".into(),
            action: action.into(),
            namespace: "app".into(),
            user_hash: "ab".into(),
            target: "c".into(),
            outcome: "ok".into(),
        }
    }

    fn key() -> Key<Index> {
        Key::<Index>::generate().unwrap()
    }

    #[test]
    fn records_come_back_in_order_and_chained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let key = key();
        let (mut j, none) = Journal::open(&path).unwrap();
        assert!(none.is_empty());
        let a = j.append(&key, &entry("a")).ok().unwrap();
        let b = j.append(&key, &entry("b")).ok().unwrap();
        drop(j);
        let (_, back) = Journal::open(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].seq, &back[0].hash), (1, &a.1));
        assert_eq!((back[1].seq, &back[1].entry.action[..]), (2, "b"));
        assert_eq!(beyond(&key, back.clone(), 0, &[]).unwrap().len(), 2);
        assert_eq!(beyond(&key, back.clone(), 1, &a.1).unwrap().len(), 1);
        assert!(
            beyond(&key, back.clone(), 1, b"other").is_err(),
            "a chain onto another head"
        );
        assert!(beyond(&key, back, 5, &b.1).unwrap().is_empty());
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_a_gap_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let key = key();
        let (mut j, _) = Journal::open(&path).unwrap();
        for name in ["a", "b"] {
            assert!(j.append(&key, &entry(name)).is_ok());
        }
        drop(j);
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() - 3]).unwrap();
        let (mut j, back) = Journal::open(&path).unwrap();
        assert_eq!(back.len(), 1, "the torn record is dropped");
        assert_eq!(j.len() as usize, std::fs::read(&path).unwrap().len());
        j.restart_after(1, back[0].hash.clone()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 0);
        // A record missing in the middle: damage, never silently skipped.
        let (mut j2, _) = Journal::open(&dir.path().join("k")).unwrap();
        j2.seq = 2;
        let third = j2.append(&key, &entry("c")).ok().unwrap();
        let cut = u32::from_le_bytes(whole[..4].try_into().unwrap()) as usize + 4;
        let mut broken = whole[..cut].to_vec();
        broken.extend_from_slice(&encode(third.0, &third.1, &entry("c")).unwrap());
        std::fs::write(&path, &broken).unwrap();
        assert!(Journal::open(&path).is_err());
    }
}
