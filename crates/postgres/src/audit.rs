//! The audit log on PostgreSQL. Appends from every node serialize on one transaction-scoped
//! advisory lock, so the previous hash read inside the transaction is always the chain's tail.

use strongroom_storage::{
    AuditChainFn, AuditEntry, AuditFilter, AuditRow, AuditStore, AuditTail, StorageError,
    StorageResult,
};

use crate::connection::{BadColumn, Columns, PgStore};
use crate::schema::AUDIT_LOCK;

impl AuditStore for PgStore {
    fn append_audit(
        &self,
        entries: &[AuditEntry],
        chain: &AuditChainFn<'_>,
    ) -> StorageResult<AuditTail> {
        self.write(|tx| {
            // Per schema: several Strongroom stores may share one database (and tests do).
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))::text",
                &[&AUDIT_LOCK],
            )?;
            let last = tx.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?;
            let (mut seq, mut prev): (u64, Vec<u8>) = match last {
                Some(r) => (r.count(0)?, r.col(1)?),
                None => (0, Vec::new()),
            };
            for e in entries {
                seq += 1;
                let hash = chain(&prev, seq, e).map_err(StorageError::Aborted)?;
                tx.execute(
                    "INSERT INTO audit (seq, time, token_id, action, namespace, user_hash, target, outcome, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[&(seq as i64), &e.time, &e.token_id, &e.action, &e.namespace, &e.user_hash, &e.target, &e.outcome, &hash],
                )?;
                prev = hash;
            }
            Ok(AuditTail { seq, hash: prev })
        })
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
        let after = f.after_seq.unwrap_or(0) as i64;
        let limit = f.limit as i64;
        self.read(|c| {
            let rows = c.query(
                "SELECT seq, time, token_id, action, namespace, user_hash, target, outcome, hash FROM audit \
                 WHERE seq > $1 AND ($2::BIGINT IS NULL OR time >= $2) AND ($3::BIGINT IS NULL OR time <= $3) \
                 AND ($4::TEXT IS NULL OR token_id = $4) AND ($5::TEXT IS NULL OR action = $5) ORDER BY seq LIMIT $6",
                &[&after, &f.since, &f.until, &f.token_id, &f.action, &limit],
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
