//! A minimal HTTP/1.1 keep-alive load generator: N connections, each sending one request at a
//! time for a fixed duration, recording every latency. Bounded in time; loopback only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::report::Measure;
use crate::setup::Rng;

/// Builds the bytes of one request.
pub type RequestFn = Arc<dyn Fn(&mut Rng) -> Vec<u8> + Send + Sync>;

struct ConnResult {
    latencies_us: Vec<u32>,
    errors: u64,
}

/// Runs the load and summarizes it.
pub fn run(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    request: RequestFn,
) -> Measure {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    runtime.block_on(async move {
        let deadline = Instant::now() + duration;
        let started = Instant::now();
        let tasks: Vec<_> = (0..connections)
            .map(|c| {
                tokio::spawn(connection(
                    addr,
                    deadline,
                    request.clone(),
                    Rng::new(c as u64 + 11),
                ))
            })
            .collect();
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let r = task.await.expect("connection task");
            latencies.extend(r.latencies_us);
            errors += r.errors;
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let pick = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .map(|us| *us as f64 / 1000.0)
        };
        Measure {
            per_sec: latencies.len() as f64 / elapsed,
            p50_ms: pick(0.50),
            p99_ms: pick(0.99),
            errors,
        }
    })
}

async fn connection(
    addr: SocketAddr,
    deadline: Instant,
    request: RequestFn,
    mut rng: Rng,
) -> ConnResult {
    let mut result = ConnResult {
        latencies_us: Vec::with_capacity(50_000),
        errors: 0,
    };
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(8192);
    while Instant::now() < deadline {
        if stream.is_none() {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                }
                Err(_) => {
                    result.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        let bytes = request(&mut rng);
        let sent = Instant::now();
        let status = match exchange(s, &bytes, &mut buf).await {
            Ok(status) => status,
            Err(_) => {
                result.errors += 1;
                stream = None;
                continue;
            }
        };
        if (200..300).contains(&status) {
            result
                .latencies_us
                .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        } else {
            result.errors += 1;
        }
    }
    result
}

/// Sends one request and reads one response; returns the status code.
async fn exchange(s: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> std::io::Result<u16> {
    s.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head =
        std::str::from_utf8(&buf[..header_end]).map_err(|_| std::io::Error::other("bad header"))?;
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status"))?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}
