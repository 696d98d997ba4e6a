//! Opening the database, the writer connection, the reader pool, and error mapping.

use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};
use strongroom_storage::{Health, MetaStore, StorageError, StorageResult};

use crate::schema::{AUDIT_MIGRATIONS, MIGRATIONS};

/// Reader connections at most: enough for a few cores; more only thrash the page caches.
const READER_POOL: usize = 8;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Page cache per connection, in KiB.
const CACHE_KIB: i64 = 16 * 1024;

struct Readers {
    idle: Vec<Connection>,
    open: usize,
}

/// A Strongroom store in one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    /// The audit log lives in its own file (`<name>.audit.db`): its constant appends would
    /// otherwise invalidate every reader's page cache of the data file many times a second.
    audit: Mutex<Connection>,
    readers: Mutex<Readers>,
    reader_freed: Condvar,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and its audit log beside it, and
    /// applies pending migrations. An error names the file it is about.
    pub fn open(path: &Path) -> StorageResult<Self> {
        let mut writer = open_connection(path).map_err(|e| about(path, e))?;
        migrate(&mut writer, MIGRATIONS).map_err(|e| about(path, e))?;
        let audit_path = Self::audit_path(path);
        let mut audit = open_connection(&audit_path).map_err(|e| about(&audit_path, e))?;
        migrate(&mut audit, AUDIT_MIGRATIONS).map_err(|e| about(&audit_path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            audit: Mutex::new(audit),
            readers: Mutex::new(Readers {
                idle: Vec::new(),
                open: 0,
            }),
            reader_freed: Condvar::new(),
        })
    }

    /// The audit log file that belongs to the database at `path`.
    pub fn audit_path(path: &Path) -> PathBuf {
        path.with_extension("audit.db")
    }

    /// The audit journal that belongs to the database at `path` (core's
    /// `VaultSettings::audit_journal`: entries are durable there before they reach the log).
    pub fn audit_journal_path(path: &Path) -> PathBuf {
        path.with_extension("audit.journal")
    }

    /// Runs `work` in an immediate transaction on the audit file and commits it.
    pub(crate) fn write_audit<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> StorageResult<T>,
    ) -> StorageResult<T> {
        immediate(&self.audit, map_audit_err, work)
    }

    /// Runs `work` on the audit file's connection.
    pub(crate) fn read_audit<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> StorageResult<T> {
        work(&self.audit.lock()).map_err(map_audit_err)
    }

    /// Runs `work` in an immediate (write-locking) transaction and commits it.
    pub(crate) fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> StorageResult<T>,
    ) -> StorageResult<T> {
        immediate(&self.writer, map_err, work)
    }

    /// Runs `work` on a pooled reader connection, waiting for one when all are busy.
    pub(crate) fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> StorageResult<T> {
        let pooled = {
            let mut pool = self.readers.lock();
            loop {
                if let Some(conn) = pool.idle.pop() {
                    break Some(conn);
                }
                if pool.open < READER_POOL {
                    pool.open += 1;
                    break None;
                }
                if self
                    .reader_freed
                    .wait_for(&mut pool, BUSY_TIMEOUT)
                    .timed_out()
                {
                    return Err(StorageError::Unavailable(
                        "no reader connection became free in time".into(),
                    ));
                }
            }
        };
        let conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.path).inspect_err(|_| self.readers.lock().open -= 1)?,
        };
        let out = work(&conn).map_err(map_err);
        self.readers.lock().idle.push(conn);
        self.reader_freed.notify_one();
        out
    }
}

/// Runs `work` in a `BEGIN IMMEDIATE` transaction on `conn` and commits it; an error from
/// `work` rolls it back.
fn immediate<T>(
    conn: &Mutex<Connection>,
    map: fn(rusqlite::Error) -> StorageError,
    work: impl FnOnce(&Transaction<'_>) -> StorageResult<T>,
) -> StorageResult<T> {
    let mut conn = conn.lock();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map)?;
    let out = work(&tx)?;
    tx.commit().map_err(map)?;
    Ok(out)
}

/// Names the file an opening error is about (the data file or the audit log).
fn about(path: &Path, err: StorageError) -> StorageError {
    let file = path.display();
    match err {
        StorageError::Backend(m) => StorageError::Backend(format!("{file}: {m}")),
        StorageError::Corrupt(m) => StorageError::Corrupt(format!("{file}: {m}")),
        StorageError::Full(m) => StorageError::Full(format!("{file}: {m}")),
        StorageError::Unavailable(m) => StorageError::Unavailable(format!("{file}: {m}")),
        other => other,
    }
}

fn open_connection(path: &Path) -> StorageResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(map_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    // `secure_delete`: deleted and overwritten content is zeroed in the file, so an erased
    // user's wrapped key or a re-keyed plain name does not linger in free space of the
    // database for whoever copies the file later (without it, the sealed-names upgrade test
    // found the old names in the file).
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -{CACHE_KIB}; PRAGMA secure_delete = ON;"
    ))
    .map_err(map_err)?;
    // Query-planner stability: plans never depend on bound values, so a cached statement is
    // never re-prepared because a parameter changed (the profile showed that on every read).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection, migrations: &[&str]) -> StorageResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Exclusive)
        .map_err(map_err)?;
    let applied: usize = tx
        .query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
        .map_err(map_err)? as usize;
    if applied > migrations.len() {
        return Err(StorageError::Backend(format!(
            "database schema version {applied} is newer than this build knows ({}); upgrade strongroom",
            migrations.len()
        )));
    }
    for (index, sql) in migrations.iter().enumerate().skip(applied) {
        tx.execute_batch(sql).map_err(map_err)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", index + 1))
            .map_err(map_err)?;
    }
    tx.commit().map_err(map_err)
}

/// Maps SQLite errors: busy/locked → retryable, a full disk → full, unique violations →
/// already exists.
pub(crate) fn map_err(err: rusqlite::Error) -> StorageError {
    match &err {
        rusqlite::Error::SqliteFailure(e, _) => match e.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                StorageError::Unavailable(err.to_string())
            }
            ErrorCode::DiskFull => StorageError::Full(err.to_string()),
            ErrorCode::ConstraintViolation => StorageError::AlreadyExists,
            _ => StorageError::Backend(err.to_string()),
        },
        rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..) => {
            StorageError::Corrupt(err.to_string())
        }
        _ => StorageError::Backend(err.to_string()),
    }
}

/// Maps errors of the audit log's file, saying so (a damaged audit log must not read as a
/// damaged database).
pub(crate) fn map_audit_err(err: rusqlite::Error) -> StorageError {
    match map_err(err) {
        StorageError::Backend(m) => StorageError::Backend(format!("audit log: {m}")),
        StorageError::Corrupt(m) => StorageError::Corrupt(format!("audit log: {m}")),
        StorageError::Full(m) => StorageError::Full(format!("audit log: {m}")),
        StorageError::Unavailable(m) => StorageError::Unavailable(format!("audit log: {m}")),
        other => other,
    }
}

impl MetaStore for SqliteStore {
    fn get_meta(&self, key: &str) -> StorageResult<Option<Vec<u8>>> {
        use rusqlite::OptionalExtension;
        self.read(|c| {
            c.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([key], |r| r.get(0))
                .optional()
        })
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                rusqlite::params![key, value],
            )
            .map_err(map_err)
            .map(|_| ())
        })
    }

    fn put_meta_if_absent(&self, key: &str, value: &[u8]) -> StorageResult<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
                    rusqlite::params![key, value],
                )
                .map_err(map_err)?;
            Ok(n == 1)
        })
    }
}

impl Health for SqliteStore {
    fn ping(&self) -> StorageResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_storage::{CredentialStore, ItemKey};

    /// Migration 16 moves credential versions out of the `WITHOUT ROWID` table without losing
    /// or changing a row, and point reads find them afterwards.
    #[test]
    fn credential_versions_move_to_a_rowid_table_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let ciphertext: Vec<u8> = (0..1130u32).map(|i| (i % 251) as u8).collect();
        {
            let mut old = open_connection(&path).unwrap();
            migrate(&mut old, &MIGRATIONS[..15]).unwrap();
            old.execute_batch(
                "INSERT INTO users (namespace, user_hash, encrypted_id, wrapped_key, kek_version, created_at) \
                 VALUES ('ns', x'0102', x'00', x'00', 1, 1); \
                 INSERT INTO credentials (namespace, user_hash, name, current_version, oldest_version, max_versions, created_at, updated_at) \
                 VALUES ('ns', x'0102', '~name', 2, 1, 10, 1, 2);",
            )
            .unwrap();
            for version in 1..=2i64 {
                old.execute(
                    "INSERT INTO credential_versions (namespace, user_hash, name, version, created_at, deleted_at, destroyed, ciphertext) \
                     VALUES ('ns', x'0102', '~name', ?1, ?1, NULL, 0, ?2)",
                    rusqlite::params![version, ciphertext],
                )
                .unwrap();
            }
        }
        let store = SqliteStore::open(&path).unwrap();
        let key = ItemKey {
            namespace: "ns".into(),
            user_hash: vec![1, 2],
            name: "~name".into(),
        };
        let (meta, current) = store.get_credential_version(&key, None).unwrap().unwrap();
        assert_eq!(meta.current_version, 2);
        assert_eq!(current.version, 2);
        assert_eq!(current.ciphertext.as_deref(), Some(&ciphertext[..]));
        let (_, first) = store
            .get_credential_version(&key, Some(1))
            .unwrap()
            .unwrap();
        assert_eq!(first.created_at, 1);
        assert_eq!(first.ciphertext.as_deref(), Some(&ciphertext[..]));
        let schema: String = store
            .read(|c| {
                c.query_row(
                    "SELECT sql FROM sqlite_master WHERE name = 'credential_versions'",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap();
        assert!(!schema.contains("WITHOUT ROWID"), "{schema}");
        assert!(schema.contains("PRIMARY KEY (namespace, user_hash, name, version)"));
    }

    /// A look-up starts from the index entries of the value, whatever the collection's size.
    #[test]
    fn record_lookups_start_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("plan.db")).unwrap();
        let plan: Vec<String> = store
            .read(|c| {
                let mut st = c.prepare(&format!(
                    "EXPLAIN QUERY PLAN {}",
                    crate::records::lookup_sql()
                ))?;
                let rows = st.query_map(
                    rusqlite::params!["ns", "c", "f", b"v".to_vec(), 0, 10],
                    |r| r.get::<_, String>(3),
                )?;
                rows.collect()
            })
            .unwrap();
        // The settings by key; the matches from the index entries of the value, then each
        // record and its owner by key, streamed (a co-routine, not materialised); no table is
        // scanned.
        assert!(
            plan.iter().all(|step| !step.starts_with("MATERIALIZE")),
            "{plan:?}"
        );
        let tables: Vec<&String> = plan
            .iter()
            .filter(|step| step.starts_with("SEARCH") || step.starts_with("SCAN"))
            .filter(|step| !step.contains("subquery") && !step.contains("collections"))
            .collect();
        assert!(
            tables[0].starts_with("SEARCH i USING PRIMARY KEY"),
            "{plan:?}"
        );
        assert!(
            tables.iter().all(|step| step.starts_with("SEARCH")),
            "{plan:?}"
        );
    }
}
