//! Versioned credentials on SQLite. A write is one immediate transaction: check the current
//! version, insert the new one, prune beyond `max_versions`, update the metadata row.

use rusqlite::{params, OptionalExtension, Row, Transaction};
use strongroom_storage::{
    BatchWrite, CredentialPointer, CredentialStore, ItemKey, ItemMeta, NewVersion, PointerFn,
    SealFn, StorageError, StorageResult, UserRow, VersionRow,
};

use crate::connection::{map_err, SqliteStore};
use crate::users::{user_columns, user_row_at};

const META_COLUMNS: &str =
    "current_version, oldest_version, max_versions, created_at, updated_at, pointer_mac, sealed_name";
const KEY_MATCH: &str = "namespace = ?1 AND user_hash = ?2 AND name = ?3";

/// A version read: the current version, or `?4` with `exact`; `$extra` adds columns. Two
/// statements rather than `COALESCE(?4, current_version)`: a bound value that the planner
/// inspects makes SQLite re-prepare the statement on every rebind.
macro_rules! read_sql {
    ($extra:expr) => {
        read_sql!(@ $extra, "c.current_version")
    };
    ($extra:expr, exact) => {
        read_sql!(@ $extra, "?4")
    };
    (@ $extra:expr, $version:literal) => {
        concat!(
            "SELECT c.current_version, c.oldest_version, c.max_versions, c.created_at, c.updated_at, c.pointer_mac, c.sealed_name, \
                    v.version, v.created_at, v.deleted_at, v.destroyed, v.ciphertext",
            $extra,
            " FROM credentials c JOIN users u ON u.namespace = c.namespace AND u.user_hash = c.user_hash \
             JOIN credential_versions v \
               ON v.namespace = c.namespace AND v.user_hash = c.user_hash AND v.name = c.name \
              AND v.version = ",
            $version,
            " WHERE c.namespace = ?1 AND c.user_hash = ?2 AND c.name = ?3"
        )
    };
}

fn meta_at(r: &Row<'_>, at: usize) -> rusqlite::Result<ItemMeta> {
    Ok(ItemMeta {
        current_version: r.get::<_, i64>(at)? as u64,
        oldest_version: r.get::<_, i64>(at + 1)? as u64,
        max_versions: r.get(at + 2)?,
        created_at: r.get(at + 3)?,
        updated_at: r.get(at + 4)?,
        pointer: r.get(at + 5)?,
        sealed_name: r.get(at + 6)?,
    })
}

fn version_at(r: &Row<'_>, at: usize, with_ciphertext: bool) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        version: r.get::<_, i64>(at)? as u64,
        created_at: r.get(at + 1)?,
        deleted_at: r.get(at + 2)?,
        destroyed: r.get::<_, i64>(at + 3)? != 0,
        ciphertext: if with_ciphertext {
            r.get(at + 4)?
        } else {
            None
        },
    })
}

fn read_meta(tx: &Transaction<'_>, key: &ItemKey) -> StorageResult<Option<ItemMeta>> {
    tx.prepare_cached(&format!(
        "SELECT {META_COLUMNS} FROM credentials WHERE {KEY_MATCH}"
    ))
    .and_then(|mut s| {
        s.query_row(params![key.namespace, key.user_hash, key.name], |r| {
            meta_at(r, 0)
        })
        .optional()
    })
    .map_err(map_err)
}

fn version_list(versions: &[u64]) -> String {
    versions
        .iter()
        .map(|v| (*v as i64).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl CredentialStore for SqliteStore {
    fn get_credential_meta(&self, key: &ItemKey) -> StorageResult<Option<ItemMeta>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {META_COLUMNS} FROM credentials WHERE {KEY_MATCH}"
            ))?
            .query_row(params![key.namespace, key.user_hash, key.name], |r| {
                meta_at(r, 0)
            })
            .optional()
        })
    }

    fn get_credential_version(
        &self,
        key: &ItemKey,
        version: Option<u64>,
    ) -> StorageResult<Option<(ItemMeta, VersionRow)>> {
        let row = |r: &rusqlite::Row<'_>| Ok((meta_at(r, 0)?, version_at(r, 7, true)?));
        self.read(|c| match version {
            None => c
                .prepare_cached(read_sql!(""))?
                .query_row(params![key.namespace, key.user_hash, key.name], row)
                .optional(),
            Some(v) => c
                .prepare_cached(read_sql!("", exact))?
                .query_row(
                    params![key.namespace, key.user_hash, key.name, v as i64],
                    row,
                )
                .optional(),
        })
    }

    fn get_credential_version_and_user(
        &self,
        key: &ItemKey,
        version: Option<u64>,
    ) -> StorageResult<Option<(ItemMeta, VersionRow, UserRow)>> {
        let row = |r: &rusqlite::Row<'_>| {
            Ok((meta_at(r, 0)?, version_at(r, 7, true)?, user_row_at(r, 12)?))
        };
        self.read(|c| match version {
            None => c
                .prepare_cached(read_sql!(user_columns!()))?
                .query_row(params![key.namespace, key.user_hash, key.name], row)
                .optional(),
            Some(v) => c
                .prepare_cached(read_sql!(user_columns!(), exact))?
                .query_row(
                    params![key.namespace, key.user_hash, key.name, v as i64],
                    row,
                )
                .optional(),
        })
    }

    fn put_credential_version(
        &self,
        key: &ItemKey,
        expected_current: Option<u64>,
        new: &NewVersion,
        seal: &SealFn<'_>,
        pointer: &PointerFn<'_>,
    ) -> StorageResult<ItemMeta> {
        self.write(|tx| put_version(tx, key, expected_current, new, seal, pointer))
    }

    fn put_credential_versions(
        &self,
        items: &[BatchWrite<'_>],
    ) -> StorageResult<Vec<StorageResult<ItemMeta>>> {
        self.write(|tx| {
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                tx.execute_batch("SAVEPOINT item").map_err(map_err)?;
                let result = put_version(
                    tx,
                    item.key,
                    item.expected_current,
                    item.new,
                    item.seal,
                    item.pointer,
                );
                match result {
                    Err(e @ (StorageError::Conflict(_) | StorageError::Aborted(_))) => {
                        tx.execute_batch("ROLLBACK TO item; RELEASE item")
                            .map_err(map_err)?;
                        results.push(Err(e));
                    }
                    Err(other) => return Err(other),
                    Ok(meta) => {
                        tx.execute_batch("RELEASE item").map_err(map_err)?;
                        results.push(Ok(meta));
                    }
                }
            }
            Ok(results)
        })
    }

    fn list_credential_versions(&self, key: &ItemKey) -> StorageResult<Vec<VersionRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT version, created_at, deleted_at, destroyed FROM credential_versions WHERE {KEY_MATCH} ORDER BY version"
            ))?
            .query_map(params![key.namespace, key.user_hash, key.name], |r| version_at(r, 0, false))?
            .collect()
        })
    }

    fn set_credential_deleted(
        &self,
        key: &ItemKey,
        versions: &[u64],
        deleted_at: Option<i64>,
    ) -> StorageResult<u64> {
        let list = version_list(versions);
        self.write(|tx| {
            let sql = format!(
                "UPDATE credential_versions SET deleted_at = ?4 WHERE {KEY_MATCH} AND destroyed = 0 \
                 AND deleted_at IS NOT ?4 AND version IN ({list})"
            );
            tx.execute(&sql, params![key.namespace, key.user_hash, key.name, deleted_at])
                .map(|n| n as u64)
                .map_err(map_err)
        })
    }

    fn destroy_credential_versions(&self, key: &ItemKey, versions: &[u64]) -> StorageResult<u64> {
        let list = version_list(versions);
        self.write(|tx| {
            let sql = format!(
                "UPDATE credential_versions SET destroyed = 1, ciphertext = NULL \
                 WHERE {KEY_MATCH} AND destroyed = 0 AND version IN ({list})"
            );
            tx.execute(&sql, params![key.namespace, key.user_hash, key.name])
                .map(|n| n as u64)
                .map_err(map_err)
        })
    }

    fn delete_credential(&self, key: &ItemKey) -> StorageResult<bool> {
        self.write(|tx| {
            let p = params![key.namespace, key.user_hash, key.name];
            tx.execute(
                &format!("DELETE FROM credential_versions WHERE {KEY_MATCH}"),
                p,
            )
            .map_err(map_err)?;
            let n = tx
                .execute(&format!("DELETE FROM credentials WHERE {KEY_MATCH}"), p)
                .map_err(map_err)?;
            Ok(n == 1)
        })
    }

    fn list_credentials(
        &self,
        namespace: &str,
        user_hash: &[u8],
        after: Option<&str>,
        limit: usize,
    ) -> StorageResult<Vec<(String, ItemMeta)>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT name, {META_COLUMNS} FROM credentials WHERE namespace = ?1 AND user_hash = ?2 AND name > ?3 \
                 AND EXISTS (SELECT 1 FROM users u WHERE u.namespace = ?1 AND u.user_hash = ?2) \
                 ORDER BY name LIMIT ?4"
            ))?
            .query_map(params![namespace, user_hash, after.unwrap_or(""), limit as i64], |r| {
                Ok((r.get(0)?, meta_at(r, 1)?))
            })?
            .collect()
        })
    }

    fn credentials_without_pointer(
        &self,
        after: Option<&ItemKey>,
        limit: usize,
    ) -> StorageResult<Vec<(ItemKey, u64)>> {
        let (ns, user, name) = ItemKey::cursor(after);
        self.read(|c| {
            c.prepare_cached(
                "SELECT namespace, user_hash, name, current_version FROM credentials \
                 WHERE pointer_mac IS NULL AND current_version > 0 AND (namespace, user_hash, name) > (?1, ?2, ?3) \
                 ORDER BY namespace, user_hash, name LIMIT ?4",
            )?
            .query_map(params![ns, user, name, limit as i64], |r| {
                Ok((
                    ItemKey {
                        namespace: r.get(0)?,
                        user_hash: r.get(1)?,
                        name: r.get(2)?,
                    },
                    r.get::<_, i64>(3)? as u64,
                ))
            })?
            .collect()
        })
    }

    fn set_credential_pointer(
        &self,
        key: &ItemKey,
        current_version: u64,
        pointer: &[u8],
    ) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                &format!(
                    "UPDATE credentials SET pointer_mac = ?5 WHERE {KEY_MATCH} AND current_version = ?4 \
                     AND pointer_mac IS NULL"
                ),
                params![key.namespace, key.user_hash, key.name, current_version as i64, pointer],
            )
            .map(|n| n == 1)
            .map_err(map_err)
        })
    }

    fn credential_pointers(
        &self,
        after: Option<&ItemKey>,
        limit: usize,
    ) -> StorageResult<Vec<CredentialPointer>> {
        let (ns, user, name) = ItemKey::cursor(after);
        self.read(|c| {
            c.prepare_cached(
                "SELECT namespace, user_hash, name, current_version, pointer_mac FROM credentials \
                 WHERE current_version > 0 AND (namespace, user_hash, name) > (?1, ?2, ?3) \
                 ORDER BY namespace, user_hash, name LIMIT ?4",
            )?
            .query_map(params![ns, user, name, limit as i64], |r| {
                Ok(CredentialPointer {
                    key: ItemKey {
                        namespace: r.get(0)?,
                        user_hash: r.get(1)?,
                        name: r.get(2)?,
                    },
                    current_version: r.get::<_, i64>(3)? as u64,
                    pointer: r.get(4)?,
                })
            })?
            .collect()
        })
    }

    fn replace_credential_pointer(
        &self,
        key: &ItemKey,
        current_version: u64,
        pointer: &[u8],
    ) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                &format!(
                    "UPDATE credentials SET pointer_mac = ?5 WHERE {KEY_MATCH} AND current_version = ?4"
                ),
                params![key.namespace, key.user_hash, key.name, current_version as i64, pointer],
            )
            .map(|n| n == 1)
            .map_err(map_err)
        })
    }

    fn credentials_with_plain_names(
        &self,
        after: Option<&ItemKey>,
        limit: usize,
    ) -> StorageResult<Vec<(ItemKey, ItemMeta)>> {
        let (ns, user, name) = ItemKey::cursor(after);
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT namespace, user_hash, name, {META_COLUMNS} FROM credentials \
                 WHERE sealed_name IS NULL AND current_version > 0 AND (namespace, user_hash, name) > (?1, ?2, ?3) \
                 ORDER BY namespace, user_hash, name LIMIT ?4"
            ))?
            .query_map(params![ns, user, name, limit as i64], |r| {
                Ok((
                    ItemKey {
                        namespace: r.get(0)?,
                        user_hash: r.get(1)?,
                        name: r.get(2)?,
                    },
                    meta_at(r, 3)?,
                ))
            })?
            .collect()
        })
    }

    fn seal_credential_name(
        &self,
        key: &ItemKey,
        name_id: &str,
        sealed_name: &[u8],
        pointer: &[u8],
    ) -> StorageResult<bool> {
        self.write(|tx| {
            let taken = tx
                .query_row(
                    &format!("SELECT 1 FROM credentials WHERE {KEY_MATCH}"),
                    params![key.namespace, key.user_hash, name_id],
                    |_| Ok(()),
                )
                .optional()
                .map_err(map_err)?
                .is_some();
            let renamed = !taken
                && tx
                    .execute(
                        &format!(
                            "UPDATE credentials SET name = ?4, sealed_name = ?5, pointer_mac = ?6 \
                             WHERE {KEY_MATCH} AND sealed_name IS NULL"
                        ),
                        params![
                            key.namespace,
                            key.user_hash,
                            key.name,
                            name_id,
                            sealed_name,
                            pointer
                        ],
                    )
                    .map_err(map_err)?
                    == 1;
            if renamed {
                tx.execute(
                    &format!("UPDATE credential_versions SET name = ?4 WHERE {KEY_MATCH}"),
                    params![key.namespace, key.user_hash, key.name, name_id],
                )
                .map_err(map_err)?;
                tx.execute(
                    &format!("UPDATE credential_status SET name = ?4, sealed_name = ?5 WHERE {KEY_MATCH}"),
                    params![key.namespace, key.user_hash, key.name, name_id, sealed_name],
                )
                .map_err(map_err)?;
            }
            Ok(renamed)
        })
    }

    fn set_credential_max_versions(&self, key: &ItemKey, max_versions: u32) -> StorageResult<bool> {
        self.write(|tx| {
            let Some(meta) = read_meta(tx, key)? else {
                return Ok(false);
            };
            let keep_from = strongroom_storage::oldest_kept(meta.current_version, max_versions);
            let p = params![key.namespace, key.user_hash, key.name];
            tx.prepare_cached(&format!(
                "DELETE FROM credential_versions WHERE {KEY_MATCH} AND version < ?4"
            ))
            .and_then(|mut s| s.execute(params![p[0], p[1], p[2], keep_from as i64]))
            .map_err(map_err)?;
            let oldest = tx
                .prepare_cached(&format!(
                    "SELECT MIN(version) FROM credential_versions WHERE {KEY_MATCH}"
                ))
                .and_then(|mut s| s.query_row(p, |r| r.get::<_, Option<i64>>(0)))
                .map_err(map_err)?
                .map_or(meta.current_version, |v| v as u64);
            tx.prepare_cached(&format!(
                "UPDATE credentials SET max_versions = ?4, oldest_version = ?5 WHERE {KEY_MATCH}"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    p[0],
                    p[1],
                    p[2],
                    max_versions.max(1),
                    oldest as i64
                ])
            })
            .map_err(map_err)?;
            Ok(true)
        })
    }
}

/// One credential write inside the caller's transaction (check-and-set, seal, prune).
fn put_version(
    tx: &Transaction<'_>,
    key: &ItemKey,
    expected_current: Option<u64>,
    new: &NewVersion,
    seal: &SealFn<'_>,
    pointer: &PointerFn<'_>,
) -> StorageResult<ItemMeta> {
    let existing = read_meta(tx, key)?;
    let current = existing.as_ref().map_or(0, |m| m.current_version);
    if let Some(expected) = expected_current {
        if current != expected {
            return Err(StorageError::Conflict(format!(
                "expected version {expected}, found {current}"
            )));
        }
    }
    let version = current + 1;
    let max_versions = new
        .max_versions
        .or(existing.as_ref().map(|m| m.max_versions))
        .unwrap_or(new.default_max_versions)
        .max(1);
    let ciphertext = seal(version).map_err(StorageError::Aborted)?;
    let pointer = pointer(version);
    let p = params![key.namespace, key.user_hash, key.name];
    tx.prepare_cached(
        "INSERT INTO credential_versions (namespace, user_hash, name, version, created_at, deleted_at, destroyed, ciphertext) \
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0, ?6)",
    )
    .and_then(|mut s| s.execute(params![p[0], p[1], p[2], version as i64, new.created_at, ciphertext]))
    .map_err(map_err)?;
    let keep_from = strongroom_storage::oldest_kept(version, max_versions);
    let mut oldest = existing.as_ref().map_or(version, |m| m.oldest_version);
    if oldest < keep_from {
        tx.prepare_cached(&format!(
            "DELETE FROM credential_versions WHERE {KEY_MATCH} AND version < ?4"
        ))
        .and_then(|mut s| s.execute(params![p[0], p[1], p[2], keep_from as i64]))
        .map_err(map_err)?;
        oldest = tx
            .prepare_cached(&format!(
                "SELECT MIN(version) FROM credential_versions WHERE {KEY_MATCH}"
            ))
            .and_then(|mut s| s.query_row(p, |r| r.get::<_, i64>(0)))
            .map_err(map_err)? as u64;
    }
    let created_at = existing.as_ref().map_or(new.created_at, |m| m.created_at);
    tx.prepare_cached(&format!(
        "INSERT INTO credentials (namespace, user_hash, name, {META_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT (namespace, user_hash, name) DO UPDATE SET current_version = excluded.current_version, \
         oldest_version = excluded.oldest_version, max_versions = excluded.max_versions, updated_at = excluded.updated_at, \
         pointer_mac = excluded.pointer_mac, sealed_name = excluded.sealed_name"
    ))
    .and_then(|mut s| {
        s.execute(params![p[0], p[1], p[2], version as i64, oldest as i64, max_versions, created_at, new.created_at, pointer, new.sealed_name])
    })
    .map_err(map_err)?;
    if let Some(on_write) = &new.status {
        crate::oauth::write_status(tx, &on_write.status)?;
        if let Some(event) = &on_write.event {
            crate::webhooks::emit_in(tx, event)?;
        }
    }
    Ok(ItemMeta {
        current_version: version,
        oldest_version: oldest,
        max_versions,
        created_at,
        updated_at: new.created_at,
        pointer: Some(pointer),
        sealed_name: new.sealed_name.clone(),
    })
}
