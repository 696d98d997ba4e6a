//! Events on SQLite: appended in one transaction per batch, read newest first through the
//! primary key (or the type index), removed by age for retention.

use rusqlite::params;
use strongroom_storage::{EventQuery, EventRow, EventStore, NamespaceEventQuery, StorageResult};

use crate::connection::{map_err, SqliteStore};

/// Sorts after every real event id (16 bytes).
const ID_CEILING: [u8; 17] = [0xff; 17];
/// Sorts after every user hash (32 bytes).
const USER_CEILING: [u8; 33] = [0xff; 33];

/// One `events` row, columns in table order.
fn event_at(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        namespace: r.get(0)?,
        user_hash: r.get(1)?,
        time: r.get(2)?,
        id: r.get(3)?,
        type_hash: r.get(4)?,
        ciphertext: r.get(5)?,
    })
}

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
                event_at,
            )?
            .collect()
        })
    }

    fn query_namespace_events(&self, q: &NamespaceEventQuery) -> StorageResult<Vec<EventRow>> {
        let (before_time, before_user, before_id) =
            q.before
                .clone()
                .unwrap_or((i64::MAX, USER_CEILING.to_vec(), ID_CEILING.to_vec()));
        self.read(|c| {
            c.prepare_cached(
                "SELECT e.namespace, e.user_hash, e.time, e.id, e.type_hash, e.ciphertext FROM events e \
                 WHERE e.namespace = ?1 AND (?2 IS NULL OR e.type_hash = ?2) \
                 AND e.time >= ?3 AND e.time <= ?4 AND (e.time, e.user_hash, e.id) < (?5, ?6, ?7) \
                 AND EXISTS (SELECT 1 FROM users u WHERE u.namespace = e.namespace AND u.user_hash = e.user_hash) \
                 ORDER BY e.time DESC, e.user_hash DESC, e.id DESC LIMIT ?8",
            )?
            .query_map(
                params![
                    q.namespace,
                    q.type_hash,
                    q.since.unwrap_or(i64::MIN),
                    q.until.unwrap_or(i64::MAX),
                    before_time,
                    before_user,
                    before_id,
                    q.limit as i64
                ],
                event_at,
            )?
            .collect()
        })
    }

    fn count_events(
        &self,
        namespace: &str,
        type_hash: &[u8],
        since: i64,
        until: i64,
        bucket_ms: i64,
    ) -> StorageResult<Vec<(i64, u64)>> {
        let bucket_ms = bucket_ms.max(1);
        self.read(|c| {
            c.prepare_cached(
                "SELECT e.time - (e.time % ?5) AS bucket, COUNT(*) FROM events e \
                 WHERE e.namespace = ?1 AND e.type_hash = ?2 AND e.time >= ?3 AND e.time <= ?4 \
                 AND EXISTS (SELECT 1 FROM users u WHERE u.namespace = e.namespace AND u.user_hash = e.user_hash) \
                 GROUP BY bucket ORDER BY bucket",
            )?
            .query_map(params![namespace, type_hash, since, until, bucket_ms], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64))
            })?
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
