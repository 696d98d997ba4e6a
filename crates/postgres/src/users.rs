//! Users and their wrapped data keys on PostgreSQL.

use postgres::Row;
use strongroom_storage::{Rewrap, StorageResult, UserRow, UserStore};

use crate::connection::{BadColumn, Columns, PgStore};

/// The columns [`user_row_at`] reads, of a users table joined as `u`, after a leading comma (a
/// literal, for `concat!`): for reads that bring the owner's row with what they read.
macro_rules! user_columns {
    () => {
        ", u.namespace, u.user_hash, u.encrypted_id, u.wrapped_key, u.kek_version, u.created_at"
    };
}
pub(crate) use user_columns;

fn user_row(r: &Row) -> Result<UserRow, BadColumn> {
    user_row_at(r, 0)
}

/// A user row from six columns (namespace, user_hash, encrypted_id, wrapped_key, kek_version,
/// created_at) starting at column `at`.
pub(crate) fn user_row_at(r: &Row, at: usize) -> Result<UserRow, BadColumn> {
    Ok(UserRow {
        namespace: r.col(at)?,
        user_hash: r.col(at + 1)?,
        encrypted_id: r.col(at + 2)?,
        wrapped_key: r.col(at + 3)?,
        kek_version: r.small(at + 4)?,
        created_at: r.col(at + 5)?,
    })
}

impl UserStore for PgStore {
    fn get_user(&self, namespace: &str, user_hash: &[u8]) -> StorageResult<Option<UserRow>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT namespace, user_hash, encrypted_id, wrapped_key, kek_version, created_at FROM users WHERE namespace = $1 AND user_hash = $2",
                &[&namespace, &user_hash],
            )?
            .map(|r| user_row(&r))
            .transpose()?)
        })
    }

    fn insert_user(&self, u: &UserRow) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO users (namespace, user_hash, encrypted_id, wrapped_key, kek_version, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&u.namespace, &u.user_hash, &u.encrypted_id, &u.wrapped_key, &i64::from(u.kek_version), &u.created_at],
            )?;
            Ok(())
        })
    }

    fn insert_users(&self, users: &[UserRow]) -> StorageResult<Vec<bool>> {
        self.write(|tx| {
            let mut inserted = Vec::with_capacity(users.len());
            for u in users {
                let n = tx.execute(
                    "INSERT INTO users (namespace, user_hash, encrypted_id, wrapped_key, kek_version, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (namespace, user_hash) DO NOTHING",
                    &[&u.namespace, &u.user_hash, &u.encrypted_id, &u.wrapped_key, &i64::from(u.kek_version), &u.created_at],
                )?;
                inserted.push(n == 1);
            }
            Ok(inserted)
        })
    }

    fn list_users(
        &self,
        namespace: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> StorageResult<Vec<UserRow>> {
        let after = after.unwrap_or(&[]);
        self.read(|c| {
            Ok(c.query(
                "SELECT namespace, user_hash, encrypted_id, wrapped_key, kek_version, created_at FROM users \
                 WHERE namespace = $1 AND user_hash > $2 ORDER BY user_hash LIMIT $3",
                &[&namespace, &after, &(limit as i64)],
            )?
            .iter()
            .map(user_row)
            .collect::<Result<_, _>>()?)
        })
    }

    fn users_below_kek(
        &self,
        namespace: &str,
        version: u32,
        after: Option<&[u8]>,
        limit: usize,
    ) -> StorageResult<Vec<UserRow>> {
        let after = after.unwrap_or(&[]);
        self.read(|c| {
            Ok(c.query(
                "SELECT namespace, user_hash, encrypted_id, wrapped_key, kek_version, created_at FROM users \
                 WHERE namespace = $1 AND kek_version < $2 AND user_hash > $3 ORDER BY user_hash LIMIT $4",
                &[&namespace, &i64::from(version), &after, &(limit as i64)],
            )?
            .iter()
            .map(user_row)
            .collect::<Result<_, _>>()?)
        })
    }

    fn count_users_below_kek(&self, namespace: &str, version: u32) -> StorageResult<u64> {
        self.read(|c| {
            let row = c.query_opt(
                "SELECT COUNT(*) FROM users WHERE namespace = $1 AND kek_version < $2",
                &[&namespace, &i64::from(version)],
            )?;
            Ok(row.map(|r| r.count(0)).transpose()?.unwrap_or(0))
        })
    }

    fn rewrap_users(&self, namespace: &str, updates: &[Rewrap]) -> StorageResult<u64> {
        let hashes: Vec<&[u8]> = updates.iter().map(|u| u.user_hash.as_slice()).collect();
        let keys: Vec<&[u8]> = updates.iter().map(|u| u.wrapped_key.as_slice()).collect();
        let to: Vec<i64> = updates.iter().map(|u| i64::from(u.to_version)).collect();
        let from: Vec<i64> = updates.iter().map(|u| i64::from(u.from_version)).collect();
        self.write(|tx| {
            tx.execute(
                "UPDATE users SET wrapped_key = v.wrapped_key, kek_version = v.to_version \
                 FROM UNNEST($2::BYTEA[], $3::BYTEA[], $4::BIGINT[], $5::BIGINT[]) AS v(user_hash, wrapped_key, to_version, from_version) \
                 WHERE users.namespace = $1 AND users.user_hash = v.user_hash AND users.kek_version = v.from_version",
                &[&namespace, &hashes, &keys, &to, &from],
            )
        })
    }
}
