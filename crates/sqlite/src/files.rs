//! File metadata on SQLite. The single writer connection serialises every admission and
//! completion, so each quota check sees every other upload.

use rusqlite::{params, OptionalExtension, Row, Transaction};
use strongroom_storage::{
    FileCompletion, FileQuota, FileRow, FileState, FileStore, FileUsage, QuotaBreach, StorageResult,
};

use crate::connection::{map_err, SqliteStore};

const COLUMNS: &str = "f.namespace, f.user_hash, f.file_id, f.object_id, f.state, f.size, \
    f.piece_size, f.header, f.sealed, f.created_at, f.updated_at";
const USER_EXISTS: &str =
    "EXISTS (SELECT 1 FROM users u WHERE u.namespace = f.namespace AND u.user_hash = f.user_hash)";

fn file_row(r: &Row<'_>) -> rusqlite::Result<FileRow> {
    let state: i64 = r.get(4)?;
    Ok(FileRow {
        namespace: r.get(0)?,
        user_hash: r.get(1)?,
        file_id: r.get(2)?,
        object_id: r.get(3)?,
        state: FileState::from_i64(state)
            .ok_or_else(|| rusqlite::Error::IntegralValueOutOfRange(4, state))?,
        size: r.get::<_, i64>(5)? as u64,
        piece_size: r.get::<_, i64>(6)? as u64,
        header: r.get(7)?,
        sealed: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

/// Usage counted against quotas: every row that is not being deleted.
fn usage(
    tx: &Transaction<'_>,
    namespace: &str,
    user_hash: Option<&[u8]>,
    except: Option<&str>,
) -> StorageResult<FileUsage> {
    tx.prepare_cached(
        "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM files \
         WHERE namespace = ?1 AND (?2 IS NULL OR user_hash = ?2) AND state <> 2 \
         AND (?3 IS NULL OR file_id <> ?3)",
    )
    .and_then(|mut s| {
        s.query_row(params![namespace, user_hash, except], |r| {
            Ok(FileUsage {
                bytes: r.get::<_, i64>(0)? as u64,
                files: r.get::<_, i64>(1)? as u64,
            })
        })
    })
    .map_err(map_err)
}

fn breach_with(
    tx: &Transaction<'_>,
    quota: &FileQuota,
    namespace: &str,
    user_hash: &[u8],
    except: Option<&str>,
    size: u64,
) -> StorageResult<Option<QuotaBreach>> {
    if quota.is_unlimited() {
        return Ok(None);
    }
    let user = usage(tx, namespace, Some(user_hash), except)?;
    let ns = usage(tx, namespace, None, except)?;
    Ok(quota.breach_adding(user, ns, size))
}

impl FileStore for SqliteStore {
    fn begin_file(&self, row: &FileRow, quota: &FileQuota) -> StorageResult<Option<QuotaBreach>> {
        self.write(|tx| {
            if let Some(b) = breach_with(tx, quota, &row.namespace, &row.user_hash, None, row.size)? {
                return Ok(Some(b));
            }
            tx.execute(
                "INSERT INTO files (namespace, file_id, user_hash, object_id, state, size, piece_size, \
                 header, sealed, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    row.namespace,
                    row.file_id,
                    row.user_hash,
                    row.object_id,
                    row.state.as_i64(),
                    row.size as i64,
                    row.piece_size as i64,
                    row.header,
                    row.sealed,
                    row.created_at,
                    row.updated_at
                ],
            )
            .map_err(map_err)?;
            Ok(None)
        })
    }

    fn complete_file(
        &self,
        namespace: &str,
        file_id: &str,
        size: u64,
        sealed: &[u8],
        now: i64,
        quota: &FileQuota,
    ) -> StorageResult<FileCompletion> {
        self.write(|tx| {
            let owner: Option<Vec<u8>> = tx
                .query_row(
                    &format!("SELECT f.user_hash FROM files f WHERE f.namespace = ?1 AND f.file_id = ?2 AND f.state = 0 AND {USER_EXISTS}"),
                    params![namespace, file_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            let Some(owner) = owner else {
                return Ok(FileCompletion::Gone);
            };
            if let Some(b) = breach_with(tx, quota, namespace, &owner, Some(file_id), size)? {
                return Ok(FileCompletion::Exceeded(b));
            }
            tx.execute(
                "UPDATE files SET state = 1, size = ?3, sealed = ?4, updated_at = ?5 WHERE namespace = ?1 AND file_id = ?2",
                params![namespace, file_id, size as i64, sealed, now],
            )
            .map_err(map_err)?;
            Ok(FileCompletion::Completed)
        })
    }

    fn touch_upload(&self, namespace: &str, file_id: &str, now: i64) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "UPDATE files SET updated_at = ?3 WHERE namespace = ?1 AND file_id = ?2 AND state = 0 \
                 AND EXISTS (SELECT 1 FROM users u WHERE u.namespace = files.namespace AND u.user_hash = files.user_hash)",
                params![namespace, file_id, now],
            )
            .map(|n| n == 1)
            .map_err(map_err)
        })
    }

    fn get_file(&self, namespace: &str, file_id: &str) -> StorageResult<Option<FileRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files f WHERE f.namespace = ?1 AND f.file_id = ?2 AND f.state = 1 AND {USER_EXISTS}"
            ))?
            .query_row(params![namespace, file_id], file_row)
            .optional()
        })
    }

    fn list_files(
        &self,
        namespace: &str,
        user_hash: &[u8],
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> StorageResult<Vec<FileRow>> {
        let (after_time, after_id) = after.unzip();
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files f WHERE f.namespace = ?1 AND f.user_hash = ?2 AND f.state = 1 AND {USER_EXISTS} \
                 AND (?3 IS NULL OR (f.created_at, f.file_id) > (?3, ?4)) \
                 ORDER BY f.created_at, f.file_id LIMIT ?5"
            ))?
            .query_map(params![namespace, user_hash, after_time, after_id, limit as i64], file_row)?
            .collect()
        })
    }

    fn file_usage(&self, namespace: &str, user_hash: Option<&[u8]>) -> StorageResult<FileUsage> {
        // Reads through the writer's transaction so the numbers match what admission sees.
        self.write(|tx| usage(tx, namespace, user_hash, None))
    }

    fn mark_file_deleting(&self, namespace: &str, file_id: &str) -> StorageResult<Option<FileRow>> {
        self.write(|tx| {
            let row = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM files f WHERE f.namespace = ?1 AND f.file_id = ?2 AND f.state <> 2"
                ))
                .and_then(|mut s| s.query_row(params![namespace, file_id], file_row).optional())
                .map_err(map_err)?;
            if row.is_some() {
                tx.execute(
                    "UPDATE files SET state = 2 WHERE namespace = ?1 AND file_id = ?2",
                    params![namespace, file_id],
                )
                .map_err(map_err)?;
            }
            Ok(row)
        })
    }

    fn delete_file_row(&self, namespace: &str, file_id: &str) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM files WHERE namespace = ?1 AND file_id = ?2",
                params![namespace, file_id],
            )
            .map(|n| n == 1)
            .map_err(map_err)
        })
    }

    fn stale_files(&self, stale_before: i64, limit: usize) -> StorageResult<Vec<FileRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files f WHERE f.state = 2 OR (f.state = 0 AND f.updated_at < ?1) \
                 ORDER BY f.updated_at LIMIT ?2"
            ))?
            .query_map(params![stale_before, limit as i64], file_row)?
            .collect()
        })
    }

    fn user_file_rows(
        &self,
        namespace: &str,
        user_hash: &[u8],
        limit: usize,
    ) -> StorageResult<Vec<FileRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files f WHERE f.namespace = ?1 AND f.user_hash = ?2 LIMIT ?3"
            ))?
            .query_map(params![namespace, user_hash, limit as i64], file_row)?
            .collect()
        })
    }

    fn set_file_policy(&self, namespace: &str, policy: Option<&[u8]>) -> StorageResult<()> {
        self.write(|tx| {
            match policy {
                Some(p) => tx.execute(
                    "INSERT INTO file_policies (namespace, policy) VALUES (?1, ?2) \
                     ON CONFLICT (namespace) DO UPDATE SET policy = excluded.policy",
                    params![namespace, p],
                ),
                None => tx.execute(
                    "DELETE FROM file_policies WHERE namespace = ?1",
                    [namespace],
                ),
            }
            .map(|_| ())
            .map_err(map_err)
        })
    }

    fn get_file_policy(&self, namespace: &str) -> StorageResult<Option<Vec<u8>>> {
        self.read(|c| {
            c.prepare_cached("SELECT policy FROM file_policies WHERE namespace = ?1")?
                .query_row([namespace], |r| r.get(0))
                .optional()
        })
    }

    fn consume_link(&self, link_id: &str, expires_at: i64) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO file_link_uses (link_id, expires_at) VALUES (?1, ?2)",
                params![link_id, expires_at],
            )
            .map(|n| n == 1)
            .map_err(map_err)
        })
    }

    fn purge_used_links(&self, now: i64) -> StorageResult<u64> {
        self.write(|tx| {
            tx.execute("DELETE FROM file_link_uses WHERE expires_at < ?1", [now])
                .map(|n| n as u64)
                .map_err(map_err)
        })
    }
}
