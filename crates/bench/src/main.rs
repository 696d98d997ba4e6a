//! `strongroom-bench`: runs every scenario twice in one process — through Strongroom (library
//! or HTTP, with encryption, authorization and audit) and through the same SQLite storage and
//! schema with plaintext and no auth (the limit) — then prints a table and writes JSON with the
//! ratios, the machine's CPU count and the exact parameters.

mod erasure;
mod events;
mod files;
mod files_http;
mod http;
mod import;
mod library;
mod loadgen;
mod names;
mod records;
mod report;
mod rewrap;
mod setup;
mod vault_peer;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

/// Benchmark Strongroom beside the no-encryption limit.
#[derive(Parser, Debug, Clone, serde::Serialize)]
#[command(name = "strongroom-bench")]
pub struct Params {
    /// Users stored (each with one ~1 KiB OAuth token set).
    #[arg(long, default_value_t = 100_000)]
    pub users: usize,
    /// Library reads per run.
    #[arg(long, default_value_t = 200_000)]
    pub get_ops: usize,
    /// Library writes per run.
    #[arg(long, default_value_t = 30_000)]
    pub put_ops: usize,
    /// Seconds of load per HTTP run.
    #[arg(long, default_value_t = 5)]
    pub http_secs: u64,
    /// Keep-alive connection counts for the HTTP runs.
    #[arg(long, value_delimiter = ',', default_value = "64,256")]
    pub connections: Vec<usize>,
    /// User data keys kept unwrapped (Strongroom's `--data-key-cache`).
    #[arg(long, default_value_t = 65_536)]
    pub data_key_cache: usize,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results.json")]
    pub out: PathBuf,
    /// Also run every scenario on PostgreSQL at this URL (e.g. from `scripts/postgres start`).
    #[arg(long)]
    pub postgres: Option<String>,
    /// Users stored for the PostgreSQL scenarios.
    #[arg(long, default_value_t = 20_000)]
    pub pg_users: usize,
    /// Library reads per PostgreSQL run (a round trip each: fewer than on SQLite, so the
    /// harness stays under ten minutes).
    #[arg(long, default_value_t = 50_000)]
    pub pg_get_ops: usize,
    /// Library writes per PostgreSQL run.
    #[arg(long, default_value_t = 10_000)]
    pub pg_put_ops: usize,
    /// Skip the HTTP scenarios.
    #[arg(long)]
    pub no_http: bool,
    /// MiB streamed through the encrypted-file scenarios (0 skips them).
    #[arg(long, default_value_t = 1024)]
    pub file_mib: u64,
    /// Run only the encrypted-file scenarios.
    #[arg(long)]
    pub files_only: bool,
    /// Run only these scenario groups (comma-separated: library, http, vault, rewrap, events,
    /// records, erasure, import, names, files); default: all of them.
    #[arg(long, value_delimiter = ',', value_parser = [
        "library", "http", "vault", "rewrap", "events", "records", "erasure", "import", "names", "files",
    ])]
    pub only: Vec<String>,
    /// OpenBao's `bao` binary, for the Vault-API rows beside OpenBao (default: the cache that
    /// scripts/vault-clients fills; the rows are skipped without it).
    #[arg(long)]
    pub bao: Option<PathBuf>,
}

fn main() -> Result<()> {
    let params = Params::parse();
    eprintln!("strongroom-bench {params:?}");
    let mut rows = Vec::new();
    let runs = |group: &str| params.only.is_empty() || params.only.iter().any(|g| g == group);
    if params.file_mib > 0 && runs("files") {
        rows.extend(files::run(&params)?);
    }
    if params.files_only {
        report::print_table(&rows);
        report::write_json(&params, &rows)?;
        return Ok(());
    }
    let mut fixtures = vec![setup::Fixture::sqlite(&params)?];
    if let Some(url) = &params.postgres {
        fixtures.push(setup::Fixture::postgres(url, &params)?);
    }
    for fixture in &fixtures {
        if runs("library") {
            rows.extend(library::run(fixture, &params)?);
        }
        if !params.no_http && runs("http") {
            rows.extend(http::run(fixture, &params)?);
        }
        if !params.no_http && runs("vault") {
            rows.extend(vault_peer::run(fixture, &params)?);
        }
        if runs("rewrap") {
            rows.extend(rewrap::run(fixture)?);
        }
        if runs("events") {
            rows.extend(events::run(fixture)?);
        }
        if runs("records") {
            rows.extend(records::run(fixture)?);
        }
        if runs("erasure") {
            rows.extend(erasure::run(fixture)?);
        }
        if runs("import") {
            rows.extend(import::run(fixture)?);
        }
        if runs("names") {
            rows.extend(names::listing(fixture)?);
        }
    }
    if runs("names") {
        rows.extend(names::token_validation()?);
    }
    report::print_table(&rows);
    report::write_json(&params, &rows)?;
    eprintln!("wrote {}", params.out.display());
    Ok(())
}
