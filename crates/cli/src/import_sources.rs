//! Where `strongroom import` reads rows from, each row as a JSON object of its columns:
//! a SQLite file or a PostgreSQL database (a query the operator gives), a CSV file with a
//! header row, or JSON Lines. PostgreSQL rows come through `to_jsonb`, so every column type
//! arrives as JSON — a `json`/`jsonb` column as the object it holds (a whole token set in one
//! column), `bytea` as `\x…` hex text. A row that cannot be read is reported in its place,
//! never with its content.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

/// One source row: its position (from 1) and its columns, or why it cannot be read.
pub type SourceRow = (u64, Result<Map<String, Value>, String>);

/// Reads every row of `from` (`sqlite:PATH`, `postgres://…`, `csv:PATH`, `jsonl:PATH`) and
/// hands each to `each`, in order; `each` may stop the reading by failing.
pub fn read_rows(
    from: &str,
    query: Option<&str>,
    each: &mut dyn FnMut(SourceRow) -> Result<()>,
) -> Result<()> {
    if from.starts_with("postgres://") || from.starts_with("postgresql://") {
        let query = query.context("--from postgres://… needs --query")?;
        return postgres_rows(from, query, each);
    }
    match from.split_once(':') {
        Some(("sqlite", path)) => {
            let query = query.context("--from sqlite:PATH needs --query")?;
            sqlite_rows(path, query, each)
        }
        Some(("csv", path)) => csv_rows(path, each),
        Some(("jsonl", path)) => jsonl_rows(path, each),
        _ => bail!("--from must be sqlite:PATH, postgres://…, csv:PATH or jsonl:PATH"),
    }
}

fn sqlite_rows(
    path: &str,
    query: &str,
    each: &mut dyn FnMut(SourceRow) -> Result<()>,
) -> Result<()> {
    let db = rusqlite::Connection::open_with_flags(
        PathBuf::from(path),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .with_context(|| format!("opening {path}"))?;
    let mut stmt = db.prepare(query).context("preparing --query")?;
    let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    let mut rows = stmt.query([]).context("running --query")?;
    let mut position = 0;
    while let Some(row) = rows.next().context("reading a row")? {
        position += 1;
        let mut map = Map::new();
        for (i, name) in names.iter().enumerate() {
            map.insert(name.clone(), sqlite_cell(row.get_ref(i)?));
        }
        each((position, Ok(map)))?;
    }
    Ok(())
}

fn sqlite_cell(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => json!(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => Value::String(String::from_utf8_lossy(t).into()),
    }
}

fn postgres_rows(
    url: &str,
    query: &str,
    each: &mut dyn FnMut(SourceRow) -> Result<()>,
) -> Result<()> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)
        .context("connecting to the source database")?;
    // Read-only, and every column as JSON whatever its type.
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .context("starting a read-only transaction")?;
    let wrapped = format!("SELECT to_jsonb(q)::text FROM ({query}) AS q");
    let mut rows = tx
        .query_raw(wrapped.as_str(), std::iter::empty::<&str>())
        .context("running --query")?;
    let mut position = 0;
    use postgres::fallible_iterator::FallibleIterator;
    while let Some(row) = rows.next().context("reading a row")? {
        position += 1;
        let text: Zeroizing<String> = Zeroizing::new(row.try_get(0).context("reading a row")?);
        let parsed = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err("the row did not come back as a JSON object".to_string()),
        };
        each((position, parsed))?;
    }
    Ok(())
}

fn csv_rows(path: &str, each: &mut dyn FnMut(SourceRow) -> Result<()>) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_path(path)
        .with_context(|| format!("opening {path}"))?;
    let headers: Vec<String> = reader
        .headers()
        .context("reading the CSV header row")?
        .iter()
        .map(str::to_string)
        .collect();
    for (i, record) in reader.records().enumerate() {
        let row = match record {
            Ok(record) => Ok(headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.clone(), Value::String(v.to_string())))
                .collect()),
            // The CSV error names a line and a field count, never the field's content.
            Err(e) => Err(match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => {
                    format!("the row has {len} fields, the header {expected_len}")
                }
                csv::ErrorKind::Utf8 { .. } => "the row is not UTF-8 text".to_string(),
                _ => "the row is not valid CSV".to_string(),
            }),
        };
        each((i as u64 + 1, row))?;
    }
    Ok(())
}

fn jsonl_rows(path: &str, each: &mut dyn FnMut(SourceRow) -> Result<()>) -> Result<()> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).with_context(|| format!("opening {path}"))?;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = Zeroizing::new(line.context("reading a line")?);
        if line.trim().is_empty() {
            continue;
        }
        let row = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err("the line is not a JSON object".to_string()),
        };
        each((i as u64 + 1, row))?;
    }
    Ok(())
}
