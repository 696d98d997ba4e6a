//! Versioned credentials on PostgreSQL. A write locks the credential's metadata row
//! (`SELECT … FOR UPDATE`, creating it first if needed), so concurrent writers on any number of
//! nodes are serialized by the database and check-and-set is exact.

use postgres::Row;
use strongroom_storage::{
    BatchWrite, CredentialPointer, CredentialStore, ItemKey, ItemMeta, NewVersion, PointerFn,
    SealFn, StorageError, StorageResult, UserRow, VersionRow,
};

use crate::connection::{BadColumn, Columns, PgStore, Tx};
use crate::users::{user_columns, user_row_at};

/// A version read (the current one when `$4` is null), with `$extra` columns after the twelve.
macro_rules! read_sql {
    ($extra:expr) => {
        concat!(
            "SELECT c.current_version, c.oldest_version, c.max_versions, c.created_at, c.updated_at, c.pointer_mac, c.sealed_name, \
                    v.version, v.created_at, v.deleted_at, v.destroyed, v.ciphertext",
            $extra,
            " FROM credentials c JOIN users u ON u.namespace = c.namespace AND u.user_hash = c.user_hash \
             JOIN credential_versions v \
               ON v.namespace = c.namespace AND v.user_hash = c.user_hash AND v.name = c.name \
              AND v.version = COALESCE($4::BIGINT, c.current_version) \
             WHERE c.namespace = $1 AND c.user_hash = $2 AND c.name = $3"
        )
    };
}

fn meta_at(r: &Row, at: usize) -> Result<ItemMeta, BadColumn> {
    Ok(ItemMeta {
        current_version: r.count(at)?,
        oldest_version: r.count(at + 1)?,
        max_versions: r.small(at + 2)?,
        created_at: r.col(at + 3)?,
        updated_at: r.col(at + 4)?,
        pointer: r.col(at + 5)?,
        sealed_name: r.col(at + 6)?,
    })
}

fn version_at(r: &Row, at: usize, with_ciphertext: bool) -> Result<VersionRow, BadColumn> {
    Ok(VersionRow {
        version: r.count(at)?,
        created_at: r.col(at + 1)?,
        deleted_at: r.col(at + 2)?,
        destroyed: r.col(at + 3)?,
        ciphertext: if with_ciphertext {
            r.col(at + 4)?
        } else {
            None
        },
    })
}

fn versions(list: &[u64]) -> Vec<i64> {
    list.iter().map(|v| *v as i64).collect()
}

/// Locks the metadata row, creating a placeholder (version 0, invisible until commit) if absent.
fn lock_meta(tx: &mut Tx<'_>, key: &ItemKey, now: i64) -> StorageResult<Option<ItemMeta>> {
    const SELECT: &str = "SELECT current_version, oldest_version, max_versions, created_at, updated_at, pointer_mac, sealed_name FROM credentials \
                          WHERE namespace = $1 AND user_hash = $2 AND name = $3 FOR UPDATE";
    let p: [&(dyn postgres::types::ToSql + Sync); 3] = [&key.namespace, &key.user_hash, &key.name];
    if let Some(row) = tx.query_opt(SELECT, &p)? {
        let meta = meta_at(&row, 0)?;
        return Ok((meta.current_version > 0).then_some(meta));
    }
    tx.execute(
        "INSERT INTO credentials (namespace, user_hash, name, current_version, oldest_version, max_versions, created_at, updated_at) \
         VALUES ($1, $2, $3, 0, 0, 1, $4, $4) ON CONFLICT DO NOTHING",
        &[&key.namespace, &key.user_hash, &key.name, &now],
    )?;
    let row = tx
        .query_opt(SELECT, &p)?
        .ok_or_else(|| StorageError::Backend("credential row vanished while locked".into()))?;
    let meta = meta_at(&row, 0)?;
    Ok((meta.current_version > 0).then_some(meta))
}

impl CredentialStore for PgStore {
    fn get_credential_meta(&self, key: &ItemKey) -> StorageResult<Option<ItemMeta>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT current_version, oldest_version, max_versions, created_at, updated_at, pointer_mac, sealed_name FROM credentials \
                 WHERE namespace = $1 AND user_hash = $2 AND name = $3 AND current_version > 0",
                &[&key.namespace, &key.user_hash, &key.name],
            )?
            .map(|r| meta_at(&r, 0))
            .transpose()?)
        })
    }

    fn get_credential_version(
        &self,
        key: &ItemKey,
        version: Option<u64>,
    ) -> StorageResult<Option<(ItemMeta, VersionRow)>> {
        let version = version.map(|v| v as i64);
        self.read(|c| {
            Ok(c.query_opt(
                read_sql!(""),
                &[&key.namespace, &key.user_hash, &key.name, &version],
            )?
            .map(|r| Ok::<_, BadColumn>((meta_at(&r, 0)?, version_at(&r, 7, true)?)))
            .transpose()?)
        })
    }

    fn get_credential_version_and_user(
        &self,
        key: &ItemKey,
        version: Option<u64>,
    ) -> StorageResult<Option<(ItemMeta, VersionRow, UserRow)>> {
        let version = version.map(|v| v as i64);
        self.read(|c| {
            Ok(c.query_opt(
                read_sql!(user_columns!()),
                &[&key.namespace, &key.user_hash, &key.name, &version],
            )?
            .map(|r| {
                Ok::<_, BadColumn>((
                    meta_at(&r, 0)?,
                    version_at(&r, 7, true)?,
                    user_row_at(&r, 12)?,
                ))
            })
            .transpose()?)
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
                tx.execute_dynamic("SAVEPOINT item", &[])?;
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
                        tx.execute_dynamic("ROLLBACK TO SAVEPOINT item", &[])?;
                        tx.execute_dynamic("RELEASE SAVEPOINT item", &[])?;
                        results.push(Err(e));
                    }
                    Err(other) => return Err(other),
                    Ok(meta) => {
                        tx.execute_dynamic("RELEASE SAVEPOINT item", &[])?;
                        results.push(Ok(meta));
                    }
                }
            }
            Ok(results)
        })
    }

    fn list_credential_versions(&self, key: &ItemKey) -> StorageResult<Vec<VersionRow>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT version, created_at, deleted_at, destroyed FROM credential_versions \
                 WHERE namespace = $1 AND user_hash = $2 AND name = $3 ORDER BY version",
                &[&key.namespace, &key.user_hash, &key.name],
            )?
            .iter()
            .map(|r| version_at(r, 0, false))
            .collect::<Result<_, _>>()?)
        })
    }

    fn set_credential_deleted(
        &self,
        key: &ItemKey,
        list: &[u64],
        deleted_at: Option<i64>,
    ) -> StorageResult<u64> {
        let list = versions(list);
        self.write(|tx| {
            tx.execute(
                "UPDATE credential_versions SET deleted_at = $4 WHERE namespace = $1 AND user_hash = $2 AND name = $3 \
                 AND destroyed = FALSE AND deleted_at IS DISTINCT FROM $4 AND version = ANY($5)",
                &[&key.namespace, &key.user_hash, &key.name, &deleted_at, &list],
            )
        })
    }

    fn destroy_credential_versions(&self, key: &ItemKey, list: &[u64]) -> StorageResult<u64> {
        let list = versions(list);
        self.write(|tx| {
            tx.execute(
                "UPDATE credential_versions SET destroyed = TRUE, ciphertext = NULL WHERE namespace = $1 AND user_hash = $2 AND name = $3 \
                 AND destroyed = FALSE AND version = ANY($4)",
                &[&key.namespace, &key.user_hash, &key.name, &list],
            )
        })
    }

    fn delete_credential(&self, key: &ItemKey) -> StorageResult<bool> {
        self.write(|tx| {
            let p: [&(dyn postgres::types::ToSql + Sync); 3] = [&key.namespace, &key.user_hash, &key.name];
            tx.execute("DELETE FROM credential_versions WHERE namespace = $1 AND user_hash = $2 AND name = $3", &p)?;
            Ok(tx.execute("DELETE FROM credentials WHERE namespace = $1 AND user_hash = $2 AND name = $3 AND current_version > 0", &p)? == 1)
        })
    }

    fn list_credentials(
        &self,
        namespace: &str,
        user_hash: &[u8],
        after: Option<&str>,
        limit: usize,
    ) -> StorageResult<Vec<(String, ItemMeta)>> {
        let after = after.unwrap_or("");
        self.read(|c| {
            Ok(c.query(
                "SELECT name, current_version, oldest_version, max_versions, created_at, updated_at, pointer_mac, sealed_name FROM credentials \
                 WHERE namespace = $1 AND user_hash = $2 AND name > $3 AND current_version > 0 \
                 AND EXISTS (SELECT 1 FROM users u WHERE u.namespace = $1 AND u.user_hash = $2) ORDER BY name LIMIT $4",
                &[&namespace, &user_hash, &after, &(limit as i64)],
            )?
            .iter()
            .map(|r| Ok((r.col(0)?, meta_at(r, 1)?)))
            .collect::<Result<_, BadColumn>>()?)
        })
    }

    fn credentials_without_pointer(
        &self,
        after: Option<&ItemKey>,
        limit: usize,
    ) -> StorageResult<Vec<(ItemKey, u64)>> {
        let (ns, user, name) = ItemKey::cursor(after);
        self.read(|c| {
            Ok(c.query(
                "SELECT namespace, user_hash, name, current_version FROM credentials \
                 WHERE pointer_mac IS NULL AND current_version > 0 AND (namespace, user_hash, name) > ($1, $2, $3) \
                 ORDER BY namespace, user_hash, name LIMIT $4",
                &[&ns, &user, &name, &(limit as i64)],
            )?
            .iter()
            .map(|r| {
                Ok((
                    ItemKey { namespace: r.col(0)?, user_hash: r.col(1)?, name: r.col(2)? },
                    r.count(3)?,
                ))
            })
            .collect::<Result<_, BadColumn>>()?)
        })
    }

    fn set_credential_pointer(
        &self,
        key: &ItemKey,
        current_version: u64,
        pointer: &[u8],
    ) -> StorageResult<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE credentials SET pointer_mac = $5 WHERE namespace = $1 AND user_hash = $2 AND name = $3 \
                 AND current_version = $4 AND pointer_mac IS NULL",
                &[&key.namespace, &key.user_hash, &key.name, &(current_version as i64), &pointer],
            )? == 1)
        })
    }

    fn credential_pointers(
        &self,
        after: Option<&ItemKey>,
        limit: usize,
    ) -> StorageResult<Vec<CredentialPointer>> {
        let (ns, user, name) = ItemKey::cursor(after);
        self.read(|c| {
            Ok(c.query(
                "SELECT namespace, user_hash, name, current_version, pointer_mac FROM credentials \
                 WHERE current_version > 0 AND (namespace, user_hash, name) > ($1, $2, $3) \
                 ORDER BY namespace, user_hash, name LIMIT $4",
                &[&ns, &user, &name, &(limit as i64)],
            )?
            .iter()
            .map(|r| {
                Ok(CredentialPointer {
                    key: ItemKey {
                        namespace: r.col(0)?,
                        user_hash: r.col(1)?,
                        name: r.col(2)?,
                    },
                    current_version: r.count(3)?,
                    pointer: r.col(4)?,
                })
            })
            .collect::<Result<_, BadColumn>>()?)
        })
    }

    fn replace_credential_pointer(
        &self,
        key: &ItemKey,
        current_version: u64,
        pointer: &[u8],
    ) -> StorageResult<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE credentials SET pointer_mac = $5 WHERE namespace = $1 AND user_hash = $2 AND name = $3 \
                 AND current_version = $4",
                &[&key.namespace, &key.user_hash, &key.name, &(current_version as i64), &pointer],
            )? == 1)
        })
    }

    fn credentials_with_plain_names(
        &self,
        after: Option<&ItemKey>,
        limit: usize,
    ) -> StorageResult<Vec<(ItemKey, ItemMeta)>> {
        let (ns, user, name) = ItemKey::cursor(after);
        self.read(|c| {
            Ok(c.query(
                "SELECT namespace, user_hash, name, current_version, oldest_version, max_versions, created_at, updated_at, pointer_mac, sealed_name \
                 FROM credentials WHERE sealed_name IS NULL AND current_version > 0 AND (namespace, user_hash, name) > ($1, $2, $3) \
                 ORDER BY namespace, user_hash, name LIMIT $4",
                &[&ns, &user, &name, &(limit as i64)],
            )?
            .iter()
            .map(|r| {
                Ok((
                    ItemKey { namespace: r.col(0)?, user_hash: r.col(1)?, name: r.col(2)? },
                    meta_at(r, 3)?,
                ))
            })
            .collect::<Result<_, BadColumn>>()?)
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
                .query_opt(
                    "SELECT 1 FROM credentials WHERE namespace = $1 AND user_hash = $2 AND name = $3",
                    &[&key.namespace, &key.user_hash, &name_id],
                )?
                .is_some();
            let renamed = !taken
                && tx.execute(
                    "UPDATE credentials SET name = $4, sealed_name = $5, pointer_mac = $6 \
                     WHERE namespace = $1 AND user_hash = $2 AND name = $3 AND sealed_name IS NULL",
                    &[&key.namespace, &key.user_hash, &key.name, &name_id, &sealed_name, &pointer],
                )? == 1;
            if renamed {
                tx.execute(
                    "UPDATE credential_versions SET name = $4 WHERE namespace = $1 AND user_hash = $2 AND name = $3",
                    &[&key.namespace, &key.user_hash, &key.name, &name_id],
                )?;
                tx.execute(
                    "UPDATE credential_status SET name = $4, sealed_name = $5 WHERE namespace = $1 AND user_hash = $2 AND name = $3",
                    &[&key.namespace, &key.user_hash, &key.name, &name_id, &sealed_name],
                )?;
            }
            Ok(renamed)
        })
    }

    fn set_credential_max_versions(&self, key: &ItemKey, max_versions: u32) -> StorageResult<bool> {
        self.write(|tx| {
            let Some(meta) = lock_meta(tx, key, 0)? else {
                // `lock_meta` left an invisible placeholder: the transaction is rolled back by
                // the caller only on error, so remove it here.
                tx.execute(
                    "DELETE FROM credentials WHERE namespace = $1 AND user_hash = $2 AND name = $3 AND current_version = 0",
                    &[&key.namespace, &key.user_hash, &key.name],
                )?;
                return Ok(false);
            };
            let keep_from = strongroom_storage::oldest_kept(meta.current_version, max_versions) as i64;
            tx.execute(
                "DELETE FROM credential_versions WHERE namespace = $1 AND user_hash = $2 AND name = $3 AND version < $4",
                &[&key.namespace, &key.user_hash, &key.name, &keep_from],
            )?;
            let oldest = tx
                .query_opt(
                    "SELECT MIN(version) FROM credential_versions WHERE namespace = $1 AND user_hash = $2 AND name = $3",
                    &[&key.namespace, &key.user_hash, &key.name],
                )?
                .map(|r| r.col::<Option<i64>>(0))
                .transpose()?
                .flatten()
                .unwrap_or(meta.current_version as i64);
            tx.execute(
                "UPDATE credentials SET max_versions = $4, oldest_version = $5 WHERE namespace = $1 AND user_hash = $2 AND name = $3",
                &[&key.namespace, &key.user_hash, &key.name, &i64::from(max_versions.max(1)), &oldest],
            )?;
            Ok(true)
        })
    }
}

/// One credential write inside the caller's transaction (lock, check-and-set, seal, prune).
fn put_version(
    tx: &mut Tx<'_>,
    key: &ItemKey,
    expected_current: Option<u64>,
    new: &NewVersion,
    seal: &SealFn<'_>,
    pointer: &PointerFn<'_>,
) -> StorageResult<ItemMeta> {
    let existing = lock_meta(tx, key, new.created_at)?;
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
    tx.execute(
        "INSERT INTO credential_versions (namespace, user_hash, name, version, created_at, deleted_at, destroyed, ciphertext) \
         VALUES ($1, $2, $3, $4, $5, NULL, FALSE, $6)",
        &[&key.namespace, &key.user_hash, &key.name, &(version as i64), &new.created_at, &ciphertext],
    )?;
    let keep_from = strongroom_storage::oldest_kept(version, max_versions);
    let mut oldest = existing.as_ref().map_or(version, |m| m.oldest_version);
    if oldest < keep_from {
        tx.execute(
            "DELETE FROM credential_versions WHERE namespace = $1 AND user_hash = $2 AND name = $3 AND version < $4",
            &[&key.namespace, &key.user_hash, &key.name, &(keep_from as i64)],
        )?;
        oldest = tx
            .query_opt(
                "SELECT MIN(version) FROM credential_versions WHERE namespace = $1 AND user_hash = $2 AND name = $3",
                &[&key.namespace, &key.user_hash, &key.name],
            )?
            .map(|r| r.col::<Option<i64>>(0))
            .transpose()?
            .flatten()
            .unwrap_or(version as i64) as u64;
    }
    let created_at = existing.as_ref().map_or(new.created_at, |m| m.created_at);
    tx.execute(
        "UPDATE credentials SET current_version = $4, oldest_version = $5, max_versions = $6, created_at = $7, updated_at = $8, pointer_mac = $9, \
         sealed_name = $10 WHERE namespace = $1 AND user_hash = $2 AND name = $3",
        &[&key.namespace, &key.user_hash, &key.name, &(version as i64), &(oldest as i64), &i64::from(max_versions), &created_at, &new.created_at, &pointer, &new.sealed_name],
    )?;
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
