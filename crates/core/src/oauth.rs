//! OAuth providers and "give me a valid access token" with exactly-once refresh.
//!
//! A provider (token endpoint, client id, client secret sealed under the namespace's own data
//! key, auth method, margin, extra parameters) is configured per namespace. When a caller asks
//! for an access token valid for at least N seconds and the stored one is not, the refresh is
//! serialized across every caller on every node by a lease in the database, named after the
//! credential: the holder re-reads the credential (another node may have just refreshed it),
//! calls the provider's token endpoint with the refresh_token grant (RFC 6749 §6), stores the new
//! token set — keeping the old refresh token if the provider did not rotate it — and releases
//! only its own lease. Everyone else waits, re-reading the credential, and receives the new
//! token; a failure recorded while they wait is returned to them too. A holder that crashes
//! leaves a lease that expires. Each outcome updates the credential's status (`valid`,
//! `refresh_failed` with the provider's error code, `needs_reauthorization`) and is audited.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use strongroom_crypto::random;
use strongroom_storage::{CredentialStatusRow, ItemKey, StatusOnWrite, StorageError};

use crate::clock::{parse_rfc3339, rfc3339};
use crate::credentials::{
    credential_name_of, item_key, open_credential, seal_credential_name, CredentialData,
    OAuthTokenSet, PutOptions,
};
use crate::keyring::contexts;
use crate::operation::Op;
use crate::records::NAMESPACE_OWNER;
use crate::row_auth::RowId;
use crate::secret_string::SecretString;
use crate::users::UserRef;
use crate::vault::At;
use crate::{names, CoreError, CoreResult, Principal, Vault};

const LEASE_TTL_MS: i64 = 30_000;
mod verify;
pub use verify::VerifySuccess;

const WAIT_LIMIT_MS: i64 = 30_000;
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const RESERVED_PARAMS: [&str; 4] = ["grant_type", "refresh_token", "client_id", "client_secret"];

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
}

fn default_margin() -> u64 {
    300
}

/// A provider's public configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderConfig {
    pub token_url: String,
    pub client_id: String,
    pub auth_method: AuthMethod,
    pub revocation_url: Option<String>,
    /// A "who am I" URL called with the access token to verify a credential.
    #[serde(default)]
    pub verify_url: Option<String>,
    /// What a 2xx answer of `verify_url` must hold to count as verified (providers such as
    /// Slack answer 200 with `{"ok": false}` for a dead token); without it, any 2xx does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_success: Option<VerifySuccess>,
    /// For `secret` credentials verified against this provider: the secret's field whose value
    /// is sent as the Bearer token (e.g. a Slack bot token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_secret_field: Option<String>,
    /// Refresh this long before expiry even when the caller asks for less.
    #[serde(deserialize_with = "crate::json::u64")]
    pub refresh_margin_secs: u64,
    pub extra_params: BTreeMap<String, String>,
}

/// A provider as written by an operator: the configuration and the client secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    #[serde(default)]
    pub auth_method: AuthMethod,
    #[serde(default)]
    pub revocation_url: Option<String>,
    #[serde(default)]
    pub verify_url: Option<String>,
    #[serde(default)]
    pub verify_success: Option<VerifySuccess>,
    #[serde(default)]
    pub verify_secret_field: Option<String>,
    #[serde(default = "default_margin", deserialize_with = "crate::json::u64")]
    pub refresh_margin_secs: u64,
    #[serde(default)]
    pub extra_params: BTreeMap<String, String>,
}

/// A provider as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct ProviderInfo {
    pub name: String,
    #[serde(flatten)]
    pub config: ProviderConfig,
}

/// A valid access token, handed to the caller.
#[derive(Debug, Serialize)]
pub struct AccessToken {
    pub access_token: SecretString,
    pub token_type: Option<String>,
    pub expires_at: Option<String>,
    /// Whether this call refreshed it.
    pub refreshed: bool,
    pub version: u64,
}

/// A grant to revoke at its provider, read before the user's keys are destroyed.
pub(crate) struct GrantToRevoke {
    name: String,
    config: ProviderConfig,
    url: String,
    secret: SecretString,
    token: SecretString,
    hint: &'static str,
}

impl GrantToRevoke {
    /// Asks the provider to revoke the token (RFC 7009).
    fn revoke(&self) -> CoreResult<()> {
        call_revocation_endpoint(
            &self.config,
            &self.url,
            self.secret.expose(),
            self.token.expose(),
            self.hint,
        )
        .map_err(CoreError::RevocationFailed)
    }
}

/// The outcome of a "who am I" check.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub verified: bool,
    pub verified_at: String,
    /// The HTTP status the provider answered.
    pub provider_status: u16,
}

/// A credential's refresh status, for apps to ask users to log in again.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialStatus {
    pub user: String,
    pub name: String,
    pub status: String,
    pub error: Option<String>,
    pub updated_at: String,
    pub verified: Option<bool>,
    pub last_verified_at: Option<String>,
}

/// What the token endpoint answered, reduced to what we keep.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

fn check_url(field: &'static str, url: &str) -> CoreResult<()> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2048
        && !url.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(CoreError::Invalid {
            field,
            rule: "must be an http(s) URL of at most 2048 characters".into(),
        })
    }
}

fn check_text(field: &'static str, value: &str, max: usize) -> CoreResult<()> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(CoreError::Invalid {
            field,
            rule: format!("must be 1 to {max} characters without control characters"),
        });
    }
    Ok(())
}

impl ProviderInput {
    fn validate(&self) -> CoreResult<()> {
        check_url("token_url", &self.token_url)?;
        if let Some(u) = &self.revocation_url {
            check_url("revocation_url", u)?;
        }
        if let Some(u) = &self.verify_url {
            check_url("verify_url", u)?;
        }
        if let Some(rule) = &self.verify_success {
            rule.validate()?;
        }
        if let Some(field) = &self.verify_secret_field {
            check_text("verify_secret_field", field, 128)?;
        }
        if (self.verify_success.is_some() || self.verify_secret_field.is_some())
            && self.verify_url.is_none()
        {
            return Err(CoreError::Invalid {
                field: "verify_url",
                rule: "is needed with verify_success or verify_secret_field".into(),
            });
        }
        check_text("client_id", &self.client_id, 512)?;
        check_text("client_secret", self.client_secret.expose(), 4096)?;
        if self.refresh_margin_secs > 86_400 {
            return Err(CoreError::Invalid {
                field: "refresh_margin_secs",
                rule: "must be at most 86400 (one day)".into(),
            });
        }
        if self.extra_params.len() > 20 {
            return Err(CoreError::Invalid {
                field: "extra_params",
                rule: "at most 20 parameters".into(),
            });
        }
        for (k, v) in &self.extra_params {
            check_text("extra_params", k, 128)?;
            check_text("extra_params", v, 1024)?;
            if RESERVED_PARAMS.contains(&k.as_str()) {
                return Err(CoreError::Invalid {
                    field: "extra_params",
                    rule: format!("{k} is set by Strongroom and cannot be overridden"),
                });
            }
        }
        Ok(())
    }
}

/// Percent-encodes everything but the unreserved characters (RFC 3986 §2.3).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Why a refresh did not produce a token.
enum RefreshFailure {
    /// The grant is gone (`invalid_grant`): the user must log in again.
    Reauthorize(String),
    /// Anything else; retrying later may work.
    Failed(String),
}

impl RefreshFailure {
    fn into_error(self) -> CoreError {
        match self {
            RefreshFailure::Reauthorize(code) => CoreError::NeedsReauthorization(code),
            RefreshFailure::Failed(code) => CoreError::RefreshFailed(code),
        }
    }
}

/// Calls the token endpoint with the refresh_token grant.
fn call_token_endpoint(
    config: &ProviderConfig,
    secret: &str,
    refresh_token: &str,
) -> Result<TokenResponse, RefreshFailure> {
    let mut pairs = vec![
        ("grant_type".to_string(), "refresh_token".to_string()),
        ("refresh_token".to_string(), refresh_token.to_string()),
    ];
    pairs.extend(
        config
            .extra_params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    let response = match authenticated(config, secret, &config.token_url, pairs).map_err(|e| *e) {
        Ok(r) => r,
        Err(ureq::Error::Status(status, r)) => {
            let code = r
                .into_string()
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| {
                    v.get("error").and_then(Value::as_str).map(|e| {
                        e.chars()
                            .filter(|c| c.is_ascii_graphic())
                            .take(64)
                            .collect::<String>()
                    })
                })
                .unwrap_or_else(|| format!("http_{status}"));
            return Err(if code == "invalid_grant" {
                RefreshFailure::Reauthorize(code)
            } else {
                RefreshFailure::Failed(code)
            });
        }
        Err(ureq::Error::Transport(_)) => return Err(RefreshFailure::Failed("unreachable".into())),
    };
    let text = response
        .into_string()
        .map_err(|_| RefreshFailure::Failed("unreadable_response".into()))?;
    serde_json::from_str::<TokenResponse>(&text)
        .ok()
        .filter(|t| !t.access_token.is_empty())
        .ok_or_else(|| RefreshFailure::Failed("malformed_response".into()))
}

/// Sends the client's credentials the way the provider expects them.
fn authenticated(
    config: &ProviderConfig,
    secret: &str,
    url: &str,
    mut pairs: Vec<(String, String)>,
) -> Result<ureq::Response, Box<ureq::Error>> {
    let agent = ureq::AgentBuilder::new().timeout(HTTP_TIMEOUT).build();
    let mut request = agent.post(url).set("Accept", "application/json");
    match config.auth_method {
        AuthMethod::ClientSecretBasic => {
            // RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
            let user = url_encode(&config.client_id);
            let pass = url_encode(secret);
            request = request.set(
                "Authorization",
                &format!("Basic {}", STANDARD.encode(format!("{user}:{pass}"))),
            );
        }
        AuthMethod::ClientSecretPost => {
            pairs.push(("client_id".into(), config.client_id.clone()));
            pairs.push(("client_secret".into(), secret.to_string()));
        }
    }
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    request
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string(&form_encode(&borrowed))
        .map_err(Box::new)
}

/// Revokes a refresh token at the provider (RFC 7009). `Err` carries an error code.
fn call_revocation_endpoint(
    config: &ProviderConfig,
    url: &str,
    secret: &str,
    token: &str,
    hint: &str,
) -> Result<(), String> {
    let pairs = vec![
        ("token".to_string(), token.to_string()),
        ("token_type_hint".to_string(), hint.to_string()),
    ];
    match authenticated(config, secret, url, pairs).map_err(|e| *e) {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(status, _)) => Err(format!("http_{status}")),
        Err(ureq::Error::Transport(_)) => Err("unreachable".into()),
    }
}

/// Back-off before the next background attempt: 30 s × 2^failures, at most an hour.
/// Whole seconds from `now` until `due` (at least 1).
fn retry_after_secs(due: i64, now: i64) -> u64 {
    ((due - now).max(0) as u64).div_ceil(1000).max(1)
}

fn backoff_ms(failures: u32) -> i64 {
    (30_000i64 << failures.min(7)).min(3_600_000)
}

fn expires_in_secs(value: &Option<Value>) -> Option<i64> {
    match value {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
}

/// The refresh statuses a credential can be in.
const STATUSES: [&str; 5] = [
    "valid",
    "refreshing",
    "refresh_failed",
    "needs_reauthorization",
    "revoked",
];

impl Vault {
    /// A stored provider configuration, if authentic (see [`crate::row_auth`]).
    pub(crate) fn provider_config(
        &self,
        ns: &str,
        name: &str,
        stored: &[u8],
    ) -> CoreResult<ProviderConfig> {
        let body = self.open_row(&RowId::provider(ns, name), stored)?;
        crate::stored_config::decode(&body, "provider")
    }

    /// A provider configuration authenticated as `ns`/`name`, as stored.
    pub(crate) fn seal_provider_config(
        &self,
        ns: &str,
        name: &str,
        config: &ProviderConfig,
    ) -> CoreResult<Vec<u8>> {
        let body = crate::stored_config::encode(config)?;
        self.seal_row(&RowId::provider(ns, name), &body)
    }

    /// The namespace's own pseudo-user, whose data key seals what belongs to the namespace
    /// rather than to a user (provider secrets, webhook secrets and events).
    pub(crate) fn namespace_owner(&self, ns: &str) -> CoreResult<UserRef> {
        let keys = self.keyring().namespace(ns)?;
        let hash = keys.user_hash(NAMESPACE_OWNER);
        Ok(UserRef { keys, hash })
    }

    /// Creates or replaces a provider (`admin` on the namespace); the secret is sealed.
    pub fn put_provider(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        input: ProviderInput,
    ) -> CoreResult<ProviderInfo> {
        let valid = input.validate();
        let check = move || {
            names::credential_name(name)?;
            valid
        };
        self.execute(who, Op::ProviderPut, At::new(ns, name), check, |()| {
            let owner = self.namespace_owner(ns)?;
            let key = self.user_key_for_write(&owner, NAMESPACE_OWNER)?;
            let sealed = key
                .seal(
                    1,
                    &contexts::provider_secret(ns, name),
                    input.client_secret.expose().as_bytes(),
                )
                .map_err(|e| CoreError::Internal(e.to_string()))?;
            let config = ProviderConfig {
                token_url: input.token_url,
                client_id: input.client_id,
                auth_method: input.auth_method,
                revocation_url: input.revocation_url,
                verify_url: input.verify_url,
                verify_success: input.verify_success,
                verify_secret_field: input.verify_secret_field,
                refresh_margin_secs: input.refresh_margin_secs,
                extra_params: input.extra_params,
            };
            let bytes = self.seal_provider_config(ns, name, &config)?;
            self.storage().put_provider(ns, name, &bytes, &sealed)?;
            Ok(ProviderInfo {
                name: name.to_string(),
                config,
            })
        })
    }

    /// The providers of a namespace (`list`), without secrets.
    pub fn list_providers(&self, who: &Principal, ns: &str) -> CoreResult<Vec<ProviderInfo>> {
        self.execute(
            who,
            Op::ProviderList,
            At::new(ns, ""),
            || Ok(()),
            |()| {
                self.storage()
                    .list_providers(ns)?
                    .into_iter()
                    .map(|(name, bytes)| {
                        Ok(ProviderInfo {
                            config: self.provider_config(ns, &name, &bytes)?,
                            name,
                        })
                    })
                    .collect()
            },
        )
    }

    /// Removes a provider (`admin`).
    pub fn delete_provider(&self, who: &Principal, ns: &str, name: &str) -> CoreResult<()> {
        self.execute(
            who,
            Op::ProviderDelete,
            At::new(ns, name),
            || names::credential_name(name),
            |()| {
                if self.storage().delete_provider(ns, name)? {
                    Ok(())
                } else {
                    Err(CoreError::NotFound("provider"))
                }
            },
        )
    }

    fn provider(&self, ns: &str, name: &str) -> CoreResult<(ProviderConfig, SecretString)> {
        let (config, sealed) = self
            .storage()
            .get_provider(ns, name)?
            .ok_or(CoreError::NotFound("provider"))?;
        let config = self.provider_config(ns, name, &config)?;
        let owner = self.namespace_owner(ns)?;
        let key = self
            .existing_user_key(&owner)?
            .ok_or(CoreError::Integrity("provider secret"))?;
        let secret = key
            .open(&contexts::provider_secret(ns, name), &sealed)
            .map_err(|e| CoreError::from_crypto("provider secret", e))?;
        let secret = String::from_utf8(secret.to_vec())
            .map_err(|_| CoreError::Integrity("provider secret"))?;
        Ok((config, SecretString::new(secret)))
    }

    /// The current OAuth token set of a credential and its version.
    /// The credential's name sealed for its status row; `None` once the owner is erased.
    fn sealed_status_name(
        &self,
        user: &UserRef,
        item: &ItemKey,
        name: &str,
    ) -> CoreResult<Option<Vec<u8>>> {
        match self.existing_user_key(user)? {
            Some(key) => seal_credential_name(&key, item, name).map(Some),
            None => Ok(None),
        }
    }

    /// The name of the credential a status row describes (from the row's sealed copy).
    fn status_name(&self, owner: &UserRef, row: &CredentialStatusRow) -> CoreResult<String> {
        let key = self
            .existing_user_key(owner)?
            .ok_or(CoreError::NotFound("user"))?;
        credential_name_of(&key, &row.key, row.sealed_name.as_deref())
    }

    fn current_token_set(
        &self,
        user: &UserRef,
        ns: &str,
        name: &str,
    ) -> CoreResult<(u64, OAuthTokenSet)> {
        let item = item_key(user, name);
        let (meta, row) = self
            .storage()
            .get_credential_version(&item, None)?
            .ok_or(CoreError::NotFound("credential"))?;
        self.check_credential_pointer(&item, &meta)?;
        if row.destroyed || row.deleted_at.is_some() {
            return Err(CoreError::NotFound("credential"));
        }
        let key = self
            .existing_user_key(user)?
            .ok_or(CoreError::Integrity("credential"))?;
        match open_credential(&key, ns, &user.hash, name, &row)? {
            CredentialData::Oauth2(set) => Ok((row.version, set)),
            CredentialData::Secret(_) => Err(CoreError::Invalid {
                field: "name",
                rule: "this credential is not an OAuth token set".into(),
            }),
        }
    }

    /// A credential's status row as of now. No verification given: storage keeps the stored
    /// one (it describes the grant).
    fn status_row(
        &self,
        item: &ItemKey,
        sealed_name: Option<&[u8]>,
        status: &str,
        error: Option<String>,
        refresh_due_at: Option<i64>,
        failures: u32,
    ) -> CredentialStatusRow {
        CredentialStatusRow {
            key: item.clone(),
            status: status.into(),
            error,
            updated_at: self.now_ms(),
            refresh_due_at,
            failures,
            verified: None,
            verified_at: None,
            sealed_name: sealed_name.map(<[u8]>::to_vec),
        }
    }

    /// Writes a credential's status. `sealed_name` is the name for the status row (it outlives
    /// a revoked credential, so it keeps its own copy); `None` keeps the stored one.
    #[allow(
        clippy::too_many_arguments,
        reason = "the status row's fields, and the event that goes with the change"
    )]
    fn set_status_due(
        &self,
        item: &ItemKey,
        sealed_name: Option<&[u8]>,
        status: &str,
        error: Option<String>,
        refresh_due_at: Option<i64>,
        failures: u32,
        event: Option<strongroom_storage::NewWebhookEvent>,
    ) -> CoreResult<()> {
        let row = self.status_row(item, sealed_name, status, error, refresh_due_at, failures);
        match event {
            Some(event) => self
                .storage()
                .set_credential_status_emitting(&row, &event)?,
            None => self.storage().set_credential_status(&row)?,
        }
        Ok(())
    }

    /// The answer every caller shares instead of calling the provider: the user must
    /// authorize again (until the app stores a new token set), or the last refresh failed and
    /// its back-off has not run out (502 with the seconds left).
    fn shared_failure(&self, item: &ItemKey) -> CoreResult<Option<CoreError>> {
        let Some(status) = self.storage().get_credential_status(item)? else {
            return Ok(None);
        };
        let code = status.error.clone().unwrap_or_default();
        Ok(match status.status.as_str() {
            "needs_reauthorization" => Some(CoreError::NeedsReauthorization(code)),
            "refresh_failed" => status
                .refresh_due_at
                .filter(|due| *due > self.now_ms())
                .map(|due| CoreError::RefreshBackingOff {
                    code,
                    retry_after_secs: retry_after_secs(due, self.now_ms()),
                }),
            _ => None,
        })
    }

    /// What storing a token set writes with its version: when its provider is configured
    /// here, the status `valid` and the background refresh due at `expires_at -
    /// refresh_margin`. A credential that had failed (a refresh failure, or a grant that needed
    /// re-authorization) is recovered: `credential.recovered` is emitted with the status, in
    /// the version's transaction.
    pub(crate) fn status_on_write(
        &self,
        item: &ItemKey,
        name: &str,
        sealed_name: &[u8],
        set: &OAuthTokenSet,
    ) -> CoreResult<Option<StatusOnWrite>> {
        let Some(provider) = set.provider.as_deref() else {
            return Ok(None);
        };
        let Some((config, _)) = self.storage().get_provider(&item.namespace, provider)? else {
            return Ok(None);
        };
        let margin = self
            .provider_config(&item.namespace, provider, &config)?
            .refresh_margin_secs as i64;
        let due = set
            .expires_at
            .as_deref()
            .and_then(parse_rfc3339)
            .map(|at| at - margin * 1000);
        let before = self.storage().get_credential_status(item)?;
        let recovered = before.is_some_and(|b| {
            b.failures > 0
                || matches!(
                    b.status.as_str(),
                    "refresh_failed" | "needs_reauthorization"
                )
        });
        let event = recovered
            .then(|| {
                self.credential_event(
                    item,
                    name,
                    "credential.recovered",
                    json!({"provider": provider}),
                )
            })
            .transpose()?
            .flatten();
        Ok(Some(StatusOnWrite {
            status: self.status_row(item, Some(sealed_name), "valid", None, due, 0),
            event,
        }))
    }

    /// An event about one credential for the webhook outbox (`data` gains the name).
    fn credential_event(
        &self,
        item: &ItemKey,
        name: &str,
        event_type: &str,
        mut data: Value,
    ) -> CoreResult<Option<strongroom_storage::NewWebhookEvent>> {
        data["credential"] = json!(name);
        self.wanted_event(&item.namespace, event_type, &item.user_hash, data)
    }

    /// Background work: refreshes OAuth credentials whose refresh is due, a few at a time,
    /// through the same exactly-once path as callers. Failures back off exponentially
    /// (30 s × 2^failures, at most an hour); `needs_reauthorization` stops further attempts.
    pub(crate) fn refresh_due(&self) -> CoreResult<bool> {
        const BATCH: usize = 20;
        let due = self.storage().due_refreshes(self.now_ms(), BATCH)?;
        for row in &due {
            let keys = self.keyring().namespace(&row.key.namespace)?;
            let owner = UserRef {
                keys,
                hash: row.key.user_hash.clone(),
            };
            let outcome = self.user_id_of(&owner).and_then(|user_id| {
                let name = self.status_name(&owner, row)?;
                self.access_token_for(&owner, &user_id, &name, 0, false)
            });
            match outcome {
                Ok(_) => {}
                // Recorded (with back-off) by the refresh itself.
                Err(
                    CoreError::RefreshFailed(_)
                    | CoreError::RefreshBackingOff { .. }
                    | CoreError::NeedsReauthorization(_),
                ) => {}
                // Deleted, erased, or otherwise not refreshable: stop scheduling it.
                Err(_) => self.set_status_due(
                    &row.key,
                    None,
                    &row.status,
                    row.error.clone(),
                    None,
                    row.failures,
                    None,
                )?,
            }
        }
        Ok(due.len() == BATCH)
    }

    /// An access token valid for at least `min_valid_secs`, refreshing it exactly once across
    /// all callers and nodes when needed (`read`).
    pub fn valid_access_token(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        name: &str,
        min_valid_secs: u64,
        force: bool,
    ) -> CoreResult<AccessToken> {
        let check = || {
            names::credential_name(name)?;
            if min_valid_secs > 86_400 {
                return Err(CoreError::Invalid {
                    field: "min_valid_secs",
                    rule: "must be at most 86400".into(),
                });
            }
            Ok(())
        };
        self.execute_on_user(
            who,
            Op::CredentialAccessToken,
            At::name(ns, name),
            user_id,
            check,
            |user| self.access_token_for(user, user_id, name, min_valid_secs, force),
        )
    }

    /// The exactly-once refresh behind [`Vault::valid_access_token`], for a resolved user (no
    /// authorization or audit of its own, but every refresh is recorded as
    /// `credential.refresh`); also used by the background refresher and by verification.
    ///
    /// `force` refreshes even a token that looks valid (the provider revoked it early) — still
    /// once across callers: a forced caller is answered by any refresh that happened after it
    /// read the credential. Neither a forced call nor any other calls the provider while a
    /// recorded failure's back-off runs ([`Vault::shared_failure`]).
    pub(crate) fn access_token_for(
        &self,
        user: &UserRef,
        user_id: &str,
        name: &str,
        min_valid_secs: u64,
        force: bool,
    ) -> CoreResult<AccessToken> {
        let ns = user.keys.name.as_str();
        {
            let started = self.now_ms();
            let fresh = |set: &OAuthTokenSet, margin_secs: u64| {
                let need = self.now_ms() + (min_valid_secs.max(margin_secs) as i64) * 1000;
                set.expires_at
                    .as_deref()
                    .and_then(parse_rfc3339)
                    .is_none_or(|at| at >= need)
            };
            let answer = |version: u64, set: OAuthTokenSet, refreshed: bool| AccessToken {
                access_token: set.access_token,
                token_type: set.token_type,
                expires_at: set.expires_at,
                refreshed,
                version,
            };
            let (version, set) = self.current_token_set(user, ns, name)?;
            let provider_name = set.provider.clone();
            let margin = match &provider_name {
                Some(p) => match self.storage().get_provider(ns, p)? {
                    Some((c, _)) => self.provider_config(ns, p, &c)?.refresh_margin_secs,
                    None => 0,
                },
                None => 0,
            };
            if !force && fresh(&set, 0) && (min_valid_secs > 0 || fresh(&set, margin)) {
                return Ok(answer(version, set, false));
            }
            let provider_name = provider_name.ok_or(CoreError::Invalid {
                field: "provider",
                rule: "the token set names no provider, so it cannot be refreshed".into(),
            })?;
            let item = item_key(user, name);
            // A failure recorded within its back-off is everyone's answer, on every node: the
            // provider is not asked again until the back-off allows it.
            if let Some(failure) = self.shared_failure(&item)? {
                return Err(failure);
            }
            let read_version = version;
            let lease = format!(
                "oauth-refresh/{ns}/{}/{}",
                hex::encode(&user.hash),
                item.name
            );
            let me =
                hex::encode(random::bytes::<12>().map_err(|e| CoreError::Internal(e.to_string()))?);
            loop {
                let now = self.now_ms();
                if self
                    .storage()
                    .acquire_lease(&lease, &me, now, now + LEASE_TTL_MS)?
                {
                    let result = self.refresh_holding_lease(
                        user,
                        ns,
                        user_id,
                        name,
                        &provider_name,
                        &item,
                        &fresh,
                        margin,
                        force.then_some(read_version),
                    );
                    let _ = self.storage().release_lease(&lease, &me);
                    return result.map(|(v, set, refreshed)| answer(v, set, refreshed));
                }
                // Someone else is refreshing: wait for their result.
                std::thread::sleep(Duration::from_millis(20));
                let (v, set) = self.current_token_set(user, ns, name)?;
                let answered = if force {
                    v != read_version
                } else {
                    fresh(&set, 0) && (min_valid_secs > 0 || fresh(&set, margin))
                };
                if answered {
                    return Ok(answer(v, set, force && v != read_version));
                }
                if let Some(status) = self.storage().get_credential_status(&item)? {
                    if status.updated_at >= started
                        && matches!(
                            status.status.as_str(),
                            "refresh_failed" | "needs_reauthorization"
                        )
                    {
                        if let Some(failure) = self.shared_failure(&item)? {
                            return Err(failure);
                        }
                        let code = status.error.unwrap_or_default();
                        return Err(if status.status == "needs_reauthorization" {
                            CoreError::NeedsReauthorization(code)
                        } else {
                            CoreError::RefreshFailed(code)
                        });
                    }
                }
                if self.now_ms() - started > WAIT_LIMIT_MS {
                    return Err(CoreError::Unavailable(StorageError::Unavailable(
                        "a refresh by another caller did not finish in time".into(),
                    )));
                }
            }
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; the arguments are the refresh's whole context"
    )]
    fn refresh_holding_lease(
        &self,
        user: &UserRef,
        ns: &str,
        user_id: &str,
        name: &str,
        provider_name: &str,
        item: &ItemKey,
        fresh: &dyn Fn(&OAuthTokenSet, u64) -> bool,
        margin: u64,
        forced_from: Option<u64>,
    ) -> CoreResult<(u64, OAuthTokenSet, bool)> {
        // Re-read: another caller may have refreshed between our check and the lease (for a
        // forced refresh: any new version since the caller read it answers it).
        let (version, set) = self.current_token_set(user, ns, name)?;
        match forced_from {
            Some(read) if version != read => return Ok((version, set, true)),
            None if fresh(&set, margin) => return Ok((version, set, false)),
            _ => {}
        }
        // Re-checked under the lease: a failure another node recorded meanwhile stands.
        if let Some(failure) = self.shared_failure(item)? {
            return Err(failure);
        }
        // The status row may not exist yet (a provider configured after the token was stored).
        let sealed = self.sealed_status_name(user, item, name)?;
        let sealed = sealed.as_deref();
        let Some(refresh_token) = set.refresh_token.as_ref().map(|t| t.expose().to_string()) else {
            // Before it expires (the refresher runs `refresh_margin_secs` ahead) the app hears
            // the token is expiring and cannot be renewed; after, that the user must sign in.
            let expires_at = set.expires_at.as_deref().and_then(parse_rfc3339);
            let event_type = if expires_at.is_some_and(|at| at > self.now_ms()) {
                "credential.expiring"
            } else {
                "credential.needs_reauthorization"
            };
            let event = self.credential_event(
                item,
                name,
                event_type,
                json!({"provider": provider_name, "error": "no_refresh_token", "expires_at": set.expires_at}),
            )?;
            self.set_status_due(
                item,
                sealed,
                "needs_reauthorization",
                Some("no_refresh_token".into()),
                None,
                0,
                event,
            )?;
            return Err(CoreError::NeedsReauthorization("no_refresh_token".into()));
        };
        let (config, secret) = self.provider(ns, provider_name)?;
        let previous = self.storage().get_credential_status(item)?;
        self.set_status_due(
            item,
            sealed,
            "refreshing",
            None,
            previous.as_ref().and_then(|p| p.refresh_due_at),
            previous.as_ref().map_or(0, |p| p.failures),
            None,
        )?;
        let who = Principal::system("oauth-refresh");
        let outcome = call_token_endpoint(&config, secret.expose(), &refresh_token);
        let response = match outcome {
            Ok(r) => r,
            Err(failure) => {
                let (status, code) = match &failure {
                    RefreshFailure::Reauthorize(c) => ("needs_reauthorization", c.clone()),
                    RefreshFailure::Failed(c) => ("refresh_failed", c.clone()),
                };
                tracing::warn!(
                    namespace = ns,
                    provider = provider_name,
                    code,
                    "token refresh failed"
                );
                let failures = previous
                    .as_ref()
                    .map_or(0, |p| p.failures)
                    .saturating_add(1)
                    .min(20);
                let due =
                    (status == "refresh_failed").then(|| self.now_ms() + backoff_ms(failures));
                let event_type = if status == "refresh_failed" {
                    "credential.refresh_failed"
                } else {
                    "credential.needs_reauthorization"
                };
                let event = self.credential_event(
                    item,
                    name,
                    event_type,
                    json!({
                        "provider": provider_name,
                        "error": code,
                        "failures": failures,
                        "next_attempt_at": due.map(rfc3339),
                    }),
                )?;
                self.set_status_due(
                    item,
                    sealed,
                    status,
                    Some(code.clone()),
                    due,
                    failures,
                    event,
                )?;
                self.counters()
                    .oauth_refresh_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let err = match (failure, due) {
                    (RefreshFailure::Failed(code), Some(due)) => CoreError::RefreshBackingOff {
                        code,
                        retry_after_secs: retry_after_secs(due, self.now_ms()),
                    },
                    (other, _) => other.into_error(),
                };
                let at = At::name(ns, name);
                self.record_internal_failure(&who, Op::CredentialRefresh, at, &user.hash, &err);
                return Err(err);
            }
        };
        let now = self.now_ms();
        let new_set = OAuthTokenSet {
            access_token: SecretString::new(response.access_token),
            // Providers that do not rotate omit it: keep the one we have, never lose it.
            refresh_token: Some(SecretString::new(
                response.refresh_token.unwrap_or(refresh_token),
            )),
            expires_at: expires_in_secs(&response.expires_in).map(|s| rfc3339(now + s * 1000)),
            scope: response.scope.or(set.scope),
            token_type: response.token_type.or(set.token_type),
            provider: set.provider,
            extra: set.extra,
        };
        let data = CredentialData::Oauth2(new_set);
        let stored = self.write_credential(
            user,
            user_id,
            name,
            &data,
            PutOptions {
                cas: Some(version),
                max_versions: None,
            },
        );
        self.record_internal(
            &who,
            Op::CredentialRefresh,
            At::name(ns, name),
            &user.hash,
            &stored,
        );
        let info = stored?;
        let CredentialData::Oauth2(stored) = data else {
            return Err(CoreError::Internal("token set changed kind".into()));
        };
        // `write_credential` stored the next refresh with the version (status `valid`, no
        // failures), in its transaction.
        self.counters()
            .oauth_refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok((info.version, stored, true))
    }

    /// Revokes a credential's grant at its provider (RFC 7009, when the provider has a
    /// revocation endpoint), then removes the credential with its history (`delete`). If the
    /// provider cannot be reached the credential is kept, so the call can be retried.
    pub fn revoke_credential(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        name: &str,
    ) -> CoreResult<bool> {
        let check = || names::credential_name(name);
        self.execute_on_user(
            who,
            Op::CredentialRevoke,
            At::name(ns, name),
            user_id,
            check,
            |user| {
                let at_provider = self.revoke_at_provider(user, ns, name)?;
                let item = item_key(user, name);
                let sealed = self.sealed_status_name(user, &item, name)?;
                self.storage().delete_credential(&item)?;
                let event = self.credential_event(
                    &item,
                    name,
                    "credential.revoked",
                    json!({"revoked_at_provider": at_provider}),
                )?;
                self.set_status_due(&item, sealed.as_deref(), "revoked", None, None, 0, event)?;
                Ok(at_provider)
            },
        )
    }

    /// What revoking one credential's grant at its provider needs, read while the keys still
    /// exist; `None` when there is nothing to revoke there (no provider, no revocation
    /// endpoint, not an OAuth credential).
    fn grant_to_revoke(
        &self,
        user: &UserRef,
        ns: &str,
        name: &str,
    ) -> CoreResult<Option<GrantToRevoke>> {
        let set = match self.current_token_set(user, ns, name) {
            Ok((_, set)) => set,
            Err(CoreError::Invalid { .. }) => return Ok(None),
            Err(other) => return Err(other),
        };
        let Some(provider) = set.provider.as_deref() else {
            return Ok(None);
        };
        let (config, secret) = match self.provider(ns, provider) {
            Ok(p) => p,
            Err(CoreError::NotFound(_)) => return Ok(None),
            Err(other) => return Err(other),
        };
        let Some(url) = config.revocation_url.clone() else {
            return Ok(None);
        };
        let (token, hint) = match &set.refresh_token {
            Some(rt) => (SecretString::new(rt.expose().to_string()), "refresh_token"),
            None => (
                SecretString::new(set.access_token.expose().to_string()),
                "access_token",
            ),
        };
        Ok(Some(GrantToRevoke {
            name: name.to_string(),
            config,
            url,
            secret,
            token,
            hint,
        }))
    }

    /// Revokes the grant of one OAuth credential at its provider; `Ok(false)` when there is
    /// nothing to revoke there.
    fn revoke_at_provider(&self, user: &UserRef, ns: &str, name: &str) -> CoreResult<bool> {
        match self.grant_to_revoke(user, ns, name)? {
            Some(g) => g.revoke().map(|()| true),
            None => Ok(false),
        }
    }

    /// For erasure, before the keys are destroyed: the grants of a user to revoke at their
    /// providers. Cheap when no provider of the namespace has a revocation endpoint (the usual
    /// case), so erasure stays immediate; otherwise each credential is read once.
    pub(crate) fn grants_to_revoke(
        &self,
        user: &UserRef,
        ns: &str,
    ) -> CoreResult<Vec<GrantToRevoke>> {
        let revocable = self
            .storage()
            .list_providers(ns)?
            .into_iter()
            // A provider row that fails authentication is not obeyed: nothing is sent to it.
            .any(|(name, bytes)| {
                self.provider_config(ns, &name, &bytes)
                    .is_ok_and(|c| c.revocation_url.is_some())
            });
        if !revocable {
            return Ok(Vec::new());
        }
        let mut grants = Vec::new();
        for (name, _, _) in self.all_user_credentials(user)? {
            if let Ok(Some(grant)) = self.grant_to_revoke(user, ns, &name) {
                grants.push(grant);
            }
        }
        Ok(grants)
    }

    /// Best effort, for erasure, after the keys are destroyed: revokes the collected grants at
    /// their providers. A provider that is down does not stop the erasure; each outcome is
    /// audited. Returns (revoked, failed).
    pub(crate) fn revoke_grants(
        &self,
        ns: &str,
        user_hash: &[u8],
        grants: Vec<GrantToRevoke>,
    ) -> (u64, u64) {
        let who = Principal::system("erasure");
        let (mut revoked, mut failed) = (0, 0);
        for g in grants {
            let outcome = g.revoke();
            self.record_internal(
                &who,
                Op::CredentialRevokeOnErase,
                At::name(ns, &g.name),
                user_hash,
                &outcome,
            );
            match outcome {
                Ok(()) => revoked += 1,
                Err(_) => failed += 1,
            }
        }
        (revoked, failed)
    }

    /// Credential statuses of a namespace, optionally one status only (`list`).
    pub fn credential_statuses(
        &self,
        who: &Principal,
        ns: &str,
        status: Option<&str>,
    ) -> CoreResult<Vec<CredentialStatus>> {
        let check = || match status {
            Some(s) if !STATUSES.contains(&s) => Err(CoreError::Invalid {
                field: "status",
                rule: format!("must be one of {}", STATUSES.join(", ")),
            }),
            _ => Ok(()),
        };
        self.execute(
            who,
            Op::CredentialStatusList,
            At::new(ns, status.unwrap_or("")),
            check,
            |()| {
                let keys = self.keyring().namespace(ns)?;
                let mut out = Vec::new();
                for row in self.storage().list_credential_statuses(ns, status, 1000)? {
                    let owner = UserRef {
                        keys: keys.clone(),
                        hash: row.key.user_hash.clone(),
                    };
                    let Ok(user) = self.user_id_of(&owner) else {
                        continue;
                    };
                    let name = self.status_name(&owner, &row)?;
                    out.push(CredentialStatus {
                        user,
                        name,
                        status: row.status,
                        error: row.error,
                        updated_at: rfc3339(row.updated_at),
                        verified: row.verified,
                        last_verified_at: row.verified_at.map(rfc3339),
                    });
                }
                Ok(out)
            },
        )
    }
}
