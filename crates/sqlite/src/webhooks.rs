//! Webhooks on SQLite: subscriptions, the event outbox and deliveries. An event and its
//! deliveries are written in one immediate transaction; claims are conditional updates in one.

use rusqlite::{params, OptionalExtension, Row, Transaction};
use strongroom_storage::{
    DeliveryOutcome, DeliveryRow, DeliveryState, NewWebhookEvent, StorageResult, WebhookRow,
    WebhookStore,
};

use crate::connection::{map_err, SqliteStore};

const WEBHOOK_COLUMNS: &str = "namespace, name, events, enabled, config, sealed_secret, created_at";
const DELIVERY_SELECT: &str = "SELECT d.namespace, d.webhook, d.seq, e.event_id, e.event_type, d.user_hash, e.payload, \
     e.created_at, d.state, d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.updated_at \
     FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.seq";

fn webhook_at(r: &Row<'_>) -> rusqlite::Result<WebhookRow> {
    let events: String = r.get(2)?;
    Ok(WebhookRow {
        namespace: r.get(0)?,
        name: r.get(1)?,
        events: events
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect(),
        enabled: r.get::<_, i64>(3)? != 0,
        config: r.get(4)?,
        sealed_secret: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn delivery_at(r: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    let state: i64 = r.get(8)?;
    Ok(DeliveryRow {
        namespace: r.get(0)?,
        webhook: r.get(1)?,
        seq: r.get::<_, i64>(2)? as u64,
        event_id: r.get(3)?,
        event_type: r.get(4)?,
        user_hash: r.get(5)?,
        payload: r.get(6)?,
        event_created_at: r.get(7)?,
        state: DeliveryState::from_i64(state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                8,
                rusqlite::types::Type::Integer,
                "delivery state".into(),
            )
        })?,
        attempts: r.get::<_, i64>(9)? as u32,
        next_attempt_at: r.get(10)?,
        last_status: r.get::<_, Option<i64>>(11)?.map(|s| s as u16),
        last_error: r.get(12)?,
        updated_at: r.get(13)?,
    })
}

/// Stores `event` and its deliveries inside `tx` (also used by writes that emit events in the
/// transaction of their own change).
pub(crate) fn emit_in(tx: &Transaction<'_>, event: &NewWebhookEvent) -> StorageResult<u64> {
    let subscribers: Vec<WebhookRow> = tx
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE namespace = ?1"
        ))
        .and_then(|mut s| s.query_map([&event.namespace], webhook_at)?.collect())
        .map_err(map_err)?;
    let targets: Vec<&WebhookRow> = subscribers
        .iter()
        .filter(|w| match &event.only {
            Some(only) => &w.name == only,
            None => w.wants(&event.event_type),
        })
        .collect();
    if targets.is_empty() {
        return Ok(0);
    }
    tx.prepare_cached(
        "INSERT INTO webhook_events (namespace, event_id, event_type, user_hash, payload, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            event.namespace,
            event.event_id,
            event.event_type,
            event.user_hash,
            event.payload,
            event.created_at
        ])
    })
    .map_err(map_err)?;
    let seq = tx.last_insert_rowid();
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO webhook_deliveries (namespace, webhook, seq, user_hash, state, attempts, next_attempt_at, \
             claimed_by, claimed_until, last_status, last_error, updated_at) \
             VALUES (?1, ?2, ?3, ?4, 0, 0, ?5, '', 0, NULL, NULL, ?5)",
        )
        .map_err(map_err)?;
    for w in &targets {
        insert
            .execute(params![
                event.namespace,
                w.name,
                seq,
                event.user_hash,
                event.created_at
            ])
            .map_err(map_err)?;
    }
    Ok(targets.len() as u64)
}

impl WebhookStore for SqliteStore {
    fn put_webhook(&self, w: &WebhookRow) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                &format!(
                    "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT (namespace, name) DO UPDATE SET events = excluded.events, enabled = excluded.enabled, \
                     config = excluded.config, sealed_secret = excluded.sealed_secret"
                ),
                params![w.namespace, w.name, w.events.join(","), i64::from(w.enabled), w.config, w.sealed_secret, w.created_at],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    fn get_webhook(&self, namespace: &str, name: &str) -> StorageResult<Option<WebhookRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE namespace = ?1 AND name = ?2"
            ))?
            .query_row(params![namespace, name], webhook_at)
            .optional()
        })
    }

    fn list_webhooks(&self, namespace: &str) -> StorageResult<Vec<WebhookRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE namespace = ?1 ORDER BY name"
            ))?
            .query_map([namespace], webhook_at)?
            .collect()
        })
    }

    fn delete_webhook(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM webhook_deliveries WHERE namespace = ?1 AND webhook = ?2",
                params![namespace, name],
            )
            .map_err(map_err)?;
            let gone = tx
                .execute(
                    "DELETE FROM webhooks WHERE namespace = ?1 AND name = ?2",
                    params![namespace, name],
                )
                .map_err(map_err)?;
            Ok(gone == 1)
        })
    }

    fn emit_webhook_event(&self, event: &NewWebhookEvent) -> StorageResult<u64> {
        self.write(|tx| emit_in(tx, event))
    }

    fn claim_deliveries(
        &self,
        owner: &str,
        now: i64,
        claim_until: i64,
        limit: usize,
    ) -> StorageResult<Vec<DeliveryRow>> {
        self.write(|tx| {
            let due: Vec<(String, String, i64)> = tx
                .prepare_cached(
                    "SELECT d.namespace, d.webhook, d.seq FROM webhook_deliveries d \
                     WHERE d.state = 0 AND d.next_attempt_at <= ?1 AND d.claimed_until <= ?1 \
                     AND (length(d.user_hash) = 0 OR NOT EXISTS (SELECT 1 FROM webhook_deliveries o \
                       WHERE o.namespace = d.namespace AND o.webhook = d.webhook AND o.user_hash = d.user_hash \
                       AND o.state = 0 AND o.seq < d.seq)) \
                     ORDER BY d.seq LIMIT ?2",
                )
                .and_then(|mut s| {
                    s.query_map(params![now, limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect()
                })
                .map_err(map_err)?;
            let mut claimed = Vec::with_capacity(due.len());
            for (ns, webhook, seq) in due {
                let n = tx
                    .execute(
                        "UPDATE webhook_deliveries SET claimed_by = ?4, claimed_until = ?5 \
                         WHERE namespace = ?1 AND webhook = ?2 AND seq = ?3 AND state = 0 AND claimed_until <= ?6",
                        params![ns, webhook, seq, owner, claim_until, now],
                    )
                    .map_err(map_err)?;
                if n == 1 {
                    let row = tx
                        .prepare_cached(&format!(
                            "{DELIVERY_SELECT} WHERE d.namespace = ?1 AND d.webhook = ?2 AND d.seq = ?3"
                        ))
                        .and_then(|mut s| s.query_row(params![ns, webhook, seq], delivery_at))
                        .map_err(map_err)?;
                    claimed.push(row);
                }
            }
            Ok(claimed)
        })
    }

    fn finish_delivery(
        &self,
        namespace: &str,
        webhook: &str,
        seq: u64,
        owner: &str,
        o: &DeliveryOutcome,
    ) -> StorageResult<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE webhook_deliveries SET state = ?5, attempts = ?6, next_attempt_at = ?7, last_status = ?8, \
                     last_error = ?9, updated_at = ?10, claimed_by = '', claimed_until = 0 \
                     WHERE namespace = ?1 AND webhook = ?2 AND seq = ?3 AND claimed_by = ?4",
                    params![
                        namespace,
                        webhook,
                        seq as i64,
                        owner,
                        o.state.as_i64(),
                        i64::from(o.attempts),
                        o.next_attempt_at,
                        o.last_status.map(i64::from),
                        o.last_error,
                        o.now
                    ],
                )
                .map_err(map_err)?;
            Ok(n == 1)
        })
    }

    fn list_deliveries(
        &self,
        namespace: &str,
        webhook: &str,
        state: Option<DeliveryState>,
        before: Option<u64>,
        limit: usize,
    ) -> StorageResult<Vec<DeliveryRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "{DELIVERY_SELECT} WHERE d.namespace = ?1 AND d.webhook = ?2 AND (?3 IS NULL OR d.state = ?3) \
                 AND d.seq < ?4 ORDER BY d.seq DESC LIMIT ?5"
            ))?
            .query_map(
                params![
                    namespace,
                    webhook,
                    state.map(DeliveryState::as_i64),
                    before.map_or(i64::MAX, |b| b as i64),
                    limit as i64
                ],
                delivery_at,
            )?
            .collect()
        })
    }

    fn redeliver(&self, namespace: &str, webhook: &str, seq: u64, now: i64) -> StorageResult<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE webhook_deliveries SET state = 0, attempts = 0, next_attempt_at = ?4, updated_at = ?4, \
                     claimed_by = '', claimed_until = 0 WHERE namespace = ?1 AND webhook = ?2 AND seq = ?3",
                    params![namespace, webhook, seq as i64, now],
                )
                .map_err(map_err)?;
            Ok(n == 1)
        })
    }
}
