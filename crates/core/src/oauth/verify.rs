//! Verifying a credential at its provider (`POST …/credentials/{name}/verify`): the
//! provider's "who am I" URL is called with the credential's token and the answer recorded on
//! the credential's status (`verified`, `last_verified_at`).
//!
//! The token is an OAuth set's access token (refreshed first if needed), or — for a `secret`
//! credential, verified against a provider named by the call or by the secret's own
//! `provider` field — the secret's field the provider's `verify_secret_field` names (a Slack
//! bot token). A 401/403 means not verified; a 2xx means verified unless the provider has a
//! `verify_success` rule, which the JSON answer must satisfy (Slack's `auth.test` answers 200
//! with `{"ok": false}` for a dead token). Anything else is 502 `verification_failed`. The
//! answer body is read up to [`MAX_ANSWER`] bytes and never stored or logged.

use std::io::Read;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strongroom_storage::CredentialStatusRow;

use super::{Verification, HTTP_TIMEOUT};
use crate::clock::rfc3339;
use crate::credentials::{item_key, CredentialData};
use crate::operation::Op;
use crate::secret_string::SecretString;
use crate::users::UserRef;
use crate::vault::At;
use crate::{names, CoreError, CoreResult, Principal, Vault};

/// The most of a verification answer read.
const MAX_ANSWER: u64 = 64 * 1024;

/// A success predicate for a verification answer: the JSON value at `pointer` (RFC 6901,
/// e.g. `/ok`) must equal `equals` (e.g. `true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySuccess {
    pub pointer: String,
    pub equals: Value,
}

impl VerifySuccess {
    pub(super) fn validate(&self) -> CoreResult<()> {
        let valid = self.pointer.len() <= 256
            && (self.pointer.is_empty() || self.pointer.starts_with('/'))
            && !self.pointer.chars().any(char::is_control);
        if !valid {
            return Err(CoreError::Invalid {
                field: "verify_success.pointer",
                rule: "must be a JSON pointer such as /ok (empty, or starting with /; at most 256 characters)".into(),
            });
        }
        if serde_json::to_string(&self.equals).map_or(true, |t| t.len() > 1024) {
            return Err(CoreError::Invalid {
                field: "verify_success.equals",
                rule: "must be a JSON value of at most 1024 characters".into(),
            });
        }
        Ok(())
    }

    /// Whether an answer body satisfies the rule; `None` when the body is not JSON.
    fn holds(&self, body: &[u8]) -> Option<bool> {
        let answer: Value = serde_json::from_slice(body).ok()?;
        Some(answer.pointer(&self.pointer) == Some(&self.equals))
    }
}

impl Vault {
    /// Calls the provider's "who am I" URL with the credential's token and records whether
    /// the provider accepted it (`read`). `provider` names the provider for a `secret`
    /// credential (default: the secret's own `provider` field).
    pub fn verify_credential(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        name: &str,
        provider: Option<&str>,
    ) -> CoreResult<Verification> {
        let check = || {
            names::credential_name(name)?;
            match provider {
                Some(p) => names::credential_name(p).map_err(|_| CoreError::Invalid {
                    field: "provider",
                    rule: "must name a provider of this namespace".into(),
                }),
                None => Ok(()),
            }
        };
        self.execute_on_user(
            who,
            Op::CredentialVerify,
            At::name(ns, name),
            user_id,
            check,
            |user| {
                let (token, provider) = self.verification_token(user, user_id, name, provider)?;
                let (config, _) = self.provider(ns, &provider)?;
                let url = config.verify_url.clone().ok_or(CoreError::Invalid {
                    field: "verify_url",
                    rule: "the provider has no verify_url".into(),
                })?;
                let agent = ureq::AgentBuilder::new()
                    .timeout(HTTP_TIMEOUT)
                    .redirects(0)
                    .build();
                let bearer = format!("Bearer {}", token.expose());
                let (status, body) = match agent.get(&url).set("Authorization", &bearer).call() {
                    Ok(r) => {
                        let status = r.status();
                        let mut body = Vec::new();
                        let read = r.into_reader().take(MAX_ANSWER).read_to_end(&mut body);
                        if read.is_err() {
                            return Err(CoreError::VerificationFailed(
                                "unreadable_response".into(),
                            ));
                        }
                        (status, body)
                    }
                    Err(ureq::Error::Status(code, _)) => (code, Vec::new()),
                    Err(ureq::Error::Transport(_)) => {
                        return Err(CoreError::VerificationFailed("unreachable".into()))
                    }
                };
                let verified = match (status, &config.verify_success) {
                    (200..=299, None) => true,
                    (200..=299, Some(rule)) => rule.holds(&body).ok_or_else(|| {
                        CoreError::VerificationFailed("malformed_response".into())
                    })?,
                    (401 | 403, _) => false,
                    (other, _) => {
                        return Err(CoreError::VerificationFailed(format!("http_{other}")))
                    }
                };
                self.record_verification(user, name, verified)?;
                Ok(Verification {
                    verified,
                    verified_at: rfc3339(self.now_ms()),
                    provider_status: status,
                })
            },
        )
    }

    /// The token a verification sends, and the provider it is verified against.
    fn verification_token(
        &self,
        user: &UserRef,
        user_id: &str,
        name: &str,
        provider: Option<&str>,
    ) -> CoreResult<(SecretString, String)> {
        let (_, data) = self.read_version(user, name, None)?;
        match data.ok_or(CoreError::NotFound("credential"))? {
            CredentialData::Oauth2(set) => {
                let provider = set.provider.clone().ok_or(CoreError::Invalid {
                    field: "provider",
                    rule: "the token set names no provider".into(),
                })?;
                let token = self.access_token_for(user, user_id, name, 60, false)?;
                Ok((token.access_token, provider))
            }
            CredentialData::Secret(secret) => {
                let fields = secret
                    .data
                    .to_map()
                    .map_err(|_| CoreError::Integrity("credential"))?;
                let provider = match provider {
                    Some(p) => p.to_string(),
                    None => match fields.get("provider") {
                        Some(Value::String(p)) => p.clone(),
                        _ => {
                            return Err(CoreError::Invalid {
                                field: "provider",
                                rule: "a secret is verified against a provider: name it (?provider=…) or give the secret a provider field".into(),
                            })
                        }
                    },
                };
                let (config, _) = self.provider(&user.keys.name, &provider)?;
                let field = config.verify_secret_field.ok_or(CoreError::Invalid {
                    field: "verify_secret_field",
                    rule: "the provider does not say which field of a secret to verify".into(),
                })?;
                match fields.get(&field) {
                    Some(Value::String(token)) if !token.is_empty() => {
                        Ok((SecretString::new(token.clone()), provider))
                    }
                    _ => Err(CoreError::Invalid {
                        field: "verify_secret_field",
                        rule: "the secret has no text field of that name".into(),
                    }),
                }
            }
        }
    }

    fn record_verification(&self, user: &UserRef, name: &str, verified: bool) -> CoreResult<()> {
        let item = item_key(user, name);
        let now = self.now_ms();
        let mut row = self
            .storage()
            .get_credential_status(&item)?
            .unwrap_or(CredentialStatusRow {
                key: item.clone(),
                status: "valid".into(),
                error: None,
                updated_at: now,
                refresh_due_at: None,
                failures: 0,
                verified: None,
                verified_at: None,
                sealed_name: None,
            });
        if row.sealed_name.is_none() {
            row.sealed_name = self.sealed_status_name(user, &item, name)?;
        }
        row.verified = Some(verified);
        row.verified_at = Some(now);
        self.storage().set_credential_status(&row)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_reads_the_answer_at_its_pointer() {
        let rule = VerifySuccess {
            pointer: "/ok".into(),
            equals: Value::Bool(true),
        };
        assert_eq!(rule.holds(br#"{"ok": true, "team": "T1"}"#), Some(true));
        assert_eq!(
            rule.holds(br#"{"ok": false, "error": "invalid_auth"}"#),
            Some(false)
        );
        assert_eq!(rule.holds(br#"{"team": "T1"}"#), Some(false));
        assert_eq!(rule.holds(b"<html>"), None);
        let nested = VerifySuccess {
            pointer: "/data/active".into(),
            equals: Value::String("yes".into()),
        };
        assert_eq!(nested.holds(br#"{"data": {"active": "yes"}}"#), Some(true));
        assert!(VerifySuccess {
            pointer: "ok".into(),
            equals: Value::Null
        }
        .validate()
        .is_err());
        assert!(rule.validate().is_ok());
    }
}
