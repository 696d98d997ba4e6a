//! OAuth providers and credential refresh statuses on SQLite.

use rusqlite::{params, OptionalExtension, Row};
use strongroom_storage::{
    CredentialStatusRow, ItemKey, NewWebhookEvent, OAuthStore, StorageResult,
};

use crate::connection::{map_err, SqliteStore};

/// A status row's columns (table alias `s`).
const STATUS_COLUMNS: &str = "s.namespace, s.user_hash, s.name, s.status, s.error, s.updated_at, \
     s.refresh_due_at, s.failures, s.verified, s.verified_at, s.sealed_name";

fn status_row(r: &Row<'_>) -> rusqlite::Result<CredentialStatusRow> {
    Ok(CredentialStatusRow {
        key: ItemKey {
            namespace: r.get(0)?,
            user_hash: r.get(1)?,
            name: r.get(2)?,
        },
        status: r.get(3)?,
        error: r.get(4)?,
        updated_at: r.get(5)?,
        refresh_due_at: r.get(6)?,
        failures: r.get(7)?,
        verified: r.get(8)?,
        verified_at: r.get(9)?,
        sealed_name: r.get(10)?,
    })
}

impl OAuthStore for SqliteStore {
    fn put_provider(
        &self,
        namespace: &str,
        name: &str,
        config: &[u8],
        sealed_secret: &[u8],
    ) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO providers (namespace, name, config, sealed_secret) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (namespace, name) DO UPDATE SET config = excluded.config, sealed_secret = excluded.sealed_secret",
                params![namespace, name, config, sealed_secret],
            )
            .map(|_| ())
            .map_err(map_err)
        })
    }

    fn get_provider(
        &self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<(Vec<u8>, Vec<u8>)>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT config, sealed_secret FROM providers WHERE namespace = ?1 AND name = ?2",
            )?
            .query_row(params![namespace, name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
        })
    }

    fn list_providers(&self, namespace: &str) -> StorageResult<Vec<(String, Vec<u8>)>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT name, config FROM providers WHERE namespace = ?1 ORDER BY name",
            )?
            .query_map([namespace], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
        })
    }

    fn delete_provider(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM providers WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
            )
            .map(|n| n == 1)
            .map_err(map_err)
        })
    }

    fn set_credential_status(&self, s: &CredentialStatusRow) -> StorageResult<()> {
        self.write(|tx| write_status(tx, s))
    }

    fn set_credential_status_emitting(
        &self,
        s: &CredentialStatusRow,
        event: &NewWebhookEvent,
    ) -> StorageResult<()> {
        self.write(|tx| {
            write_status(tx, s)?;
            crate::webhooks::emit_in(tx, event)?;
            Ok(())
        })
    }

    fn get_credential_status(&self, k: &ItemKey) -> StorageResult<Option<CredentialStatusRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {STATUS_COLUMNS} FROM credential_status s \
                 WHERE s.namespace = ?1 AND s.user_hash = ?2 AND s.name = ?3"
            ))?
            .query_row(params![k.namespace, k.user_hash, k.name], status_row)
            .optional()
        })
    }

    fn due_refreshes(&self, now: i64, limit: usize) -> StorageResult<Vec<CredentialStatusRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {STATUS_COLUMNS} FROM credential_status s \
                 WHERE s.refresh_due_at IS NOT NULL AND s.refresh_due_at <= ?1 ORDER BY s.refresh_due_at LIMIT ?2"
            ))?
            .query_map(params![now, limit as i64], status_row)?
            .collect()
        })
    }

    fn list_credential_statuses(
        &self,
        namespace: &str,
        status: Option<&str>,
        limit: usize,
    ) -> StorageResult<Vec<CredentialStatusRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {STATUS_COLUMNS} FROM credential_status s \
                 WHERE s.namespace = ?1 AND (?2 IS NULL OR s.status = ?2) ORDER BY s.user_hash, s.name LIMIT ?3"
            ))?
            .query_map(params![namespace, status, limit as i64], status_row)?
            .collect()
        })
    }
}

pub(crate) fn write_status(
    tx: &rusqlite::Transaction<'_>,
    s: &CredentialStatusRow,
) -> StorageResult<()> {
    tx.execute(
        "INSERT INTO credential_status (namespace, user_hash, name, status, error, updated_at, refresh_due_at, failures, verified, verified_at, sealed_name) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (namespace, user_hash, name) DO UPDATE SET status = excluded.status, \
         error = excluded.error, updated_at = excluded.updated_at, refresh_due_at = excluded.refresh_due_at, failures = excluded.failures, \
         verified = COALESCE(excluded.verified, credential_status.verified), \
         verified_at = COALESCE(excluded.verified_at, credential_status.verified_at), \
         sealed_name = COALESCE(excluded.sealed_name, credential_status.sealed_name)",
        params![s.key.namespace, s.key.user_hash, s.key.name, s.status, s.error, s.updated_at, s.refresh_due_at, s.failures, s.verified, s.verified_at, s.sealed_name],
    )
    .map(|_| ())
    .map_err(map_err)
}
