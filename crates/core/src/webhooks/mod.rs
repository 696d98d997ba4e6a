//! Webhooks: tell the app when something happens (`PUT /v1/ns/{ns}/webhooks/{name}`).
//!
//! A subscription names a URL, the event types it wants (or `*`), whether it is enabled and
//! whether payloads may carry the app's own user id (`include_user_id`; otherwise only the
//! keyed user hash). Its signing secret (`whsec_` + base64 of 32 random bytes, the Standard
//! Webhooks form) is generated once, shown once, and kept sealed under the namespace's own key;
//! the URL and options are stored authenticated, so an edited row is refused at delivery.
//!
//! Events go to the outbox (`WebhookStore`) in the transaction of the change they report (an
//! erasure writes `user.erased` with the shredding), fanned out there to every subscription
//! that wants them. Their payload is sealed under the namespace key and carries no secret, no
//! token and no user id; a user id is added at delivery, from the user's row, only for
//! subscriptions that opted in (an erased user has no row left: only the hash). Delivery is
//! the `webhook-delivery` job's (`deliver.rs`): signed, at least once, retried with back-off up
//! to 24 h, then kept as dead for listing and redelivery.

mod deliver;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use strongroom_storage::{DeliveryRow, DeliveryState, NewWebhookEvent, WebhookRow};

pub use deliver::{sign, WebhookDeliveryJob};

use crate::clock::rfc3339;
use crate::keyring::contexts;
use crate::operation::Op;
use crate::records::NAMESPACE_OWNER;
use crate::row_auth::RowId;
use crate::users::page_limit;
use crate::vault::{At, Input};
use crate::{names, CoreError, CoreResult, Page, Principal, Vault};

/// Every event type a subscription may name (`*` names them all).
pub const EVENT_TYPES: &[&str] = &[
    "credential.refresh_failed",
    "credential.recovered",
    "credential.needs_reauthorization",
    "credential.revoked",
    "credential.expiring",
    "user.erased",
    "keys.rotated",
    "security.lockout",
    "security.token_suspended",
    "integrity_error",
    "webhook.test",
];

/// A subscription as an operator writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    pub url: String,
    pub events: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Put the app's own user id in payloads (the app is the receiver); default: the keyed
    /// user hash only.
    #[serde(default)]
    pub include_user_id: bool,
}

fn yes() -> bool {
    true
}

/// What is stored authenticated beside the plain event list.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredConfig {
    url: String,
    include_user_id: bool,
}

/// A subscription as shown (its secret only in the answer that created it).
#[derive(Debug, Clone, Serialize)]
pub struct WebhookInfo {
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub include_user_id: bool,
    pub created_at: String,
    /// Shown once, when the subscription is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One delivery as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryInfo {
    pub seq: u64,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub state: &'static str,
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub event_time: String,
    pub updated_at: String,
}

fn state_name(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Dead => "dead",
    }
}

fn parse_state(value: &str) -> CoreResult<DeliveryState> {
    match value {
        "pending" => Ok(DeliveryState::Pending),
        "delivered" => Ok(DeliveryState::Delivered),
        "dead" => Ok(DeliveryState::Dead),
        _ => Err(CoreError::Invalid {
            field: "state",
            rule: "must be pending, delivered or dead".into(),
        }),
    }
}

fn delivery_info(d: &DeliveryRow) -> DeliveryInfo {
    DeliveryInfo {
        seq: d.seq,
        event_id: d.event_id.clone(),
        event_type: d.event_type.clone(),
        state: state_name(d.state),
        attempts: d.attempts,
        next_attempt_at: (d.state == DeliveryState::Pending).then(|| rfc3339(d.next_attempt_at)),
        last_status: d.last_status,
        last_error: d.last_error.clone(),
        event_time: rfc3339(d.event_created_at),
        updated_at: rfc3339(d.updated_at),
    }
}

impl WebhookInput {
    fn validate(&self, allow_private: bool) -> CoreResult<()> {
        deliver::check_url(&self.url, allow_private)?;
        if self.events.is_empty() || self.events.len() > EVENT_TYPES.len() {
            return Err(CoreError::Invalid {
                field: "events",
                rule: format!("must name 1 to {} event types, or \"*\"", EVENT_TYPES.len()),
            });
        }
        for e in &self.events {
            if e != "*" && !EVENT_TYPES.contains(&e.as_str()) {
                return Err(CoreError::Invalid {
                    field: "events",
                    rule: format!("each must be \"*\" or one of: {}", EVENT_TYPES.join(", ")),
                });
            }
        }
        Ok(())
    }
}

impl Vault {
    fn webhook_info(&self, row: &WebhookRow, secret: Option<String>) -> CoreResult<WebhookInfo> {
        let config = self.webhook_config(row)?;
        Ok(WebhookInfo {
            name: row.name.clone(),
            url: config.url,
            events: row.events.clone(),
            enabled: row.enabled,
            include_user_id: config.include_user_id,
            created_at: rfc3339(row.created_at),
            secret,
        })
    }

    fn webhook_config(&self, row: &WebhookRow) -> CoreResult<StoredConfig> {
        let body = self.open_row(&RowId::webhook(&row.namespace, &row.name), &row.config)?;
        crate::stored_config::decode(&body, "webhook")
    }

    /// The signing secret of a subscription, opened.
    fn webhook_secret(&self, row: &WebhookRow) -> CoreResult<zeroize::Zeroizing<Vec<u8>>> {
        let owner = self.namespace_owner(&row.namespace)?;
        let key = self
            .existing_user_key(&owner)?
            .ok_or(CoreError::Integrity("webhook"))?;
        key.open(
            &contexts::webhook_secret(&row.namespace, &row.name),
            &row.sealed_secret,
        )
        .map_err(|e| CoreError::from_crypto("webhook", e))
    }

    /// Creates or replaces a subscription (`admin`). A new one gets its secret, in this
    /// answer only; a replaced one keeps its secret.
    pub fn put_webhook(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        input: WebhookInput,
    ) -> CoreResult<WebhookInfo> {
        let allow_private = self.settings().webhook_allow_private;
        let check = || {
            names::credential_name(name)?;
            input.validate(allow_private)
        };
        self.execute(who, Op::WebhookPut, At::new(ns, name), check, |()| {
            let existing = self.storage().get_webhook(ns, name)?;
            let (sealed_secret, shown, created_at) = match &existing {
                Some(row) => (row.sealed_secret.clone(), None, row.created_at),
                None => {
                    let raw = strongroom_crypto::random::bytes::<32>()
                        .map_err(|e| CoreError::Internal(e.to_string()))?;
                    let secret = format!("whsec_{}", STANDARD.encode(raw));
                    let owner = self.namespace_owner(ns)?;
                    let key = self.user_key_for_write(&owner, NAMESPACE_OWNER)?;
                    let sealed = key
                        .seal(1, &contexts::webhook_secret(ns, name), &raw)
                        .map_err(|e| CoreError::Internal(e.to_string()))?;
                    (sealed, Some(secret), self.now_ms())
                }
            };
            let config = crate::stored_config::encode(&StoredConfig {
                url: input.url.clone(),
                include_user_id: input.include_user_id,
            })?;
            let row = WebhookRow {
                namespace: ns.to_string(),
                name: name.to_string(),
                events: input.events.clone(),
                enabled: input.enabled,
                config: self.seal_row(&RowId::webhook(ns, name), &config)?,
                sealed_secret,
                created_at,
            };
            self.storage().put_webhook(&row)?;
            self.webhook_info(&row, shown)
        })
    }

    /// A namespace's subscriptions (`admin`).
    pub fn list_webhooks(&self, who: &Principal, ns: &str) -> CoreResult<Vec<WebhookInfo>> {
        self.execute(
            who,
            Op::WebhookList,
            At::new(ns, ""),
            || Ok(()),
            |()| {
                self.storage()
                    .list_webhooks(ns)?
                    .iter()
                    .map(|row| self.webhook_info(row, None))
                    .collect()
            },
        )
    }

    /// Deletes a subscription and its deliveries (`admin`).
    pub fn delete_webhook(&self, who: &Principal, ns: &str, name: &str) -> CoreResult<()> {
        self.execute(
            who,
            Op::WebhookDelete,
            At::new(ns, name),
            || names::credential_name(name),
            |()| {
                if self.storage().delete_webhook(ns, name)? {
                    Ok(())
                } else {
                    Err(CoreError::NotFound("webhook"))
                }
            },
        )
    }

    /// Sends a `webhook.test` event to this subscription only (`admin`); returns its id.
    pub fn test_webhook(&self, who: &Principal, ns: &str, name: &str) -> CoreResult<String> {
        self.execute(
            who,
            Op::WebhookTest,
            At::new(ns, name),
            || names::credential_name(name),
            |()| {
                if self.storage().get_webhook(ns, name)?.is_none() {
                    return Err(CoreError::NotFound("webhook"));
                }
                let mut event = self.webhook_event(
                    ns,
                    "webhook.test",
                    &[],
                    json!({"message": "a test event from Strongroom"}),
                )?;
                event.only = Some(name.to_string());
                self.storage().emit_webhook_event(&event)?;
                Ok(event.event_id)
            },
        )
    }

    /// A subscription's deliveries, newest first (`admin`).
    pub fn webhook_deliveries(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        state: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> CoreResult<Page<DeliveryInfo>> {
        let parse = || {
            names::credential_name(name)?;
            let state = state.map(parse_state).transpose()?;
            let before = cursor
                .filter(|c| !c.is_empty())
                .map(|c| {
                    c.parse::<u64>().map_err(|_| CoreError::Invalid {
                        field: "cursor",
                        rule: "is not a cursor from a previous page".into(),
                    })
                })
                .transpose()?;
            Ok(Input((state, before, page_limit(limit)?)))
        };
        self.execute(
            who,
            Op::WebhookDeliveries,
            At::new(ns, name),
            parse,
            |Input((state, before, limit))| {
                if self.storage().get_webhook(ns, name)?.is_none() {
                    return Err(CoreError::NotFound("webhook"));
                }
                let rows = self
                    .storage()
                    .list_deliveries(ns, name, *state, *before, *limit)?;
                let next_cursor = (rows.len() == *limit)
                    .then(|| rows.last().map(|r| r.seq.to_string()))
                    .flatten();
                Ok(Page {
                    items: rows.iter().map(delivery_info).collect(),
                    next_cursor,
                })
            },
        )
    }

    /// Queues a delivery again, attempts from zero (`admin`): a dead letter, or one to repeat.
    pub fn redeliver_webhook(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        seq: u64,
    ) -> CoreResult<()> {
        let target = format!("{name}/{seq}");
        self.execute(
            who,
            Op::WebhookRedeliver,
            At::new(ns, &target),
            || names::credential_name(name),
            |()| {
                if self.storage().redeliver(ns, name, seq, self.now_ms())? {
                    Ok(())
                } else {
                    Err(CoreError::NotFound("delivery"))
                }
            },
        )
    }

    /// [`Vault::webhook_event`] when some enabled subscription of the namespace wants
    /// `event_type`, else `None` — so a change nobody listens for writes no event (and makes no
    /// namespace key for it). A subscription made while the change runs may miss it.
    pub(crate) fn wanted_event(
        &self,
        ns: &str,
        event_type: &str,
        user_hash: &[u8],
        data: Value,
    ) -> CoreResult<Option<NewWebhookEvent>> {
        let wanted = self
            .storage()
            .list_webhooks(ns)?
            .iter()
            .any(|w| w.wants(event_type));
        if !wanted {
            return Ok(None);
        }
        self.webhook_event(ns, event_type, user_hash, data)
            .map(Some)
    }

    /// A new event of `event_type` about the user with `user_hash` (empty: none), with `data`
    /// (no secrets, no user id) sealed under the namespace key, for the outbox.
    pub(crate) fn webhook_event(
        &self,
        ns: &str,
        event_type: &str,
        user_hash: &[u8],
        data: Value,
    ) -> CoreResult<NewWebhookEvent> {
        let id = format!(
            "evt_{}",
            hex::encode(
                strongroom_crypto::random::bytes::<16>()
                    .map_err(|e| CoreError::Internal(e.to_string()))?
            )
        );
        let owner = self.namespace_owner(ns)?;
        let key = self.user_key_for_write(&owner, NAMESPACE_OWNER)?;
        let plain = serde_json::to_vec(&data).map_err(|e| CoreError::Internal(e.to_string()))?;
        let payload = key
            .seal(1, &contexts::webhook_event(ns, &id), &plain)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(NewWebhookEvent {
            namespace: ns.to_string(),
            event_id: id,
            event_type: event_type.to_string(),
            user_hash: user_hash.to_vec(),
            payload,
            created_at: self.now_ms(),
            only: None,
        })
    }
}
