//! Namespaces and key-encryption keys on SQLite.

use rusqlite::{params, OptionalExtension, Row};
use strongroom_storage::{
    KekRow, NamespaceRow, NamespaceStore, NewWebhookEvent, StorageError, StorageResult,
};

use crate::connection::{map_err, SqliteStore};

const NS_COLUMNS: &str =
    "name, created_at, wrapped_index_key, primary_kek_version, min_decrypt_version";

fn ns_row(r: &Row<'_>) -> rusqlite::Result<NamespaceRow> {
    Ok(NamespaceRow {
        name: r.get(0)?,
        created_at: r.get(1)?,
        wrapped_index_key: r.get(2)?,
        primary_kek_version: r.get(3)?,
        min_decrypt_version: r.get(4)?,
    })
}

impl NamespaceStore for SqliteStore {
    fn create_namespace(&self, ns: &NamespaceRow, first_key: &KekRow) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO namespaces ({NS_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![ns.name, ns.created_at, ns.wrapped_index_key, ns.primary_kek_version, ns.min_decrypt_version],
            )
            .map_err(map_err)?;
            tx.execute(
                "INSERT INTO keks (namespace, version, wrapped_key, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![first_key.namespace, first_key.version, first_key.wrapped_key, first_key.created_at],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }

    fn get_namespace(&self, name: &str) -> StorageResult<Option<NamespaceRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {NS_COLUMNS} FROM namespaces WHERE name = ?1"
            ))?
            .query_row([name], ns_row)
            .optional()
        })
    }

    fn list_namespaces(&self) -> StorageResult<Vec<NamespaceRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {NS_COLUMNS} FROM namespaces ORDER BY name"
            ))?
            .query_map([], ns_row)?
            .collect()
        })
    }

    fn list_keks(&self, namespace: &str) -> StorageResult<Vec<KekRow>> {
        self.read(|c| {
            c.prepare_cached("SELECT namespace, version, wrapped_key, created_at FROM keks WHERE namespace = ?1 ORDER BY version")?
                .query_map([namespace], |r| {
                    Ok(KekRow {
                        namespace: r.get(0)?,
                        version: r.get(1)?,
                        wrapped_key: r.get(2)?,
                        created_at: r.get(3)?,
                    })
                })?
                .collect()
        })
    }

    fn add_primary_kek(
        &self,
        key: &KekRow,
        expected_primary: u32,
        event: Option<&NewWebhookEvent>,
    ) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx
                .execute(
                    "UPDATE namespaces SET primary_kek_version = ?2 WHERE name = ?1 AND primary_kek_version = ?3",
                    params![key.namespace, key.version, expected_primary],
                )
                .map_err(map_err)?;
            if changed != 1 {
                return Err(StorageError::Conflict("the primary key version changed concurrently".into()));
            }
            tx.execute(
                "INSERT INTO keks (namespace, version, wrapped_key, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![key.namespace, key.version, key.wrapped_key, key.created_at],
            )
            .map_err(|e| match map_err(e) {
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
            let changed = tx
                .execute(
                    "UPDATE namespaces SET wrapped_index_key = ?2 WHERE name = ?1",
                    params![namespace, wrapped_index_key],
                )
                .map_err(map_err)?;
            if changed != 1 {
                return Err(StorageError::Conflict(format!(
                    "namespace {namespace} changed during the re-wrap"
                )));
            }
            for (version, wrapped) in keks {
                let changed = tx
                    .execute(
                        "UPDATE keks SET wrapped_key = ?3 WHERE namespace = ?1 AND version = ?2",
                        params![namespace, version, wrapped],
                    )
                    .map_err(map_err)?;
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
                "UPDATE namespaces SET min_decrypt_version = ?2 WHERE name = ?1",
                params![namespace, version],
            )
            .map_err(map_err)?;
            Ok(())
        })
    }
}
