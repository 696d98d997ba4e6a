//! `strongroom backup --to DIR | s3://bucket/prefix` and `strongroom backup verify --from …`.
//!
//! A backup runs beside a serving node (SQLite): it snapshots both database files
//! (`strongroom_sqlite::snapshot`), seals them piece by piece under a fresh backup key wrapped
//! by the root key, copies the file objects the snapshot's rows lead to, and writes the
//! manifest last (`strongroom_core::backup` has the format). PostgreSQL is backed up with the
//! database's own tools (pg_dump, base backups) and restored with `restore --replay-erasures`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use strongroom_core::backup::{
    AuditHead, BackupKey, LedgerPosition, Manifest, ObjectCopy, Part, PieceSum, FORMAT, MANIFEST,
    PIECE_PLAINTEXT,
};
use strongroom_core::clock::rfc3339;
use strongroom_core::seal::ROOT_META_KEYS;
use strongroom_core::{Clock, SystemClock};
use strongroom_crypto::keyed_hash::Sha256;
use strongroom_objects::ObjectLocation;
use strongroom_sqlite::snapshot::{snapshot, SnapshotReader};

use crate::backup_io::{
    check_objects, hex_sha256, open_backup, open_root, piece_path, put_piece, restore_part,
    BackupLocation, OpenArgs,
};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: Option<BackupCommand>,
    /// Where the backup goes: a new folder, or s3://BUCKET/PREFIX (one backup per location;
    /// a location that already holds one is refused).
    #[arg(long)]
    to: Option<String>,
    /// The files location the server uses (default: DATA_DIR/files), whose objects are copied.
    #[arg(long, env = "STRONGROOM_FILES")]
    files: Option<String>,
    #[command(flatten)]
    open: OpenArgs,
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Check a backup without restoring it: the manifest's MAC, every piece's checksum and
    /// encryption, both database files' checksums and SQLite integrity, every file object.
    Verify(VerifyArgs),
}

#[derive(Args)]
struct VerifyArgs {
    /// The backup: a folder or s3://BUCKET/PREFIX.
    #[arg(long)]
    from: String,
    #[command(flatten)]
    open: OpenArgs,
}

#[derive(Serialize)]
struct Made {
    backup_id: String,
    created_at: String,
    to: String,
    database_bytes: u64,
    audit_bytes: u64,
    objects: usize,
    object_bytes: u64,
    objects_missing: usize,
    audit_head_seq: Option<u64>,
    erasure_ledger_entries: u64,
    seconds: f64,
}

pub fn run(args: BackupArgs) -> Result<ExitCode> {
    match args.command {
        Some(BackupCommand::Verify(v)) => verify(v),
        None => {
            let to = args.to.clone().context(
                "give --to DIR or s3://bucket/prefix (or `backup verify --from …` to check one)",
            )?;
            make(&args, &to)
        }
    }
}

fn make(args: &BackupArgs, to: &str) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let Some(db_path) = args.open.store.sqlite_path()? else {
        bail!(
            "`strongroom backup` snapshots SQLite stores; back up PostgreSQL with its own tools \
             (pg_dump or base backups) and, after restoring one, run `strongroom restore \
             --replay-erasures --ledger …` before it serves (README \"Backups\")"
        );
    };
    let backup = BackupLocation::open(&args.open.s3, to, "--to")?;
    if backup.root.get_named(MANIFEST)?.is_some() {
        bail!("{to} already holds a backup; give each backup its own location");
    }
    let files: ObjectLocation = match &args.files {
        Some(v) => v.parse().context("--files")?,
        None => ObjectLocation::Local(args.open.store.data_dir.join("files")),
    };
    let live_files = args.open.s3.open_location(&files, "the files location")?;

    let work = tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(&args.open.store.data_dir)
        .context("making a working folder in the data directory")?;
    let taken = snapshot(&db_path, work.path()).context("snapshotting the database")?;
    let data = SnapshotReader::open(&taken.data)?;
    let audit = SnapshotReader::open(&taken.audit)?;

    let mut root_meta = std::collections::BTreeMap::new();
    for key in ROOT_META_KEYS {
        if let Some(value) = data.meta(key)? {
            root_meta.insert(key.to_string(), base64_encode(&value));
        }
    }
    let store_id = String::from_utf8(
        data.meta("store_id")?
            .context("the store has no id yet: start it once with this version")?,
    )
    .context("the store id is not text")?;
    let now = SystemClock.now_ms();
    let mut manifest = Manifest {
        format: FORMAT.into(),
        backup_id: String::new(),
        created_at: rfc3339(now),
        created_at_ms: now,
        strongroom_version: env!("CARGO_PKG_VERSION").into(),
        backend: "sqlite".into(),
        store_id,
        root_meta,
        wrapped_backup_key: String::new(),
        parts: Vec::new(),
        objects: Vec::new(),
        objects_missing: Vec::new(),
        audit_head: audit.audit_head()?.map(|(seq, hash)| AuditHead {
            seq,
            hash: hex::encode(hash),
        }),
        erasure_ledger: {
            let (entries, last_id) = data.ledger_head()?;
            LedgerPosition { entries, last_id }
        },
        mac: String::new(),
    };
    // The root key as the snapshot's store keeps it, opened with the material given.
    let root = open_root(&args.open, &manifest)?;
    let (key, wrapped) = BackupKey::generate(&root)?;
    drop(root);
    manifest.wrapped_backup_key = wrapped;
    manifest.backup_id = key.backup_id().to_string();
    let object_ids = data.file_objects()?;
    drop((data, audit));

    for (name, path) in [("data", &taken.data), ("audit", &taken.audit)] {
        manifest.parts.push(seal_part(&backup, &key, name, path)?);
    }
    let mut object_bytes = 0u64;
    for id in object_ids {
        let pieces = live_files.pieces_blocking(&id)?;
        if pieces.is_empty() {
            manifest.objects_missing.push(id);
            continue;
        }
        let mut sums = Vec::with_capacity(pieces.len());
        for (index, _) in pieces {
            let bytes = live_files
                .copy_piece_to(&id, index, &backup.objects)
                .with_context(|| format!("copying object {id} piece {index} into the backup"))?;
            sums.push(PieceSum {
                index,
                size: bytes.len() as u64,
                sha256: hex_sha256(&bytes),
            });
            object_bytes += bytes.len() as u64;
        }
        manifest.objects.push(ObjectCopy { id, pieces: sums });
    }
    key.sign(&mut manifest)?;
    let body = serde_json::to_vec_pretty(&manifest)?;
    backup
        .root
        .put_named(MANIFEST, body.into())
        .context("writing the manifest")?;
    let made = Made {
        backup_id: manifest.backup_id.clone(),
        created_at: manifest.created_at.clone(),
        to: to.to_string(),
        database_bytes: manifest.parts[0].size,
        audit_bytes: manifest.parts[1].size,
        objects: manifest.objects.len(),
        object_bytes,
        objects_missing: manifest.objects_missing.len(),
        audit_head_seq: manifest.audit_head.as_ref().map(|h| h.seq),
        erasure_ledger_entries: manifest.erasure_ledger.entries,
        seconds: started.elapsed().as_secs_f64(),
    };
    println!("{}", serde_json::to_string_pretty(&made)?);
    Ok(ExitCode::SUCCESS)
}

/// Seals the file at `path` as part `name`, piece by piece.
fn seal_part(
    backup: &BackupLocation,
    key: &BackupKey,
    name: &str,
    path: &std::path::Path,
) -> Result<Part> {
    let size = std::fs::metadata(path)?.len();
    let count = size.div_ceil(PIECE_PLAINTEXT as u64).max(1);
    let mut file = std::fs::File::open(path)?;
    let mut whole = Sha256::default();
    let mut pieces = Vec::with_capacity(count as usize);
    let mut buf = zeroize::Zeroizing::new(vec![0u8; PIECE_PLAINTEXT]);
    for index in 0..count {
        let want = (size - index * PIECE_PLAINTEXT as u64).min(PIECE_PLAINTEXT as u64) as usize;
        file.read_exact(&mut buf[..want])
            .with_context(|| format!("reading {}", path.display()))?;
        whole.update(&buf[..want]);
        let sealed = key.seal_piece(name, index, index + 1 == count, &buf[..want])?;
        pieces.push(put_piece(backup, &piece_path(name, index), index, sealed)?);
    }
    Ok(Part {
        name: name.to_string(),
        size,
        sha256: hex::encode(whole.finish()),
        pieces,
    })
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[derive(Serialize)]
struct Verified {
    valid: bool,
    backup_id: String,
    created_at: String,
    parts: usize,
    objects: usize,
    objects_missing: usize,
    audit_head_seq: Option<u64>,
    erasure_ledger_entries: u64,
    problems: Vec<String>,
}

fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let backup = BackupLocation::open(&args.open.s3, &args.from, "--from")?;
    let manifest = backup.manifest()?;
    let (_, key) = open_backup(&args.open, &manifest)?;
    let work = tempfile::tempdir().context("making a working folder")?;
    let mut problems = Vec::new();
    for part in &manifest.parts {
        let out = work.path().join(format!("{}.db", part.name));
        match restore_part(&backup, &key, &manifest, &part.name, &out) {
            Err(e) => problems.push(format!("{e:#}")),
            Ok(()) => {
                if let Err(e) = SnapshotReader::open(&out).and_then(|r| r.integrity_check()) {
                    problems.push(format!("the `{}` database: {e}", part.name));
                }
            }
        }
        // Decrypted copies are removed at once (the working folder goes with them).
        let _ = std::fs::remove_file(&out);
    }
    problems.extend(check_objects(&backup, &manifest.objects)?);
    let report = Verified {
        valid: problems.is_empty(),
        backup_id: manifest.backup_id.clone(),
        created_at: manifest.created_at.clone(),
        parts: manifest.parts.len(),
        objects: manifest.objects.len(),
        objects_missing: manifest.objects_missing.len(),
        audit_head_seq: manifest.audit_head.as_ref().map(|h| h.seq),
        erasure_ledger_entries: manifest.erasure_ledger.entries,
        problems,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
