//! Events on SQLite: appended in one transaction per batch, read newest first through the
//! primary key (or the type index), removed by age for retention.

use rusqlite::params;
use strongroom_storage::{EventQuery, EventRow, EventStore, StorageResult};

use crate::connection::{map_err, SqliteStore};

/// Sorts after every real event id (16 bytes).
const ID_CEILING: [u8; 17] = [0xff; 17];

impl EventStore for SqliteStore {
    fn append_events(&self, events: &[EventRow]) -> StorageResult<()> {
        self.write(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO events (namespace, user_hash, time, id, type_hash, ciphertext) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(map_err)?;
            for e in events {
                stmt.execute(params![e.namespace, e.user_hash, e.time, e.id, e.type_hash, e.ciphertext]).map_err(map_err)?;
            }
            Ok(())
        })
    }

    fn query_events(&self, q: &EventQuery) -> StorageResult<Vec<EventRow>> {
        let (before_time, before_id) = q.before.clone().unwrap_or((i64::MAX, ID_CEILING.to_vec()));
        self.read(|c| {
            c.prepare_cached(
                "SELECT namespace, user_hash, time, id, type_hash, ciphertext FROM events \
                 WHERE namespace = ?1 AND user_hash = ?2 AND (?3 IS NULL OR type_hash = ?3) \
                 AND time >= ?4 AND time <= ?5 AND (time, id) < (?6, ?7) \
                 AND EXISTS (SELECT 1 FROM users u WHERE u.namespace = ?1 AND u.user_hash = ?2) \
                 ORDER BY time DESC, id DESC LIMIT ?8",
            )?
            .query_map(
                params![
                    q.namespace,
                    q.user_hash,
                    q.type_hash,
                    q.since.unwrap_or(i64::MIN),
                    q.until.unwrap_or(i64::MAX),
                    before_time,
                    before_id,
                    q.limit as i64
                ],
                |r| {
                    Ok(EventRow {
                        namespace: r.get(0)?,
                        user_hash: r.get(1)?,
                        time: r.get(2)?,
                        id: r.get(3)?,
                        type_hash: r.get(4)?,
                        ciphertext: r.get(5)?,
                    })
                },
            )?
            .collect()
        })
    }

    fn delete_events_before(
        &self,
        namespace: &str,
        before: i64,
        limit: usize,
    ) -> StorageResult<u64> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM events WHERE rowid IN \
                 (SELECT rowid FROM events WHERE namespace = ?1 AND time < ?2 LIMIT ?3)",
                params![namespace, before, limit as i64],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
    }

    fn set_event_retention(&self, namespace: &str, days: Option<u32>) -> StorageResult<()> {
        self.write(|tx| {
            match days {
                Some(d) => tx.execute(
                    "INSERT INTO event_retention (namespace, days) VALUES (?1, ?2) ON CONFLICT (namespace) DO UPDATE SET days = excluded.days",
                    params![namespace, d],
                ),
                None => tx.execute("DELETE FROM event_retention WHERE namespace = ?1", params![namespace]),
            }
            .map(|_| ())
            .map_err(map_err)
        })
    }

    fn event_retentions(&self) -> StorageResult<Vec<(String, u32)>> {
        self.read(|c| {
            c.prepare_cached("SELECT namespace, days FROM event_retention ORDER BY namespace")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }
}
