//! Who is asking, and what they may do.
//!
//! A [`Policy`] lists the namespaces a token may touch (`"*"` for all) and its capabilities.
//! `admin` implies every other capability within those namespaces; operator actions (creating
//! namespaces and tokens, reading the audit log) need `admin` on `"*"`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::operation::{Access, Op};
use crate::{CoreError, CoreResult};

/// One thing a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Read,
    Write,
    Delete,
    List,
    /// Export everything held about a user.
    Export,
    /// Erase a user completely.
    Erase,
    Admin,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Read => "read",
            Capability::Write => "write",
            Capability::Delete => "delete",
            Capability::List => "list",
            Capability::Export => "export",
            Capability::Erase => "erase",
            Capability::Admin => "admin",
        }
    }
}

/// What a token may do, stored (as JSON) beside the token's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Namespace names, or `"*"` for every namespace.
    pub namespaces: Vec<String>,
    pub capabilities: BTreeSet<Capability>,
    /// Requests per second this token may make (enforced by the server); `None` = unlimited.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::opt_u32"
    )]
    pub rate_limit_per_sec: Option<u32>,
}

impl Policy {
    /// Everything, everywhere: the bootstrap admin and in-process library use.
    pub fn operator() -> Self {
        Self {
            namespaces: vec!["*".into()],
            capabilities: [Capability::Admin].into_iter().collect(),
            rate_limit_per_sec: None,
        }
    }

    /// No namespace, no capability.
    pub fn nothing() -> Self {
        Self {
            namespaces: Vec::new(),
            capabilities: BTreeSet::new(),
            rate_limit_per_sec: None,
        }
    }

    fn covers_namespace(&self, namespace: &str) -> bool {
        self.namespaces.iter().any(|n| n == "*" || n == namespace)
    }

    fn has(&self, cap: Capability) -> bool {
        self.capabilities.contains(&Capability::Admin) || self.capabilities.contains(&cap)
    }

    /// Whether this policy may do `cap` in `namespace`.
    pub fn allows(&self, cap: Capability, namespace: &str) -> bool {
        self.covers_namespace(namespace) && self.has(cap)
    }

    /// Whether this policy is an operator's (admin on every namespace).
    pub fn is_operator(&self) -> bool {
        self.namespaces.iter().any(|n| n == "*") && self.capabilities.contains(&Capability::Admin)
    }
}

/// An authenticated caller: the token id (for audit) and its policy.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: String,
    pub policy: Policy,
}

impl Principal {
    /// An in-process caller with full rights, audited under `label` (e.g. `"library"`).
    pub fn system(label: &str) -> Self {
        Self {
            token_id: label.to_string(),
            policy: Policy::operator(),
        }
    }

    /// A caller with no rights at all, audited under `label`: a download link (the link itself
    /// is the authority) or a token that failed authentication.
    pub fn link(label: &str) -> Self {
        Self {
            token_id: label.to_string(),
            policy: Policy::nothing(),
        }
    }

    /// Whether this principal may perform `op` in `namespace`, as the operation's description
    /// ([`Op::describe`]) says. Pure: the server checks it before reading a request's body.
    pub fn may(&self, op: Op, namespace: &str) -> bool {
        match op.access() {
            Access::In(cap) => self.policy.allows(cap, namespace),
            Access::Operator | Access::Internal => self.policy.is_operator(),
            Access::AnyToken | Access::Link => true,
        }
    }

    /// Fails with `Forbidden` unless the principal may perform `op` in `namespace`.
    pub fn require_op(&self, op: Op, namespace: &str) -> CoreResult<()> {
        if self.may(op, namespace) {
            return Ok(());
        }
        match op.access() {
            Access::In(cap) => self.require(cap, namespace),
            _ => self.require_operator(),
        }
    }

    /// Fails with `Forbidden` unless the policy allows `cap` in `namespace`.
    pub fn require(&self, cap: Capability, namespace: &str) -> CoreResult<()> {
        if self.policy.allows(cap, namespace) {
            Ok(())
        } else if !self.policy.covers_namespace(namespace) {
            Err(CoreError::Forbidden(
                "this token may not act in this namespace".into(),
            ))
        } else {
            Err(CoreError::Forbidden(format!(
                "this token lacks the `{}` capability in this namespace",
                cap.as_str()
            )))
        }
    }

    /// Fails with `Forbidden` unless this is an operator.
    pub fn require_operator(&self) -> CoreResult<()> {
        if self.policy.is_operator() {
            Ok(())
        } else {
            Err(CoreError::Forbidden(
                "this needs an operator token (admin on every namespace)".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ns: &[&str], caps: &[Capability]) -> Policy {
        Policy {
            namespaces: ns.iter().map(|s| s.to_string()).collect(),
            capabilities: caps.iter().copied().collect(),
            rate_limit_per_sec: None,
        }
    }

    #[test]
    fn namespace_and_capability_both_required() {
        let p = policy(&["app"], &[Capability::Read]);
        assert!(p.allows(Capability::Read, "app"));
        assert!(!p.allows(Capability::Write, "app"));
        assert!(!p.allows(Capability::Read, "other"));
        assert!(!p.is_operator());
    }

    #[test]
    fn admin_implies_all_in_scope() {
        let p = policy(&["app"], &[Capability::Admin]);
        assert!(p.allows(Capability::Delete, "app"));
        assert!(!p.allows(Capability::Read, "other"));
        assert!(policy(&["*"], &[Capability::Admin]).is_operator());
    }

    #[test]
    fn unknown_policy_fields_are_refused() {
        let r: Result<Policy, _> =
            serde_json::from_str(r#"{"namespaces":["a"],"capabilities":["read"],"x":1}"#);
        assert!(r.is_err());
        let r: Result<Policy, _> =
            serde_json::from_str(r#"{"namespaces":["a"],"capabilities":["fly"]}"#);
        assert!(r.is_err());
    }
}
