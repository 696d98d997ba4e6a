//! Encrypted files on local disk: streaming a file up (segment encryption + piece writes
//! through object_store) and down (ranged piece reads + decryption), beside the limit — the same
//! bytes read and written as a plain file copy, in the same run. The process's peak resident
//! memory is reset before each side and read after (Linux `clear_refs` / `VmHWM`), to show the
//! file never sits in memory.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use strongroom_core::files::NewFile;
use strongroom_core::{Principal, SystemClock, Vault, VaultSettings};
use strongroom_crypto::{Key, Root};
use strongroom_objects::{BlobStore, ObjectLocation, S3Settings};
use strongroom_sqlite::SqliteStore;

use crate::report::{Measure, Row};
use crate::Params;

const CHUNK: usize = 1 << 20;

/// Resets the peak RSS of this process (Linux ≥ 4.0); false where unsupported.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn peak_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

fn throughput(bytes: u64, secs: f64) -> Measure {
    Measure {
        per_sec: bytes as f64 / 1e6 / secs,
        ..Measure::default()
    }
}

/// Reads `src` in 1 MiB chunks and writes them to `dst` (the limit of both directions).
fn plain_copy(src: &std::path::Path, dst: &std::path::Path) -> Result<u64> {
    let mut input = File::open(src)?;
    let mut output = File::create(dst)?;
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        output.write_all(&buf[..n])?;
        total += n as u64;
    }
    output.flush()?;
    Ok(total)
}

pub fn run(params: &Params) -> Result<Vec<Row>> {
    let size = params.file_mib << 20;
    let dir = tempfile::tempdir()?;
    let source = dir.path().join("source.bin");
    {
        let mut out = File::create(&source)?;
        let mut rng = crate::setup::Rng::new(7);
        let mut buf = vec![0u8; CHUNK];
        for _ in 0..params.file_mib {
            for b in buf.chunks_mut(8) {
                b.copy_from_slice(&(rng.below(usize::MAX) as u64).to_le_bytes()[..b.len()]);
            }
            out.write_all(&buf)?;
        }
    }
    let store = Arc::new(SqliteStore::open(&dir.path().join("files.db"))?);
    let blobs = BlobStore::open(
        &ObjectLocation::Local(dir.path().join("objects")),
        &S3Settings::default(),
    )?;
    let settings = VaultSettings {
        files: Some(blobs),
        ..VaultSettings::default()
    };
    let vault = Vault::open(
        store,
        Key::<Root>::generate()?,
        Arc::new(SystemClock),
        settings,
    )?
    .vault;
    let who = Principal::system("bench");
    vault.create_namespace(&who, "bench")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let measured_memory = reset_peak();

    // Upload: read the source, encrypt, write pieces; commit.
    let before = peak_mib();
    let started = Instant::now();
    let info = runtime.block_on(async {
        let mut writer = vault.begin_upload(
            &who,
            "bench",
            "user",
            NewFile {
                name: "big.bin".into(),
                declared_size: Some(size),
                ..NewFile::default()
            },
        )?;
        let mut input = File::open(&source)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            writer.write(&buf[..n]).await?;
        }
        let finished = writer.finish().await?;
        anyhow::Ok(finished.commit()?)
    })?;
    let upload = throughput(size, started.elapsed().as_secs_f64());
    let upload_peak = peak_mib().saturating_sub(before);
    anyhow::ensure!(info.size == size, "uploaded size");

    reset_peak();
    let before = peak_mib();
    let started = Instant::now();
    plain_copy(&source, &dir.path().join("copy-up.bin"))?;
    let plain_up = throughput(size, started.elapsed().as_secs_f64());
    let plain_up_peak = peak_mib().saturating_sub(before);

    // Download: read pieces, decrypt, write to a file.
    reset_peak();
    let before = peak_mib();
    let started = Instant::now();
    let downloaded = runtime.block_on(async {
        let mut reader = vault.open_file(&who, "bench", "user", &info.id, None)?;
        let mut out = File::create(dir.path().join("download.bin"))?;
        let mut total = 0u64;
        while let Some(chunk) = reader.next_chunk().await {
            let chunk = chunk?;
            out.write_all(&chunk)?;
            total += chunk.len() as u64;
        }
        anyhow::Ok(total)
    })?;
    let download = throughput(size, started.elapsed().as_secs_f64());
    let download_peak = peak_mib().saturating_sub(before);
    anyhow::ensure!(downloaded == size, "downloaded size");

    reset_peak();
    let before = peak_mib();
    let started = Instant::now();
    plain_copy(
        &dir.path().join("copy-up.bin"),
        &dir.path().join("copy-down.bin"),
    )?;
    let plain_down = throughput(size, started.elapsed().as_secs_f64());
    let plain_down_peak = peak_mib().saturating_sub(before);

    let same = {
        let a = std::fs::metadata(dir.path().join("download.bin"))?.len();
        a == size
    };
    anyhow::ensure!(same, "the download has the file's size");
    let memory = |ours: u64, plain: u64| {
        if measured_memory {
            format!(" (peak RSS +{ours} MiB vs +{plain} MiB)")
        } else {
            String::new()
        }
    };
    eprintln!(
        "files: {} MiB upload {:.0} MB/s (plain {:.0}), download {:.0} MB/s (plain {:.0})",
        params.file_mib, upload.per_sec, plain_up.per_sec, download.per_sec, plain_down.per_sec
    );
    let _ = std::fs::remove_dir_all(dir.path()).context("removing the bench files");
    Ok(vec![
        Row::new(
            format!(
                "files: upload {} MiB, MB/s{}",
                params.file_mib,
                memory(upload_peak, plain_up_peak)
            ),
            upload,
            plain_up,
            "≥ 0.5× plain copy, constant memory",
        ),
        Row::new(
            format!(
                "files: download {} MiB, MB/s{}",
                params.file_mib,
                memory(download_peak, plain_down_peak)
            ),
            download,
            plain_down,
            "≥ 0.5× plain copy, constant memory",
        ),
    ])
}
