//! The audit log on PostgreSQL: appends are chained onto the tail and inserted in one
//! statement; the primary key on `seq` keeps the chain single across nodes.

use strongroom_storage::{
    AuditChainFn, AuditEntry, AuditFilter, AuditRow, AuditStore, AuditTail, StorageError,
    StorageResult,
};

use crate::connection::{BadColumn, Columns, PgStore};

/// Attempts before an append gives up on losing races for the next sequence number.
const APPEND_ATTEMPTS: usize = 16;

impl AuditStore for PgStore {
    /// One statement per batch: the entries are chained onto the tail this process last saw
    /// and inserted together, only if that tail is still in the log as seen; the primary key
    /// on `seq` refuses the batch when another node appended meanwhile. Either way the tail is
    /// read again and the batch re-chained. So the chain stays single across nodes without a
    /// lock, and an append costs one round trip.
    fn append_audit(
        &self,
        entries: &[AuditEntry],
        chain: &AuditChainFn<'_>,
    ) -> StorageResult<AuditTail> {
        for _ in 0..APPEND_ATTEMPTS {
            let hint = self.audit_tail_hint.lock().clone();
            let hinted = hint.is_some();
            let tail = match hint {
                Some(t) => t,
                None => self.audit_tail()?.unwrap_or(AuditTail {
                    seq: 0,
                    hash: Vec::new(),
                }),
            };
            let (mut seq, mut prev) = (tail.seq, tail.hash.clone());
            let mut seqs = Vec::with_capacity(entries.len());
            let mut hashes = Vec::with_capacity(entries.len());
            let mut refused = None;
            for e in entries {
                seq += 1;
                match chain(&prev, seq, e) {
                    Ok(hash) => {
                        seqs.push(seq as i64);
                        hashes.push(hash.clone());
                        prev = hash;
                    }
                    Err(why) => {
                        refused = Some(why);
                        break;
                    }
                }
            }
            match refused {
                // The hint is older than the head the caller saw (other nodes appended after this
                // process last did, and the caller read the tail since — a vault reopened at an
                // unseal): read the real tail, and let the chain function judge that.
                Some(_) if hinted => {
                    *self.audit_tail_hint.lock() = None;
                    continue;
                }
                Some(why) => return Err(StorageError::Aborted(why)),
                None => {}
            }
            let times: Vec<i64> = entries.iter().map(|e| e.time).collect();
            let col = |f: fn(&AuditEntry) -> &str| -> Vec<&str> { entries.iter().map(f).collect() };
            let inserted = self.write_statement(
                "INSERT INTO audit (seq, time, token_id, action, namespace, user_hash, target, outcome, hash) \
                 SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], \
                 $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BYTEA[]) \
                 WHERE $10::BIGINT = 0 OR EXISTS (SELECT 1 FROM audit WHERE seq = $10 AND hash = $11)",
                &[
                    &seqs,
                    &times,
                    &col(|e| &e.token_id),
                    &col(|e| &e.action),
                    &col(|e| &e.namespace),
                    &col(|e| &e.user_hash),
                    &col(|e| &e.target),
                    &col(|e| &e.outcome),
                    &hashes,
                    &(tail.seq as i64),
                    &tail.hash,
                ],
            );
            match inserted {
                // The tail is not what this process saw (entries removed or replaced): read it
                // again, and let the chain function judge it.
                Ok(0) => *self.audit_tail_hint.lock() = None,
                Ok(_) => {
                    let tail = AuditTail { seq, hash: prev };
                    *self.audit_tail_hint.lock() = Some(tail.clone());
                    return Ok(tail);
                }
                // Another node took the sequence number: read the tail again.
                Err(StorageError::AlreadyExists) => *self.audit_tail_hint.lock() = None,
                Err(other) => {
                    *self.audit_tail_hint.lock() = None;
                    return Err(other);
                }
            }
        }
        Err(StorageError::Conflict(
            "other nodes kept appending to the audit log first".into(),
        ))
    }

    fn audit_tail(&self) -> StorageResult<Option<AuditTail>> {
        self.read(|c| {
            Ok(
                c.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?
                    .map(|r| {
                        Ok::<_, BadColumn>(AuditTail {
                            seq: r.count(0)?,
                            hash: r.col(1)?,
                        })
                    })
                    .transpose()?,
            )
        })
    }

    fn query_audit(&self, f: &AuditFilter) -> StorageResult<Vec<AuditRow>> {
        let bound = match (f.newest_first, f.after_seq) {
            (true, Some(before)) => before as i64,
            (true, None) => i64::MAX,
            (false, after) => after.unwrap_or(0) as i64,
        };
        let limit = f.limit as i64;
        let sql = if f.newest_first {
            AUDIT_NEWEST_FIRST
        } else {
            AUDIT_OLDEST_FIRST
        };
        self.read(|c| {
            let rows = c.query(
                sql,
                &[
                    &bound,
                    &f.since,
                    &f.until,
                    &f.token_id,
                    &f.action,
                    &limit,
                    &f.target,
                    &f.namespace,
                    &f.user_hash,
                    &f.outcome,
                ],
            )?;
            Ok(rows
                .iter()
                .map(|r| {
                    Ok(AuditRow {
                        seq: r.count(0)?,
                        entry: AuditEntry {
                            time: r.col(1)?,
                            token_id: r.col(2)?,
                            action: r.col(3)?,
                            namespace: r.col(4)?,
                            user_hash: r.col(5)?,
                            target: r.col(6)?,
                            outcome: r.col(7)?,
                        },
                        hash: r.col(8)?,
                    })
                })
                .collect::<Result<_, BadColumn>>()?)
        })
    }
}

/// The audit query's filters (each optional); `$1` bounds the sequence number.
macro_rules! audit_query {
    ($position:literal, $order:literal) => {
        concat!(
            "SELECT seq, time, token_id, action, namespace, user_hash, target, outcome, hash FROM audit WHERE ",
            $position,
            " AND ($2::BIGINT IS NULL OR time >= $2) AND ($3::BIGINT IS NULL OR time <= $3) \
             AND ($4::TEXT IS NULL OR token_id = $4) AND ($5::TEXT IS NULL OR action = $5) \
             AND ($7::TEXT IS NULL OR target = $7) AND ($8::TEXT IS NULL OR namespace = $8) \
             AND ($9::TEXT IS NULL OR user_hash = $9) AND ($10::TEXT IS NULL OR outcome = $10) \
             ORDER BY seq ",
            $order,
            " LIMIT $6"
        )
    };
}
const AUDIT_OLDEST_FIRST: &str = audit_query!("seq > $1", "ASC");
const AUDIT_NEWEST_FIRST: &str = audit_query!("seq < $1", "DESC");
