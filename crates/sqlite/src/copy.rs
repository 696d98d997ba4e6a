//! Row export and import for whole-store copies (`strongroom migrate`). Statements are built
//! from the fixed interchange description in `strongroom_storage::copy::TABLES` — never from
//! input — and every value is bound as a parameter.

use rusqlite::types::{Value, ValueRef};
use rusqlite::{params_from_iter, Connection};
use strongroom_storage::copy::{ColumnType, RawRow, RawValue, TableCopy, TableSpec};
use strongroom_storage::{StorageError, StorageResult};

use crate::connection::{map_err, SqliteStore};

fn to_sql(v: &RawValue) -> Value {
    match v {
        RawValue::Null => Value::Null,
        RawValue::Int(i) => Value::Integer(*i),
        RawValue::Text(t) => Value::Text(t.clone()),
        RawValue::Bytes(b) => Value::Blob(b.clone()),
        RawValue::Bool(b) => Value::Integer(i64::from(*b)),
    }
}

fn from_sql(v: ValueRef<'_>, ty: ColumnType) -> rusqlite::Result<RawValue> {
    Ok(match (v, ty) {
        (ValueRef::Null, _) => RawValue::Null,
        (ValueRef::Integer(i), ColumnType::Bool) => RawValue::Bool(i != 0),
        (ValueRef::Integer(i), _) => RawValue::Int(i),
        (ValueRef::Text(t), _) => RawValue::Text(String::from_utf8_lossy(t).into_owned()),
        (ValueRef::Blob(b), _) => RawValue::Bytes(b.to_vec()),
        (ValueRef::Real(_), _) => return Err(rusqlite::Error::InvalidQuery),
    })
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn export(
    c: &Connection,
    t: &TableSpec,
    after: Option<&[RawValue]>,
    limit: usize,
) -> rusqlite::Result<Vec<RawRow>> {
    let mut args: Vec<Value> = after.unwrap_or(&[]).iter().map(to_sql).collect();
    let filter = if after.is_some() {
        format!(
            "WHERE ({}) > ({})",
            t.key_list(),
            placeholders(1, t.key_columns)
        )
    } else {
        String::new()
    };
    args.push(Value::Integer(limit as i64));
    let sql = format!(
        "SELECT {} FROM {} {filter} ORDER BY {} LIMIT ?{}",
        t.column_list(),
        t.name,
        t.key_list(),
        args.len()
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
        t.columns
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| from_sql(r.get_ref(i)?, *ty))
            .collect::<rusqlite::Result<RawRow>>()
    })?;
    rows.collect()
}

impl SqliteStore {
    fn on_table<T>(
        &self,
        t: &TableSpec,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> StorageResult<T> {
        if t.name == "audit" {
            self.read_audit(work)
        } else {
            self.read(work)
        }
    }
}

impl TableCopy for SqliteStore {
    fn export_rows(
        &self,
        t: &TableSpec,
        after: Option<&[RawValue]>,
        limit: usize,
    ) -> StorageResult<Vec<RawRow>> {
        self.on_table(t, |c| export(c, t, after, limit))
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
        let work = |tx: &rusqlite::Transaction<'_>| {
            let mut stmt = tx.prepare_cached(&sql).map_err(map_err)?;
            let mut written = 0u64;
            for row in rows {
                if row.len() != t.columns.len() {
                    return Err(StorageError::Corrupt(format!(
                        "a {} row has {} values",
                        t.name,
                        row.len()
                    )));
                }
                written += stmt
                    .execute(params_from_iter(row.iter().map(to_sql)))
                    .map_err(map_err)? as u64;
            }
            Ok(written)
        };
        if t.name == "audit" {
            self.write_audit(work)
        } else {
            self.write(work)
        }
    }

    fn count_rows(&self, t: &TableSpec) -> StorageResult<u64> {
        self.on_table(t, |c| {
            c.query_row(&format!("SELECT COUNT(*) FROM {}", t.name), [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| n as u64)
    }

    fn last_key(&self, t: &TableSpec) -> StorageResult<Option<Vec<RawValue>>> {
        let keys = t.key_list();
        let desc = t.columns[..t.key_columns]
            .iter()
            .map(|(c, _)| format!("{c} DESC"))
            .collect::<Vec<_>>()
            .join(", ");
        self.on_table(t, |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {keys} FROM {} ORDER BY {desc} LIMIT 1",
                t.name
            ))?;
            let mut rows = stmt.query([])?;
            match rows.next()? {
                Some(r) => Ok(Some(
                    t.columns[..t.key_columns]
                        .iter()
                        .enumerate()
                        .map(|(i, (_, ty))| from_sql(r.get_ref(i)?, *ty))
                        .collect::<rusqlite::Result<_>>()?,
                )),
                None => Ok(None),
            }
        })
    }
}
