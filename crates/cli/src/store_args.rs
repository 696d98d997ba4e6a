//! The flags that name a store for the commands that work on the database directly
//! (`init`, `keys move-root`), as `serve` names it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use strongroom_postgres::{PgSettings, PgStore};
use strongroom_sqlite::SqliteStore;
use strongroom_storage::Storage;

use crate::serve::{prepare_data_dir, Database};

#[derive(Args)]
pub struct StoreArgs {
    /// Directory for the database (as for `serve`).
    #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "./strongroom-data")]
    pub data_dir: PathBuf,
    /// Storage, as for `serve`: sqlite://PATH (default: DATA_DIR/strongroom.db) or
    /// postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "STRONGROOM_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// PostgreSQL: schema to use instead of public (created if missing).
    #[arg(long, env = "STRONGROOM_DB_SCHEMA")]
    db_schema: Option<String>,
}

impl StoreArgs {
    /// The store is SQLite in the data directory (its default root key file sits beside it).
    pub fn is_sqlite(&self) -> Result<bool> {
        Ok(matches!(
            Database::parse(self.database.as_deref(), &self.data_dir)?,
            Database::Sqlite(_)
        ))
    }

    /// The SQLite data file, or `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Result<Option<PathBuf>> {
        Ok(
            match Database::parse(self.database.as_deref(), &self.data_dir)? {
                Database::Sqlite(path) => Some(path),
                Database::Postgres(_) => None,
            },
        )
    }

    pub fn open(&self) -> Result<Arc<dyn Storage>> {
        prepare_data_dir(&self.data_dir)?;
        Ok(
            match Database::parse(self.database.as_deref(), &self.data_dir)? {
                Database::Sqlite(path) => Arc::new(
                    SqliteStore::open(&path)
                        .with_context(|| format!("opening {}", path.display()))?,
                ),
                Database::Postgres(url) => Arc::new(
                    PgStore::open(PgSettings {
                        schema: self.db_schema.clone(),
                        ..PgSettings::new(&url)
                    })
                    .context("connecting to PostgreSQL")?,
                ),
            },
        )
    }
}
