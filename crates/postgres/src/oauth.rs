//! OAuth providers and credential refresh statuses on PostgreSQL.

use postgres::Row;
use strongroom_storage::{
    CredentialStatusRow, ItemKey, NewWebhookEvent, OAuthStore, StorageResult,
};

use crate::connection::{BadColumn, Columns, PgStore, Tx};

/// `SELECT` of a status row's columns (table alias `s`) followed by the given rest of the
/// statement (a literal: statements are cached by their text).
macro_rules! select_statuses {
    ($rest:literal) => {
        concat!(
            "SELECT s.namespace, s.user_hash, s.name, s.status, s.error, s.updated_at, s.refresh_due_at, ",
            "s.failures, s.verified, s.verified_at, s.sealed_name FROM credential_status s ",
            $rest
        )
    };
}

fn status_row(r: &Row) -> Result<CredentialStatusRow, BadColumn> {
    Ok(CredentialStatusRow {
        key: ItemKey {
            namespace: r.col(0)?,
            user_hash: r.col(1)?,
            name: r.col(2)?,
        },
        status: r.col(3)?,
        error: r.col(4)?,
        updated_at: r.col(5)?,
        refresh_due_at: r.col(6)?,
        failures: r.small(7)?,
        verified: r.col(8)?,
        verified_at: r.col(9)?,
        sealed_name: r.col(10)?,
    })
}

impl OAuthStore for PgStore {
    fn put_provider(
        &self,
        namespace: &str,
        name: &str,
        config: &[u8],
        sealed_secret: &[u8],
    ) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO providers (namespace, name, config, sealed_secret) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (namespace, name) DO UPDATE SET config = excluded.config, sealed_secret = excluded.sealed_secret",
                &[&namespace, &name, &config, &sealed_secret],
            )?;
            Ok(())
        })
    }

    fn get_provider(
        &self,
        namespace: &str,
        name: &str,
    ) -> StorageResult<Option<(Vec<u8>, Vec<u8>)>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT config, sealed_secret FROM providers WHERE namespace = $1 AND name = $2",
                &[&namespace, &name],
            )?
            .map(|r| Ok::<_, BadColumn>((r.col(0)?, r.col(1)?)))
            .transpose()?)
        })
    }

    fn list_providers(&self, namespace: &str) -> StorageResult<Vec<(String, Vec<u8>)>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT name, config FROM providers WHERE namespace = $1 ORDER BY name",
                &[&namespace],
            )?
            .iter()
            .map(|r| Ok((r.col(0)?, r.col(1)?)))
            .collect::<Result<_, BadColumn>>()?)
        })
    }

    fn delete_provider(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM providers WHERE namespace = $1 AND name = $2",
                &[&namespace, &name],
            )? == 1)
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
            Ok(c.query_opt(
                select_statuses!("WHERE s.namespace = $1 AND s.user_hash = $2 AND s.name = $3"),
                &[&k.namespace, &k.user_hash, &k.name],
            )?
            .map(|r| status_row(&r))
            .transpose()?)
        })
    }

    fn due_refreshes(&self, now: i64, limit: usize) -> StorageResult<Vec<CredentialStatusRow>> {
        let limit = limit as i64;
        self.read(|c| {
            Ok(c.query(
                select_statuses!(
                    "WHERE s.refresh_due_at IS NOT NULL AND s.refresh_due_at <= $1 ORDER BY s.refresh_due_at LIMIT $2"
                ),
                &[&now, &limit],
            )?
            .iter()
            .map(status_row)
            .collect::<Result<_, _>>()?)
        })
    }

    fn list_credential_statuses(
        &self,
        namespace: &str,
        status: Option<&str>,
        limit: usize,
    ) -> StorageResult<Vec<CredentialStatusRow>> {
        let limit = limit as i64;
        self.read(|c| {
            Ok(c.query(
                select_statuses!(
                    "WHERE s.namespace = $1 AND ($2::TEXT IS NULL OR s.status = $2) ORDER BY s.user_hash, s.name LIMIT $3"
                ),
                &[&namespace, &status, &limit],
            )?
            .iter()
            .map(status_row)
            .collect::<Result<_, _>>()?)
        })
    }
}

pub(crate) fn write_status(tx: &mut Tx<'_>, s: &CredentialStatusRow) -> StorageResult<()> {
    tx.execute(
        "INSERT INTO credential_status (namespace, user_hash, name, status, error, updated_at, refresh_due_at, failures, verified, verified_at, sealed_name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (namespace, user_hash, name) DO UPDATE SET status = excluded.status, \
         error = excluded.error, updated_at = excluded.updated_at, refresh_due_at = excluded.refresh_due_at, failures = excluded.failures, \
         verified = COALESCE(excluded.verified, credential_status.verified), \
         verified_at = COALESCE(excluded.verified_at, credential_status.verified_at), \
         sealed_name = COALESCE(excluded.sealed_name, credential_status.sealed_name)",
        &[&s.key.namespace, &s.key.user_hash, &s.key.name, &s.status, &s.error, &s.updated_at, &s.refresh_due_at, &i64::from(s.failures), &s.verified, &s.verified_at, &s.sealed_name],
    )?;
    Ok(())
}
