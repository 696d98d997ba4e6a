//! Records on SQLite: one immediate transaction per write (check-and-set against the live
//! version, replace the keyed-hash index entries); a partial unique index enforces unique
//! fields. Expired records are never returned and are swept in batches.

use std::sync::LazyLock;

use rusqlite::{params, OptionalExtension, Row, Transaction};
use strongroom_storage::{
    RecordKey, RecordLookup, RecordRow, RecordStore, RecordWrite, SealFn, StorageError,
    StorageResult,
};

use crate::connection::{map_err, SqliteStore};
use crate::users::{user_columns, user_row_at};

const COLUMNS: &str =
    "r.user_hash, r.key, r.version, r.expires_at, r.updated_at, r.ciphertext, r.sealed_key";
const LIVE: &str = "(r.expires_at IS NULL OR r.expires_at > ?) \
    AND EXISTS (SELECT 1 FROM users u WHERE u.namespace = r.namespace AND u.user_hash = r.user_hash)";

/// The equality look-up: the collection's settings (a first row, when the collection exists),
/// then each live record holding the value with its owner's row — one statement, streamed
/// (`UNION ALL`: a `LEFT JOIN` onto the matches made SQLite materialise them first).
/// `CROSS JOIN` fixes the join order (SQLite's documented hint): from the index entries of this
/// value, then each record, then its owner. Left to itself (no statistics), the planner walked
/// every record of the collection in key order to save a sort — a look-up cost the collection's
/// size (300 look-ups/s at 5,000 documents, BENCHMARKS.md). The index's primary key already
/// orders its entries by (user_hash, key). Built once, not per look-up.
pub(crate) fn lookup_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT settings{} FROM collections WHERE namespace = ?1 AND name = ?2 \
             UNION ALL SELECT * FROM (SELECT NULL, {COLUMNS}{} FROM record_index i \
             CROSS JOIN records r ON r.namespace = i.namespace AND r.collection = i.collection \
             AND r.user_hash = i.user_hash AND r.key = i.key \
             CROSS JOIN users u ON u.namespace = r.namespace AND u.user_hash = r.user_hash \
             WHERE i.namespace = ?1 AND i.collection = ?2 AND i.field = ?3 AND i.value_hash = ?4 \
             AND (r.expires_at IS NULL OR r.expires_at > ?5) \
             ORDER BY i.user_hash, i.key LIMIT ?6)",
            ", NULL".repeat(LOOKUP_RECORD_COLUMNS),
            user_columns!()
        )
    });
    &SQL
}

/// The columns of a record and its owner in a look-up row (after the settings column).
const LOOKUP_RECORD_COLUMNS: usize = 7 + 6;

/// The look-up's rows: the settings row (its record columns empty), and each record with its
/// owner (its settings column empty).
fn lookup_rows(rows: &mut rusqlite::Rows<'_>) -> rusqlite::Result<RecordLookup> {
    let mut lookup = RecordLookup {
        settings: None,
        found: Vec::new(),
    };
    while let Some(r) = rows.next()? {
        if r.get_ref(1)? == rusqlite::types::ValueRef::Null {
            lookup.settings = r.get(0)?;
        } else {
            lookup
                .found
                .push((record_row_at(r, 1)?, user_row_at(r, 8)?));
        }
    }
    Ok(lookup)
}

fn record_row(r: &Row<'_>) -> rusqlite::Result<RecordRow> {
    record_row_at(r, 0)
}

/// A record from the [`COLUMNS`] starting at column `at`.
fn record_row_at(r: &Row<'_>, at: usize) -> rusqlite::Result<RecordRow> {
    Ok(RecordRow {
        user_hash: r.get(at)?,
        key: r.get(at + 1)?,
        version: r.get::<_, i64>(at + 2)? as u64,
        expires_at: r.get(at + 3)?,
        updated_at: r.get(at + 4)?,
        ciphertext: r.get(at + 5)?,
        sealed_key: r.get(at + 6)?,
    })
}

fn delete_entries(tx: &Transaction<'_>, k: &RecordKey) -> StorageResult<()> {
    tx.prepare_cached(
        "DELETE FROM record_index WHERE namespace = ?1 AND collection = ?2 AND user_hash = ?3 AND key = ?4",
    )
    .and_then(|mut s| s.execute(params![k.namespace, k.collection, k.user_hash, k.key]))
    .map_err(map_err)?;
    Ok(())
}

impl RecordStore for SqliteStore {
    fn put_collection(
        &self,
        namespace: &str,
        name: &str,
        settings: &[u8],
        now: i64,
    ) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO collections (namespace, name, settings, created_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (namespace, name) DO UPDATE SET settings = excluded.settings",
                params![namespace, name, settings, now],
            )
            .map(|_| ())
            .map_err(map_err)
        })
    }

    fn get_collection(&self, namespace: &str, name: &str) -> StorageResult<Option<Vec<u8>>> {
        self.read(|c| {
            c.prepare_cached("SELECT settings FROM collections WHERE namespace = ?1 AND name = ?2")?
                .query_row(params![namespace, name], |r| r.get(0))
                .optional()
        })
    }

    fn list_collections(&self, namespace: &str) -> StorageResult<Vec<(String, Vec<u8>)>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT name, settings FROM collections WHERE namespace = ?1 ORDER BY name",
            )?
            .query_map([namespace], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
        })
    }

    fn put_record(&self, w: &RecordWrite, seal: &SealFn<'_>) -> StorageResult<u64> {
        let k = &w.key;
        self.write(|tx| {
            let current: Option<(i64, Option<i64>)> = tx
                .prepare_cached(
                    "SELECT version, expires_at FROM records WHERE namespace = ?1 AND collection = ?2 AND user_hash = ?3 AND key = ?4",
                )
                .and_then(|mut s| s.query_row(params![k.namespace, k.collection, k.user_hash, k.key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                .map_err(map_err)?;
            let live = match current {
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
            tx.prepare_cached(
                "INSERT INTO records (namespace, collection, user_hash, key, version, expires_at, updated_at, ciphertext, sealed_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (namespace, collection, user_hash, key) DO UPDATE SET \
                 version = excluded.version, expires_at = excluded.expires_at, updated_at = excluded.updated_at, ciphertext = excluded.ciphertext, \
                 sealed_key = excluded.sealed_key",
            )
            .and_then(|mut s| s.execute(params![k.namespace, k.collection, k.user_hash, k.key, version as i64, w.expires_at, w.now, ciphertext, w.sealed_key]))
            .map_err(map_err)?;
            delete_entries(tx, k)?;
            for e in &w.index {
                if e.unique {
                    // A value held only by an expired record is free again.
                    tx.prepare_cached(
                        "DELETE FROM record_index WHERE namespace = ?1 AND collection = ?2 AND field = ?3 AND value_hash = ?4 \
                         AND is_unique = 1 AND EXISTS (SELECT 1 FROM records r WHERE r.namespace = record_index.namespace \
                         AND r.collection = record_index.collection AND r.user_hash = record_index.user_hash \
                         AND r.key = record_index.key AND r.expires_at IS NOT NULL AND r.expires_at <= ?5)",
                    )
                    .and_then(|mut s| s.execute(params![k.namespace, k.collection, e.field, e.value_hash, w.now]))
                    .map_err(map_err)?;
                }
                tx.prepare_cached(
                    "INSERT INTO record_index (namespace, collection, field, value_hash, user_hash, key, is_unique) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut s| s.execute(params![k.namespace, k.collection, e.field, e.value_hash, k.user_hash, k.key, e.unique]))
                .map_err(|err| match map_err(err) {
                    StorageError::AlreadyExists => StorageError::UniqueViolation(e.field.clone()),
                    other => other,
                })?;
            }
            Ok(version)
        })
    }

    fn get_record(&self, k: &RecordKey, now: i64) -> StorageResult<Option<RecordRow>> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM records r WHERE r.namespace = ? AND r.collection = ? AND r.user_hash = ? AND r.key = ? AND {LIVE}"
            ))?
            .query_row(params![k.namespace, k.collection, k.user_hash, k.key, now], record_row)
            .optional()
        })
    }

    fn delete_record(&self, k: &RecordKey) -> StorageResult<bool> {
        self.write(|tx| {
            delete_entries(tx, k)?;
            tx.execute(
                "DELETE FROM records WHERE namespace = ?1 AND collection = ?2 AND user_hash = ?3 AND key = ?4",
                params![k.namespace, k.collection, k.user_hash, k.key],
            )
            .map(|n| n == 1)
            .map_err(map_err)
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
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM records r WHERE r.namespace = ? AND r.collection = ? AND r.user_hash = ? AND r.key > ? \
                 AND {LIVE} ORDER BY r.key LIMIT ?"
            ))?
            .query_map(params![namespace, collection, user_hash, after.unwrap_or(""), now, limit as i64], record_row)?
            .collect()
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
        self.read(|c| {
            let mut statement = c.prepare_cached(lookup_sql())?;
            let mut rows = statement.query(params![
                namespace,
                collection,
                field,
                value_hash,
                now,
                limit as i64
            ])?;
            lookup_rows(&mut rows)
        })
    }

    fn purge_expired_records(&self, now: i64, limit: usize) -> StorageResult<u64> {
        self.write(|tx| {
            let expired: Vec<RecordKey> = tx
                .prepare_cached(
                    "SELECT namespace, collection, user_hash, key FROM records WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT ?2",
                )
                .and_then(|mut s| {
                    s.query_map(params![now, limit as i64], |r| {
                        Ok(RecordKey { namespace: r.get(0)?, collection: r.get(1)?, user_hash: r.get(2)?, key: r.get(3)? })
                    })?
                    .collect()
                })
                .map_err(map_err)?;
            for k in &expired {
                delete_entries(tx, k)?;
                tx.execute(
                    "DELETE FROM records WHERE namespace = ?1 AND collection = ?2 AND user_hash = ?3 AND key = ?4",
                    params![k.namespace, k.collection, k.user_hash, k.key],
                )
                .map_err(map_err)?;
            }
            Ok(expired.len() as u64)
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
            c.prepare_cached(
                "SELECT namespace, collection, user_hash, key FROM records WHERE sealed_key IS NULL \
                 AND (namespace, collection, user_hash, key) > (?1, ?2, ?3, ?4) ORDER BY namespace, collection, user_hash, key LIMIT ?5",
            )?
            .query_map(params![ns, collection, user, key, limit as i64], |r| {
                Ok(RecordKey { namespace: r.get(0)?, collection: r.get(1)?, user_hash: r.get(2)?, key: r.get(3)? })
            })?
            .collect()
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
                .query_row(
                    "SELECT 1 FROM records WHERE namespace = ?1 AND collection = ?2 AND user_hash = ?3 AND key = ?4",
                    params![k.namespace, k.collection, k.user_hash, key_id],
                    |_| Ok(()),
                )
                .optional()
                .map_err(map_err)?
                .is_some();
            let renamed = !taken
                && tx
                    .execute(
                        "UPDATE records SET key = ?5, sealed_key = ?6 WHERE namespace = ?1 AND collection = ?2 AND user_hash = ?3 \
                         AND key = ?4 AND sealed_key IS NULL",
                        params![k.namespace, k.collection, k.user_hash, k.key, key_id, sealed_key],
                    )
                    .map_err(map_err)?
                    == 1;
            if renamed {
                tx.execute(
                    "UPDATE record_index SET key = ?5 WHERE namespace = ?1 AND collection = ?2 AND user_hash = ?3 AND key = ?4",
                    params![k.namespace, k.collection, k.user_hash, k.key, key_id],
                )
                .map_err(map_err)?;
            }
            Ok(renamed)
        })
    }
}
