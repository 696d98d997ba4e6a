//! `strongroom migrate`: copies a whole store between backends (SQLite → PostgreSQL, or back)
//! while the source may stay in use. Rows are copied as they are — ciphertexts, wrapped keys
//! and hashes byte for byte, nothing decrypted — table by table in primary-key order, one
//! transaction per batch. Afterwards row counts and a SHA-256 over every table's rows are
//! compared. A non-empty target is refused unless `--resume` continues an earlier copy from the
//! last row the target holds.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use strongroom_crypto::keyed_hash::Sha256;
use strongroom_postgres::{PgSettings, PgStore};
use strongroom_sqlite::SqliteStore;
use strongroom_storage::copy::{RawValue, TableCopy, TableSpec, TABLES};

#[derive(Args)]
pub struct MigrateArgs {
    /// Source store: sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(long)]
    from: String,
    /// Target store: postgres://USER@HOST:PORT/DB or sqlite://PATH.
    #[arg(long)]
    to: String,
    /// PostgreSQL schema of the source (default public).
    #[arg(long)]
    from_schema: Option<String>,
    /// PostgreSQL schema of the target (default public; created if missing).
    #[arg(long)]
    to_schema: Option<String>,
    /// Continue an interrupted copy into a non-empty target.
    #[arg(long)]
    resume: bool,
    /// Rows per transaction.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Stop after copying this many rows (simulates an interrupted copy in tests).
    #[arg(long, hide = true)]
    stop_after_rows: Option<u64>,
}

fn open(url: &str, schema: Option<String>, must_exist: bool) -> Result<Box<dyn TableCopy>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let settings = PgSettings {
            schema,
            pool_size: 2,
            connect_timeout: Duration::from_secs(10),
            ..PgSettings::new(url)
        };
        return Ok(Box::new(
            PgStore::open(settings).context("connecting to PostgreSQL")?,
        ));
    }
    let Some(path) = url.strip_prefix("sqlite://").filter(|p| !p.is_empty()) else {
        bail!("a store is sqlite://PATH or postgres://USER@HOST:PORT/DB");
    };
    if must_exist && !Path::new(path).exists() {
        bail!("the source database {path} does not exist");
    }
    Ok(Box::new(
        SqliteStore::open(Path::new(path)).with_context(|| format!("opening {path}"))?,
    ))
}

/// Row count and SHA-256 of a table's rows in key order.
fn fingerprint(store: &dyn TableCopy, t: &TableSpec, batch: usize) -> Result<(u64, [u8; 32])> {
    let mut hash = Sha256::default();
    let mut rows = 0u64;
    let mut after: Option<Vec<RawValue>> = None;
    loop {
        let page = store.export_rows(t, after.as_deref(), batch)?;
        let Some(last) = page.last() else { break };
        after = Some(last[..t.key_columns].to_vec());
        for row in &page {
            rows += 1;
            for value in row {
                let (tag, bytes): (u8, Vec<u8>) = match value {
                    RawValue::Null => (0, Vec::new()),
                    RawValue::Int(i) => (1, i.to_be_bytes().to_vec()),
                    RawValue::Text(s) => (2, s.as_bytes().to_vec()),
                    RawValue::Bytes(b) => (3, b.clone()),
                    RawValue::Bool(b) => (4, vec![u8::from(*b)]),
                };
                hash.update(&[tag]);
                hash.update(&(bytes.len() as u64).to_be_bytes());
                hash.update(&bytes);
            }
        }
    }
    Ok((rows, hash.finish()))
}

pub fn run(args: MigrateArgs) -> Result<ExitCode> {
    if args.batch == 0 || args.batch > 100_000 {
        bail!("--batch must be between 1 and 100000");
    }
    let source = open(&args.from, args.from_schema.clone(), true)?;
    let target = open(&args.to, args.to_schema.clone(), false)?;
    if !args.resume {
        for t in TABLES {
            // A new store holds one row its own migrations wrote: the pending audit anchor.
            let from_migrations = u64::from(t.name == "meta");
            let n = target.count_rows(t)?.saturating_sub(from_migrations);
            if n > 0 {
                bail!("the target is not empty ({n} rows in {}); pass --resume to continue an earlier copy into it", t.name);
            }
        }
    }
    let mut copied_total = 0u64;
    for t in TABLES {
        let mut after = if args.resume {
            target.last_key(t)?
        } else {
            None
        };
        let mut copied = 0u64;
        loop {
            let page = source.export_rows(t, after.as_deref(), args.batch)?;
            let Some(last) = page.last() else { break };
            after = Some(last[..t.key_columns].to_vec());
            target.import_rows(t, &page)?;
            copied += page.len() as u64;
            copied_total += page.len() as u64;
            if args
                .stop_after_rows
                .is_some_and(|limit| copied_total >= limit)
            {
                eprintln!(
                    "stopped after {copied_total} rows as asked; run again with --resume to finish"
                );
                return Ok(ExitCode::from(3));
            }
        }
        eprintln!("{}: copied {copied} rows", t.name);
    }
    let mut tables = Vec::new();
    let mut verified = true;
    for t in TABLES {
        let (source_rows, source_sum) = fingerprint(source.as_ref(), t, args.batch)?;
        let (target_rows, target_sum) = fingerprint(target.as_ref(), t, args.batch)?;
        let matches = source_rows == target_rows && source_sum == target_sum;
        verified &= matches;
        tables.push(json!({ "table": t.name, "source_rows": source_rows, "target_rows": target_rows, "checksum_match": matches }));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({ "verified": verified, "tables": tables }))?
    );
    if verified {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: the copy does not match the source (was the source written to during the copy?); run again with --resume, then verify");
        Ok(ExitCode::FAILURE)
    }
}
