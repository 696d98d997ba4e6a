//! Namespaces and key-encryption keys on PostgreSQL.

use postgres::Row;
use strongroom_storage::{
    KekRow, NamespaceRow, NamespaceStore, NewWebhookEvent, StorageError, StorageResult,
};

use crate::connection::{BadColumn, Columns, PgStore};

fn ns_row(r: &Row) -> Result<NamespaceRow, BadColumn> {
    Ok(NamespaceRow {
        name: r.col(0)?,
        created_at: r.col(1)?,
        wrapped_index_key: r.col(2)?,
        primary_kek_version: r.small(3)?,
        min_decrypt_version: r.small(4)?,
    })
}

fn kek_row(r: &Row) -> Result<KekRow, BadColumn> {
    Ok(KekRow {
        namespace: r.col(0)?,
        version: r.small(1)?,
        wrapped_key: r.col(2)?,
        created_at: r.col(3)?,
    })
}

impl NamespaceStore for PgStore {
    fn create_namespace(&self, ns: &NamespaceRow, first: &KekRow) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO namespaces (name, created_at, wrapped_index_key, primary_kek_version, min_decrypt_version) VALUES ($1, $2, $3, $4, $5)",
                &[&ns.name, &ns.created_at, &ns.wrapped_index_key, &i64::from(ns.primary_kek_version), &i64::from(ns.min_decrypt_version)],
            )?;
            tx.execute(
                "INSERT INTO keks (namespace, version, wrapped_key, created_at) VALUES ($1, $2, $3, $4)",
                &[&first.namespace, &i64::from(first.version), &first.wrapped_key, &first.created_at],
            )?;
            Ok(())
        })
    }

    fn get_namespace(&self, name: &str) -> StorageResult<Option<NamespaceRow>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT name, created_at, wrapped_index_key, primary_kek_version, min_decrypt_version FROM namespaces WHERE name = $1",
                &[&name],
            )?
            .map(|r| ns_row(&r))
            .transpose()?)
        })
    }

    fn list_namespaces(&self) -> StorageResult<Vec<NamespaceRow>> {
        self.read(|c| {
            Ok(c.query("SELECT name, created_at, wrapped_index_key, primary_kek_version, min_decrypt_version FROM namespaces ORDER BY name", &[])?
                .iter()
                .map(ns_row)
                .collect::<Result<_, _>>()?)
        })
    }

    fn list_keks(&self, namespace: &str) -> StorageResult<Vec<KekRow>> {
        self.read(|c| {
            Ok(c.query("SELECT namespace, version, wrapped_key, created_at FROM keks WHERE namespace = $1 ORDER BY version", &[&namespace])?
                .iter()
                .map(kek_row)
                .collect::<Result<_, _>>()?)
        })
    }

    fn add_primary_kek(
        &self,
        key: &KekRow,
        expected_primary: u32,
        event: Option<&NewWebhookEvent>,
    ) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE namespaces SET primary_kek_version = $2 WHERE name = $1 AND primary_kek_version = $3",
                &[&key.namespace, &i64::from(key.version), &i64::from(expected_primary)],
            )?;
            if changed != 1 {
                return Err(StorageError::Conflict("the primary key version changed concurrently".into()));
            }
            tx.execute(
                "INSERT INTO keks (namespace, version, wrapped_key, created_at) VALUES ($1, $2, $3, $4)",
                &[&key.namespace, &i64::from(key.version), &key.wrapped_key, &key.created_at],
            )
            .map_err(|e| match e {
                StorageError::AlreadyExists => StorageError::Conflict("that key version already exists".into()),
                other => other,
            })?;
            if let Some(event) = event {
                crate::webhooks::emit_in(tx, event)?;
            }
            Ok(())
        })
    }

    fn set_namespace_wrapping(
        &self,
        namespace: &str,
        wrapped_index_key: &[u8],
        keks: &[(u32, Vec<u8>)],
    ) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE namespaces SET wrapped_index_key = $2 WHERE name = $1",
                &[&namespace, &wrapped_index_key],
            )?;
            if changed != 1 {
                return Err(StorageError::Conflict(format!(
                    "namespace {namespace} changed during the re-wrap"
                )));
            }
            for (version, wrapped) in keks {
                let changed = tx.execute(
                    "UPDATE keks SET wrapped_key = $3 WHERE namespace = $1 AND version = $2",
                    &[&namespace, &i64::from(*version), wrapped],
                )?;
                if changed != 1 {
                    return Err(StorageError::Conflict(format!(
                        "namespace {namespace} changed during the re-wrap"
                    )));
                }
            }
            Ok(())
        })
    }

    fn set_min_decrypt_version(&self, namespace: &str, version: u32) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE namespaces SET min_decrypt_version = $2 WHERE name = $1",
                &[&namespace, &i64::from(version)],
            )?;
            Ok(())
        })
    }
}
