//! Row export and import for whole-store copies (`strongroom migrate`). Statements are built
//! from the fixed interchange description in `strongroom_storage::copy::TABLES` — never from
//! input — and every value is bound as a typed parameter.

use postgres::types::ToSql;
use postgres::Row;
use strongroom_storage::copy::{ColumnType, RawRow, RawValue, TableCopy, TableSpec};
use strongroom_storage::{StorageError, StorageResult};

use crate::connection::{BadColumn, Columns, PgStore};

type Param = Box<dyn ToSql + Sync>;

fn to_param(v: &RawValue, ty: ColumnType) -> Param {
    match (v, ty) {
        (RawValue::Null, ColumnType::Int) => Box::new(None::<i64>),
        (RawValue::Null, ColumnType::Text) => Box::new(None::<String>),
        (RawValue::Null, ColumnType::Bytes) => Box::new(None::<Vec<u8>>),
        (RawValue::Null, ColumnType::Bool) => Box::new(None::<bool>),
        (RawValue::Int(i), ColumnType::Bool) => Box::new(*i != 0),
        (RawValue::Int(i), _) => Box::new(*i),
        (RawValue::Text(t), _) => Box::new(t.clone()),
        (RawValue::Bytes(b), _) => Box::new(b.clone()),
        (RawValue::Bool(b), _) => Box::new(*b),
    }
}

fn from_row(r: &Row, i: usize, ty: ColumnType) -> Result<RawValue, BadColumn> {
    Ok(match ty {
        ColumnType::Int => r
            .col::<Option<i64>>(i)?
            .map_or(RawValue::Null, RawValue::Int),
        ColumnType::Text => r
            .col::<Option<String>>(i)?
            .map_or(RawValue::Null, RawValue::Text),
        ColumnType::Bytes => r
            .col::<Option<Vec<u8>>>(i)?
            .map_or(RawValue::Null, RawValue::Bytes),
        ColumnType::Bool => r
            .col::<Option<bool>>(i)?
            .map_or(RawValue::Null, RawValue::Bool),
    })
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref()).collect()
}

impl TableCopy for PgStore {
    fn export_rows(
        &self,
        t: &TableSpec,
        after: Option<&[RawValue]>,
        limit: usize,
    ) -> StorageResult<Vec<RawRow>> {
        let mut params: Vec<Param> = after
            .unwrap_or(&[])
            .iter()
            .zip(t.columns)
            .map(|(v, (_, ty))| to_param(v, *ty))
            .collect();
        let filter = if after.is_some() {
            format!(
                "WHERE ({}) > ({})",
                t.key_list(),
                placeholders(1, t.key_columns)
            )
        } else {
            String::new()
        };
        params.push(Box::new(limit as i64));
        let sql = format!(
            "SELECT {} FROM {} {filter} ORDER BY {} LIMIT ${}",
            t.column_list(),
            t.name,
            t.key_list(),
            params.len()
        );
        self.read(|c| {
            let rows = c.query_dynamic(&sql, &refs(&params))?;
            rows.iter()
                .map(|r| {
                    t.columns
                        .iter()
                        .enumerate()
                        .map(|(i, (_, ty))| from_row(r, i, *ty))
                        .collect()
                })
                .collect::<Result<_, BadColumn>>()
                .map_err(Into::into)
        })
    }

    fn import_rows(&self, t: &TableSpec, rows: &[RawRow]) -> StorageResult<u64> {
        let updates = t.columns[t.key_columns..]
            .iter()
            .map(|(c, _)| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {updates}",
            t.name,
            t.column_list(),
            placeholders(1, t.columns.len()),
            t.key_list()
        );
        self.write(|tx| {
            let mut written = 0;
            for row in rows {
                if row.len() != t.columns.len() {
                    return Err(StorageError::Corrupt(format!(
                        "a {} row has {} values",
                        t.name,
                        row.len()
                    )));
                }
                let params: Vec<Param> = row
                    .iter()
                    .zip(t.columns)
                    .map(|(v, (_, ty))| to_param(v, *ty))
                    .collect();
                written += tx.execute_dynamic(&sql, &refs(&params))?;
            }
            if t.name == "webhook_events" {
                // Rows came with their numbers: new events number on from the highest.
                tx.execute_dynamic(
                    "SELECT setval(pg_get_serial_sequence('webhook_events', 'seq'), \
                     GREATEST((SELECT MAX(seq) FROM webhook_events), 1))",
                    &[],
                )?;
            }
            Ok(written)
        })
    }

    fn count_rows(&self, t: &TableSpec) -> StorageResult<u64> {
        let sql = format!("SELECT COUNT(*) FROM {}", t.name);
        self.read(|c| {
            Ok(c.query_dynamic(&sql, &[])?
                .first()
                .map(|r| r.count(0))
                .transpose()?
                .unwrap_or(0))
        })
    }

    fn last_key(&self, t: &TableSpec) -> StorageResult<Option<Vec<RawValue>>> {
        let desc = t.columns[..t.key_columns]
            .iter()
            .map(|(c, _)| format!("{c} DESC"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {desc} LIMIT 1",
            t.key_list(),
            t.name
        );
        self.read(|c| {
            let rows = c.query_dynamic(&sql, &[])?;
            rows.first()
                .map(|r| {
                    t.columns[..t.key_columns]
                        .iter()
                        .enumerate()
                        .map(|(i, (_, ty))| from_row(r, i, *ty))
                        .collect::<Result<_, BadColumn>>()
                })
                .transpose()
                .map_err(Into::into)
        })
    }
}
