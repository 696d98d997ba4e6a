//! `strongroom init --shares N --threshold T`: initialises a new store with its root key
//! split into Shamir shares, prints the shares and the first operator token once, and exits.
//! `strongroom serve` on such a store starts sealed until `threshold` share holders each run
//! `strongroom unseal --share-stdin`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use strongroom_core::seal::Node;
use strongroom_core::{CoreError, SystemClock, VaultSettings};
use strongroom_postgres::{PgSettings, PgStore};
use strongroom_sqlite::SqliteStore;
use strongroom_storage::Storage;

use crate::serve::{prepare_data_dir, Database};

#[derive(Args)]
pub struct InitArgs {
    /// Directory for the database (as for `serve`).
    #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "./strongroom-data")]
    data_dir: PathBuf,
    /// Storage, as for `serve`: sqlite://PATH (default: DATA_DIR/strongroom.db) or
    /// postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "STRONGROOM_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// PostgreSQL: schema to use instead of public (created if missing).
    #[arg(long, env = "STRONGROOM_DB_SCHEMA")]
    db_schema: Option<String>,
    /// Unseal shares to make (2–16); each goes to a different person.
    #[arg(long)]
    shares: u8,
    /// Shares needed to unseal (2 ≤ threshold ≤ shares).
    #[arg(long)]
    threshold: u8,
}

pub fn run(args: InitArgs) -> Result<ExitCode> {
    prepare_data_dir(&args.data_dir)?;
    let store: Arc<dyn Storage> = match Database::parse(args.database.as_deref(), &args.data_dir)? {
        Database::Sqlite(path) => Arc::new(
            SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?,
        ),
        Database::Postgres(url) => Arc::new(
            PgStore::open(PgSettings {
                schema: args.db_schema.clone(),
                ..PgSettings::new(&url)
            })
            .context("connecting to PostgreSQL")?,
        ),
    };
    let settings = VaultSettings {
        files: None,
        ..VaultSettings::default()
    };
    let (shares, opened) = match Node::init_with_shares(
        store,
        Arc::new(SystemClock),
        settings,
        args.threshold,
        args.shares,
    ) {
        Ok(done) => done,
        Err(e @ (CoreError::Conflict(_) | CoreError::Invalid { .. })) => anyhow::bail!("{e}"),
        Err(other) => return Err(other).context("initialising the store"),
    };
    println!(
        "Initialised a new Strongroom in {}",
        args.data_dir.display()
    );
    for (i, share) in shares.iter().enumerate() {
        println!("Unseal share {}: {}", i + 1, share.as_str());
    }
    if let Some(token) = &opened.bootstrap_token {
        println!(
            "Admin token (shown once; store it safely): {}",
            token.expose_text()
        );
    }
    opened
        .vault
        .flush_audit()
        .context("flushing the audit log")?;
    eprintln!(
        "{} shares were printed once: give each to a different person. The server starts sealed; \
         any {} of them unseal it (`strongroom unseal --share-stdin`). Nobody holds the root key.",
        args.shares, args.threshold
    );
    Ok(ExitCode::SUCCESS)
}
