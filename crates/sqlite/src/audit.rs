//! The audit log on SQLite, in its own file. The previous hash is read inside the audit
//! writer's immediate transaction, so the chain is single even with many appenders.

use rusqlite::{params, OptionalExtension, ToSql};
use strongroom_storage::{
    AuditChainFn, AuditEntry, AuditFilter, AuditRow, AuditStore, AuditTail, StorageError,
    StorageResult,
};

use crate::connection::{map_audit_err, SqliteStore};

impl AuditStore for SqliteStore {
    fn append_audit(
        &self,
        entries: &[AuditEntry],
        chain: &AuditChainFn<'_>,
    ) -> StorageResult<AuditTail> {
        self.write_audit(|tx| {
            let last: Option<(i64, Vec<u8>)> = tx
                .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                .map_err(map_audit_err)?;
            let (mut seq, mut prev) = last.map(|(s, h)| (s as u64, h)).unwrap_or((0, Vec::new()));
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO audit (seq, time, token_id, action, namespace, user_hash, target, outcome, hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(map_audit_err)?;
            for e in entries {
                seq += 1;
                let hash = chain(&prev, seq, e).map_err(StorageError::Aborted)?;
                insert
                    .execute(params![seq as i64, e.time, e.token_id, e.action, e.namespace, e.user_hash, e.target, e.outcome, hash])
                    .map_err(map_audit_err)?;
                prev = hash;
            }
            Ok(AuditTail { seq, hash: prev })
        })
    }

    fn audit_tail(&self) -> StorageResult<Option<AuditTail>> {
        self.read_audit(|c| {
            c.prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
                .query_row([], |r| {
                    Ok(AuditTail {
                        seq: r.get::<_, i64>(0)? as u64,
                        hash: r.get(1)?,
                    })
                })
                .optional()
        })
    }

    fn query_audit(&self, f: &AuditFilter) -> StorageResult<Vec<AuditRow>> {
        let mut sql = String::from(
            "SELECT seq, time, token_id, action, namespace, user_hash, target, outcome, hash FROM audit WHERE seq > ?1",
        );
        let after = f.after_seq.unwrap_or(0) as i64;
        let mut args: Vec<&dyn ToSql> = vec![&after];
        if let Some(since) = &f.since {
            args.push(since);
            sql.push_str(&format!(" AND time >= ?{}", args.len()));
        }
        if let Some(until) = &f.until {
            args.push(until);
            sql.push_str(&format!(" AND time <= ?{}", args.len()));
        }
        if let Some(token) = &f.token_id {
            args.push(token);
            sql.push_str(&format!(" AND token_id = ?{}", args.len()));
        }
        if let Some(action) = &f.action {
            args.push(action);
            sql.push_str(&format!(" AND action = ?{}", args.len()));
        }
        if let Some(target) = &f.target {
            args.push(target);
            sql.push_str(&format!(" AND target = ?{}", args.len()));
        }
        let limit = f.limit as i64;
        args.push(&limit);
        sql.push_str(&format!(" ORDER BY seq LIMIT ?{}", args.len()));
        self.read_audit(|c| {
            c.prepare_cached(&sql)?
                .query_map(args.as_slice(), |r| {
                    Ok(AuditRow {
                        seq: r.get::<_, i64>(0)? as u64,
                        entry: AuditEntry {
                            time: r.get(1)?,
                            token_id: r.get(2)?,
                            action: r.get(3)?,
                            namespace: r.get(4)?,
                            user_hash: r.get(5)?,
                            target: r.get(6)?,
                            outcome: r.get(7)?,
                        },
                        hash: r.get(8)?,
                    })
                })?
                .collect()
        })
    }
}
