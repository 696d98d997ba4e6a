//! The audit log: buffered, hash-chained, verifiable.
//!
//! Entries are queued in memory and appended in batches by a background writer (at most
//! [`FLUSH_INTERVAL`] after they are queued), so auditing every read costs no extra commit per
//! request. Operator actions flush before they return. On shutdown (drop) the queue is flushed.
//! Each stored entry carries `HMAC(audit key, previous hash ‖ seq ‖ entry)`; the audit key is
//! derived from the root key, so someone who can write the database but lacks the root key can
//! neither edit nor remove an entry without `verify` noticing. Entries never hold secrets or raw
//! user ids — users appear as their keyed hash.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use strongroom_crypto::{AssociatedData, Index, Key};
use strongroom_storage::{AuditEntry, AuditFilter, AuditRow, Storage};

use crate::clock::rfc3339;
use crate::{CoreError, CoreResult, Page, Principal, Vault};

/// How long a queued entry may wait before the writer appends it.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
const MAX_BATCH: usize = 4096;

struct Shared {
    storage: Arc<dyn Storage>,
    chain_key: Key<Index>,
    queue: Mutex<Vec<AuditEntry>>,
    wake: Condvar,
    append_lock: Mutex<()>,
    stop: AtomicBool,
}

/// The audit writer owned by a vault.
pub struct AuditLog {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl AuditLog {
    pub(crate) fn start(storage: Arc<dyn Storage>, chain_key: Key<Index>) -> Self {
        let shared = Arc::new(Shared {
            storage,
            chain_key,
            queue: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            append_lock: Mutex::new(()),
            stop: AtomicBool::new(false),
        });
        let worker = shared.clone();
        let writer = std::thread::Builder::new()
            .name("strongroom-audit".into())
            .spawn(move || writer_loop(&worker))
            .ok();
        Self {
            shared,
            writer: Mutex::new(writer),
        }
    }

    /// Queues an entry for the background writer.
    pub(crate) fn record(&self, entry: AuditEntry) {
        self.shared.queue.lock().push(entry);
    }

    /// Appends everything queued now; returns once it is stored.
    pub fn flush(&self) -> CoreResult<()> {
        flush(&self.shared)
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        if let Some(handle) = self.writer.lock().take() {
            let _ = handle.join();
        }
        if let Err(err) = flush(&self.shared) {
            tracing::error!(error = %err, "audit entries could not be written at shutdown");
        }
    }
}

fn writer_loop(shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        {
            let mut queue = shared.queue.lock();
            if queue.is_empty() {
                shared.wake.wait_for(&mut queue, FLUSH_INTERVAL);
            }
        }
        if let Err(err) = flush(shared) {
            tracing::error!(error = %err, "audit append failed; entries stay queued and will be retried");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(FLUSH_INTERVAL);
    }
}

fn flush(shared: &Shared) -> CoreResult<()> {
    let _order = shared.append_lock.lock();
    loop {
        let batch: Vec<AuditEntry> = {
            let mut queue = shared.queue.lock();
            let take = queue.len().min(MAX_BATCH);
            queue.drain(..take).collect()
        };
        if batch.is_empty() {
            return Ok(());
        }
        let chain =
            |prev: &[u8], seq: u64, e: &AuditEntry| chain_hash(&shared.chain_key, prev, seq, e);
        if let Err(err) = shared.storage.append_audit(&batch, &chain) {
            // Put the batch back in front, in order, for the next attempt.
            let mut queue = shared.queue.lock();
            let rest = std::mem::take(&mut *queue);
            *queue = batch;
            queue.extend(rest);
            return Err(err.into());
        }
    }
}

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
}

/// Filters for [`Vault::query_audit`]; times are Unix milliseconds.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub token_id: Option<String>,
    pub action: Option<String>,
    pub cursor: Option<String>,
    pub limit: usize,
}

impl Vault {
    /// Reads audit entries (operators only), oldest first.
    pub fn query_audit(&self, who: &Principal, q: &AuditQuery) -> CoreResult<Page<AuditRecord>> {
        self.audited_now(who, "audit.query", "", &[], "", || {
            who.require_operator()?;
            let limit = crate::users::page_limit(q.limit)?;
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
            self.audit_log().flush()?;
            let rows = self.storage().query_audit(&AuditFilter {
                after_seq,
                since: q.since,
                until: q.until,
                token_id: q.token_id.clone(),
                action: q.action.clone(),
                limit,
            })?;
            let next_cursor = (rows.len() == limit)
                .then(|| rows.last().map(|r| r.seq.to_string()))
                .flatten();
            Ok(Page {
                items: rows.into_iter().map(AuditRecord::from).collect(),
                next_cursor,
            })
        })
    }

    /// Recomputes the whole chain (operators only).
    pub fn verify_audit(&self, who: &Principal) -> CoreResult<VerifyReport> {
        self.audited_now(who, "audit.verify", "", &[], "", || {
            who.require_operator()?;
            self.audit_log().flush()?;
            self.verify_chain()
        })
    }

    pub(crate) fn verify_chain(&self) -> CoreResult<VerifyReport> {
        let key = self.audit_chain_key()?;
        let mut prev: Vec<u8> = Vec::new();
        let mut expected = 1u64;
        let mut checked = 0u64;
        loop {
            let rows = self.storage().query_audit(&AuditFilter {
                after_seq: Some(expected - 1),
                limit: 2000,
                ..Default::default()
            })?;
            if rows.is_empty() {
                return Ok(VerifyReport {
                    valid: true,
                    entries_checked: checked,
                    first_bad_seq: None,
                    problem: None,
                });
            }
            for row in rows {
                let problem = if row.seq != expected {
                    Some(format!(
                        "entry {expected} is missing (next entry is {})",
                        row.seq
                    ))
                } else if row.hash != chain_hash(&key, &prev, row.seq, &row.entry) {
                    Some(format!(
                        "entry {} was altered, or an entry before it was removed",
                        row.seq
                    ))
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Ok(VerifyReport {
                        valid: false,
                        entries_checked: checked,
                        first_bad_seq: Some(expected),
                        problem: Some(problem),
                    });
                }
                prev = row.hash;
                expected += 1;
                checked += 1;
            }
        }
    }
}
