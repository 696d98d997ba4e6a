//! Online snapshots of a store for backups, and what a backup needs to read from one.
//!
//! [`snapshot`] copies the data file and then the audit file with `VACUUM INTO` from
//! connections of their own: each copy is one read transaction, consistent however hard the
//! server writes meanwhile (WAL readers neither block nor are blocked by the writer), and is
//! a compact, standalone database file. The data file goes first: the audit anchor it holds
//! names an entry at or below the audit tail at that moment, and the audit copy, taken
//! after, holds that entry and any appended since — so a restored pair passes the anchor check.
//!
//! The readers below open snapshot files read-only and change nothing in them, so the bytes
//! a backup checksums are the bytes a restore writes back.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use strongroom_storage::{FileState, StorageError, StorageResult};

use crate::connection::{map_err, SqliteStore};

/// The two files of a snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub data: PathBuf,
    pub audit: PathBuf,
}

fn live(path: &Path) -> StorageResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StorageError::Backend(format!("{}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(map_err)?;
    Ok(conn)
}

fn vacuum_into(from: &Path, to: &Path) -> StorageResult<()> {
    if to.exists() {
        return Err(StorageError::Backend(format!(
            "{} already exists",
            to.display()
        )));
    }
    let target = to
        .to_str()
        .ok_or_else(|| StorageError::Backend("snapshot path is not UTF-8".into()))?;
    live(from)?
        .execute("VACUUM INTO ?1", [target])
        .map_err(map_err)?;
    Ok(())
}

/// Snapshots the store whose data file is `db_path` (and its audit file) into `dir`, as
/// `strongroom.db` and `strongroom.audit.db`, while it keeps serving.
pub fn snapshot(db_path: &Path, dir: &Path) -> StorageResult<Snapshot> {
    if !db_path.exists() {
        return Err(StorageError::Backend(format!(
            "{} does not exist (no store to back up)",
            db_path.display()
        )));
    }
    let taken = Snapshot {
        data: dir.join("strongroom.db"),
        audit: SqliteStore::audit_path(&dir.join("strongroom.db")),
    };
    vacuum_into(db_path, &taken.data)?;
    vacuum_into(&SqliteStore::audit_path(db_path), &taken.audit)?;
    Ok(taken)
}

/// A read-only view of one snapshot file.
pub struct SnapshotReader {
    conn: Connection,
}

impl SnapshotReader {
    pub fn open(path: &Path) -> StorageResult<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StorageError::Backend(format!("{}: {e}", path.display())))?;
        Ok(Self { conn })
    }

    /// `meta[key]`, if present and not empty.
    pub fn meta(&self, key: &str) -> StorageResult<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .optional()
            .map_err(map_err)?
            .filter(|v| !v.is_empty()))
    }

    /// The object ids of every file row not being deleted.
    pub fn file_objects(&self) -> StorageResult<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT object_id FROM files WHERE state != ?1 ORDER BY object_id")
            .map_err(map_err)?;
        let ids = st
            .query_map([FileState::Deleting.as_i64()], |r| r.get(0))
            .map_err(map_err)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(map_err)?;
        Ok(ids)
    }

    /// The erasure ledger's size and greatest id.
    pub fn ledger_head(&self) -> StorageResult<(u64, Option<String>)> {
        self.conn
            .query_row("SELECT COUNT(*), MAX(id) FROM erasure_ledger", [], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
            .map_err(map_err)
    }

    /// The last audit entry's sequence number and hash (an audit file).
    pub fn audit_head(&self) -> StorageResult<Option<(u64, Vec<u8>)>> {
        self.conn
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()
            .map_err(map_err)
    }

    /// SQLite's own structural check; `Ok(())` when it finds nothing wrong.
    pub fn integrity_check(&self) -> StorageResult<()> {
        let found: String = self
            .conn
            .query_row("PRAGMA integrity_check(1)", [], |r| r.get(0))
            .map_err(map_err)?;
        if found == "ok" {
            Ok(())
        } else {
            Err(StorageError::Corrupt(found))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_storage::MetaStore;

    #[test]
    fn a_snapshot_is_a_standalone_copy_of_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("live.db");
        let store = SqliteStore::open(&db).unwrap();
        store.put_meta("probe", b"value").unwrap();
        let out = dir.path().join("snap");
        std::fs::create_dir(&out).unwrap();
        let taken = snapshot(&db, &out).unwrap();
        store.put_meta("probe", b"later").unwrap();
        let reader = SnapshotReader::open(&taken.data).unwrap();
        assert_eq!(reader.meta("probe").unwrap().unwrap(), b"value");
        reader.integrity_check().unwrap();
        assert_eq!(reader.ledger_head().unwrap(), (0, None));
        assert!(reader.file_objects().unwrap().is_empty());
        let audit = SnapshotReader::open(&taken.audit).unwrap();
        assert_eq!(audit.audit_head().unwrap(), None);
        let before = std::fs::read(&taken.data).unwrap();
        drop(reader);
        assert_eq!(
            std::fs::read(&taken.data).unwrap(),
            before,
            "reading changed nothing"
        );
        assert!(snapshot(&db, &out).is_err(), "never overwrites");
    }
}
