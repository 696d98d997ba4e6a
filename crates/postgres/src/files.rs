//! File metadata on PostgreSQL. Admissions and completions take a transaction-scoped advisory
//! lock per namespace, so concurrent uploads on several nodes see each other in quota checks.

use postgres::Row;
use strongroom_storage::{
    FileCompletion, FileQuota, FileRow, FileState, FileStore, FileUsage, QuotaBreach, StorageError,
    StorageResult,
};

use crate::connection::{Columns, PgStore, Tx};

/// First key of the two-key advisory locks taken for file quotas (the second is the
/// namespace's hash). The two-key space is separate from the one-key locks used elsewhere.
const FILE_QUOTA_LOCK: i32 = 0x5f11e5;

macro_rules! columns {
    () => {
        "f.namespace, f.user_hash, f.file_id, f.object_id, f.state, f.size, f.piece_size, \
         f.header, f.sealed, f.created_at, f.updated_at"
    };
}
macro_rules! user_exists {
    () => {
        "EXISTS (SELECT 1 FROM users u WHERE u.namespace = f.namespace AND u.user_hash = f.user_hash)"
    };
}

fn file_row(r: &Row) -> StorageResult<FileRow> {
    let state: i64 = r.col(4)?;
    Ok(FileRow {
        namespace: r.col(0)?,
        user_hash: r.col(1)?,
        file_id: r.col(2)?,
        object_id: r.col(3)?,
        state: FileState::from_i64(state)
            .ok_or_else(|| StorageError::Corrupt(format!("file state {state}")))?,
        size: r.count(5)?,
        piece_size: r.count(6)?,
        header: r.col(7)?,
        sealed: r.col(8)?,
        created_at: r.col(9)?,
        updated_at: r.col(10)?,
    })
}

fn rows(found: Vec<Row>) -> StorageResult<Vec<FileRow>> {
    found.iter().map(file_row).collect()
}

fn usage(
    tx: &mut Tx<'_>,
    namespace: &str,
    user_hash: Option<&[u8]>,
    except: Option<&str>,
) -> StorageResult<FileUsage> {
    let row = tx.query_opt(
        "SELECT COALESCE(SUM(size), 0)::BIGINT, COUNT(*) FROM files \
         WHERE namespace = $1 AND ($2::BYTEA IS NULL OR user_hash = $2) AND state <> 2 \
         AND ($3::TEXT IS NULL OR file_id <> $3)",
        &[&namespace, &user_hash, &except],
    )?;
    Ok(match row {
        Some(r) => FileUsage {
            bytes: r.count(0)?,
            files: r.count(1)?,
        },
        None => FileUsage::default(),
    })
}

fn lock_namespace(tx: &mut Tx<'_>, namespace: &str) -> StorageResult<()> {
    tx.query_opt(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))::TEXT",
        &[&FILE_QUOTA_LOCK, &namespace],
    )?;
    Ok(())
}

fn breach_with(
    tx: &mut Tx<'_>,
    quota: &FileQuota,
    namespace: &str,
    user_hash: &[u8],
    except: Option<&str>,
    size: u64,
) -> StorageResult<Option<QuotaBreach>> {
    if quota.is_unlimited() {
        return Ok(None);
    }
    lock_namespace(tx, namespace)?;
    let user = usage(tx, namespace, Some(user_hash), except)?;
    let ns = usage(tx, namespace, None, except)?;
    Ok(quota.breach_adding(user, ns, size))
}

impl FileStore for PgStore {
    fn begin_file(&self, row: &FileRow, quota: &FileQuota) -> StorageResult<Option<QuotaBreach>> {
        self.write(|tx| {
            if let Some(b) = breach_with(tx, quota, &row.namespace, &row.user_hash, None, row.size)? {
                return Ok(Some(b));
            }
            tx.execute(
                "INSERT INTO files (namespace, file_id, user_hash, object_id, state, size, piece_size, \
                 header, sealed, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    &row.namespace,
                    &row.file_id,
                    &row.user_hash,
                    &row.object_id,
                    &row.state.as_i64(),
                    &(row.size as i64),
                    &(row.piece_size as i64),
                    &row.header,
                    &row.sealed,
                    &row.created_at,
                    &row.updated_at,
                ],
            )?;
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
            let owner = tx.query_opt(
                concat!(
                    "SELECT f.user_hash FROM files f WHERE f.namespace = $1 AND f.file_id = $2 AND f.state = 0 AND ",
                    user_exists!(),
                    " FOR UPDATE"
                ),
                &[&namespace, &file_id],
            )?;
            let Some(owner) = owner.map(|r| r.col::<Vec<u8>>(0)).transpose()? else {
                return Ok(FileCompletion::Gone);
            };
            if let Some(b) = breach_with(tx, quota, namespace, &owner, Some(file_id), size)? {
                return Ok(FileCompletion::Exceeded(b));
            }
            tx.execute(
                "UPDATE files SET state = 1, size = $3, sealed = $4, updated_at = $5 WHERE namespace = $1 AND file_id = $2",
                &[&namespace, &file_id, &(size as i64), &sealed, &now],
            )?;
            Ok(FileCompletion::Completed)
        })
    }

    fn touch_upload(&self, namespace: &str, file_id: &str, now: i64) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "UPDATE files f SET updated_at = $3 WHERE f.namespace = $1 AND f.file_id = $2 AND f.state = 0 \
                 AND EXISTS (SELECT 1 FROM users u WHERE u.namespace = f.namespace AND u.user_hash = f.user_hash)",
                &[&namespace, &file_id, &now],
            )
            .map(|n| n == 1)
        })
    }

    fn get_file(&self, namespace: &str, file_id: &str) -> StorageResult<Option<FileRow>> {
        let found = self.read(|c| {
            Ok(c.query_opt(
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM files f WHERE f.namespace = $1 AND f.file_id = $2 AND f.state = 1 AND ",
                    user_exists!()
                ),
                &[&namespace, &file_id],
            )?)
        })?;
        found.as_ref().map(file_row).transpose()
    }

    fn list_files(
        &self,
        namespace: &str,
        user_hash: &[u8],
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> StorageResult<Vec<FileRow>> {
        let limit = limit as i64;
        let (after_time, after_id) = after.unzip();
        rows(self.read(|c| {
            Ok(c.query(
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM files f WHERE f.namespace = $1 AND f.user_hash = $2 AND f.state = 1 AND ",
                    user_exists!(),
                    " AND ($3::BIGINT IS NULL OR (f.created_at, f.file_id) > ($3, $4::TEXT)) \
                     ORDER BY f.created_at, f.file_id LIMIT $5"
                ),
                &[&namespace, &user_hash, &after_time, &after_id, &limit],
            )?)
        })?)
    }

    fn file_usage(&self, namespace: &str, user_hash: Option<&[u8]>) -> StorageResult<FileUsage> {
        self.write(|tx| usage(tx, namespace, user_hash, None))
    }

    fn mark_file_deleting(&self, namespace: &str, file_id: &str) -> StorageResult<Option<FileRow>> {
        self.write(|tx| {
            let row = tx.query_opt(
                concat!(
                    "UPDATE files f SET state = 2 FROM files old \
                     WHERE f.namespace = $1 AND f.file_id = $2 AND f.state <> 2 \
                     AND old.namespace = f.namespace AND old.file_id = f.file_id RETURNING ",
                    "old.namespace, old.user_hash, old.file_id, old.object_id, old.state, old.size, \
                     old.piece_size, old.header, old.sealed, old.created_at, old.updated_at"
                ),
                &[&namespace, &file_id],
            )?;
            row.as_ref().map(file_row).transpose()
        })
    }

    fn delete_file_row(&self, namespace: &str, file_id: &str) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM files WHERE namespace = $1 AND file_id = $2",
                &[&namespace, &file_id],
            )
            .map(|n| n == 1)
        })
    }

    fn stale_files(&self, stale_before: i64, limit: usize) -> StorageResult<Vec<FileRow>> {
        let limit = limit as i64;
        rows(self.read(|c| {
            Ok(c.query(
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM files f WHERE f.state = 2 OR (f.state = 0 AND f.updated_at < $1) \
                     ORDER BY f.updated_at LIMIT $2"
                ),
                &[&stale_before, &limit],
            )?)
        })?)
    }

    fn user_file_rows(
        &self,
        namespace: &str,
        user_hash: &[u8],
        limit: usize,
    ) -> StorageResult<Vec<FileRow>> {
        let limit = limit as i64;
        rows(self.read(|c| {
            Ok(c.query(
                concat!(
                    "SELECT ",
                    columns!(),
                    " FROM files f WHERE f.namespace = $1 AND f.user_hash = $2 LIMIT $3"
                ),
                &[&namespace, &user_hash, &limit],
            )?)
        })?)
    }

    fn set_file_policy(&self, namespace: &str, policy: Option<&[u8]>) -> StorageResult<()> {
        self.write(|tx| {
            match policy {
                Some(p) => tx.execute(
                    "INSERT INTO file_policies (namespace, policy) VALUES ($1, $2) \
                     ON CONFLICT (namespace) DO UPDATE SET policy = excluded.policy",
                    &[&namespace, &p],
                ),
                None => tx.execute(
                    "DELETE FROM file_policies WHERE namespace = $1",
                    &[&namespace],
                ),
            }
            .map(|_| ())
        })
    }

    fn get_file_policy(&self, namespace: &str) -> StorageResult<Option<Vec<u8>>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT policy FROM file_policies WHERE namespace = $1",
                &[&namespace],
            )?
            .map(|r| r.col(0))
            .transpose()?)
        })
    }

    fn consume_link(&self, link_id: &str, expires_at: i64) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO file_link_uses (link_id, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&link_id, &expires_at],
            )
            .map(|n| n == 1)
        })
    }

    fn purge_used_links(&self, now: i64) -> StorageResult<u64> {
        self.write(|tx| tx.execute("DELETE FROM file_link_uses WHERE expires_at < $1", &[&now]))
    }
}
