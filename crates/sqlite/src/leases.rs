//! Leases on SQLite: a conditional upsert, so taking a lease is one atomic statement.

use rusqlite::{params, OptionalExtension};
use strongroom_storage::{LeaseRow, LeaseStore, StorageResult};

use crate::connection::{map_err, SqliteStore};

impl LeaseStore for SqliteStore {
    fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: i64,
        expires_at: i64,
    ) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO leases (name, owner, expires_at) VALUES (?1, ?2, ?4) \
                 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
                 WHERE leases.owner = excluded.owner OR leases.expires_at <= ?3",
                params![name, owner, now, expires_at],
            )
            .map(|n| n == 1)
            .map_err(map_err)
        })
    }

    fn release_lease(&self, name: &str, owner: &str) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM leases WHERE name = ?1 AND owner = ?2",
                params![name, owner],
            )
            .map(|n| n == 1)
            .map_err(map_err)
        })
    }

    fn get_lease(&self, name: &str) -> StorageResult<Option<LeaseRow>> {
        self.read(|c| {
            c.prepare_cached("SELECT name, owner, expires_at FROM leases WHERE name = ?1")?
                .query_row([name], |r| {
                    Ok(LeaseRow {
                        name: r.get(0)?,
                        owner: r.get(1)?,
                        expires_at: r.get(2)?,
                    })
                })
                .optional()
        })
    }
}
