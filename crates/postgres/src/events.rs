//! Events on PostgreSQL: appended in one transaction per batch (one multi-row statement), read
//! newest first through the primary key (or the type index), removed by age for retention.

use strongroom_storage::{EventQuery, EventRow, EventStore, NamespaceEventQuery, StorageResult};

use crate::connection::{BadColumn, Columns, PgStore};

/// Sorts after every real event id (16 bytes).
const ID_CEILING: [u8; 17] = [0xff; 17];
/// Sorts after every user hash (32 bytes).
const USER_CEILING: [u8; 33] = [0xff; 33];

/// One `events` row, columns in table order.
fn event_at(r: &postgres::Row) -> Result<EventRow, BadColumn> {
    Ok(EventRow {
        namespace: r.col(0)?,
        user_hash: r.col(1)?,
        time: r.col(2)?,
        id: r.col(3)?,
        type_hash: r.col(4)?,
        ciphertext: r.col(5)?,
    })
}

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
            .map(event_at)
            .collect::<Result<_, BadColumn>>()?)
        })
    }

    fn query_namespace_events(&self, q: &NamespaceEventQuery) -> StorageResult<Vec<EventRow>> {
        let (before_time, before_user, before_id) =
            q.before
                .clone()
                .unwrap_or((i64::MAX, USER_CEILING.to_vec(), ID_CEILING.to_vec()));
        let since = q.since.unwrap_or(i64::MIN);
        let until = q.until.unwrap_or(i64::MAX);
        let limit = q.limit as i64;
        self.read(|c| {
            Ok(c.query(
                "SELECT e.namespace, e.user_hash, e.time, e.id, e.type_hash, e.ciphertext FROM events e \
                 WHERE e.namespace = $1 AND ($2::BYTEA IS NULL OR e.type_hash = $2) \
                 AND e.time >= $3 AND e.time <= $4 AND (e.time, e.user_hash, e.id) < ($5, $6, $7) \
                 AND EXISTS (SELECT 1 FROM users u WHERE u.namespace = e.namespace AND u.user_hash = e.user_hash) \
                 ORDER BY e.time DESC, e.user_hash DESC, e.id DESC LIMIT $8",
                &[
                    &q.namespace,
                    &q.type_hash,
                    &since,
                    &until,
                    &before_time,
                    &before_user,
                    &before_id,
                    &limit,
                ],
            )?
            .iter()
            .map(event_at)
            .collect::<Result<_, BadColumn>>()?)
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
            Ok(c.query(
                "SELECT e.time - (e.time % $5) AS bucket, COUNT(*) FROM events e \
                 WHERE e.namespace = $1 AND e.type_hash = $2 AND e.time >= $3 AND e.time <= $4 \
                 AND EXISTS (SELECT 1 FROM users u WHERE u.namespace = e.namespace AND u.user_hash = e.user_hash) \
                 GROUP BY bucket ORDER BY bucket",
                &[&namespace, &type_hash, &since, &until, &bucket_ms],
            )?
            .iter()
            .map(|r| Ok((r.col::<i64>(0)?, r.count(1)?)))
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
