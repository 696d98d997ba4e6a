//! API tokens: creation (operators only), listing, revocation and authentication.
//!
//! The database holds only the SHA-256 digest of a token's secret and its policy, the policy
//! authenticated (see [`crate::row_auth`]) together with everything else in the row — id,
//! digest, name, times, revocation — so a row inserted or edited by someone without the root
//! key is refused, not obeyed. A token that authenticated is trusted from an in-memory cache for `token_cache_ttl_ms`; revoking through
//! this node drops it from the cache at once, other nodes notice within that time.

use std::collections::HashMap;

use parking_lot::Mutex;
use serde::Serialize;
use strongroom_crypto::token::ApiToken;
use strongroom_storage::TokenRow;

use crate::clock::rfc3339;
use crate::guard::Failure;
use crate::operation::Op;
use crate::row_auth::RowId;
use crate::vault::{At, Input};
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
    /// A token row's policy, if the row is authentic.
    pub(crate) fn token_policy(&self, row: &TokenRow) -> CoreResult<Policy> {
        let body = self.open_row(&RowId::token(row), &row.policy)?;
        crate::stored_config::decode(&body, "token")
    }

    /// `policy` authenticated for `row` as it will be stored.
    pub(crate) fn seal_token_policy(&self, row: &TokenRow, policy: &Policy) -> CoreResult<Vec<u8>> {
        let body = crate::stored_config::encode(policy)?;
        self.seal_row(&RowId::token(row), &body)
    }

    fn token_info(&self, row: &TokenRow) -> CoreResult<TokenInfo> {
        let policy = self.token_policy(row).inspect_err(|_| {
            tracing::warn!(token = %row.id, "a token row failed authentication (revoke it)");
        })?;
        Ok(TokenInfo {
            id: row.id.clone(),
            name: row.name.clone(),
            policy,
            created_at: rfc3339(row.created_at),
            expires_at: row.expires_at.map(rfc3339),
            revoked_at: row.revoked_at.map(rfc3339),
        })
    }

    /// Creates a token (operators only). The returned [`ApiToken`] is the only copy of its secret.
    pub fn create_token(
        &self,
        who: &Principal,
        name: &str,
        policy: Policy,
        expires_in_secs: Option<u64>,
    ) -> CoreResult<(TokenInfo, ApiToken)> {
        self.execute(
            who,
            Op::TokenCreate,
            At::new("", ""),
            || {
                names::token_name(name)?;
                validate_policy(&policy)?;
                match expires_in_secs {
                    Some(secs) if !(1..=MAX_LIFETIME_SECS).contains(&secs) => {
                        Err(CoreError::Invalid {
                            field: "expires_in_secs",
                            rule: format!("must be between 1 and {MAX_LIFETIME_SECS} (ten years)"),
                        })
                    }
                    _ => Ok(()),
                }
            },
            |()| self.insert_token(name, &policy, expires_in_secs),
        )
    }

    /// Stores a new token; the returned [`ApiToken`] is the only copy of its secret.
    pub(crate) fn insert_token(
        &self,
        name: &str,
        policy: &Policy,
        expires_in_secs: Option<u64>,
    ) -> CoreResult<(TokenInfo, ApiToken)> {
        let now = self.now_ms();
        let expires_at = expires_in_secs.map(|secs| now + secs as i64 * 1000);
        let token = ApiToken::generate().map_err(|e| CoreError::Internal(e.to_string()))?;
        let mut row = TokenRow {
            id: token.id().to_string(),
            secret_hash: token.hash().to_vec(),
            name: name.to_string(),
            policy: Vec::new(),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        row.policy = self.seal_token_policy(&row, policy)?;
        self.storage().insert_token(&row)?;
        Ok((self.token_info(&row)?, token))
    }

    /// Lists tokens (operators only), by id.
    pub fn list_tokens(
        &self,
        who: &Principal,
        cursor: Option<&str>,
        limit: usize,
    ) -> CoreResult<Page<TokenInfo>> {
        self.execute(
            who,
            Op::TokenList,
            At::new("", ""),
            || crate::users::page_limit(limit).map(Input),
            |&Input(limit)| {
                let rows = self.storage().list_tokens(cursor, limit)?;
                let next_cursor = (rows.len() == limit)
                    .then(|| rows.last().map(|r| r.id.clone()))
                    .flatten();
                Ok(Page {
                    items: rows
                        .iter()
                        .map(|r| self.token_info(r))
                        .collect::<CoreResult<_>>()?,
                    next_cursor,
                })
            },
        )
    }

    /// The caller's own token: its id and policy (any token).
    pub fn token_self(&self, who: &Principal) -> CoreResult<Principal> {
        self.execute(
            who,
            Op::TokenSelf,
            At::new("", ""),
            || Ok(()),
            |()| Ok(who.clone()),
        )
    }

    /// Revokes a token (operators only); it stops working on this node at once.
    pub fn revoke_token(&self, who: &Principal, id: &str) -> CoreResult<()> {
        self.execute(
            who,
            Op::TokenRevoke,
            At::new("", id),
            || names::token_id(id),
            |()| {
                self.refuse_revoking_last_operator(id)?;
                self.token_cache().entries.lock().remove(id);
                let mut row = match self.storage().get_token(id)? {
                    Some(row) if row.revoked_at.is_none() => row,
                    _ => return Err(CoreError::NotFound("active token")),
                };
                // A forged row can still be revoked: it is stored authentic, revoked and
                // with no rights, so it stops failing listings.
                let policy = self
                    .token_policy(&row)
                    .unwrap_or_else(|_| Policy::nothing());
                let at = self.now_ms();
                row.revoked_at = Some(at);
                let sealed = self.seal_token_policy(&row, &policy)?;
                if self.storage().revoke_token(id, at, &sealed)? {
                    Ok(())
                } else {
                    Err(CoreError::NotFound("active token"))
                }
            },
        )
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
                // A forged row is not an operator (and revoking it is allowed).
                let operator = self.token_policy(&row).is_ok_and(|p| p.is_operator());
                if active && operator {
                    operators.push(row.id);
                }
            }
        }
        if operators.len() == 1 && operators[0] == id {
            return Err(CoreError::LastOperatorToken);
        }
        Ok(())
    }

    /// Checks a presented bearer token. `Err(Ok(_))` says how it failed (for counting); the
    /// caller's error never says which part was wrong.
    pub(crate) fn verify_token(
        &self,
        presented: &str,
    ) -> Result<Principal, Result<Failure, CoreError>> {
        let token = ApiToken::parse(presented).ok_or(Ok(Failure::Unknown))?;
        let now = self.now_ms();
        let cached = self.token_cache().entries.lock().get(token.id()).cloned();
        let entry = match cached {
            Some(c) if now - c.cached_at < self.token_cache_ttl_ms() => c,
            _ => {
                let known = || Ok(Failure::Known(token.id().to_string()));
                let row = self
                    .storage()
                    .get_token(token.id())
                    .map_err(|e| Err(e.into()))?
                    .ok_or(Ok(Failure::Unknown))?;
                if row.revoked_at.is_some() {
                    self.token_cache().entries.lock().remove(token.id());
                    return Err(known());
                }
                let policy = self.token_policy(&row).map_err(|err| {
                    let who = Principal {
                        token_id: row.id.clone(),
                        policy: Policy::nothing(),
                    };
                    self.record_internal_failure(
                        &who,
                        Op::Authenticate,
                        At::new("", ""),
                        &[],
                        &err,
                    );
                    Err(err)
                })?;
                let entry = CachedToken {
                    secret_hash: row.secret_hash.clone(),
                    policy,
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
            return Err(Ok(Failure::Known(token.id().to_string())));
        }
        Ok(Principal {
            token_id: token.id().to_string(),
            policy: entry.policy,
        })
    }

    /// The principal of `presented` from the token cache alone: `None` on a miss, a stale
    /// entry, a wrong secret or an expired token (see [`Vault::authenticate_cached`]).
    pub(crate) fn cached_principal(&self, presented: &str) -> Option<Principal> {
        let token = ApiToken::parse(presented)?;
        let now = self.now_ms();
        let entry = {
            let cache = self.token_cache().entries.lock();
            let c = cache.get(token.id())?;
            if now - c.cached_at >= self.token_cache_ttl_ms() {
                return None;
            }
            c.clone()
        };
        if !token.matches(&entry.secret_hash) || entry.expires_at.is_some_and(|at| at <= now) {
            return None;
        }
        Some(Principal {
            token_id: token.id().to_string(),
            policy: entry.policy,
        })
    }
}
