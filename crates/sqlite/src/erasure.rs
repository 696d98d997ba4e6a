//! Erasing users on SQLite: the user row (with its wrapped data key) goes first, in the same
//! transaction that records the pending erasure; rows are then purged in bounded batches.

use rusqlite::{params, OptionalExtension};
use strongroom_storage::{ErasureRow, ErasureStore, LedgerRow, NewWebhookEvent, StorageResult};

use crate::connection::{map_err, SqliteStore};

impl ErasureStore for SqliteStore {
    fn begin_erasure(
        &self,
        namespace: &str,
        user_hash: &[u8],
        now: i64,
        ledger_id: &str,
        event: Option<&NewWebhookEvent>,
    ) -> StorageResult<bool> {
        self.write(|tx| {
            if !shred(tx, namespace, user_hash, now)? {
                return Ok(false);
            }
            if let Some(event) = event {
                crate::webhooks::emit_in(tx, event)?;
            }
            tx.execute(
                "INSERT INTO erasure_ledger (id, namespace, user_hash, erased_at, shipped) VALUES (?1, ?2, ?3, ?4, 0)",
                params![ledger_id, namespace, user_hash, now],
            )
            .map_err(map_err)?;
            Ok(true)
        })
    }

    fn replay_erasure(&self, entry: &LedgerRow) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO erasure_ledger (id, namespace, user_hash, erased_at, shipped) VALUES (?1, ?2, ?3, ?4, 1)",
                params![entry.id, entry.namespace, entry.user_hash, entry.erased_at],
            )
            .map_err(map_err)?;
            shred(tx, &entry.namespace, &entry.user_hash, entry.erased_at)
        })
    }

    fn unshipped_ledger(&self, limit: usize) -> StorageResult<Vec<LedgerRow>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT id, namespace, user_hash, erased_at FROM erasure_ledger WHERE shipped = 0 ORDER BY id LIMIT ?1",
            )?
            .query_map([limit as i64], |r| {
                Ok(LedgerRow { id: r.get(0)?, namespace: r.get(1)?, user_hash: r.get(2)?, erased_at: r.get(3)? })
            })?
            .collect()
        })
    }

    fn mark_ledger_shipped(&self, ids: &[String]) -> StorageResult<()> {
        self.write(|tx| {
            let mut mark = tx
                .prepare_cached("UPDATE erasure_ledger SET shipped = 1 WHERE id = ?1")
                .map_err(map_err)?;
            for id in ids {
                mark.execute([id]).map_err(map_err)?;
            }
            Ok(())
        })
    }

    fn ledger_contains(&self, id: &str) -> StorageResult<bool> {
        self.read(|c| {
            c.prepare_cached("SELECT 1 FROM erasure_ledger WHERE id = ?1")?
                .query_row([id], |_| Ok(()))
                .optional()
                .map(|found| found.is_some())
        })
    }

    fn ledger_head(&self) -> StorageResult<(u64, Option<String>)> {
        self.read(|c| {
            c.query_row("SELECT COUNT(*), MAX(id) FROM erasure_ledger", [], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
        })
    }

    fn erasure_pending(&self, namespace: &str, user_hash: &[u8]) -> StorageResult<bool> {
        self.read(|c| {
            c.prepare_cached("SELECT 1 FROM erasures WHERE namespace = ?1 AND user_hash = ?2")?
                .query_row(params![namespace, user_hash], |_| Ok(()))
                .optional()
                .map(|found| found.is_some())
        })
    }

    fn purge_user_items(
        &self,
        namespace: &str,
        user_hash: &[u8],
        limit: usize,
    ) -> StorageResult<u64> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM record_index WHERE (namespace, collection, user_hash, key) IN \
                 (SELECT namespace, collection, user_hash, key FROM records WHERE namespace = ?1 AND user_hash = ?2 LIMIT ?3)",
                params![namespace, user_hash, limit as i64],
            )
            .map_err(map_err)?;
            let records = tx
                .execute(
                    "DELETE FROM records WHERE rowid IN \
                     (SELECT rowid FROM records WHERE namespace = ?1 AND user_hash = ?2 LIMIT ?3)",
                    params![namespace, user_hash, limit as i64],
                )
                .map_err(map_err)? as u64;
            if records == limit as u64 {
                return Ok(records);
            }
            let limit = limit - records as usize;
            let events = tx
                .execute(
                    "DELETE FROM events WHERE rowid IN \
                     (SELECT rowid FROM events WHERE namespace = ?1 AND user_hash = ?2 LIMIT ?3)",
                    params![namespace, user_hash, limit as i64],
                )
                .map_err(map_err)? as u64;
            if events == limit as u64 {
                return Ok(records + events);
            }
            let limit = limit - events as usize;
            let versions = tx
                .execute(
                    "DELETE FROM credential_versions WHERE (namespace, user_hash, name, version) IN \
                     (SELECT namespace, user_hash, name, version FROM credential_versions \
                      WHERE namespace = ?1 AND user_hash = ?2 LIMIT ?3)",
                    params![namespace, user_hash, limit as i64],
                )
                .map_err(map_err)? as u64;
            let left = limit as u64 - versions;
            if left == 0 {
                return Ok(records + events + versions);
            }
            let metadata = tx
                .execute(
                    "DELETE FROM credentials WHERE (namespace, user_hash, name) IN \
                     (SELECT namespace, user_hash, name FROM credentials WHERE namespace = ?1 AND user_hash = ?2 LIMIT ?3)",
                    params![namespace, user_hash, left as i64],
                )
                .map_err(map_err)? as u64;
            Ok(records + events + versions + metadata)
        })
    }

    fn count_user_items(&self, namespace: &str, user_hash: &[u8]) -> StorageResult<u64> {
        self.read(|c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM records WHERE namespace = ?1 AND user_hash = ?2) + \
                        (SELECT COUNT(*) FROM events WHERE namespace = ?1 AND user_hash = ?2) + \
                        (SELECT COUNT(*) FROM credential_versions WHERE namespace = ?1 AND user_hash = ?2) + \
                        (SELECT COUNT(*) FROM credentials WHERE namespace = ?1 AND user_hash = ?2) + \
                        (SELECT COUNT(*) FROM files WHERE namespace = ?1 AND user_hash = ?2)",
                params![namespace, user_hash],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n as u64)
    }

    fn finish_erasure(&self, namespace: &str, user_hash: &[u8]) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM erasures WHERE namespace = ?1 AND user_hash = ?2",
                params![namespace, user_hash],
            )
            .map(|n| n == 1)
            .map_err(map_err)
        })
    }

    fn pending_erasures(&self, limit: usize) -> StorageResult<Vec<ErasureRow>> {
        self.read(|c| {
            c.prepare_cached("SELECT namespace, user_hash, started_at FROM erasures ORDER BY started_at LIMIT ?1")?
                .query_map([limit as i64], |r| Ok(ErasureRow { namespace: r.get(0)?, user_hash: r.get(1)?, started_at: r.get(2)? }))?
                .collect()
        })
    }
}

/// Deletes the user's row (the wrapped data key) and refresh statuses and records a pending
/// erasure; false if there was no such user.
fn shred(
    tx: &rusqlite::Transaction<'_>,
    namespace: &str,
    user_hash: &[u8],
    now: i64,
) -> StorageResult<bool> {
    let gone = tx
        .execute(
            "DELETE FROM users WHERE namespace = ?1 AND user_hash = ?2",
            params![namespace, user_hash],
        )
        .map_err(map_err)?;
    if gone == 0 {
        return Ok(false);
    }
    tx.execute(
        "DELETE FROM credential_status WHERE namespace = ?1 AND user_hash = ?2",
        params![namespace, user_hash],
    )
    .map_err(map_err)?;
    tx.execute(
        "INSERT OR REPLACE INTO erasures (namespace, user_hash, started_at) VALUES (?1, ?2, ?3)",
        params![namespace, user_hash, now],
    )
    .map_err(map_err)?;
    Ok(true)
}
