//! Events on PostgreSQL: appended in one transaction per batch (one multi-row statement), read
//! newest first through the primary key (or the type index), removed by age for retention.

use strongroom_storage::{EventQuery, EventRow, EventStore, StorageResult};

use crate::connection::{BadColumn, Columns, PgStore};

/// Sorts after every real event id (16 bytes).
const ID_CEILING: [u8; 17] = [0xff; 17];

impl EventStore for PgStore {
    fn append_events(&self, events: &[EventRow]) -> StorageResult<()> {
        let namespaces: Vec<&str> = events.iter().map(|e| e.namespace.as_str()).collect();
        let users: Vec<&[u8]> = events.iter().map(|e| e.user_hash.as_slice()).collect();
        let times: Vec<i64> = events.iter().map(|e| e.time).collect();
        let ids: Vec<&[u8]> = events.iter().map(|e| e.id.as_slice()).collect();
        let types: Vec<&[u8]> = events.iter().map(|e| e.type_hash.as_slice()).collect();
        let bodies: Vec<&[u8]> = events.iter().map(|e| e.ciphertext.as_slice()).collect();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO events (namespace, user_hash, time, id, type_hash, ciphertext) \
                 SELECT * FROM UNNEST($1::TEXT[], $2::BYTEA[], $3::BIGINT[], $4::BYTEA[], $5::BYTEA[], $6::BYTEA[])",
                &[&namespaces, &users, &times, &ids, &types, &bodies],
            )?;
            Ok(())
        })
    }

    fn query_events(&self, q: &EventQuery) -> StorageResult<Vec<EventRow>> {
        let (before_time, before_id) = q.before.clone().unwrap_or((i64::MAX, ID_CEILING.to_vec()));
        let since = q.since.unwrap_or(i64::MIN);
        let until = q.until.unwrap_or(i64::MAX);
        let limit = q.limit as i64;
        self.read(|c| {
            Ok(c.query(
                "SELECT namespace, user_hash, time, id, type_hash, ciphertext FROM events \
                 WHERE namespace = $1 AND user_hash = $2 AND ($3::BYTEA IS NULL OR type_hash = $3) \
                 AND time >= $4 AND time <= $5 AND (time, id) < ($6, $7) \
                 AND EXISTS (SELECT 1 FROM users u WHERE u.namespace = $1 AND u.user_hash = $2) \
                 ORDER BY time DESC, id DESC LIMIT $8",
                &[
                    &q.namespace,
                    &q.user_hash,
                    &q.type_hash,
                    &since,
                    &until,
                    &before_time,
                    &before_id,
                    &limit,
                ],
            )?
            .iter()
            .map(|r| {
                Ok(EventRow {
                    namespace: r.col(0)?,
                    user_hash: r.col(1)?,
                    time: r.col(2)?,
                    id: r.col(3)?,
                    type_hash: r.col(4)?,
                    ciphertext: r.col(5)?,
                })
            })
            .collect::<Result<_, BadColumn>>()?)
        })
    }

    fn delete_events_before(
        &self,
        namespace: &str,
        before: i64,
        limit: usize,
    ) -> StorageResult<u64> {
        let limit = limit as i64;
        self.write(|tx| {
            tx.execute(
                "DELETE FROM events WHERE (namespace, user_hash, time, id) IN \
                 (SELECT namespace, user_hash, time, id FROM events WHERE namespace = $1 AND time < $2 LIMIT $3)",
                &[&namespace, &before, &limit],
            )
        })
    }

    fn set_event_retention(&self, namespace: &str, days: Option<u32>) -> StorageResult<()> {
        self.write(|tx| {
            match days {
                Some(d) => tx.execute(
                    "INSERT INTO event_retention (namespace, days) VALUES ($1, $2) ON CONFLICT (namespace) DO UPDATE SET days = excluded.days",
                    &[&namespace, &i64::from(d)],
                )?,
                None => tx.execute("DELETE FROM event_retention WHERE namespace = $1", &[&namespace])?,
            };
            Ok(())
        })
    }

    fn event_retentions(&self) -> StorageResult<Vec<(String, u32)>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT namespace, days FROM event_retention ORDER BY namespace",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.col(0)?, r.small(1)?)))
            .collect::<Result<_, BadColumn>>()?)
        })
    }
}
