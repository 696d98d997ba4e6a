//! Scheduled rotation of a namespace's key-encryption key.
//!
//! A namespace may carry a rotation policy (`PUT /v1/ns/{ns}/keys/rotation-policy`, admin):
//! rotate when the primary version is `rotate_every_secs` old, and (by default) retire the
//! older versions once nothing depends on them. The `key-rotation` job — one holder across
//! nodes through its lease, and each rotation check-and-set on the primary version besides —
//! rotates what is due; the `key-rewrap` job moves user and transit keys to the new version;
//! the next ticks retire the old versions when no key is left under them. Each step is audited
//! (`keys.rotate_scheduled`, `keys.retire_scheduled`). The policy is an authenticated row in
//! `meta` (`key-rotation-policy/<ns>`), so a database writer cannot switch rotation off.

use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::operation::Op;
use crate::row_auth::RowId;
use crate::vault::{At, Input};
use crate::{CoreError, CoreResult, Principal, Vault};

/// The longest interval a policy may name (ten years).
const MAX_EVERY_SECS: u64 = 10 * 365 * 86_400;

fn yes() -> bool {
    true
}

/// When a namespace's key is rotated on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationPolicy {
    /// Rotate once the primary version is this many seconds old (90 days: 7776000).
    #[serde(deserialize_with = "crate::json::u64")]
    pub rotate_every_secs: u64,
    /// Retire older versions once no user or transit key depends on them.
    #[serde(default = "yes")]
    pub retire_old_versions: bool,
}

impl RotationPolicy {
    fn validate(&self) -> CoreResult<()> {
        if self.rotate_every_secs == 0 || self.rotate_every_secs > MAX_EVERY_SECS {
            return Err(CoreError::Invalid {
                field: "rotate_every_secs",
                rule: format!("must be between 1 and {MAX_EVERY_SECS} (ten years)"),
            });
        }
        Ok(())
    }
}

/// The policy with when it next applies, as `keys status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RotationSchedule {
    #[serde(flatten)]
    pub policy: RotationPolicy,
    /// When the primary version becomes due for rotation.
    pub next_rotation_at: String,
}

/// What the row holds: the policy, or `None` once removed.
#[derive(Serialize, Deserialize)]
struct Stored {
    policy: Option<RotationPolicy>,
}

fn meta_key(ns: &str) -> String {
    format!("key-rotation-policy/{ns}")
}

fn row_id(ns: &str) -> RowId<'_> {
    RowId::new("key rotation policy").field(ns.as_bytes())
}

/// When the primary version (created at `primary_created_ms`) is due under `policy`.
pub(crate) fn due_at(primary_created_ms: i64, policy: &RotationPolicy) -> i64 {
    primary_created_ms.saturating_add((policy.rotate_every_secs as i64).saturating_mul(1000))
}

impl Vault {
    fn rotation_policy(&self, ns: &str) -> CoreResult<Option<RotationPolicy>> {
        match self.storage().get_meta(&meta_key(ns))? {
            None => Ok(None),
            Some(stored) => {
                let body = self.open_row(&row_id(ns), &stored)?;
                let stored: Stored = crate::stored_config::decode(&body, "key rotation policy")?;
                Ok(stored.policy)
            }
        }
    }

    /// The namespace's rotation policy and next due time, if it has one.
    pub(crate) fn rotation_schedule(&self, ns: &str) -> CoreResult<Option<RotationSchedule>> {
        let Some(policy) = self.rotation_policy(ns)? else {
            return Ok(None);
        };
        let primary_created = self.primary_created_ms(ns)?;
        Ok(Some(RotationSchedule {
            policy,
            next_rotation_at: rfc3339(due_at(primary_created, &policy)),
        }))
    }

    fn primary_created_ms(&self, ns: &str) -> CoreResult<i64> {
        let row = self
            .storage()
            .get_namespace(ns)?
            .ok_or(CoreError::NotFound("namespace"))?;
        self.storage()
            .list_keks(ns)?
            .iter()
            .find(|k| k.version == row.primary_kek_version)
            .map(|k| k.created_at)
            .ok_or_else(|| CoreError::Internal("the primary key version has no row".into()))
    }

    /// Sets (or with `None` removes) the namespace's rotation policy (`admin`).
    pub fn set_rotation_policy(
        &self,
        who: &Principal,
        ns: &str,
        policy: Option<RotationPolicy>,
    ) -> CoreResult<Option<RotationSchedule>> {
        let check = || {
            if let Some(p) = &policy {
                p.validate()?;
            }
            self.keyring().namespace(ns).map(|_| Input(()))
        };
        self.execute(
            who,
            Op::KeysRotationPolicySet,
            At::new(ns, ""),
            check,
            |_| {
                let body = crate::stored_config::encode(&Stored { policy })?;
                let sealed = self.seal_row(&row_id(ns), &body)?;
                self.storage().put_meta(&meta_key(ns), &sealed)?;
                self.rotation_schedule(ns)
            },
        )
    }

    /// The namespace's rotation policy (`admin`).
    pub fn get_rotation_policy(
        &self,
        who: &Principal,
        ns: &str,
    ) -> CoreResult<Option<RotationSchedule>> {
        let check = || self.keyring().namespace(ns).map(|_| Input(()));
        self.execute(
            who,
            Op::KeysRotationPolicyGet,
            At::new(ns, ""),
            check,
            |_| self.rotation_schedule(ns),
        )
    }

    /// Background work: rotates every namespace whose primary key is due, and retires older
    /// versions nothing depends on any more. `Ok(true)` when it did something.
    pub(crate) fn rotate_due_keys(&self) -> CoreResult<bool> {
        let who = Principal::system("job:key-rotation");
        let mut did = false;
        for ns in self.storage().list_namespaces()? {
            let name = ns.name.as_str();
            let policy = match self.rotation_policy(name) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) => {
                    let at = At::new(name, "");
                    self.record_internal_failure(&who, Op::KeysScheduledRotation, at, &[], &e);
                    continue;
                }
            };
            if self.now_ms() >= due_at(self.primary_created_ms(name)?, &policy) {
                let rotated = self.rotate_namespace_key(name);
                let target = rotated.as_ref().map(|v| v.to_string()).unwrap_or_default();
                self.record_internal(
                    &who,
                    Op::KeysScheduledRotation,
                    At::new(name, &target),
                    &[],
                    &rotated,
                );
                did |= rotated.is_ok();
                continue;
            }
            let primary = ns.primary_kek_version;
            if policy.retire_old_versions
                && ns.min_decrypt_version < primary
                && self.storage().count_users_below_kek(name, primary)? == 0
                && self.transit_versions_below(name, primary)? == 0
            {
                let retired = self.retire_below(name, primary);
                self.record_internal(
                    &who,
                    Op::KeysScheduledRetire,
                    At::new(name, &primary.to_string()),
                    &[],
                    &retired,
                );
                did |= retired.is_ok();
            }
        }
        Ok(did)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_and_limits() {
        let p = RotationPolicy {
            rotate_every_secs: 90 * 86_400,
            retire_old_versions: true,
        };
        assert_eq!(due_at(1_000, &p), 1_000 + 7_776_000_000);
        assert!(p.validate().is_ok());
        for bad in [0, MAX_EVERY_SECS + 1] {
            let p = RotationPolicy {
                rotate_every_secs: bad,
                retire_old_versions: true,
            };
            assert!(p.validate().is_err());
        }
        let parsed: RotationPolicy = serde_json::from_str(r#"{"rotate_every_secs": 60}"#).unwrap();
        assert!(parsed.retire_old_versions, "retiring is the default");
    }
}
