//! A 2 GiB file through the real server: streamed up and down (and a range read at its far
//! end), checked by SHA-256, with the server's peak memory (VmHWM) read from /proc before and
//! after. Memory must not grow with the file: segments and pieces are bounded buffers.

mod support;

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::Value;
use strongroom_crypto::keyed_hash::Sha256;
use support::{app_token, Server};

const SIZE: u64 = 2 << 30;
/// Generous bound on the whole server's peak resident memory (it idles at ~20 MiB); the file
/// alone would be 2048 MiB if anything buffered it.
const PEAK_LIMIT_MIB: u64 = 200;

/// The byte at offset `i` of the test file: cheap, seekable pseudo-random data.
fn block(index: u64) -> [u8; 8] {
    let mut z = index.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).to_le_bytes()
}

fn fill(offset: u64, out: &mut [u8]) {
    for (k, b) in out.iter_mut().enumerate() {
        let i = offset + k as u64;
        *b = block(i / 8)[(i % 8) as usize];
    }
}

/// Generates the file as a reader, hashing what it hands out.
struct Generator {
    at: u64,
    hash: Sha256,
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (SIZE - self.at).min(buf.len() as u64) as usize;
        fill(self.at, &mut buf[..n]);
        self.hash.update(&buf[..n]);
        self.at += n as u64;
        Ok(n)
    }
}

fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_2_gib_file_streams_up_and_down_in_constant_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("d"), &[], &[]);
    let pid = server.child.as_ref().unwrap().id();
    let token = app_token(&server, "app", &["read", "write"]);
    let baseline = peak_rss_mib(pid);
    let agent = ureq::AgentBuilder::new()
        .timeout_read(Duration::from_secs(120))
        .timeout_write(Duration::from_secs(120))
        .build();

    let started = Instant::now();
    let mut generator = Generator {
        at: 0,
        hash: Sha256::default(),
    };
    let resp = agent
        .post(&format!(
            "{}/v1/ns/app/users/u/files?name=big.bin",
            server.base
        ))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Length", &SIZE.to_string())
        .send(&mut generator)
        .expect("upload accepted");
    let info: Value = resp.into_json().unwrap();
    let upload_secs = started.elapsed().as_secs_f64();
    let sent_sha = hex(&generator.hash.finish());
    assert_eq!(info["size"], SIZE);
    assert_eq!(info["sha256"], sent_sha.as_str());
    let after_upload = peak_rss_mib(pid);
    let id = info["id"].as_str().unwrap().to_string();

    let started = Instant::now();
    let resp = agent
        .get(&format!(
            "{}/v1/ns/app/users/u/files/{id}/content",
            server.base
        ))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    let mut reader = resp.into_reader();
    let mut hash = Sha256::default();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        total += n as u64;
    }
    let download_secs = started.elapsed().as_secs_f64();
    assert_eq!(total, SIZE);
    assert_eq!(hex(&hash.finish()), sent_sha);

    // The far end by range: only the last segments are read and decrypted.
    let resp = agent
        .get(&format!(
            "{}/v1/ns/app/users/u/files/{id}/content",
            server.base
        ))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Range", &format!("bytes={}-", SIZE - 1000))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 206);
    let mut tail = Vec::new();
    resp.into_reader().read_to_end(&mut tail).unwrap();
    let mut want = vec![0u8; 1000];
    fill(SIZE - 1000, &mut want);
    assert_eq!(tail, want);

    let peak = peak_rss_mib(pid);
    eprintln!(
        "2 GiB file: upload {upload_secs:.1} s ({:.0} MB/s), download {download_secs:.1} s ({:.0} MB/s); \
         server peak RSS {baseline} MiB at start, {after_upload} MiB after upload, {peak} MiB after download",
        SIZE as f64 / 1e6 / upload_secs,
        SIZE as f64 / 1e6 / download_secs,
    );
    assert!(
        peak < PEAK_LIMIT_MIB,
        "server peak memory {peak} MiB (started at {baseline} MiB) grew with the file"
    );
}
