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
            "SELECT seq, time, token_id, action, namespace, user_hash, target, outcome, hash FROM audit WHERE ",
        );
        let bound = match (f.newest_first, f.after_seq) {
            (true, Some(before)) => before as i64,
            (true, None) => i64::MAX,
            (false, after) => after.unwrap_or(0) as i64,
        };
        sql.push_str(if f.newest_first {
            "seq < ?1"
        } else {
            "seq > ?1"
        });
        let mut args: Vec<&dyn ToSql> = vec![&bound];
        if let Some(since) = &f.since {
            args.push(since);
            sql.push_str(&format!(" AND time >= ?{}", args.len()));
        }
        if let Some(until) = &f.until {
            args.push(until);
            sql.push_str(&format!(" AND time <= ?{}", args.len()));
        }
        let exact = [
            ("token_id", &f.token_id),
            ("action", &f.action),
            ("target", &f.target),
            ("namespace", &f.namespace),
            ("user_hash", &f.user_hash),
            ("outcome", &f.outcome),
        ];
        for (column, value) in &exact {
            if let Some(value) = value {
                args.push(value);
                sql.push_str(&format!(" AND {column} = ?{}", args.len()));
            }
        }
        let limit = f.limit as i64;
        args.push(&limit);
        let order = if f.newest_first { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY seq {order} LIMIT ?{}", args.len()));
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
