//! Per-token request rate limits (a token's `rate_limit_per_sec`), as token buckets kept per
//! node: a token's limit applies on each node it talks to. Lock-outs and suspensions, which
//! must hold on every node, are the vault's (`strongroom_core::guard`).

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;
use strongroom_core::Principal;

use crate::error::ApiError;

const TABLE_LIMIT: usize = 100_000;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The token buckets of this node.
#[derive(Default)]
pub struct RateLimits {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimits {
    /// Applies the token's rate limit, if its policy has one.
    pub fn check(&self, who: &Principal) -> Result<(), ApiError> {
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
            Err(ApiError::RateLimited {
                retry_after_secs: 1,
            })
        }
    }
}
