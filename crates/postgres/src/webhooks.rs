//! Webhooks on PostgreSQL: subscriptions, the event outbox and deliveries. An event and its
//! deliveries are written in one transaction; deliveries are claimed with `FOR UPDATE SKIP
//! LOCKED`, so senders on several nodes never take the same one.

use postgres::Row;
use strongroom_storage::{
    DeliveryOutcome, DeliveryRow, DeliveryState, NewWebhookEvent, StorageResult, WebhookRow,
    WebhookStore,
};

use crate::connection::{BadColumn, Columns, PgStore, Tx};

fn webhook_at(r: &Row) -> Result<WebhookRow, BadColumn> {
    let events: String = r.col(2)?;
    Ok(WebhookRow {
        namespace: r.col(0)?,
        name: r.col(1)?,
        events: events
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect(),
        enabled: r.col(3)?,
        config: r.col(4)?,
        sealed_secret: r.col(5)?,
        created_at: r.col(6)?,
    })
}

fn delivery_at(r: &Row) -> Result<DeliveryRow, BadColumn> {
    let state: i64 = r.col(8)?;
    Ok(DeliveryRow {
        namespace: r.col(0)?,
        webhook: r.col(1)?,
        seq: r.count(2)?,
        event_id: r.col(3)?,
        event_type: r.col(4)?,
        user_hash: r.col(5)?,
        payload: r.col(6)?,
        event_created_at: r.col(7)?,
        state: DeliveryState::from_i64(state).ok_or_else(|| BadColumn("delivery state".into()))?,
        attempts: r.small(9)?,
        next_attempt_at: r.col(10)?,
        last_status: r.col::<Option<i64>>(11)?.map(|s| s as u16),
        last_error: r.col(12)?,
        updated_at: r.col(13)?,
    })
}

/// Stores `event` and its deliveries inside `tx`.
pub(crate) fn emit_in(tx: &mut Tx<'_>, event: &NewWebhookEvent) -> StorageResult<u64> {
    let subscribers = tx
        .query(
            "SELECT namespace, name, events, enabled, config, sealed_secret, created_at FROM webhooks \
             WHERE namespace = $1",
            &[&event.namespace],
        )?
        .iter()
        .map(webhook_at)
        .collect::<Result<Vec<_>, _>>()?;
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
    let seq: i64 = tx
        .query_opt(
            "INSERT INTO webhook_events (namespace, event_id, event_type, user_hash, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
            &[&event.namespace, &event.event_id, &event.event_type, &event.user_hash, &event.payload, &event.created_at],
        )?
        .map(|r| r.col(0))
        .transpose()?
        .unwrap_or_default();
    for w in &targets {
        tx.execute(
            "INSERT INTO webhook_deliveries (namespace, webhook, seq, user_hash, state, attempts, next_attempt_at, \
             claimed_by, claimed_until, last_status, last_error, updated_at) \
             VALUES ($1, $2, $3, $4, 0, 0, $5, '', 0, NULL, NULL, $5)",
            &[&event.namespace, &w.name, &seq, &event.user_hash, &event.created_at],
        )?;
    }
    Ok(targets.len() as u64)
}

const DELIVERY_SELECT_BY_KEY: &str = "SELECT d.namespace, d.webhook, d.seq, e.event_id, e.event_type, d.user_hash, e.payload, \
     e.created_at, d.state, d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.updated_at \
     FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.seq \
     WHERE d.namespace = $1 AND d.webhook = $2 AND d.seq = $3";

impl WebhookStore for PgStore {
    fn put_webhook(&self, w: &WebhookRow) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO webhooks (namespace, name, events, enabled, config, sealed_secret, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (namespace, name) DO UPDATE SET \
                 events = excluded.events, enabled = excluded.enabled, config = excluded.config, \
                 sealed_secret = excluded.sealed_secret",
                &[&w.namespace, &w.name, &w.events.join(","), &w.enabled, &w.config, &w.sealed_secret, &w.created_at],
            )?;
            Ok(())
        })
    }

    fn get_webhook(&self, namespace: &str, name: &str) -> StorageResult<Option<WebhookRow>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT namespace, name, events, enabled, config, sealed_secret, created_at FROM webhooks \
                 WHERE namespace = $1 AND name = $2",
                &[&namespace, &name],
            )?
            .map(|r| webhook_at(&r))
            .transpose()?)
        })
    }

    fn list_webhooks(&self, namespace: &str) -> StorageResult<Vec<WebhookRow>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT namespace, name, events, enabled, config, sealed_secret, created_at FROM webhooks \
                 WHERE namespace = $1 ORDER BY name",
                &[&namespace],
            )?
            .iter()
            .map(webhook_at)
            .collect::<Result<_, _>>()?)
        })
    }

    fn delete_webhook(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM webhook_deliveries WHERE namespace = $1 AND webhook = $2",
                &[&namespace, &name],
            )?;
            Ok(tx.execute(
                "DELETE FROM webhooks WHERE namespace = $1 AND name = $2",
                &[&namespace, &name],
            )? == 1)
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
            let due = tx.query(
                "SELECT d.namespace, d.webhook, d.seq FROM webhook_deliveries d \
                 WHERE d.state = 0 AND d.next_attempt_at <= $1 AND d.claimed_until <= $1 \
                 AND (octet_length(d.user_hash) = 0 OR NOT EXISTS (SELECT 1 FROM webhook_deliveries o \
                   WHERE o.namespace = d.namespace AND o.webhook = d.webhook AND o.user_hash = d.user_hash \
                   AND o.state = 0 AND o.seq < d.seq)) \
                 ORDER BY d.seq LIMIT $2 FOR UPDATE SKIP LOCKED",
                &[&now, &(limit as i64)],
            )?;
            let mut claimed = Vec::with_capacity(due.len());
            for r in &due {
                let (ns, webhook, seq): (String, String, i64) = (r.col(0)?, r.col(1)?, r.col(2)?);
                tx.execute(
                    "UPDATE webhook_deliveries SET claimed_by = $4, claimed_until = $5 \
                     WHERE namespace = $1 AND webhook = $2 AND seq = $3",
                    &[&ns, &webhook, &seq, &owner, &claim_until],
                )?;
                if let Some(row) = tx.query_opt(DELIVERY_SELECT_BY_KEY, &[&ns, &webhook, &seq])? {
                    claimed.push(delivery_at(&row)?);
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
            Ok(tx.execute(
                "UPDATE webhook_deliveries SET state = $5, attempts = $6, next_attempt_at = $7, last_status = $8, \
                 last_error = $9, updated_at = $10, claimed_by = '', claimed_until = 0 \
                 WHERE namespace = $1 AND webhook = $2 AND seq = $3 AND claimed_by = $4",
                &[
                    &namespace,
                    &webhook,
                    &(seq as i64),
                    &owner,
                    &o.state.as_i64(),
                    &i64::from(o.attempts),
                    &o.next_attempt_at,
                    &o.last_status.map(i64::from),
                    &o.last_error,
                    &o.now,
                ],
            )? == 1)
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
        let state = state.map(DeliveryState::as_i64);
        let before = before.map_or(i64::MAX, |b| b as i64);
        self.read(|c| {
            Ok(c.query(
                "SELECT d.namespace, d.webhook, d.seq, e.event_id, e.event_type, d.user_hash, e.payload, \
                 e.created_at, d.state, d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.updated_at \
                 FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.seq \
                 WHERE d.namespace = $1 AND d.webhook = $2 AND ($3::BIGINT IS NULL OR d.state = $3) AND d.seq < $4 \
                 ORDER BY d.seq DESC LIMIT $5",
                &[&namespace, &webhook, &state, &before, &(limit as i64)],
            )?
            .iter()
            .map(delivery_at)
            .collect::<Result<_, _>>()?)
        })
    }

    fn redeliver(&self, namespace: &str, webhook: &str, seq: u64, now: i64) -> StorageResult<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE webhook_deliveries SET state = 0, attempts = 0, next_attempt_at = $4, updated_at = $4, \
                 claimed_by = '', claimed_until = 0 WHERE namespace = $1 AND webhook = $2 AND seq = $3",
                &[&namespace, &webhook, &(seq as i64), &now],
            )? == 1)
        })
    }
}
