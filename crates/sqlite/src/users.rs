//! Users and their wrapped data keys on SQLite.

use rusqlite::{params, OptionalExtension, Row};
use strongroom_storage::{Rewrap, StorageResult, UserRow, UserStore};

use crate::connection::{map_err, SqliteStore};

const COLUMNS: &str = "namespace, user_hash, encrypted_id, wrapped_key, kek_version, created_at";

/// [`COLUMNS`] of a users table joined as `u`, after a leading comma (a literal, for
/// `concat!`): for reads that bring the owner's row with what they read.
macro_rules! user_columns {
    () => {
        ", u.namespace, u.user_hash, u.encrypted_id, u.wrapped_key, u.kek_version, u.created_at"
    };
}
pub(crate) use user_columns;

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    user_row_at(r, 0)
}

/// A user row from the [`COLUMNS`] starting at column `at`.
pub(crate) fn user_row_at(r: &Row<'_>, at: usize) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        namespace: r.get(at)?,
        user_hash: r.get(at + 1)?,
        encrypted_id: r.get(at + 2)?,
        wrapped_key: r.get(at + 3)?,
        kek_version: r.get(at + 4)?,
        created_at: r.get(at + 5)?,
    })
}

impl UserStore for SqliteStore {
    fn get_user(&self, namespace: &str, user_hash: &[u8]) -> StorageResult<Option<UserRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM users WHERE namespace = ?1 AND user_hash = ?2"
            ))?
            .query_row(params![namespace, user_hash], user_row)
            .optional()
        })
    }

    fn insert_user(&self, u: &UserRow) -> StorageResult<()> {
        self.write(|tx| {
            tx.prepare_cached(&format!(
                "INSERT INTO users ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    u.namespace,
                    u.user_hash,
                    u.encrypted_id,
                    u.wrapped_key,
                    u.kek_version,
                    u.created_at
                ])
            })
            .map_err(map_err)?;
            Ok(())
        })
    }

    fn insert_users(&self, users: &[UserRow]) -> StorageResult<Vec<bool>> {
        self.write(|tx| {
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO users ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (namespace, user_hash) DO NOTHING"
                ))
                .map_err(map_err)?;
            let mut inserted = Vec::with_capacity(users.len());
            for u in users {
                let n = insert
                    .execute(params![
                        u.namespace,
                        u.user_hash,
                        u.encrypted_id,
                        u.wrapped_key,
                        u.kek_version,
                        u.created_at
                    ])
                    .map_err(map_err)?;
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
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM users WHERE namespace = ?1 AND user_hash > ?2 ORDER BY user_hash LIMIT ?3"
            ))?
            .query_map(params![namespace, after.unwrap_or(&[]), limit as i64], user_row)?
            .collect()
        })
    }

    fn users_below_kek(
        &self,
        namespace: &str,
        version: u32,
        after: Option<&[u8]>,
        limit: usize,
    ) -> StorageResult<Vec<UserRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM users WHERE namespace = ?1 AND kek_version < ?2 AND user_hash > ?3 \
                 ORDER BY user_hash LIMIT ?4"
            ))?
            .query_map(params![namespace, version, after.unwrap_or(&[]), limit as i64], user_row)?
            .collect()
        })
    }

    fn count_users_below_kek(&self, namespace: &str, version: u32) -> StorageResult<u64> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT COUNT(*) FROM users WHERE namespace = ?1 AND kek_version < ?2",
            )?
            .query_row(params![namespace, version], |r| r.get::<_, i64>(0))
        })
        .map(|n| n as u64)
    }

    fn rewrap_users(&self, namespace: &str, updates: &[Rewrap]) -> StorageResult<u64> {
        self.write(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE users SET wrapped_key = ?3, kek_version = ?4 \
                     WHERE namespace = ?1 AND user_hash = ?2 AND kek_version = ?5",
                )
                .map_err(map_err)?;
            let mut applied = 0u64;
            for u in updates {
                applied += stmt
                    .execute(params![
                        namespace,
                        u.user_hash,
                        u.wrapped_key,
                        u.to_version,
                        u.from_version
                    ])
                    .map_err(map_err)? as u64;
            }
            Ok(applied)
        })
    }
}
