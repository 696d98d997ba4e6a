//! Authentication failures on SQLite: one upsert counts the failure and decides the lock.

use rusqlite::params;
use strongroom_storage::{LockoutStore, NewWebhookEvent, StorageResult};

use crate::connection::{map_err, SqliteStore};

impl LockoutStore for SqliteStore {
    fn record_auth_failure(
        &self,
        client: &str,
        now: i64,
        window_ms: i64,
        threshold: u32,
        lockout_ms: i64,
        on_lock: &[NewWebhookEvent],
    ) -> StorageResult<Option<i64>> {
        self.write(|tx| {
            let locked: Option<i64> = tx.query_row(
                "INSERT INTO auth_failures (client, window_start, failures, locked_until) \
                 VALUES (?1, ?2, 1, CASE WHEN 1 >= ?4 THEN ?2 + ?5 ELSE NULL END) \
                 ON CONFLICT (client) DO UPDATE SET \
                   failures = CASE WHEN auth_failures.window_start + ?3 <= ?2 OR auth_failures.locked_until <= ?2 \
                                   THEN 1 ELSE auth_failures.failures + 1 END, \
                   locked_until = CASE \
                     WHEN auth_failures.window_start + ?3 <= ?2 OR auth_failures.locked_until <= ?2 \
                       THEN (CASE WHEN 1 >= ?4 THEN ?2 + ?5 ELSE NULL END) \
                     WHEN auth_failures.locked_until IS NOT NULL THEN auth_failures.locked_until \
                     WHEN auth_failures.failures + 1 >= ?4 THEN ?2 + ?5 ELSE NULL END, \
                   window_start = CASE WHEN auth_failures.window_start + ?3 <= ?2 OR auth_failures.locked_until <= ?2 \
                                       THEN ?2 ELSE auth_failures.window_start END \
                 RETURNING locked_until",
                params![client, now, window_ms, threshold, lockout_ms],
                |r| r.get(0),
            )
            .map_err(map_err)?;
            // The lock began with this failure: its end is exactly now + lockout.
            if locked == Some(now + lockout_ms) {
                for event in on_lock {
                    crate::webhooks::emit_in(tx, event)?;
                }
            }
            Ok(locked)
        })
    }

    fn clear_lockout(&self, client: &str) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute("DELETE FROM auth_failures WHERE client = ?1", [client])
                .map(|n| n > 0)
                .map_err(map_err)
        })
    }

    fn active_lockouts(&self, now: i64) -> StorageResult<Vec<(String, i64)>> {
        self.read(|c| {
            c.prepare_cached("SELECT client, locked_until FROM auth_failures WHERE locked_until > ?1 ORDER BY client")?
                .query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }
}
