//! Records on PostgreSQL: a write locks the record row (`FOR UPDATE`) for check-and-set and
//! replaces its keyed-hash index entries; a partial unique index enforces unique fields.
//! Expired records are never returned and are swept in batches.

use postgres::Row;
use strongroom_storage::{
    RecordKey, RecordLookup, RecordRow, RecordStore, RecordWrite, SealFn, StorageError,
    StorageResult,
};

use crate::connection::{BadColumn, Columns, PgStore, Tx};
use crate::users::{user_columns, user_row_at};

fn record_row(r: &Row) -> Result<RecordRow, BadColumn> {
    record_row_at(r, 0)
}

/// A record from seven columns (user_hash, key, version, expires_at, updated_at, ciphertext,
/// sealed_key) starting at column `at`.
fn record_row_at(r: &Row, at: usize) -> Result<RecordRow, BadColumn> {
    Ok(RecordRow {
        user_hash: r.col(at)?,
        key: r.col(at + 1)?,
        version: r.count(at + 2)?,
        expires_at: r.col(at + 3)?,
        updated_at: r.col(at + 4)?,
        ciphertext: r.col(at + 5)?,
        sealed_key: r.col(at + 6)?,
    })
}

/// The look-up's rows: the settings in the first column of every row, and a record with its
/// owner after it (absent in the single row of a look-up that found nothing).
fn lookup_rows(rows: &[Row]) -> Result<RecordLookup, BadColumn> {
    let mut lookup = RecordLookup {
        settings: None,
        found: Vec::with_capacity(rows.len()),
    };
    for r in rows {
        lookup.settings = r.col(0)?;
        if r.col::<Option<Vec<u8>>>(1)?.is_some() {
            lookup
                .found
                .push((record_row_at(r, 1)?, user_row_at(r, 8)?));
        }
    }
    Ok(lookup)
}

fn delete_entries(tx: &mut Tx<'_>, k: &RecordKey) -> StorageResult<()> {
    tx.execute(
        "DELETE FROM record_index WHERE namespace = $1 AND collection = $2 AND user_hash = $3 AND key = $4",
        &[&k.namespace, &k.collection, &k.user_hash, &k.key],
    )?;
    Ok(())
}

impl RecordStore for PgStore {
    fn put_collection(
        &self,
        namespace: &str,
        name: &str,
        settings: &[u8],
        now: i64,
    ) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO collections (namespace, name, settings, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (namespace, name) DO UPDATE SET settings = excluded.settings",
                &[&namespace, &name, &settings, &now],
            )?;
            Ok(())
        })
    }

    fn get_collection(&self, namespace: &str, name: &str) -> StorageResult<Option<Vec<u8>>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT settings FROM collections WHERE namespace = $1 AND name = $2",
                &[&namespace, &name],
            )?
            .map(|r| r.col(0))
            .transpose()?)
        })
    }

    fn list_collections(&self, namespace: &str) -> StorageResult<Vec<(String, Vec<u8>)>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT name, settings FROM collections WHERE namespace = $1 ORDER BY name",
                &[&namespace],
            )?
            .iter()
            .map(|r| Ok((r.col(0)?, r.col(1)?)))
            .collect::<Result<_, BadColumn>>()?)
        })
    }

    fn put_record(&self, w: &RecordWrite, seal: &SealFn<'_>) -> StorageResult<u64> {
        let k = &w.key;
        self.write(|tx| {
            let current = tx.query_opt(
                "SELECT version, expires_at FROM records WHERE namespace = $1 AND collection = $2 AND user_hash = $3 AND key = $4 FOR UPDATE",
                &[&k.namespace, &k.collection, &k.user_hash, &k.key],
            )?;
            let live = match current.map(|r| Ok::<_, BadColumn>((r.col::<i64>(0)?, r.col::<Option<i64>>(1)?))).transpose()? {
                Some((version, expires)) if expires.is_none_or(|e| e > w.now) => version as u64,
                _ => 0,
            };
            if let Some(expected) = w.expected_version {
                if expected != live {
                    return Err(StorageError::Conflict(format!("expected version {expected}, found {live}")));
                }
            }
            let version = live + 1;
            let ciphertext = seal(version).map_err(StorageError::Aborted)?;
            tx.execute(
                "INSERT INTO records (namespace, collection, user_hash, key, version, expires_at, updated_at, ciphertext, sealed_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (namespace, collection, user_hash, key) DO UPDATE SET \
                 version = excluded.version, expires_at = excluded.expires_at, updated_at = excluded.updated_at, ciphertext = excluded.ciphertext, \
                 sealed_key = excluded.sealed_key",
                &[&k.namespace, &k.collection, &k.user_hash, &k.key, &(version as i64), &w.expires_at, &w.now, &ciphertext, &w.sealed_key],
            )
            .map_err(|e| match e {
                // Two first writes of one record raced: report it like a lost check-and-set.
                StorageError::AlreadyExists => StorageError::Conflict("the record was created concurrently".into()),
                other => other,
            })?;
            delete_entries(tx, k)?;
            for e in &w.index {
                if e.unique {
                    // A value held only by an expired record is free again.
                    tx.execute(
                        "DELETE FROM record_index i WHERE i.namespace = $1 AND i.collection = $2 AND i.field = $3 AND i.value_hash = $4 \
                         AND i.is_unique AND EXISTS (SELECT 1 FROM records r WHERE r.namespace = i.namespace \
                         AND r.collection = i.collection AND r.user_hash = i.user_hash AND r.key = i.key \
                         AND r.expires_at IS NOT NULL AND r.expires_at <= $5)",
                        &[&k.namespace, &k.collection, &e.field, &e.value_hash, &w.now],
                    )?;
                }
                tx.execute(
                    "INSERT INTO record_index (namespace, collection, field, value_hash, user_hash, key, is_unique) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[&k.namespace, &k.collection, &e.field, &e.value_hash, &k.user_hash, &k.key, &e.unique],
                )
                .map_err(|err| match err {
                    StorageError::AlreadyExists => StorageError::UniqueViolation(e.field.clone()),
                    other => other,
                })?;
            }
            Ok(version)
        })
    }

    fn get_record(&self, k: &RecordKey, now: i64) -> StorageResult<Option<RecordRow>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT r.user_hash, r.key, r.version, r.expires_at, r.updated_at, r.ciphertext, r.sealed_key FROM records r \
                 WHERE r.namespace = $1 AND r.collection = $2 AND r.user_hash = $3 AND r.key = $4 \
                 AND (r.expires_at IS NULL OR r.expires_at > $5) \
                 AND EXISTS (SELECT 1 FROM users u WHERE u.namespace = r.namespace AND u.user_hash = r.user_hash)",
                &[&k.namespace, &k.collection, &k.user_hash, &k.key, &now],
            )?
            .map(|r| record_row(&r))
            .transpose()?)
        })
    }

    fn delete_record(&self, k: &RecordKey) -> StorageResult<bool> {
        self.write(|tx| {
            delete_entries(tx, k)?;
            Ok(tx.execute(
                "DELETE FROM records WHERE namespace = $1 AND collection = $2 AND user_hash = $3 AND key = $4",
                &[&k.namespace, &k.collection, &k.user_hash, &k.key],
            )? == 1)
        })
    }

    fn list_records(
        &self,
        namespace: &str,
        collection: &str,
        user_hash: &[u8],
        after: Option<&str>,
        limit: usize,
        now: i64,
    ) -> StorageResult<Vec<RecordRow>> {
        let after = after.unwrap_or("");
        let limit = limit as i64;
        self.read(|c| {
            Ok(c.query(
                "SELECT r.user_hash, r.key, r.version, r.expires_at, r.updated_at, r.ciphertext, r.sealed_key FROM records r \
                 WHERE r.namespace = $1 AND r.collection = $2 AND r.user_hash = $3 AND r.key > $4 \
                 AND (r.expires_at IS NULL OR r.expires_at > $5) \
                 AND EXISTS (SELECT 1 FROM users u WHERE u.namespace = r.namespace AND u.user_hash = r.user_hash) \
                 ORDER BY r.key LIMIT $6",
                &[&namespace, &collection, &user_hash, &after, &now, &limit],
            )?
            .iter()
            .map(record_row)
            .collect::<Result<_, _>>()?)
        })
    }

    fn lookup_records(
        &self,
        namespace: &str,
        collection: &str,
        field: &str,
        value_hash: &[u8],
        now: i64,
        limit: usize,
    ) -> StorageResult<RecordLookup> {
        let limit = limit as i64;
        // One round trip: the settings, and each record holding the value with its owner (the
        // `LEFT JOIN` keeps the settings when nothing matches).
        self.read(|c| {
            let rows = c.query(
                concat!(
                "SELECT (SELECT settings FROM collections WHERE namespace = $1 AND name = $2), found.* FROM (SELECT 1) one \
                 LEFT JOIN (SELECT r.user_hash, r.key, r.version, r.expires_at, r.updated_at, r.ciphertext, r.sealed_key",
                user_columns!(),
                " FROM record_index i \
                 JOIN records r ON r.namespace = i.namespace AND r.collection = i.collection AND r.user_hash = i.user_hash AND r.key = i.key \
                 JOIN users u ON u.namespace = r.namespace AND u.user_hash = r.user_hash \
                 WHERE i.namespace = $1 AND i.collection = $2 AND i.field = $3 AND i.value_hash = $4 \
                 AND (r.expires_at IS NULL OR r.expires_at > $5) \
                 ORDER BY r.user_hash, r.key LIMIT $6) found ON true"
                ),
                &[&namespace, &collection, &field, &value_hash, &now, &limit],
            )?;
            Ok(lookup_rows(&rows)?)
        })
    }

    fn purge_expired_records(&self, now: i64, limit: usize) -> StorageResult<u64> {
        let limit = limit as i64;
        self.write(|tx| {
            tx.execute(
                "DELETE FROM record_index i USING (SELECT namespace, collection, user_hash, key FROM records \
                 WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2) e \
                 WHERE i.namespace = e.namespace AND i.collection = e.collection AND i.user_hash = e.user_hash AND i.key = e.key",
                &[&now, &limit],
            )?;
            tx.execute(
                "DELETE FROM records WHERE (namespace, collection, user_hash, key) IN \
                 (SELECT namespace, collection, user_hash, key FROM records WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2)",
                &[&now, &limit],
            )
        })
    }

    fn records_with_plain_keys(
        &self,
        after: Option<&RecordKey>,
        limit: usize,
    ) -> StorageResult<Vec<RecordKey>> {
        let (ns, collection, user, key) = match after {
            Some(k) => (
                k.namespace.as_str(),
                k.collection.as_str(),
                k.user_hash.as_slice(),
                k.key.as_str(),
            ),
            None => ("", "", &[][..], ""),
        };
        self.read(|c| {
            Ok(c.query(
                "SELECT namespace, collection, user_hash, key FROM records WHERE sealed_key IS NULL \
                 AND (namespace, collection, user_hash, key) > ($1, $2, $3, $4) ORDER BY namespace, collection, user_hash, key LIMIT $5",
                &[&ns, &collection, &user, &key, &(limit as i64)],
            )?
            .iter()
            .map(|r| Ok(RecordKey { namespace: r.col(0)?, collection: r.col(1)?, user_hash: r.col(2)?, key: r.col(3)? }))
            .collect::<Result<_, BadColumn>>()?)
        })
    }

    fn seal_record_key(
        &self,
        k: &RecordKey,
        key_id: &str,
        sealed_key: &[u8],
    ) -> StorageResult<bool> {
        self.write(|tx| {
            let taken = tx
                .query_opt(
                    "SELECT 1 FROM records WHERE namespace = $1 AND collection = $2 AND user_hash = $3 AND key = $4",
                    &[&k.namespace, &k.collection, &k.user_hash, &key_id],
                )?
                .is_some();
            let renamed = !taken
                && tx.execute(
                    "UPDATE records SET key = $5, sealed_key = $6 WHERE namespace = $1 AND collection = $2 AND user_hash = $3 \
                     AND key = $4 AND sealed_key IS NULL",
                    &[&k.namespace, &k.collection, &k.user_hash, &k.key, &key_id, &sealed_key],
                )? == 1;
            if renamed {
                tx.execute(
                    "UPDATE record_index SET key = $5 WHERE namespace = $1 AND collection = $2 AND user_hash = $3 AND key = $4",
                    &[&k.namespace, &k.collection, &k.user_hash, &k.key, &key_id],
                )?;
            }
            Ok(renamed)
        })
    }
}
