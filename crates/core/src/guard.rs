//! Who is turned away before their request is looked at, without collateral damage.
//!
//! - **Lock-out after failed authentication.** A presented token that is malformed or names
//!   no token counts against the client's address (`client:<address>`); one that names a real
//!   token with a wrong secret, or a revoked or expired one, counts against that token id
//!   (`token:<id>`). After `threshold` failures within the window the key is locked for a
//!   while: failures on it answer 429 without being looked at further. A **valid** token is
//!   never refused by a lock-out — the check runs only after the token failed — so one
//!   misconfigured app behind a shared address (NAT, proxy, container host) cannot lock the
//!   others out.
//! - **Suspension of valid tokens that keep being denied.** A token that collects a
//!   namespace's `denials` authorization denials within `window_secs` is suspended for
//!   `suspend_secs` (audited as `token.suspend`, listed, liftable by an operator). Operator
//!   tokens are never suspended (they are never denied, and suspending the last one would
//!   lock the store). Defaults: 20 denials in 10 minutes suspend for an hour.
//!
//! Counts live in the database (`LockoutStore`), so every node sees them: the node that locks
//! knows at once, the others re-read the active locks every second
//! ([`Vault::refresh_guards`]). The thresholds are pure data; the counting is one upsert.

use std::collections::HashMap;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::operation::Op;
use crate::row_auth::RowId;
use crate::vault::At;
use crate::{names, CoreError, CoreResult, Principal, Vault};

/// How failed authentications lock a key out (server settings; the same on every node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub threshold: u32,
    pub window_ms: i64,
    pub lockout_ms: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            threshold: 10,
            window_ms: 60_000,
            lockout_ms: 60_000,
        }
    }
}

/// When a valid token is suspended for its denials (per namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuspensionPolicy {
    /// Authorization denials within the window that suspend the token (1–10,000).
    #[serde(deserialize_with = "crate::json::u32")]
    pub denials: u32,
    /// The window, in seconds (1–86,400).
    #[serde(deserialize_with = "crate::json::u32")]
    pub window_secs: u32,
    /// How long a suspension lasts, in seconds (1–604,800).
    #[serde(deserialize_with = "crate::json::u32")]
    pub suspend_secs: u32,
}

impl Default for SuspensionPolicy {
    fn default() -> Self {
        Self {
            denials: 20,
            window_secs: 600,
            suspend_secs: 3600,
        }
    }
}

impl SuspensionPolicy {
    /// Checks the documented ranges.
    pub fn validate(&self) -> CoreResult<()> {
        let check = |field: &'static str, value: u32, max: u32| {
            if (1..=max).contains(&value) {
                Ok(())
            } else {
                Err(CoreError::Invalid {
                    field,
                    rule: format!("must be between 1 and {max}"),
                })
            }
        };
        check("denials", self.denials, 10_000)?;
        check("window_secs", self.window_secs, 86_400)?;
        check("suspend_secs", self.suspend_secs, 604_800)
    }
}

/// A suspended token, as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct Suspension {
    pub token_id: String,
    pub until: String,
}

const CLIENT: &str = "client:";
const TOKEN: &str = "token:";
const SUSPENDED: &str = "suspended:";

/// This node's view of the active locks and suspensions of the cluster (key → end, Unix ms).
#[derive(Default)]
pub(crate) struct Guard {
    locks: Mutex<HashMap<String, i64>>,
}

const TABLE_LIMIT: usize = 100_000;

impl Guard {
    /// The end of `key`'s lock if it is locked at `now`.
    fn locked(&self, key: &str, now: i64) -> Option<i64> {
        self.locks
            .lock()
            .get(key)
            .copied()
            .filter(|&until| until > now)
    }

    fn lock(&self, key: String, until: i64) {
        let mut locks = self.locks.lock();
        if locks.len() < TABLE_LIMIT {
            locks.insert(key, until);
        }
    }

    fn unlock(&self, key: &str) {
        self.locks.lock().remove(key);
    }
}

/// Seconds from `now` to `until`, at least 1 (for Retry-After).
fn secs_until(until: i64, now: i64) -> u64 {
    (((until - now).max(0) as u64) / 1000).max(1)
}

/// How a presented token failed, for counting.
pub(crate) enum Failure {
    /// Malformed, or no such token: counted against the client address.
    Unknown,
    /// A real token id with a wrong secret, revoked or expired: counted against the id.
    Known(String),
}

pub(crate) fn suspension_meta_key(ns: &str) -> String {
    format!("suspension-policy/{ns}")
}

impl Vault {
    /// Authenticates a presented bearer token for a client at `client` (its address). A valid
    /// token is refused only when it is itself suspended. A failure is audited, counted, and
    /// answers `Unauthenticated` — or `LockedOut` once the failing key is locked.
    pub fn authenticate(&self, presented: &str, client: &str) -> CoreResult<Principal> {
        let now = self.now_ms();
        match self.verify_token(presented) {
            Ok(principal) => {
                let key = format!("{SUSPENDED}{}", principal.token_id);
                if let Some(until) = self.guard().locked(&key, now) {
                    return Err(CoreError::TokenSuspended {
                        retry_after_secs: secs_until(until, now),
                    });
                }
                Ok(principal)
            }
            Err(Ok(failure)) => Err(self.authentication_failed(failure, client, now)),
            Err(Err(other)) => Err(other),
        }
    }

    /// Authenticates from memory alone: `Some` when the token is in the cache (fresh), its
    /// secret matches, it has not expired and is not suspended — exactly what
    /// [`Vault::authenticate`] would answer then. `None` whenever storage would be needed (a
    /// cache miss) or the answer is a failure (which must be counted and audited): call
    /// `authenticate` on the blocking pool then. Never touches storage, so an async worker may
    /// call it (the server saves one blocking-pool hop per request this way).
    pub fn authenticate_cached(&self, presented: &str) -> Option<Principal> {
        let principal = self.cached_principal(presented)?;
        let key = format!("{SUSPENDED}{}", principal.token_id);
        if self.guard().locked(&key, self.now_ms()).is_some() {
            return None;
        }
        Some(principal)
    }

    /// Audits and counts a failed authentication; returns the error to answer with.
    fn authentication_failed(&self, failure: Failure, client: &str, now: i64) -> CoreError {
        let (key, token_id) = match failure {
            Failure::Unknown => (format!("{CLIENT}{client}"), String::new()),
            Failure::Known(id) => (format!("{TOKEN}{id}"), id),
        };
        let who = Principal {
            token_id,
            policy: crate::Policy::nothing(),
        };
        let denied = CoreError::Unauthenticated("");
        self.record_internal_failure(&who, Op::Authenticate, At::new("", ""), &[], &denied);
        if let Some(until) = self.guard().locked(&key, now) {
            return CoreError::LockedOut {
                retry_after_secs: secs_until(until, now),
            };
        }
        let policy = self.settings().lockout;
        let on_lock = self.lockout_events(&who.token_id, now + policy.lockout_ms, policy.threshold);
        match self.storage().record_auth_failure(
            &key,
            now,
            policy.window_ms,
            policy.threshold.max(1),
            policy.lockout_ms,
            &on_lock,
        ) {
            Ok(Some(until)) => {
                tracing::warn!(
                    kind = key.split(':').next().unwrap_or(""),
                    "locked out after repeated authentication failures"
                );
                self.guard().lock(key, until);
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "could not count an authentication failure"),
        }
        CoreError::Unauthenticated("the token is invalid, expired or revoked")
    }

    /// `security.lockout` for each namespace of a known token id whose failures may lock it
    /// (written only if this failure starts the lock). Address lock-outs name no namespace,
    /// and operator tokens (`*`) tell none: they reach no webhook.
    fn lockout_events(
        &self,
        token_id: &str,
        until: i64,
        failures: u32,
    ) -> Vec<strongroom_storage::NewWebhookEvent> {
        if token_id.is_empty() {
            return Vec::new();
        }
        let namespaces = match self.storage().get_token(token_id) {
            Ok(Some(row)) => match self.token_policy(&row) {
                Ok(policy) => policy.namespaces,
                Err(_) => return Vec::new(),
            },
            _ => return Vec::new(),
        };
        namespaces
            .iter()
            .filter(|ns| ns.as_str() != "*")
            .filter_map(|ns| {
                self.wanted_event(
                    ns,
                    "security.lockout",
                    &[],
                    serde_json::json!({
                        "token_id": token_id,
                        "until": crate::clock::rfc3339(until),
                        "failures": failures,
                    }),
                )
                .ok()
                .flatten()
            })
            .collect()
    }

    /// Counts an authorization denial of a valid token; suspends it when it crosses its
    /// namespace's policy. Operators are never suspended.
    pub(crate) fn note_denial(&self, who: &Principal, ns: &str) {
        if who.policy.is_operator() || who.token_id.is_empty() {
            return;
        }
        let policy = self.suspension_policy(ns).unwrap_or_default();
        let key = format!("{SUSPENDED}{}", who.token_id);
        let now = self.now_ms();
        let suspend_ms = i64::from(policy.suspend_secs) * 1000;
        // Emitted with the suspension, in its transaction (only when this denial starts it).
        let event = self
            .wanted_event(
                ns,
                "security.token_suspended",
                &[],
                serde_json::json!({
                    "token_id": who.token_id,
                    "until": crate::clock::rfc3339(now + suspend_ms),
                    "denials": policy.denials,
                }),
            )
            .ok()
            .flatten();
        match self.storage().record_auth_failure(
            &key,
            now,
            i64::from(policy.window_secs) * 1000,
            policy.denials,
            suspend_ms,
            event.as_slice(),
        ) {
            Ok(Some(until)) if self.guard().locked(&key, now).is_none() => {
                tracing::warn!(
                    token_id = who.token_id,
                    "token suspended after repeated authorization denials"
                );
                self.guard().lock(key, until);
                let system = Principal::system("guard");
                self.record_internal(
                    &system,
                    Op::TokenSuspend,
                    At::new(ns, &who.token_id),
                    &[],
                    &Ok::<(), CoreError>(()),
                );
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "could not count an authorization denial"),
        }
    }

    /// Re-reads the cluster's active lock-outs and suspensions (each node, every second).
    pub fn refresh_guards(&self) -> CoreResult<()> {
        let active = self.storage().active_lockouts(self.now_ms())?;
        let fresh: HashMap<String, i64> = active.into_iter().take(TABLE_LIMIT).collect();
        *self.guard().locks.lock() = fresh;
        Ok(())
    }

    /// The suspension policy of a namespace (defaults when none is set).
    fn suspension_policy(&self, ns: &str) -> CoreResult<SuspensionPolicy> {
        if ns.is_empty() {
            return Ok(SuspensionPolicy::default());
        }
        match self.storage().get_meta(&suspension_meta_key(ns))? {
            Some(stored) => self.open_suspension_policy(ns, &stored),
            None => Ok(SuspensionPolicy::default()),
        }
    }

    /// A stored suspension policy, if authentic (see [`crate::row_auth`]).
    pub(crate) fn open_suspension_policy(
        &self,
        ns: &str,
        stored: &[u8],
    ) -> CoreResult<SuspensionPolicy> {
        let body = self.open_row(&RowId::suspension_policy(ns), stored)?;
        crate::stored_config::decode(&body, "suspension policy")
    }

    /// A suspension policy authenticated for `ns`, as stored.
    pub(crate) fn seal_suspension_policy(
        &self,
        ns: &str,
        policy: &SuspensionPolicy,
    ) -> CoreResult<Vec<u8>> {
        let body = crate::stored_config::encode(policy)?;
        self.seal_row(&RowId::suspension_policy(ns), &body)
    }

    /// A namespace's suspension policy (`admin` there).
    pub fn get_suspension_policy(&self, who: &Principal, ns: &str) -> CoreResult<SuspensionPolicy> {
        self.execute(
            who,
            Op::SecurityPolicyGet,
            At::new(ns, ""),
            || self.keyring().namespace(ns).map(|_| ()),
            |()| self.suspension_policy(ns),
        )
    }

    /// Sets a namespace's suspension policy (`admin` there).
    pub fn set_suspension_policy(
        &self,
        who: &Principal,
        ns: &str,
        policy: SuspensionPolicy,
    ) -> CoreResult<SuspensionPolicy> {
        let valid = policy.validate();
        self.execute(
            who,
            Op::SecurityPolicySet,
            At::new(ns, ""),
            || {
                valid?;
                self.keyring().namespace(ns).map(|_| ())
            },
            |()| {
                let bytes = self.seal_suspension_policy(ns, &policy)?;
                self.storage().put_meta(&suspension_meta_key(ns), &bytes)?;
                Ok(policy)
            },
        )
    }

    /// Tokens suspended now (operators).
    pub fn suspended_tokens(&self, who: &Principal) -> CoreResult<Vec<Suspension>> {
        self.execute(
            who,
            Op::TokenSuspensions,
            At::new("", ""),
            || Ok(()),
            |()| {
                let now = self.now_ms();
                Ok(self
                    .storage()
                    .active_lockouts(now)?
                    .into_iter()
                    .filter_map(|(key, until)| {
                        key.strip_prefix(SUSPENDED).map(|id| Suspension {
                            token_id: id.to_string(),
                            until: crate::clock::rfc3339(until),
                        })
                    })
                    .collect())
            },
        )
    }

    /// Lifts a token's suspension (operators); it works again on every node within a second.
    pub fn unsuspend_token(&self, who: &Principal, token_id: &str) -> CoreResult<()> {
        self.execute(
            who,
            Op::TokenUnsuspend,
            At::new("", token_id),
            || names::token_id(token_id),
            |()| {
                let key = format!("{SUSPENDED}{token_id}");
                if self.storage().clear_lockout(&key)? {
                    self.guard().unlock(&key);
                    Ok(())
                } else {
                    Err(CoreError::NotFound("suspension"))
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspension_policies_are_checked_against_their_ranges() {
        assert!(SuspensionPolicy::default().validate().is_ok());
        let zero = SuspensionPolicy {
            denials: 0,
            ..SuspensionPolicy::default()
        };
        assert!(matches!(
            zero.validate(),
            Err(CoreError::Invalid {
                field: "denials",
                ..
            })
        ));
        let long = SuspensionPolicy {
            suspend_secs: 604_801,
            ..SuspensionPolicy::default()
        };
        assert!(matches!(
            long.validate(),
            Err(CoreError::Invalid {
                field: "suspend_secs",
                ..
            })
        ));
    }

    #[test]
    fn retry_after_is_at_least_a_second() {
        assert_eq!(secs_until(1_000, 1_000), 1);
        assert_eq!(secs_until(10_500, 1_000), 9);
    }

    #[test]
    fn a_lock_ends_at_its_time() {
        let guard = Guard::default();
        guard.lock("client:1.2.3.4".into(), 2_000);
        assert_eq!(guard.locked("client:1.2.3.4", 1_999), Some(2_000));
        assert_eq!(guard.locked("client:1.2.3.4", 2_000), None);
        assert_eq!(guard.locked("client:5.6.7.8", 0), None);
    }
}
