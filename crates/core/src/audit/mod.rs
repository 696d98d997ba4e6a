//! The audit log: hash-chained, anchored, verifiable, and failing closed.
//!
//! Every operation's entry goes through [`writer::AuditWriter`] (group commit; the result of
//! an operation is withheld until its entry is stored, and operations are refused while the
//! log cannot be written). Each stored entry carries `HMAC(audit key, previous hash ‖ seq ‖
//! entry)`; the audit key is derived from the root key, so someone who can write the database
//! but lacks the root key can neither edit nor remove an entry without `verify` noticing, and
//! the chain head is anchored in the main database ([`anchor`]) so a deleted, replaced or
//! truncated log is noticed too. Entries never hold secrets or raw user ids — users appear as
//! their keyed hash.

pub(crate) mod anchor;
pub(crate) mod epochs;
pub(crate) mod journal;
pub(crate) mod writer;

use serde::Serialize;
use strongroom_crypto::{AssociatedData, Index, Key};
use strongroom_storage::{AuditEntry, AuditFilter, AuditRow};

use crate::clock::rfc3339;
use crate::operation::Op;
use crate::vault::{At, Input};
use crate::{CoreError, CoreResult, Page, Principal, Vault};

pub use writer::{DURABLE_WAIT, FLUSH_INTERVAL};

/// The chain hash of one entry. Frozen: changing it breaks verification of existing logs.
pub fn chain_hash(key: &Key<Index>, prev: &[u8], seq: u64, e: &AuditEntry) -> Vec<u8> {
    let fields = AssociatedData::new("audit-entry")
        .field(prev)
        .number(seq)
        .number(e.time as u64)
        .field(&e.token_id)
        .field(&e.action)
        .field(&e.namespace)
        .field(&e.user_hash)
        .field(&e.target)
        .field(&e.outcome);
    key.mac(fields.as_bytes()).to_vec()
}

/// One audit entry as returned by queries.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub time: String,
    pub token_id: String,
    pub action: String,
    pub namespace: String,
    pub user_hash: String,
    pub target: String,
    pub outcome: String,
    pub hash: String,
}

impl From<AuditRow> for AuditRecord {
    fn from(r: AuditRow) -> Self {
        Self {
            seq: r.seq,
            time: rfc3339(r.entry.time),
            token_id: r.entry.token_id,
            action: r.entry.action,
            namespace: r.entry.namespace,
            user_hash: r.entry.user_hash,
            target: r.entry.target,
            outcome: r.entry.outcome,
            hash: hex::encode(r.hash),
        }
    }
}

/// What `audit verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub valid: bool,
    pub entries_checked: u64,
    /// The first sequence number where the chain breaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Losses an operator accepted at start (`--accept-audit-loss`), each recorded in the
    /// chain as an `audit.reset` entry.
    pub acknowledged_losses: Vec<AcknowledgedLoss>,
}

/// An `audit.reset` entry: the log had lost entries and an operator started anyway.
#[derive(Debug, Clone, Serialize)]
pub struct AcknowledgedLoss {
    pub seq: u64,
    pub time: String,
    pub what: String,
}

/// Filters for [`Vault::query_audit`]; times are Unix milliseconds.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub token_id: Option<String>,
    pub action: Option<String>,
    /// Entries about this credential name or event type (matched by its audit name: entries
    /// never hold the name itself).
    pub name: Option<String>,
    /// Entries about this namespace.
    pub namespace: Option<String>,
    /// Entries about this user of `namespace` (matched by the user's keyed hash, as stored).
    pub user: Option<String>,
    /// `ok`, `denied`, `error`, … exactly as recorded.
    pub outcome: Option<String>,
    /// Newest first (the cursor then pages back in time).
    pub newest_first: bool,
    pub cursor: Option<String>,
    pub limit: usize,
}

impl Vault {
    /// Reads audit entries (operators only), oldest first.
    pub fn query_audit(&self, who: &Principal, q: &AuditQuery) -> CoreResult<Page<AuditRecord>> {
        self.execute(
            who,
            Op::AuditQuery,
            At::new("", ""),
            || {
                let limit = crate::users::page_limit(q.limit)?;
                if let Some(name) = &q.name {
                    if name.is_empty()
                        || name.chars().count() > 256
                        || name.chars().any(char::is_control)
                    {
                        return Err(CoreError::Invalid {
                            field: "name",
                            rule: "must be 1-256 characters without control characters".into(),
                        });
                    }
                }
                let after_seq = q
                    .cursor
                    .as_deref()
                    .map(|c| {
                        c.parse::<u64>().map_err(|_| CoreError::Invalid {
                            field: "cursor",
                            rule: "is not a cursor from a previous page".into(),
                        })
                    })
                    .transpose()?;
                let user_hash = match (&q.user, &q.namespace) {
                    (Some(user), Some(ns)) => Some(hex::encode(self.resolve_user(ns, user)?.hash)),
                    (Some(_), None) => {
                        return Err(CoreError::Invalid {
                            field: "user",
                            rule: "needs a namespace (user ids are hashed per namespace)".into(),
                        })
                    }
                    (None, Some(ns)) => {
                        crate::names::namespace(ns)?;
                        None
                    }
                    (None, None) => None,
                };
                Ok(Input((limit, after_seq, user_hash)))
            },
            |Input((limit, after_seq, user_hash))| {
                let limit = *limit;
                self.audit_log().flush()?;
                let rows = self.storage().query_audit(&AuditFilter {
                    since: q.since,
                    until: q.until,
                    token_id: q.token_id.clone(),
                    action: q.action.clone(),
                    target: q.name.as_deref().map(|n| self.audit_name(n)),
                    namespace: q.namespace.clone(),
                    user_hash: user_hash.clone(),
                    outcome: q.outcome.clone(),
                    newest_first: q.newest_first,
                    after_seq: *after_seq,
                    limit,
                })?;
                let next_cursor = (rows.len() == limit)
                    .then(|| rows.last().map(|r| r.seq.to_string()))
                    .flatten();
                Ok(Page {
                    items: rows.into_iter().map(AuditRecord::from).collect(),
                    next_cursor,
                })
            },
        )
    }

    /// Recomputes the whole chain and checks it against the anchor (operators only).
    pub fn verify_audit(&self, who: &Principal) -> CoreResult<VerifyReport> {
        self.execute(
            who,
            Op::AuditVerify,
            At::new("", ""),
            || Ok(()),
            |()| {
                self.audit_log().flush()?;
                self.verify_chain()
            },
        )
    }

    pub(crate) fn verify_chain(&self) -> CoreResult<VerifyReport> {
        let key = self.derived_index_key("audit-chain")?;
        let epochs = epochs::load(self.storage().as_ref(), self.keyring().root())?;
        let mut report = VerifyReport {
            valid: true,
            entries_checked: 0,
            first_bad_seq: None,
            problem: None,
            acknowledged_losses: Vec::new(),
        };
        let mut prev: Vec<u8> = Vec::new();
        let mut expected = 1u64;
        loop {
            let rows = self.storage().query_audit(&AuditFilter {
                after_seq: Some(expected - 1),
                limit: 2000,
                ..Default::default()
            })?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let problem = if row.seq != expected {
                    Some(format!(
                        "entry {expected} is missing (next entry is {})",
                        row.seq
                    ))
                } else if row.hash
                    != chain_hash(
                        epochs::key_for(&epochs, &key, row.seq),
                        &prev,
                        row.seq,
                        &row.entry,
                    )
                {
                    Some(format!(
                        "entry {} was altered, or an entry before it was removed",
                        row.seq
                    ))
                } else {
                    None
                };
                if let Some(problem) = problem {
                    report.valid = false;
                    report.first_bad_seq = Some(expected);
                    report.problem = Some(problem);
                    return Ok(report);
                }
                if row.entry.action == Op::AuditReset.action() {
                    report.acknowledged_losses.push(AcknowledgedLoss {
                        seq: row.seq,
                        time: rfc3339(row.entry.time),
                        what: row.entry.target.clone(),
                    });
                }
                prev = row.hash;
                expected += 1;
                report.entries_checked += 1;
            }
        }
        // The end of the log must still hold what the database anchored.
        let anchor_key = self.derived_index_key("audit-anchor")?;
        let anchored = match anchor::load(self.storage().as_ref(), &anchor_key) {
            Ok(anchor::Stored::Pending) => None,
            Ok(anchor::Stored::Anchored(a)) => {
                anchor::missing_from_log(self.storage().as_ref(), &a)?
                    .map(|problem| (a.seq, problem))
            }
            Err(CoreError::AuditLogDamaged(problem)) => Some((0, problem)),
            Err(other) => return Err(other),
        };
        if let Some((seq, problem)) = anchored {
            report.valid = false;
            report.first_bad_seq = Some(seq.max(1));
            report.problem = Some(problem);
        }
        Ok(report)
    }
}
