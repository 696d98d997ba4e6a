//! What a KV v2 client needs beyond the credential API (the Vault-compatible API is built on
//! these): a read that answers a deleted or destroyed version with its metadata instead of an
//! error, a JSON merge patch of a secret (RFC 7396) written check-and-set on the version it
//! read, and lowering how many versions a credential keeps without writing one.
//!
//! Each is one operation with its own audit entry, over the same internal functions as the
//! credential API (`read_version`, `write_credential`).

use serde_json::{Map, Value};

use crate::credentials::{version_info, CredentialData, PutOptions, VersionInfo};
use crate::operation::Op;
use crate::raw_json::RawObject;
use crate::{CoreError, CoreResult, Principal, Vault};

/// One version as a KV v2 read answers it: its metadata, and its data unless it is deleted or
/// destroyed.
pub struct VersionRead {
    pub metadata: VersionInfo,
    pub data: Option<CredentialData>,
}

/// Applies an RFC 7396 merge patch to `target`.
pub fn merge_patch(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                let entry = target
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                if let Value::Object(existing) = entry {
                    merge_patch(existing, inner);
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

impl Vault {
    /// Reads a version (the current one by default): deleted and destroyed versions come back
    /// without data (`read`).
    pub fn read_credential_version(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        name: &str,
        version: Option<u64>,
    ) -> CoreResult<VersionRead> {
        self.credential_op(who, Op::CredentialRead, ns, user_id, name, |user| {
            let (row, data) = self.read_version(user, name, version)?;
            Ok(VersionRead {
                metadata: version_info(&row),
                data,
            })
        })
    }

    /// Merges `patch` into the current version of a secret and writes the result as the next
    /// version, check-and-set on the version read (or on `cas` when given) (`write`).
    pub fn patch_secret(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        name: &str,
        patch: &Map<String, Value>,
        cas: Option<u64>,
    ) -> CoreResult<VersionInfo> {
        self.credential_op(who, Op::CredentialPatch, ns, user_id, name, |user| {
            let (row, data) = self.read_version(user, name, None)?;
            let Some(CredentialData::Secret(secret)) = data else {
                return match data {
                    None => Err(CoreError::NotFound("credential")),
                    Some(_) => Err(CoreError::Invalid {
                        field: "data",
                        rule: "an OAuth token set cannot be patched; write the whole set".into(),
                    }),
                };
            };
            let mut members = secret.data.to_map().map_err(|_| CoreError::Invalid {
                field: "data",
                rule: "nests too deep".into(),
            })?;
            merge_patch(&mut members, patch);
            let patched = CredentialData::Secret(crate::credentials::SecretData {
                data: RawObject::from_map(&members),
            });
            let options = PutOptions {
                cas: Some(cas.unwrap_or(row.version)),
                max_versions: None,
            };
            self.write_credential(user, user_id, name, &patched, options)
        })
    }

    /// Sets how many versions a credential keeps (1–100), removing the oldest beyond it
    /// (`write`).
    pub fn set_credential_max_versions(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        name: &str,
        max_versions: u32,
    ) -> CoreResult<()> {
        self.credential_op(who, Op::CredentialMaxVersions, ns, user_id, name, |user| {
            if max_versions == 0 || max_versions > crate::credentials::MAX_VERSIONS_LIMIT {
                return Err(CoreError::Invalid {
                    field: "max_versions",
                    rule: format!(
                        "must be between 1 and {}",
                        crate::credentials::MAX_VERSIONS_LIMIT
                    ),
                });
            }
            let item = crate::credentials::item_key(user, name);
            if self
                .storage()
                .set_credential_max_versions(&item, max_versions)?
            {
                Ok(())
            } else {
                Err(CoreError::NotFound("credential"))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The examples of RFC 7396, appendix A.
    #[test]
    fn merge_patch_follows_rfc_7396() {
        for (target, patch, result) in [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ] {
            let mut t = target.as_object().unwrap().clone();
            merge_patch(&mut t, patch.as_object().unwrap());
            assert_eq!(Value::Object(t), result, "{target} + {patch}");
        }
    }
}
