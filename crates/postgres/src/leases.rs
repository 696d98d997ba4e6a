//! Leases on PostgreSQL: one conditional upsert; the row lock it takes makes concurrent
//! contenders from any node see each other's result.

use strongroom_storage::{LeaseRow, LeaseStore, StorageResult};

use crate::connection::{BadColumn, Columns, PgStore};

impl LeaseStore for PgStore {
    fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: i64,
        expires_at: i64,
    ) -> StorageResult<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, $4) \
                 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
                 WHERE leases.owner = excluded.owner OR leases.expires_at <= $3",
                &[&name, &owner, &now, &expires_at],
            )? == 1)
        })
    }

    fn release_lease(&self, name: &str, owner: &str) -> StorageResult<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM leases WHERE name = $1 AND owner = $2",
                &[&name, &owner],
            )? == 1)
        })
    }

    fn get_lease(&self, name: &str) -> StorageResult<Option<LeaseRow>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT name, owner, expires_at FROM leases WHERE name = $1",
                &[&name],
            )?
            .map(|r| {
                Ok::<_, BadColumn>(LeaseRow {
                    name: r.col(0)?,
                    owner: r.col(1)?,
                    expires_at: r.col(2)?,
                })
            })
            .transpose()?)
        })
    }
}
