//! Authentication failures on PostgreSQL: one upsert counts the failure and decides the lock,
//! so every node sees the same count.

use strongroom_storage::{LockoutStore, NewWebhookEvent, StorageResult};

use crate::connection::{BadColumn, Columns, PgStore};

impl LockoutStore for PgStore {
    fn record_auth_failure(
        &self,
        client: &str,
        now: i64,
        window_ms: i64,
        threshold: u32,
        lockout_ms: i64,
        on_lock: &[NewWebhookEvent],
    ) -> StorageResult<Option<i64>> {
        let threshold = i64::from(threshold);
        self.write(|tx| {
            let locked = tx
                .query_opt(
                    "INSERT INTO auth_failures (client, window_start, failures, locked_until) \
                     VALUES ($1, $2::BIGINT, 1, CASE WHEN 1 >= $4::BIGINT THEN $2::BIGINT + $5::BIGINT ELSE NULL END) \
                     ON CONFLICT (client) DO UPDATE SET \
                       failures = CASE WHEN auth_failures.window_start + $3 <= $2 OR auth_failures.locked_until <= $2 \
                                       THEN 1 ELSE auth_failures.failures + 1 END, \
                       locked_until = CASE \
                         WHEN auth_failures.window_start + $3 <= $2 OR auth_failures.locked_until <= $2 \
                           THEN (CASE WHEN 1 >= $4 THEN $2 + $5 ELSE NULL END) \
                         WHEN auth_failures.locked_until IS NOT NULL THEN auth_failures.locked_until \
                         WHEN auth_failures.failures + 1 >= $4 THEN $2 + $5 ELSE NULL END, \
                       window_start = CASE WHEN auth_failures.window_start + $3 <= $2 OR auth_failures.locked_until <= $2 \
                                           THEN $2 ELSE auth_failures.window_start END \
                     RETURNING locked_until",
                    &[&client, &now, &window_ms, &threshold, &lockout_ms],
                )?
                .map(|r| r.col::<Option<i64>>(0))
                .transpose()?
                .flatten();
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
            Ok(tx.execute("DELETE FROM auth_failures WHERE client = $1", &[&client])? > 0)
        })
    }

    fn active_lockouts(&self, now: i64) -> StorageResult<Vec<(String, i64)>> {
        self.read(|c| {
            Ok(c.query("SELECT client, locked_until FROM auth_failures WHERE locked_until > $1 ORDER BY client", &[&now])?
                .iter()
                .map(|r| Ok((r.col(0)?, r.col(1)?)))
                .collect::<Result<_, BadColumn>>()?)
        })
    }
}
