//! `strongroom restore --from BACKUP --ledger LEDGER` and `strongroom restore
//! --replay-erasures --ledger LEDGER`.
//!
//! A restore writes the backup's database files into a working folder inside an empty data
//! directory (each part decrypted and checked against its checksums), copies the file
//! objects back, opens the restored store with its root key, replays every erasure the
//! ledger outside the store holds that the backup does not (then purges what they leave),
//! verifies the audit chain, and only then moves the files into place — so a store restored
//! from an old backup never serves a user erased since, even if the restore is interrupted.
//! Without a ledger it refuses, unless `--accept-no-ledger` says the operator knows.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use strongroom_core::audit::VerifyReport;
use strongroom_core::erasure_ledger::ReplayReport;
use strongroom_core::{Principal, SystemClock, Vault, VaultSettings};
use strongroom_crypto::{Key, Root};
use strongroom_objects::{BlobStore, ObjectLocation};
use strongroom_sqlite::SqliteStore;
use strongroom_storage::Storage;

use crate::backup_io::{
    copy_object, open_backup, open_root_with, restore_part, BackupLocation, OpenArgs,
};

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup to restore: a folder or s3://BUCKET/PREFIX made by `strongroom backup`.
    #[arg(long, required_unless_present = "replay_erasures")]
    from: Option<String>,
    /// Instead of restoring a backup: replay erasures on the store as it is (a PostgreSQL
    /// database restored with pg_restore or from a base backup, a SQLite file copied back by
    /// hand), before it serves again.
    #[arg(long, conflicts_with = "from")]
    replay_erasures: bool,
    /// The erasure ledger outside the store (what `serve --erasure-ledger` names).
    #[arg(long, env = "STRONGROOM_ERASURE_LEDGER")]
    ledger: Option<String>,
    /// Restore without replaying erasures: users erased after the backup was taken come back.
    /// Only when no ledger was ever kept.
    #[arg(long, conflicts_with = "ledger")]
    accept_no_ledger: bool,
    /// Where the restored store's file objects go (default: DATA_DIR/files).
    #[arg(long, env = "STRONGROOM_FILES")]
    files: Option<String>,
    #[command(flatten)]
    open: OpenArgs,
}

#[derive(Serialize)]
struct Restored {
    backup_id: String,
    backup_created_at: String,
    data_dir: String,
    database_bytes: u64,
    objects: usize,
    erasures: Option<ReplayReport>,
    audit: VerifyReport,
}

#[derive(Serialize)]
struct Replayed {
    erasures: ReplayReport,
    audit: VerifyReport,
}

pub fn run(args: RestoreArgs) -> Result<ExitCode> {
    let ledger = match (&args.ledger, args.accept_no_ledger) {
        (Some(location), _) => Some(args.open.s3.open(location, "--ledger")?),
        (None, true) => None,
        (None, false) => bail!(
            "give --ledger (the erasure ledger `serve --erasure-ledger` writes): without it, users \
             erased after the backup was taken would come back. If no ledger was ever kept, say \
             so with --accept-no-ledger"
        ),
    };
    if args.replay_erasures {
        let Some(ledger) = ledger else {
            bail!("--replay-erasures needs --ledger");
        };
        return replay_in_place(&args, &ledger);
    }
    let from = args.from.as_deref().context("give --from")?;
    restore(&args, from, ledger)
}

fn files_location(args: &RestoreArgs) -> Result<ObjectLocation> {
    Ok(match &args.files {
        Some(v) => v.parse().context("--files")?,
        None => ObjectLocation::Local(args.open.store.data_dir.join("files")),
    })
}

/// Replays erasures on the store `--database` / `--data-dir` names, as it is now.
fn replay_in_place(args: &RestoreArgs, ledger: &BlobStore) -> Result<ExitCode> {
    let storage = args.open.store.open()?;
    let root = open_root_with(&args.open, &|key| {
        Ok(storage.get_meta(key)?.filter(|v| !v.is_empty()))
    })?;
    let files = args
        .open
        .s3
        .open_location(&files_location(args)?, "the files location")?;
    let (erasures, audit) = replay(storage, root, files, ledger)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&Replayed { erasures, audit })?
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens the store, replays the ledger, verifies the audit chain, and closes it again.
fn replay(
    storage: Arc<dyn Storage>,
    root: Key<Root>,
    files: BlobStore,
    ledger: &BlobStore,
) -> Result<(ReplayReport, VerifyReport)> {
    let vault = open_vault(storage, root, files)?;
    let report = vault
        .replay_erasures(ledger)
        .context("replaying the erasure ledger")?;
    let audit = verify(&vault)?;
    Ok((report, audit))
}

fn open_vault(storage: Arc<dyn Storage>, root: Key<Root>, files: BlobStore) -> Result<Vault> {
    let opened = Vault::open(
        storage,
        root,
        Arc::new(SystemClock),
        VaultSettings {
            files: Some(files),
            ..VaultSettings::default()
        },
    )
    .context("opening the restored store")?;
    Ok(opened.vault)
}

fn verify(vault: &Vault) -> Result<VerifyReport> {
    let report = vault.verify_audit(&Principal::system("restore"))?;
    if !report.valid {
        bail!(
            "the restored audit log does not verify: {}",
            serde_json::to_string(&report)?
        );
    }
    Ok(report)
}

fn restore(args: &RestoreArgs, from: &str, ledger: Option<BlobStore>) -> Result<ExitCode> {
    let Some(db_path) = args.open.store.sqlite_path()? else {
        bail!(
            "`restore --from` restores SQLite backups; restore PostgreSQL with pg_restore (or a \
             base backup) and then run `strongroom restore --replay-erasures --ledger …`"
        );
    };
    let audit_path = SqliteStore::audit_path(&db_path);
    for path in [&db_path, &audit_path] {
        if path.exists() {
            bail!(
                "{} already exists: restore into an empty data directory (or move the old store aside)",
                path.display()
            );
        }
    }
    let backup = BackupLocation::open(&args.open.s3, from, "--from")?;
    let manifest = backup.manifest()?;
    if manifest.backend != "sqlite" {
        bail!("this backup is of a {} store", manifest.backend);
    }
    let (root, key) = open_backup(&args.open, &manifest)?;
    let dir = db_path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| args.open.store.data_dir.clone());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".restore-")
        .tempdir_in(&dir)
        .context("making a working folder beside the database")?;
    let work_db = work.path().join("strongroom.db");
    restore_part(&backup, &key, &manifest, "data", &work_db)?;
    restore_part(
        &backup,
        &key,
        &manifest,
        "audit",
        &SqliteStore::audit_path(&work_db),
    )?;

    let files = args
        .open
        .s3
        .open_location(&files_location(args)?, "the files location")?;
    for object in &manifest.objects {
        copy_object(&backup.objects, &files, object)?;
    }

    let storage: Arc<dyn Storage> =
        Arc::new(SqliteStore::open(&work_db).context("opening the restored database")?);
    let (erasures, audit) = match &ledger {
        Some(ledger) => {
            let (report, audit) = replay(storage, root, files, ledger)?;
            (Some(report), audit)
        }
        None => {
            let vault = open_vault(storage, root, files)?;
            (None, verify(&vault)?)
        }
    };
    // Every connection is closed now (the vault and its store are dropped): move into place.
    std::fs::rename(&work_db, &db_path)
        .with_context(|| format!("moving the restored database to {}", db_path.display()))?;
    std::fs::rename(SqliteStore::audit_path(&work_db), &audit_path)
        .with_context(|| format!("moving the restored audit log to {}", audit_path.display()))?;
    let report = Restored {
        backup_id: manifest.backup_id.clone(),
        backup_created_at: manifest.created_at.clone(),
        data_dir: dir.display().to_string(),
        database_bytes: manifest.parts.first().map_or(0, |p| p.size),
        objects: manifest.objects.len(),
        erasures,
        audit,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    if ledger.is_none() {
        eprintln!(
            "restored WITHOUT replaying erasures (--accept-no-ledger): users erased after {} are back",
            manifest.created_at
        );
    }
    Ok(ExitCode::SUCCESS)
}
