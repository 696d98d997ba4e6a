//! API token rows on PostgreSQL (digests and opaque policies only).

use postgres::Row;
use strongroom_storage::{StorageResult, TokenRow, TokenStore};

use crate::connection::{BadColumn, Columns, PgStore};

fn token_row(r: &Row) -> Result<TokenRow, BadColumn> {
    Ok(TokenRow {
        id: r.col(0)?,
        secret_hash: r.col(1)?,
        name: r.col(2)?,
        policy: r.col(3)?,
        created_at: r.col(4)?,
        expires_at: r.col(5)?,
        revoked_at: r.col(6)?,
    })
}

impl TokenStore for PgStore {
    fn insert_token(&self, t: &TokenRow) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO tokens (id, secret_hash, name, policy, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&t.id, &t.secret_hash, &t.name, &t.policy, &t.created_at, &t.expires_at, &t.revoked_at],
            )?;
            Ok(())
        })
    }

    fn get_token(&self, id: &str) -> StorageResult<Option<TokenRow>> {
        self.read(|c| {
            Ok(c.query_opt("SELECT id, secret_hash, name, policy, created_at, expires_at, revoked_at FROM tokens WHERE id = $1", &[&id])?
                .map(|r| token_row(&r))
            .transpose()?)
        })
    }

    fn list_tokens(&self, after: Option<&str>, limit: usize) -> StorageResult<Vec<TokenRow>> {
        let after = after.unwrap_or("");
        self.read(|c| {
            Ok(c.query(
                "SELECT id, secret_hash, name, policy, created_at, expires_at, revoked_at FROM tokens WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &(limit as i64)],
            )?
            .iter()
            .map(token_row)
            .collect::<Result<_, _>>()?)
        })
    }

    fn revoke_token(&self, id: &str, revoked_at: i64, policy: &[u8]) -> StorageResult<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE tokens SET revoked_at = $2, policy = $3 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &revoked_at, &policy],
            )? == 1)
        })
    }

    fn set_token_policy(&self, id: &str, policy: &[u8]) -> StorageResult<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE tokens SET policy = $2 WHERE id = $1",
                &[&id, &policy],
            )? == 1)
        })
    }
}
