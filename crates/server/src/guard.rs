//! Abuse guards: temporary lock-out of a client address after repeated authentication
//! failures, and a token-bucket rate limit per API token (from the token's policy).
//!
//! Failures are counted in the database, so a client locked out by one node is locked out on
//! all of them: the node that locks it knows at once, the others within a second (each node
//! re-reads the active lock-outs every second). Rate-limit buckets stay per node: a token's
//! limit applies on each node it talks to.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use strongroom_core::tokens::LockoutPolicy;
use strongroom_core::Principal;

use crate::error::ApiError;
use crate::state::ServerSettings;

const TABLE_LIMIT: usize = 100_000;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Lock-out and rate-limit state of this node.
pub struct Guards {
    policy: LockoutPolicy,
    /// This node's view of the clients locked out cluster-wide: updated at once when this node
    /// locks a client, and replaced from the database every second.
    locks: Mutex<HashMap<IpAddr, Instant>>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Guards {
    pub fn new(settings: &ServerSettings) -> Self {
        Self {
            policy: LockoutPolicy {
                threshold: settings.lockout_threshold.max(1),
                window_ms: settings.lockout_window_secs as i64 * 1000,
                lockout_ms: settings.lockout_secs as i64 * 1000,
            },
            locks: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The lock-out rule, for counting a failure in the database.
    pub fn policy(&self) -> LockoutPolicy {
        self.policy
    }

    /// Refuses a client that is locked out.
    pub fn check_lockout(&self, ip: IpAddr) -> Result<(), ApiError> {
        let now = Instant::now();
        if let Some(until) = self.locks.lock().get(&ip) {
            if *until > now {
                let retry = (*until - now).as_secs().max(1);
                return Err(ApiError::TooManyRequests {
                    code: "locked_out",
                    retry_after_secs: retry,
                });
            }
        }
        Ok(())
    }

    /// Records that `ip` is locked out for `remaining_ms` more milliseconds.
    pub fn lock(&self, ip: IpAddr, remaining_ms: i64) {
        if remaining_ms > 0 {
            tracing::warn!(client = %ip, "client locked out after repeated authentication failures");
            self.locks.lock().insert(
                ip,
                Instant::now() + Duration::from_millis(remaining_ms as u64),
            );
        }
    }

    /// Replaces this node's view with the database's list of (client, remaining ms).
    pub fn replace_locks(&self, active: Vec<(String, i64)>) {
        let now = Instant::now();
        let fresh: HashMap<IpAddr, Instant> = active
            .into_iter()
            .filter_map(|(client, ms)| {
                Some((
                    client.parse().ok()?,
                    now + Duration::from_millis(ms.max(0) as u64),
                ))
            })
            .take(TABLE_LIMIT)
            .collect();
        *self.locks.lock() = fresh;
    }

    /// Applies the token's rate limit, if its policy has one.
    pub fn check_rate(&self, who: &Principal) -> Result<(), ApiError> {
        let Some(rate) = who.policy.rate_limit_per_sec else {
            return Ok(());
        };
        let rate = f64::from(rate);
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        if buckets.len() >= TABLE_LIMIT {
            buckets.clear();
        }
        let bucket = buckets.entry(who.token_id.clone()).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        bucket.tokens = (bucket.tokens + (now - bucket.last).as_secs_f64() * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(ApiError::TooManyRequests {
                code: "rate_limited",
                retry_after_secs: 1,
            })
        }
    }
}
