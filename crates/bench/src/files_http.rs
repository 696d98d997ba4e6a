//! Encrypted files through the HTTP server: a file streamed up and down over loopback through
//! Strongroom's API, beside the limit — a plain axum server on the same runtime settings that
//! streams the request body into a file and a file back as the response. The client is a plain
//! blocking socket with 1 MiB buffers. Peak memory is the whole process's (`VmHWM`), client
//! and server together.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;
use strongroom_core::{Policy, Principal, Vault};
use strongroom_server::{AppState, ServerSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::files::{copy_in_chunks, measured, median, CHUNK, ROUNDS};
use crate::http::start;
use crate::report::Row;

/// Sends `method path` with an optional streamed body; returns the status and the number of
/// body bytes read (the body itself is dropped).
fn exchange(addr: SocketAddr, head: &str, body: Option<(&Path, u64)>) -> Result<(u16, u64)> {
    let mut stream = TcpStream::connect(addr)?;
    match body {
        Some((path, len)) => {
            write!(
                stream,
                "{head}\r\nHost: bench\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            )?;
            copy_in_chunks(&mut File::open(path)?, &mut stream)?;
        }
        None => write!(stream, "{head}\r\nHost: bench\r\nConnection: close\r\n\r\n")?,
    }
    let mut reader = BufReader::with_capacity(CHUNK, stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let total = copy_in_chunks(&mut reader, &mut std::io::sink())?;
    Ok((status, total))
}

/// The limit: the same streaming, without encryption, auth or audit.
fn plain_router(dir: PathBuf) -> Router {
    async fn upload(State(dir): State<Arc<PathBuf>>, body: Body) -> StatusCode {
        let Ok(mut file) = tokio::fs::File::create(dir.join("plain-upload.bin")).await else {
            return StatusCode::INTERNAL_SERVER_ERROR;
        };
        let mut frames = body.into_data_stream();
        while let Some(frame) = frames.next().await {
            let Ok(bytes) = frame else {
                return StatusCode::BAD_REQUEST;
            };
            if file.write_all(&bytes).await.is_err() {
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
        }
        StatusCode::CREATED
    }
    async fn download(
        State(dir): State<Arc<PathBuf>>,
    ) -> Result<([(axum::http::HeaderName, String); 1], Body), StatusCode> {
        let file = tokio::fs::File::open(dir.join("plain-upload.bin"))
            .await
            .map_err(|_| StatusCode::NOT_FOUND)?;
        let len = file
            .metadata()
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
            .len();
        let body = Body::from_stream(futures::stream::unfold(file, |mut f| async move {
            let mut buf = vec![0u8; CHUNK];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), f))
                }
                Err(e) => Some((Err(e), f)),
            }
        }));
        Ok((
            [(axum::http::header::CONTENT_LENGTH, len.to_string())],
            body,
        ))
    }
    Router::new()
        .route("/upload", post(upload))
        .route("/download", get(download))
        .with_state(Arc::new(dir))
}

pub fn run(vault: &Vault, who: &Principal, source: &Path, size: u64, mib: u64) -> Result<Vec<Row>> {
    let dir = source.parent().context("source directory")?.to_path_buf();
    let (_, token) = vault.create_token(who, "bench-files", Policy::operator(), None)?;
    let token = token.expose_text().to_string();
    let ours = start(
        None,
        Some(AppState::new(vault.clone(), ServerSettings::default())),
    )?;
    let plain = start(Some(plain_router(dir.clone())), None)?;
    let mut sides: [Vec<(f64, u64)>; 4] = Default::default();
    for _round in 0..ROUNDS {
        let (secs, peak, (status, _)) = measured(|| {
            exchange(
                ours.addr,
                &format!("POST /v1/ns/bench/users/http-user/files?name=big.bin HTTP/1.1\r\nAuthorization: Bearer {token}"),
                Some((source, size)),
            )
        })?;
        if status != 201 {
            bail!("upload answered {status}");
        }
        sides[0].push((secs, peak));
        let (secs, peak, (status, _)) =
            measured(|| exchange(plain.addr, "POST /upload HTTP/1.1", Some((source, size))))?;
        if status != 201 {
            bail!("plain upload answered {status}");
        }
        sides[1].push((secs, peak));

        let list = vault.list_files(who, "bench", "http-user", None, 1)?;
        let id = list
            .items
            .first()
            .map(|f| f.id.clone())
            .context("uploaded file")?;
        let (secs, peak, (status, got)) = measured(|| {
            exchange(
                ours.addr,
                &format!("GET /v1/ns/bench/users/http-user/files/{id}/content HTTP/1.1\r\nAuthorization: Bearer {token}"),
                None,
            )
        })?;
        if status != 200 || got != size {
            bail!("download answered {status} with {got} bytes");
        }
        sides[2].push((secs, peak));
        let (secs, peak, (status, got)) =
            measured(|| exchange(plain.addr, "GET /download HTTP/1.1", None))?;
        if status != 200 || got != size {
            bail!("plain download answered {status} with {got} bytes");
        }
        sides[3].push((secs, peak));
        vault.delete_file(who, "bench", "http-user", &id)?;
        std::fs::remove_file(dir.join("plain-upload.bin"))?;
    }
    let [up, plain_up, down, plain_down] = sides.map(|runs| median(size, runs));
    drop((ours, plain));
    let label = |what: &str, ours: u64, limit: u64| {
        format!("files over HTTP: {what} {mib} MiB, MB/s (process peak RSS +{ours} MiB vs +{limit} MiB)")
    };
    Ok(vec![
        Row::new(
            label("upload", up.1, plain_up.1),
            up.0,
            plain_up.0,
            "no ratio target (#6); constant memory",
        ),
        Row::new(
            label("download", down.1, plain_down.1),
            down.0,
            plain_down.0,
            "no ratio target (#6); constant memory",
        ),
    ])
}
