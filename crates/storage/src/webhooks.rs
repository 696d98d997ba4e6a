//! Webhook subscriptions, the event outbox and deliveries: the rows and the trait a backend
//! implements. Events are written with their deliveries (one per matching subscription) in one
//! transaction; deliveries are claimed by one sender at a time, oldest first per subscription
//! and user, and end delivered or dead.

use crate::StorageResult;

/// A subscription. `events` and `enabled` are plain (the backend matches events with them);
/// the URL and options are in `config`, authenticated by the core; the signing secret is
/// sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub namespace: String,
    pub name: String,
    /// Event types subscribed to; `*` for every type.
    pub events: Vec<String>,
    pub enabled: bool,
    pub config: Vec<u8>,
    pub sealed_secret: Vec<u8>,
    pub created_at: i64,
}

impl WebhookRow {
    /// Whether this subscription wants events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.enabled && self.events.iter().any(|e| e == "*" || e == event_type)
    }
}

/// An event to deliver. `payload` carries no secret and no user id (the core adds an opted-in
/// user id at delivery, from the user row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEvent {
    pub namespace: String,
    /// Unique; the `webhook-id` receivers deduplicate by.
    pub event_id: String,
    pub event_type: String,
    /// The keyed hash of the user it is about; empty when none.
    pub user_hash: Vec<u8>,
    pub payload: Vec<u8>,
    pub created_at: i64,
    /// Deliver to this subscription only (a test ping), whatever it subscribes to.
    pub only: Option<String>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Out of attempts: kept for listing and redelivery.
    Dead,
}

impl DeliveryState {
    pub fn as_i64(self) -> i64 {
        match self {
            Self::Pending => 0,
            Self::Delivered => 1,
            Self::Dead => 2,
        }
    }

    pub fn from_i64(v: i64) -> Option<Self> {
        match v {
            0 => Some(Self::Pending),
            1 => Some(Self::Delivered),
            2 => Some(Self::Dead),
            _ => None,
        }
    }
}

/// One event's delivery to one subscription, with the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub namespace: String,
    pub webhook: String,
    pub seq: u64,
    pub event_id: String,
    pub event_type: String,
    pub user_hash: Vec<u8>,
    pub payload: Vec<u8>,
    pub event_created_at: i64,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

/// What one attempt ended in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub now: i64,
}

pub trait WebhookStore {
    /// Creates or replaces a subscription.
    fn put_webhook(&self, row: &WebhookRow) -> StorageResult<()>;
    fn get_webhook(&self, namespace: &str, name: &str) -> StorageResult<Option<WebhookRow>>;
    /// A namespace's subscriptions, by name.
    fn list_webhooks(&self, namespace: &str) -> StorageResult<Vec<WebhookRow>>;
    /// Deletes a subscription and its deliveries; whether it existed.
    fn delete_webhook(&self, namespace: &str, name: &str) -> StorageResult<bool>;
    /// In one transaction: stores the event and a pending delivery (due at once) for every
    /// subscription of its namespace that wants it. Returns how many deliveries.
    fn emit_webhook_event(&self, event: &NewWebhookEvent) -> StorageResult<u64>;
    /// Claims up to `limit` due, unclaimed pending deliveries for `owner` until
    /// `claim_until` — for each subscription and user only the oldest pending one, so events
    /// about one user arrive in order (events about no user are not ordered). A claim that ran
    /// out can be taken by anyone.
    fn claim_deliveries(
        &self,
        owner: &str,
        now: i64,
        claim_until: i64,
        limit: usize,
    ) -> StorageResult<Vec<DeliveryRow>>;
    /// Records an attempt's outcome and releases the claim, if `owner` still holds it.
    fn finish_delivery(
        &self,
        namespace: &str,
        webhook: &str,
        seq: u64,
        owner: &str,
        outcome: &DeliveryOutcome,
    ) -> StorageResult<bool>;
    /// A subscription's deliveries, newest first, optionally in one state, before `before`.
    fn list_deliveries(
        &self,
        namespace: &str,
        webhook: &str,
        state: Option<DeliveryState>,
        before: Option<u64>,
        limit: usize,
    ) -> StorageResult<Vec<DeliveryRow>>;
    /// Makes a delivery pending again, due at `now`, attempts from zero; whether it exists.
    fn redeliver(&self, namespace: &str, webhook: &str, seq: u64, now: i64) -> StorageResult<bool>;
}
