//! Transit keys on PostgreSQL: one row per key, replaced check-and-set on its revision.

use strongroom_storage::{StorageResult, TransitKeyRow, TransitStore};

use crate::connection::{BadColumn, Columns, PgStore};

impl TransitStore for PgStore {
    fn get_transit_key(&self, namespace: &str, name: &str) -> StorageResult<Option<TransitKeyRow>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT revision, body FROM transit_keys WHERE namespace = $1 AND name = $2",
                &[&namespace, &name],
            )?
            .map(|r| {
                Ok::<_, BadColumn>(TransitKeyRow {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    revision: r.count(0)?,
                    body: r.col(1)?,
                })
            })
            .transpose()?)
        })
    }

    fn list_transit_keys(&self, namespace: &str) -> StorageResult<Vec<String>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT name FROM transit_keys WHERE namespace = $1 ORDER BY name",
                &[&namespace],
            )?
            .iter()
            .map(|r| r.col(0))
            .collect::<Result<_, BadColumn>>()?)
        })
    }

    fn put_transit_key(
        &self,
        row: &TransitKeyRow,
        expected_revision: Option<u64>,
    ) -> StorageResult<bool> {
        let revision = row.revision as i64;
        self.write(|tx| {
            let written = match expected_revision {
                None => tx.execute(
                    "INSERT INTO transit_keys (namespace, name, revision, body) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (namespace, name) DO NOTHING",
                    &[&row.namespace, &row.name, &revision, &row.body],
                )?,
                Some(expected) => tx.execute(
                    "UPDATE transit_keys SET revision = $3, body = $4 WHERE namespace = $1 AND name = $2 AND revision = $5",
                    &[&row.namespace, &row.name, &revision, &row.body, &(expected as i64)],
                )?,
            };
            Ok(written == 1)
        })
    }

    fn delete_transit_key(&self, namespace: &str, name: &str) -> StorageResult<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM transit_keys WHERE namespace = $1 AND name = $2",
                &[&namespace, &name],
            )? == 1)
        })
    }
}
