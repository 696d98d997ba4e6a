//! API token rows on SQLite (digests and opaque policies only).

use rusqlite::{params, OptionalExtension, Row};
use strongroom_storage::{StorageResult, TokenRow, TokenStore};

use crate::connection::{map_err, SqliteStore};

const COLUMNS: &str = "id, secret_hash, name, policy, created_at, expires_at, revoked_at";

fn token_row(r: &Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        secret_hash: r.get(1)?,
        name: r.get(2)?,
        policy: r.get(3)?,
        created_at: r.get(4)?,
        expires_at: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

impl TokenStore for SqliteStore {
    fn insert_token(&self, t: &TokenRow) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO tokens ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    t.id,
                    t.secret_hash,
                    t.name,
                    t.policy,
                    t.created_at,
                    t.expires_at,
                    t.revoked_at
                ],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    fn get_token(&self, id: &str) -> StorageResult<Option<TokenRow>> {
        self.read(|c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM tokens WHERE id = ?1"))?
                .query_row([id], token_row)
                .optional()
        })
    }

    fn list_tokens(&self, after: Option<&str>, limit: usize) -> StorageResult<Vec<TokenRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM tokens WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))?
            .query_map(params![after.unwrap_or(""), limit as i64], token_row)?
            .collect()
        })
    }

    fn revoke_token(&self, id: &str, revoked_at: i64, policy: &[u8]) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "UPDATE tokens SET revoked_at = ?2, policy = ?3 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, revoked_at, policy],
            )
            .map(|n| n == 1)
            .map_err(map_err)
        })
    }

    fn set_token_policy(&self, id: &str, policy: &[u8]) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "UPDATE tokens SET policy = ?2 WHERE id = ?1",
                params![id, policy],
            )
            .map(|n| n == 1)
            .map_err(map_err)
        })
    }
}
