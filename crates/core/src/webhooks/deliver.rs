//! Delivering webhook events: the `webhook-delivery` job claims due deliveries (one sender per
//! delivery across nodes; a claim that runs out — the node died mid-delivery — is taken by the
//! next, after `webhook_claim_ms`, 60 s by default), posts each signed per the Standard Webhooks
//! spec, and records the outcome.
//!
//! Signing: `webhook-id` (the event id, the same on every retry), `webhook-timestamp` (Unix
//! seconds), `webhook-signature: v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`.
//! Receivers are not trusted: the address must not be private (loopback, RFC 1918, link-local,
//! unique-local, …) unless the operator allows it (`serve --webhook-allow-private`), checked
//! when the subscription is written and again, after resolving, before each attempt; no
//! redirects are followed; 10 s timeout; at most 4 KiB of the answer is read. A 2xx is
//! delivered; anything else is retried after 5 s × 2^(attempt − 1) (at most 6 h between
//! attempts) until 24 h after the event, then the delivery is dead. Nothing of this runs in an
//! API call: a receiver that is down slows no request.

use std::io::Read;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use strongroom_storage::{DeliveryOutcome, DeliveryRow, DeliveryState};

use crate::clock::rfc3339;
use crate::jobs::Job;
use crate::keyring::contexts;
use crate::operation::Op;
use crate::users::UserRef;
use crate::vault::At;
use crate::{CoreError, CoreResult, Principal, Vault};

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ANSWER: u64 = 4 * 1024;
const BATCH: usize = 20;
const GIVE_UP_MS: i64 = 24 * 3600 * 1000;
const MAX_PAUSE_MS: i64 = 6 * 3600 * 1000;

/// Delivers due webhook events.
pub struct WebhookDeliveryJob;

impl Job for WebhookDeliveryJob {
    fn name(&self) -> &'static str {
        "webhook-delivery"
    }

    fn run_once(&self, vault: &Vault) -> CoreResult<bool> {
        vault.deliver_webhooks()
    }
}

/// The `webhook-signature` value for one message (Standard Webhooks, version 1).
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> CoreResult<String> {
    let mut message = Vec::with_capacity(id.len() + body.len() + 24);
    message.extend_from_slice(id.as_bytes());
    message.push(b'.');
    message.extend_from_slice(timestamp.to_string().as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(strongroom_crypto::keyed_hash::hmac_sha256(secret, &message))
    ))
}

fn private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1])
                || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| private(IpAddr::V4(v4)))
        }
    }
}

/// The URL's host and port, if it is an http(s) URL at all.
fn host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok()?)),
        None => Some((authority.to_string(), default)),
    }
}

/// Checks a receiver URL when a subscription is written: http(s), no credentials in it, and —
/// unless private targets are allowed — not an address literal in a private range.
pub(super) fn check_url(url: &str, allow_private: bool) -> CoreResult<()> {
    let bad = |rule: &str| CoreError::Invalid {
        field: "url",
        rule: rule.into(),
    };
    if url.len() > 2048 || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad("must be an http(s) URL of at most 2048 characters"));
    }
    let (host, _) = host_port(url)
        .ok_or_else(|| bad("must be an http:// or https:// URL without user info"))?;
    if !allow_private {
        let literal = host.parse::<IpAddr>().ok();
        if literal.is_some_and(private) || host.eq_ignore_ascii_case("localhost") {
            return Err(bad(
                "must not point at a private, loopback or link-local address (the operator can allow it: serve --webhook-allow-private)",
            ));
        }
    }
    Ok(())
}

/// Resolves the receiver before an attempt and refuses private addresses (a name may resolve
/// to one since the subscription was written).
fn check_target(url: &str, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let (host, port) = host_port(url).ok_or("invalid_url")?;
    let addresses = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|_| "unresolvable".to_string())?;
    for a in addresses {
        if private(a.ip()) {
            return Err("private_address".into());
        }
    }
    Ok(())
}

/// When to try again after `attempts` failed attempts, or `None` to give up.
fn next_attempt(event_at: i64, now: i64, attempts: u32, base_ms: i64) -> Option<i64> {
    let pause = (base_ms.max(1) << attempts.saturating_sub(1).min(20)).min(MAX_PAUSE_MS);
    let next = now + pause;
    (next <= event_at + GIVE_UP_MS).then_some(next)
}

impl Vault {
    /// Background work: one round of due deliveries. `Ok(true)` when more may be waiting.
    pub(crate) fn deliver_webhooks(&self) -> CoreResult<bool> {
        // A claim's owner is this round (claims are finished by the round that made them).
        let owner = hex::encode(
            strongroom_crypto::random::bytes::<12>()
                .map_err(|e| CoreError::Internal(e.to_string()))?,
        );
        let now = self.now_ms();
        let due = self.storage().claim_deliveries(
            &owner,
            now,
            now + self.settings().webhook_claim_ms,
            BATCH,
        )?;
        let mut delivered_any = false;
        for delivery in &due {
            let outcome = self.attempt(delivery);
            let attempts = delivery.attempts + 1;
            let now = self.now_ms();
            let result = match outcome {
                Ok(status) => DeliveryOutcome {
                    state: DeliveryState::Delivered,
                    attempts,
                    next_attempt_at: now,
                    last_status: Some(status),
                    last_error: None,
                    now,
                },
                Err((status, error)) => {
                    let next = next_attempt(
                        delivery.event_created_at,
                        now,
                        attempts,
                        self.settings().webhook_retry_base_ms,
                    );
                    DeliveryOutcome {
                        state: if next.is_some() {
                            DeliveryState::Pending
                        } else {
                            DeliveryState::Dead
                        },
                        attempts,
                        next_attempt_at: next.unwrap_or(now),
                        last_status: status,
                        last_error: Some(error),
                        now,
                    }
                }
            };
            let delivered = result.state == DeliveryState::Delivered;
            delivered_any |= delivered;
            self.storage().finish_delivery(
                &delivery.namespace,
                &delivery.webhook,
                delivery.seq,
                &owner,
                &result,
            )?;
            let counter = if delivered {
                &self.counters().webhook_deliveries
            } else {
                &self.counters().webhook_delivery_failures
            };
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let recorded: CoreResult<()> = if delivered {
                Ok(())
            } else {
                Err(CoreError::WebhookFailed(
                    result.last_error.clone().unwrap_or_default(),
                ))
            };
            let target = format!("{}/{}", delivery.webhook, delivery.seq);
            self.record_internal(
                &Principal::system("job:webhook-delivery"),
                Op::WebhookDeliver,
                At::new(&delivery.namespace, &target),
                &delivery.user_hash,
                &recorded,
            );
        }
        // Again at once while deliveries go through (a user's next event is claimable as soon
        // as the previous one is delivered); a round of failures waits for the next tick.
        Ok(delivered_any)
    }

    /// One attempt: the answer's status when delivered, else the status (if any) and why not.
    fn attempt(&self, d: &DeliveryRow) -> Result<u16, (Option<u16>, String)> {
        let internal = |e: CoreError| (None, format!("internal: {e}"));
        let row = self
            .storage()
            .get_webhook(&d.namespace, &d.webhook)
            .map_err(|e| internal(e.into()))?
            .ok_or((None, "subscription_gone".to_string()))?;
        let config = self.webhook_config(&row).map_err(internal)?;
        let secret = self.webhook_secret(&row).map_err(internal)?;
        let data = self
            .event_data(d, config.include_user_id)
            .map_err(internal)?;
        let body = serde_json::to_vec(&json!({
            "type": d.event_type,
            "timestamp": rfc3339(d.event_created_at),
            "data": data,
        }))
        .map_err(|e| internal(CoreError::Internal(e.to_string())))?;
        check_target(&config.url, self.settings().webhook_allow_private).map_err(|e| (None, e))?;
        let timestamp = self.now_ms() / 1000;
        let signature = sign(&secret, &d.event_id, timestamp, &body).map_err(internal)?;
        let agent = ureq::AgentBuilder::new()
            .timeout(TIMEOUT)
            .redirects(0)
            .user_agent("Strongroom-Webhooks/1")
            .build();
        let answer = agent
            .post(&config.url)
            .set("Content-Type", "application/json")
            .set("webhook-id", &d.event_id)
            .set("webhook-timestamp", &timestamp.to_string())
            .set("webhook-signature", &signature)
            .send_bytes(&body);
        match answer {
            Ok(r) => {
                let status = r.status();
                let _ = r
                    .into_reader()
                    .take(MAX_ANSWER)
                    .read_to_end(&mut Vec::new());
                if (200..300).contains(&status) {
                    Ok(status)
                } else {
                    Err((Some(status), format!("http_{status}")))
                }
            }
            Err(ureq::Error::Status(status, _)) => Err((Some(status), format!("http_{status}"))),
            Err(ureq::Error::Transport(_)) => Err((None, "unreachable".into())),
        }
    }

    /// The event's data as delivered: the sealed payload opened, the keyed user hash, and the
    /// app's own user id if the subscription opted in and the user still exists.
    fn event_data(&self, d: &DeliveryRow, include_user_id: bool) -> CoreResult<Value> {
        let owner = self.namespace_owner(&d.namespace)?;
        let key = self
            .existing_user_key(&owner)?
            .ok_or(CoreError::Integrity("webhook event"))?;
        let plain = key
            .open(
                &contexts::webhook_event(&d.namespace, &d.event_id),
                &d.payload,
            )
            .map_err(|e| CoreError::from_crypto("webhook event", e))?;
        let mut data: Value =
            serde_json::from_slice(&plain).map_err(|_| CoreError::Integrity("webhook event"))?;
        if !d.user_hash.is_empty() {
            data["user_hash"] = json!(hex::encode(&d.user_hash));
            if include_user_id {
                let user = UserRef {
                    keys: owner.keys.clone(),
                    hash: d.user_hash.clone(),
                };
                if let Ok(id) = self.user_id_of(&user) {
                    data["user"] = json!(id);
                }
            }
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_reference() {
        // The example of the Standard Webhooks spec, checked with the `standardwebhooks`
        // package's own `sign`.
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            )
            .unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn private_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/x",
            "http://10.1.2.3/",
            "https://192.168.0.1/hook",
            "http://[::1]:80/",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost/",
            "http://100.64.0.1/",
            "http://[fd00::1]/",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
            assert!(check_url(url, true).is_ok(), "{url}");
        }
        for bad in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "example.com",
            "https://",
        ] {
            assert!(check_url(bad, true).is_err(), "{bad}");
        }
        assert!(check_url("https://hooks.example.com/strongroom?x=1", false).is_ok());
    }

    #[test]
    fn retries_back_off_and_stop_after_a_day() {
        let base = 5_000;
        assert_eq!(next_attempt(0, 1_000, 1, base), Some(6_000));
        assert_eq!(next_attempt(0, 1_000, 3, base), Some(21_000));
        assert_eq!(next_attempt(0, 0, 30, base), Some(MAX_PAUSE_MS));
        assert_eq!(next_attempt(0, GIVE_UP_MS - 1_000, 2, base), None);
    }
}
