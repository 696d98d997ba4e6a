//! API tokens: creation (operators only), listing, revocation and authentication.
//!
//! The database holds only the SHA-256 digest of a token's secret and its policy. A token that
//! authenticated is trusted from an in-memory cache for `token_cache_ttl_ms`; revoking through
//! this node drops it from the cache at once, other nodes notice within that time.

use std::collections::HashMap;

use parking_lot::Mutex;
use serde::Serialize;
use strongroom_crypto::token::ApiToken;
use strongroom_storage::TokenRow;

use crate::clock::rfc3339;
use crate::{names, CoreError, CoreResult, Page, Policy, Principal, Vault};

const CACHE_LIMIT: usize = 10_000;
const MAX_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

/// A token as shown in listings: never its secret.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub policy: Policy,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(Clone)]
struct CachedToken {
    secret_hash: Vec<u8>,
    policy: Policy,
    expires_at: Option<i64>,
    cached_at: i64,
}

/// Recently validated tokens.
#[derive(Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<String, CachedToken>>,
}

fn info(row: &TokenRow) -> CoreResult<TokenInfo> {
    Ok(TokenInfo {
        id: row.id.clone(),
        name: row.name.clone(),
        policy: serde_json::from_slice(&row.policy)
            .map_err(|e| CoreError::Internal(format!("stored policy: {e}")))?,
        created_at: rfc3339(row.created_at),
        expires_at: row.expires_at.map(rfc3339),
        revoked_at: row.revoked_at.map(rfc3339),
    })
}

fn validate_policy(policy: &Policy) -> CoreResult<()> {
    if policy.namespaces.is_empty() {
        return Err(CoreError::Invalid {
            field: "namespaces",
            rule: "must list at least one namespace (or \"*\")".into(),
        });
    }
    for ns in &policy.namespaces {
        if ns != "*" {
            names::namespace(ns)?;
        }
    }
    if policy.capabilities.is_empty() {
        return Err(CoreError::Invalid {
            field: "capabilities",
            rule: "must list at least one capability".into(),
        });
    }
    if policy.rate_limit_per_sec == Some(0) {
        return Err(CoreError::Invalid {
            field: "rate_limit_per_sec",
            rule: "must be at least 1 (omit it for no limit)".into(),
        });
    }
    Ok(())
}

impl Vault {
    /// Creates a token (operators only). The returned [`ApiToken`] is the only copy of its secret.
    pub fn create_token(
        &self,
        who: &Principal,
        name: &str,
        policy: Policy,
        expires_in_secs: Option<u64>,
    ) -> CoreResult<(TokenInfo, ApiToken)> {
        self.audited_now(who, "token.create", "", &[], "", || {
            who.require_operator()?;
            names::token_name(name)?;
            validate_policy(&policy)?;
            let now = self.now_ms();
            if let Some(secs) = expires_in_secs {
                if !(1..=MAX_LIFETIME_SECS).contains(&secs) {
                    return Err(CoreError::Invalid {
                        field: "expires_in_secs",
                        rule: format!("must be between 1 and {MAX_LIFETIME_SECS} (ten years)"),
                    });
                }
            }
            let expires_at = expires_in_secs.map(|secs| now + secs as i64 * 1000);
            let token = ApiToken::generate().map_err(|e| CoreError::Internal(e.to_string()))?;
            let row = TokenRow {
                id: token.id().to_string(),
                secret_hash: token.hash().to_vec(),
                name: name.to_string(),
                policy: serde_json::to_vec(&policy)
                    .map_err(|e| CoreError::Internal(e.to_string()))?,
                created_at: now,
                expires_at,
                revoked_at: None,
            };
            self.storage().insert_token(&row)?;
            Ok((info(&row)?, token))
        })
    }

    /// Lists tokens (operators only), by id.
    pub fn list_tokens(
        &self,
        who: &Principal,
        cursor: Option<&str>,
        limit: usize,
    ) -> CoreResult<Page<TokenInfo>> {
        self.audited(who, "token.list", "", &[], "", || {
            who.require_operator()?;
            let limit = crate::users::page_limit(limit)?;
            let rows = self.storage().list_tokens(cursor, limit)?;
            let next_cursor = (rows.len() == limit)
                .then(|| rows.last().map(|r| r.id.clone()))
                .flatten();
            Ok(Page {
                items: rows.iter().map(info).collect::<CoreResult<_>>()?,
                next_cursor,
            })
        })
    }

    /// Revokes a token (operators only); it stops working on this node at once.
    pub fn revoke_token(&self, who: &Principal, id: &str) -> CoreResult<()> {
        self.audited_now(who, "token.revoke", "", &[], id, || {
            who.require_operator()?;
            self.refuse_revoking_last_operator(id)?;
            self.token_cache().entries.lock().remove(id);
            if self.storage().revoke_token(id, self.now_ms())? {
                Ok(())
            } else {
                Err(CoreError::NotFound("active token"))
            }
        })
    }

    /// Revoking the last active operator token would leave nobody able to administer the
    /// store (recovery then needs `strongroom serve --new-admin-token` on the host).
    fn refuse_revoking_last_operator(&self, id: &str) -> CoreResult<()> {
        let now = self.now_ms();
        let mut operators = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.storage().list_tokens(after.as_deref(), 1000)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for row in page {
                let active = row.revoked_at.is_none() && row.expires_at.is_none_or(|at| at > now);
                let operator =
                    serde_json::from_slice::<Policy>(&row.policy).is_ok_and(|p| p.is_operator());
                if active && operator {
                    operators.push(row.id);
                }
            }
        }
        if operators.len() == 1 && operators[0] == id {
            return Err(CoreError::Conflict(
                "this is the last active operator token; create another operator token before revoking it".into(),
            ));
        }
        Ok(())
    }

    /// Checks a presented bearer token; the error never says which part was wrong.
    pub fn authenticate(&self, presented: &str) -> CoreResult<Principal> {
        const BAD: CoreError =
            CoreError::Unauthenticated("the token is invalid, expired or revoked");
        let token = ApiToken::parse(presented).ok_or(BAD)?;
        let now = self.now_ms();
        let cached = self.token_cache().entries.lock().get(token.id()).cloned();
        let entry = match cached {
            Some(c) if now - c.cached_at < self.token_cache_ttl_ms() => c,
            _ => {
                let row = self.storage().get_token(token.id())?.ok_or(BAD)?;
                if row.revoked_at.is_some() {
                    self.token_cache().entries.lock().remove(token.id());
                    return Err(BAD);
                }
                let entry = CachedToken {
                    secret_hash: row.secret_hash.clone(),
                    policy: serde_json::from_slice(&row.policy)
                        .map_err(|e| CoreError::Internal(format!("stored policy: {e}")))?,
                    expires_at: row.expires_at,
                    cached_at: now,
                };
                let mut cache = self.token_cache().entries.lock();
                if cache.len() >= CACHE_LIMIT {
                    cache.clear();
                }
                cache.insert(token.id().to_string(), entry.clone());
                entry
            }
        };
        if !token.matches(&entry.secret_hash) || entry.expires_at.is_some_and(|at| at <= now) {
            return Err(BAD);
        }
        Ok(Principal {
            token_id: token.id().to_string(),
            policy: entry.policy,
        })
    }
}

/// How repeated authentication failures lock a client out (shared by every node).
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub threshold: u32,
    pub window_ms: i64,
    pub lockout_ms: i64,
}

impl Vault {
    /// Counts a failed authentication from `client` (an address); returns the end of its
    /// lock-out (Unix ms) once it is locked out, on every node.
    pub fn record_auth_failure(
        &self,
        client: &str,
        policy: LockoutPolicy,
    ) -> CoreResult<Option<i64>> {
        Ok(self.storage().record_auth_failure(
            client,
            self.now_ms(),
            policy.window_ms,
            policy.threshold.max(1),
            policy.lockout_ms,
        )?)
    }

    /// Clients locked out now, with the remaining milliseconds of each lock.
    pub fn active_lockouts(&self) -> CoreResult<Vec<(String, i64)>> {
        let now = self.now_ms();
        Ok(self
            .storage()
            .active_lockouts(now)?
            .into_iter()
            .map(|(client, until)| (client, until - now))
            .collect())
    }

    /// Milliseconds until `until` (Unix ms), for turning stored times into local deadlines.
    pub fn millis_until(&self, until: i64) -> i64 {
        until - self.now_ms()
    }
}
