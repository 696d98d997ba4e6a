//! Abuse guards: temporary lock-out of a client address after repeated authentication
//! failures, and a token-bucket rate limit per API token (from the token's policy).
//!
//! Both live in this node's memory. Behind several nodes each node counts on its own, so the
//! effective lock-out threshold is per node; the limits still bound guessing to a rate that
//! cannot matter against 256-bit token secrets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use strongroom_core::Principal;

use crate::error::ApiError;
use crate::state::ServerSettings;

const TABLE_LIMIT: usize = 100_000;

struct Failures {
    count: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Lock-out and rate-limit state of this node.
pub struct Guards {
    threshold: u32,
    window: Duration,
    lockout: Duration,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Guards {
    pub fn new(settings: &ServerSettings) -> Self {
        Self {
            threshold: settings.lockout_threshold.max(1),
            window: Duration::from_secs(settings.lockout_window_secs),
            lockout: Duration::from_secs(settings.lockout_secs),
            failures: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses a client that is locked out.
    pub fn check_lockout(&self, ip: IpAddr) -> Result<(), ApiError> {
        let now = Instant::now();
        let table = self.failures.lock();
        if let Some(until) = table.get(&ip).and_then(|f| f.locked_until) {
            if until > now {
                let retry = (until - now).as_secs().max(1);
                return Err(ApiError::TooManyRequests {
                    code: "locked_out",
                    retry_after_secs: retry,
                });
            }
        }
        Ok(())
    }

    /// Counts a failed authentication; locks the client out at the threshold.
    pub fn auth_failed(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut table = self.failures.lock();
        if table.len() >= TABLE_LIMIT {
            table.retain(|_, f| {
                f.locked_until.is_some_and(|u| u > now) || now - f.window_start < self.window
            });
        }
        let entry = table.entry(ip).or_insert(Failures {
            count: 0,
            window_start: now,
            locked_until: None,
        });
        if now - entry.window_start > self.window || entry.locked_until.is_some_and(|u| u <= now) {
            *entry = Failures {
                count: 0,
                window_start: now,
                locked_until: None,
            };
        }
        entry.count += 1;
        if entry.count >= self.threshold {
            entry.locked_until = Some(now + self.lockout);
            tracing::warn!(client = %ip, failures = entry.count, "client locked out after repeated authentication failures");
        }
    }

    /// Clears the failure count of a client that authenticated.
    pub fn auth_succeeded(&self, ip: IpAddr) {
        let mut table = self.failures.lock();
        if table.contains_key(&ip) {
            table.remove(&ip);
        }
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
