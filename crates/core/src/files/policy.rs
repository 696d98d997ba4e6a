//! Files policy: a namespace's limits (maximum file size, bytes and files per user and per
//! namespace, content-type allowlist), the checks of names and content types, and the words of
//! a quota refusal.

use serde::{Deserialize, Serialize};
use strongroom_storage::{FileQuota, QuotaBreach};

use crate::operation::Op;
use crate::row_auth::RowId;
use crate::vault::At;
use crate::{CoreError, CoreResult, Principal, Vault};

/// A namespace's file limits, set by an operator. Absent fields are unlimited (the server's
/// maximum file size still applies).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePolicy {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::opt_u64"
    )]
    pub max_file_size: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::opt_u64"
    )]
    pub user_max_bytes: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::opt_u64"
    )]
    pub user_max_files: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::opt_u64"
    )]
    pub namespace_max_bytes: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::opt_u64"
    )]
    pub namespace_max_files: Option<u64>,
    /// Exact types (`image/png`) or families (`image/*`); absent allows every type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_content_types: Option<Vec<String>>,
}

impl FilePolicy {
    pub(super) fn quota(&self) -> FileQuota {
        FileQuota {
            user_bytes: self.user_max_bytes,
            user_files: self.user_max_files,
            namespace_bytes: self.namespace_max_bytes,
            namespace_files: self.namespace_max_files,
        }
    }

    fn validate(&self) -> CoreResult<()> {
        if let Some(types) = &self.allowed_content_types {
            if types.len() > 100 {
                return Err(CoreError::Invalid {
                    field: "allowed_content_types",
                    rule: "lists at most 100 types".into(),
                });
            }
            for t in types {
                let family = t.strip_suffix("/*").map(|f| format!("{f}/x"));
                content_type_essence(family.as_deref().unwrap_or(t)).map_err(|_| {
                    CoreError::Invalid {
                        field: "allowed_content_types",
                        rule: format!("`{t}` is not a content type (type/subtype or type/*)"),
                    }
                })?;
            }
        }
        Ok(())
    }

    pub(super) fn allows(&self, content_type: &str) -> bool {
        let Some(types) = &self.allowed_content_types else {
            return true;
        };
        let essence = content_type_essence(content_type).unwrap_or_default();
        let family = essence.split('/').next().unwrap_or_default();
        types.iter().any(|t| {
            let t = t.to_ascii_lowercase();
            t == essence || t.strip_suffix("/*") == Some(family)
        })
    }
}

/// A namespace's policy and what it currently holds.
#[derive(Debug, Clone, Serialize)]
pub struct FilePolicyView {
    pub policy: FilePolicy,
    /// The server-wide maximum file size, which caps the policy's.
    pub server_max_file_size: u64,
    pub usage: FileUsageView,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct FileUsageView {
    pub bytes: u64,
    pub files: u64,
}

/// Checks a file name: 1–255 bytes, no control characters, not `.` or `..`, no `/` or `\`.
pub fn check_file_name(name: &str) -> CoreResult<()> {
    let bad = |rule: &str| {
        Err(CoreError::Invalid {
            field: "name",
            rule: rule.into(),
        })
    };
    if name.is_empty() || name.len() > 255 {
        return bad("must be 1 to 255 bytes");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return bad("may not contain control characters, `/` or `\\`");
    }
    if name == "." || name == ".." {
        return bad("may not be `.` or `..`");
    }
    Ok(())
}

/// The lower-cased `type/subtype` of a content type, parameters dropped.
fn content_type_essence(value: &str) -> Result<String, ()> {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match essence.split_once('/') {
        Some((t, sub)) if token(t) && token(sub) => Ok(essence),
        _ => Err(()),
    }
}

pub(super) fn check_content_type(value: &str) -> CoreResult<()> {
    let printable = value.len() <= 255 && value.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !printable || content_type_essence(value).is_err() {
        return Err(CoreError::Invalid {
            field: "content_type",
            rule:
                "must be a media type such as `application/pdf` (type/subtype, optional parameters)"
                    .into(),
        });
    }
    Ok(())
}

pub(super) fn breach_message(b: QuotaBreach) -> CoreError {
    CoreError::QuotaExceeded(match b {
        QuotaBreach::UserBytes { limit } => {
            format!("the user's file quota of {limit} bytes would be exceeded")
        }
        QuotaBreach::UserFiles { limit } => {
            format!("the user's quota of {limit} files would be exceeded")
        }
        QuotaBreach::NamespaceBytes { limit } => {
            format!("the namespace's file quota of {limit} bytes would be exceeded")
        }
        QuotaBreach::NamespaceFiles { limit } => {
            format!("the namespace's quota of {limit} files would be exceeded")
        }
    })
}

impl Vault {
    pub(super) fn file_policy(&self, ns: &str) -> CoreResult<FilePolicy> {
        match self.storage().get_file_policy(ns)? {
            Some(stored) => self.open_file_policy(ns, &stored),
            None => Ok(FilePolicy::default()),
        }
    }

    /// A stored file policy, if authentic (see [`crate::row_auth`]).
    pub(crate) fn open_file_policy(&self, ns: &str, stored: &[u8]) -> CoreResult<FilePolicy> {
        let body = self.open_row(&RowId::file_policy(ns), stored)?;
        crate::stored_config::decode(&body, "file policy")
    }

    /// A file policy authenticated for `ns`, as stored.
    pub(crate) fn seal_file_policy(&self, ns: &str, policy: &FilePolicy) -> CoreResult<Vec<u8>> {
        let body = crate::stored_config::encode(policy)?;
        self.seal_row(&RowId::file_policy(ns), &body)
    }

    /// Sets a namespace's file policy (operator only). Existing files are not touched.
    pub fn set_file_policy(
        &self,
        who: &Principal,
        ns: &str,
        policy: FilePolicy,
    ) -> CoreResult<FilePolicyView> {
        let valid = policy.validate();
        let check = move || {
            valid?;
            self.keyring().namespace(ns).map(|_| ())
        };
        self.execute(who, Op::FilePolicySet, At::new(ns, ""), check, |()| {
            let bytes = self.seal_file_policy(ns, &policy)?;
            let stored = (policy != FilePolicy::default()).then_some(bytes.as_slice());
            self.storage().set_file_policy(ns, stored)?;
            self.policy_view(ns, policy)
        })
    }

    /// A namespace's file policy and usage (needs `list`).
    pub fn get_file_policy(&self, who: &Principal, ns: &str) -> CoreResult<FilePolicyView> {
        let check = || self.keyring().namespace(ns).map(|_| ());
        self.execute(who, Op::FilePolicyGet, At::new(ns, ""), check, |()| {
            let policy = self.file_policy(ns)?;
            self.policy_view(ns, policy)
        })
    }

    fn policy_view(&self, ns: &str, policy: FilePolicy) -> CoreResult<FilePolicyView> {
        let usage = self.storage().file_usage(ns, None)?;
        Ok(FilePolicyView {
            policy,
            server_max_file_size: self.settings().max_file_size,
            usage: FileUsageView {
                bytes: usage.bytes,
                files: usage.files,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_allowlists() {
        let p = FilePolicy {
            allowed_content_types: Some(vec!["image/*".into(), "application/pdf".into()]),
            ..FilePolicy::default()
        };
        p.validate().unwrap();
        assert!(p.allows("image/png"));
        assert!(p.allows("Application/PDF; charset=binary"));
        assert!(!p.allows("text/html"));
        assert!(!p.allows("imagex/png"));
        assert!(FilePolicy::default().allows("anything/at-all"));
        for bad in [
            "",
            "text",
            "text/",
            "/x",
            "te xt/plain",
            "text/plain\r\nX: y",
        ] {
            assert!(check_content_type(bad).is_err(), "{bad:?}");
        }
        check_content_type("text/plain; charset=utf-8").unwrap();
        let bad_policy = FilePolicy {
            allowed_content_types: Some(vec!["nope".into()]),
            ..FilePolicy::default()
        };
        assert!(bad_policy.validate().is_err());
    }

    #[test]
    fn file_names() {
        check_file_name("Lecture 3 — notes.pdf").unwrap();
        for bad in ["", ".", "..", "a/b", "a\\b", "a\nb", &"x".repeat(256)] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
    }
}
