//! Erasing users on PostgreSQL: the user row (with its wrapped data key) goes first, in the
//! same transaction that records the pending erasure; rows are then purged in bounded batches.

use strongroom_storage::{ErasureRow, ErasureStore, LedgerRow, NewWebhookEvent, StorageResult};

use crate::connection::{BadColumn, Columns, PgStore, Tx};

impl ErasureStore for PgStore {
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
                "INSERT INTO erasure_ledger (id, namespace, user_hash, erased_at, shipped) \
                 VALUES ($1, $2, $3, $4, FALSE)",
                &[&ledger_id, &namespace, &user_hash, &now],
            )?;
            Ok(true)
        })
    }

    fn replay_erasure(&self, entry: &LedgerRow) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO erasure_ledger (id, namespace, user_hash, erased_at, shipped) \
                 VALUES ($1, $2, $3, $4, TRUE) ON CONFLICT (id) DO NOTHING",
                &[
                    &entry.id,
                    &entry.namespace,
                    &entry.user_hash,
                    &entry.erased_at,
                ],
            )?;
            shred(tx, &entry.namespace, &entry.user_hash, entry.erased_at)
        })
    }

    fn unshipped_ledger(&self, limit: usize) -> StorageResult<Vec<LedgerRow>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT id, namespace, user_hash, erased_at FROM erasure_ledger \
                 WHERE NOT shipped ORDER BY id LIMIT $1",
                &[&(limit as i64)],
            )?
            .iter()
            .map(|r| {
                Ok(LedgerRow {
                    id: r.col(0)?,
                    namespace: r.col(1)?,
                    user_hash: r.col(2)?,
                    erased_at: r.col(3)?,
                })
            })
            .collect::<Result<_, BadColumn>>()?)
        })
    }

    fn mark_ledger_shipped(&self, ids: &[String]) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE erasure_ledger SET shipped = TRUE WHERE id = ANY($1)",
                &[&ids],
            )?;
            Ok(())
        })
    }

    fn ledger_contains(&self, id: &str) -> StorageResult<bool> {
        self.read(|c| {
            Ok(
                c.query_opt("SELECT 1 FROM erasure_ledger WHERE id = $1", &[&id])?
                    .is_some(),
            )
        })
    }

    fn ledger_head(&self) -> StorageResult<(u64, Option<String>)> {
        self.read(|c| {
            let row = c.query_opt("SELECT COUNT(*), MAX(id) FROM erasure_ledger", &[])?;
            Ok(match row {
                Some(r) => (r.count(0)?, r.col(1)?),
                None => (0, None),
            })
        })
    }

    fn erasure_pending(&self, namespace: &str, user_hash: &[u8]) -> StorageResult<bool> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT 1 FROM erasures WHERE namespace = $1 AND user_hash = $2",
                &[&namespace, &user_hash],
            )?
            .is_some())
        })
    }

    fn purge_user_items(
        &self,
        namespace: &str,
        user_hash: &[u8],
        limit: usize,
    ) -> StorageResult<u64> {
        let limit = limit as i64;
        self.write(|tx| {
            tx.execute(
                "DELETE FROM record_index i USING (SELECT namespace, collection, user_hash, key FROM records \
                 WHERE namespace = $1 AND user_hash = $2 LIMIT $3) e \
                 WHERE i.namespace = e.namespace AND i.collection = e.collection AND i.user_hash = e.user_hash AND i.key = e.key",
                &[&namespace, &user_hash, &limit],
            )?;
            let records = tx.execute(
                "DELETE FROM records WHERE (namespace, collection, user_hash, key) IN \
                 (SELECT namespace, collection, user_hash, key FROM records WHERE namespace = $1 AND user_hash = $2 LIMIT $3)",
                &[&namespace, &user_hash, &limit],
            )?;
            if records as i64 == limit {
                return Ok(records);
            }
            let limit = limit - records as i64;
            let events = tx.execute(
                "DELETE FROM events WHERE (namespace, user_hash, time, id) IN \
                 (SELECT namespace, user_hash, time, id FROM events WHERE namespace = $1 AND user_hash = $2 LIMIT $3)",
                &[&namespace, &user_hash, &limit],
            )?;
            if events as i64 == limit {
                return Ok(records + events);
            }
            let limit = limit - events as i64;
            let versions = tx.execute(
                "DELETE FROM credential_versions WHERE (namespace, user_hash, name, version) IN \
                 (SELECT namespace, user_hash, name, version FROM credential_versions \
                  WHERE namespace = $1 AND user_hash = $2 LIMIT $3)",
                &[&namespace, &user_hash, &limit],
            )?;
            let left = limit - versions as i64;
            if left == 0 {
                return Ok(records + events + versions);
            }
            let metadata = tx.execute(
                "DELETE FROM credentials WHERE (namespace, user_hash, name) IN \
                 (SELECT namespace, user_hash, name FROM credentials WHERE namespace = $1 AND user_hash = $2 LIMIT $3)",
                &[&namespace, &user_hash, &left],
            )?;
            Ok(records + events + versions + metadata)
        })
    }

    fn count_user_items(&self, namespace: &str, user_hash: &[u8]) -> StorageResult<u64> {
        self.read(|c| {
            let row = c.query_opt(
                "SELECT (SELECT COUNT(*) FROM records WHERE namespace = $1 AND user_hash = $2) + \
                        (SELECT COUNT(*) FROM events WHERE namespace = $1 AND user_hash = $2) + \
                        (SELECT COUNT(*) FROM credential_versions WHERE namespace = $1 AND user_hash = $2) + \
                        (SELECT COUNT(*) FROM credentials WHERE namespace = $1 AND user_hash = $2 AND current_version > 0) + \
                        (SELECT COUNT(*) FROM files WHERE namespace = $1 AND user_hash = $2)",
                &[&namespace, &user_hash],
            )?;
            Ok(row.map(|r| r.count(0)).transpose()?.unwrap_or(0))
        })
    }

    fn finish_erasure(&self, namespace: &str, user_hash: &[u8]) -> StorageResult<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM erasures WHERE namespace = $1 AND user_hash = $2",
                &[&namespace, &user_hash],
            )? == 1)
        })
    }

    fn pending_erasures(&self, limit: usize) -> StorageResult<Vec<ErasureRow>> {
        self.read(|c| {
            Ok(c.query("SELECT namespace, user_hash, started_at FROM erasures ORDER BY started_at LIMIT $1", &[&(limit as i64)])?
                .iter()
                .map(|r| Ok(ErasureRow { namespace: r.col(0)?, user_hash: r.col(1)?, started_at: r.col(2)? }))
                .collect::<Result<_, BadColumn>>()?)
        })
    }
}

/// Deletes the user's row (the wrapped data key) and refresh statuses and records a pending
/// erasure; false if there was no such user.
fn shred(tx: &mut Tx<'_>, namespace: &str, user_hash: &[u8], now: i64) -> StorageResult<bool> {
    if tx.execute(
        "DELETE FROM users WHERE namespace = $1 AND user_hash = $2",
        &[&namespace, &user_hash],
    )? == 0
    {
        return Ok(false);
    }
    tx.execute(
        "DELETE FROM credential_status WHERE namespace = $1 AND user_hash = $2",
        &[&namespace, &user_hash],
    )?;
    tx.execute(
        "INSERT INTO erasures (namespace, user_hash, started_at) VALUES ($1, $2, $3) \
         ON CONFLICT (namespace, user_hash) DO UPDATE SET started_at = excluded.started_at",
        &[&namespace, &user_hash, &now],
    )?;
    Ok(true)
}
