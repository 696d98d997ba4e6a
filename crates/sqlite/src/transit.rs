//! Transit keys on SQLite: one row per key, replaced check-and-set on its revision.

use rusqlite::{params, OptionalExtension};
use strongroom_storage::{StorageResult, TransitKeyRow, TransitStore};

use crate::connection::{map_err, SqliteStore};

impl TransitStore for SqliteStore {
    fn get_transit_key(&self, namespace: &str, name: &str) -> StorageResult<Option<TransitKeyRow>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT revision, body FROM transit_keys WHERE namespace = ?1 AND name = ?2",
            )?
            .query_row(params![namespace, name], |r| {
                Ok(TransitKeyRow {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    revision: r.get::<_, i64>(0)? as u64,
                    body: r.get(1)?,
                })
            })
            .optional()
        })
    }

    fn list_transit_keys(&self, namespace: &str) -> StorageResult<Vec<String>> {
        self.read(|c| {
            c.prepare_cached("SELECT name FROM transit_keys WHERE namespace = ?1 ORDER BY name")?
                .query_map([namespace], |r| r.get(0))?
                .collect()
        })
    }

    fn put_transit_key(
        &self,
        row: &TransitKeyRow,
        expected_revision: Option<u64>,
    ) -> StorageResult<bool> {
        self.write(|tx| {
            let written = match expected_revision {
                None => tx.execute(
                    "INSERT INTO transit_keys (namespace, name, revision, body) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (namespace, name) DO NOTHING",
                    params![row.namespace, row.name, row.revision as i64, row.body],
                ),
                Some(expected) => tx.execute(
                    "UPDATE transit_keys SET revision = ?3, body = ?4 WHERE namespace = ?1 AND name = ?2 AND revision = ?5",
                    params![row.namespace, row.name, row.revision as i64, row.body, expected as i64],
                ),
            }
            .map_err(map_err)?;
            Ok(written == 1)
        })
    }

    fn delete_transit_key(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM transit_keys WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
            )
            .map(|n| n == 1)
            .map_err(map_err)
        })
    }
}
