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

pub(crate) const CHUNK: usize = 1 << 20;
/// Rounds per side; the median is reported.
pub(crate) const ROUNDS: usize = 5;

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

pub(crate) fn throughput(bytes: u64, secs: f64) -> Measure {
    Measure {
        per_sec: bytes as f64 / 1e6 / secs,
        ..Measure::default()
    }
}

/// Copies `input` to `output` in 1 MiB chunks (never the kernel's file-to-file shortcut, so
/// the limit does the same reads and writes a client would); returns the bytes copied.
pub(crate) fn copy_in_chunks(input: &mut impl Read, output: &mut impl Write) -> Result<u64> {
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

/// The limit of an upload: the source read and written to a new file.
fn plain_copy(src: &std::path::Path, dst: &std::path::Path) -> Result<u64> {
    copy_in_chunks(&mut File::open(src)?, &mut File::create(dst)?)
}

/// The limit of a download: the file read and dropped (the reader is the client's side, and
/// writing it to a disk would only add that disk's noise to both sides).
fn plain_read(src: &std::path::Path) -> Result<u64> {
    copy_in_chunks(&mut File::open(src)?, &mut std::io::sink())
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
    let out = |name: &str| dir.path().join(name);
    let mut sides: [Vec<(f64, u64)>; 4] = Default::default();
    for _round in 0..ROUNDS {
        // Upload: read the source, encrypt, write pieces; commit.
        let (secs, peak, info) = measured(|| {
            runtime.block_on(async {
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
            })
        })?;
        anyhow::ensure!(info.size == size, "uploaded size");
        sides[0].push((secs, peak));
        let (secs, peak, _) = measured(|| plain_copy(&source, &out("copy-up.bin")))?;
        sides[1].push((secs, peak));

        // Download: read pieces, decrypt, write to a file.
        let (secs, peak, downloaded) = measured(|| {
            runtime.block_on(async {
                let mut reader = vault.open_file(&who, "bench", "user", &info.id, None)?;
                let mut total = 0u64;
                while let Some(chunk) = reader.next_chunk().await {
                    total += std::hint::black_box(chunk?).len() as u64;
                }
                anyhow::Ok(total)
            })
        })?;
        anyhow::ensure!(downloaded == size, "downloaded size");
        sides[2].push((secs, peak));
        let (secs, peak, _) = measured(|| plain_read(&out("copy-up.bin")))?;
        sides[3].push((secs, peak));

        vault.delete_file(&who, "bench", "user", &info.id)?;
        std::fs::remove_file(out("copy-up.bin"))?;
    }
    for (name, runs) in ["upload", "plain up", "download", "plain down"]
        .iter()
        .zip(&sides)
    {
        let rates: Vec<String> = runs
            .iter()
            .map(|(secs, _)| format!("{:.0}", size as f64 / 1e6 / secs))
            .collect();
        eprintln!("files: {name} MB/s per round: {}", rates.join(", "));
    }
    let [upload, plain_up, download, plain_down] = sides.map(|runs| median(size, runs));
    let memory = |ours: u64, plain: u64| {
        if measured_memory {
            format!(" (peak RSS +{ours} MiB vs +{plain} MiB)")
        } else {
            String::new()
        }
    };
    eprintln!(
        "files: {} MiB, median of {ROUNDS}: upload {:.0} MB/s (plain {:.0}), download {:.0} MB/s (plain {:.0})",
        params.file_mib, upload.0.per_sec, plain_up.0.per_sec, download.0.per_sec, plain_down.0.per_sec
    );
    let http_rows = crate::files_http::run(&vault, &who, &source, size, params.file_mib)?;
    let _ = std::fs::remove_dir_all(dir.path()).context("removing the bench files");
    Ok(vec![
        Row::new(
            format!(
                "files: upload {} MiB, MB/s{}",
                params.file_mib,
                memory(upload.1, plain_up.1)
            ),
            upload.0,
            plain_up.0,
            "no ratio target (#6); constant memory",
        ),
        Row::new(
            format!(
                "files: download {} MiB, MB/s{}",
                params.file_mib,
                memory(download.1, plain_down.1)
            ),
            download.0,
            plain_down.0,
            ">= 0.8x the read limit (#19); constant memory",
        ),
    ]
    .into_iter()
    .chain(http_rows)
    .collect())
}

/// Runs one side: flushes dirty pages first (so no side pays for another's writes), resets
/// the peak-memory mark, and returns seconds, MiB of peak RSS above the start, and the result.
pub(crate) fn measured<T>(side: impl FnOnce() -> Result<T>) -> Result<(f64, u64, T)> {
    std::process::Command::new("sync")
        .status()
        .context("running sync")?;
    reset_peak();
    let before = peak_mib();
    let started = Instant::now();
    let value = side()?;
    Ok((
        started.elapsed().as_secs_f64(),
        peak_mib().saturating_sub(before),
        value,
    ))
}

/// The median run's throughput and the largest peak over the runs.
pub(crate) fn median(size: u64, mut runs: Vec<(f64, u64)>) -> (Measure, u64) {
    let peak = runs.iter().map(|r| r.1).max().unwrap_or(0);
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let secs = runs.get(runs.len() / 2).map_or(f64::NAN, |r| r.0);
    (throughput(size, secs), peak)
}
