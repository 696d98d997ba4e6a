//! Files: streaming upload, ranged download, metadata, listing, deletion, download links,
//! the namespace's file policy, and the export archive (tar of the export document and every
//! file). Uploads are read frame by frame and downloads written segment by segment, so a
//! request's memory does not grow with the file.

use axum::body::{Body, BodyDataStream};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use strongroom_core::files::{
    ByteRange, DownloadLink, FileInfo, FilePolicy, FilePolicyView, FileReader, LinkRequest,
    NewFile, UploadWriter,
};
use strongroom_core::{CoreError, Page};
use tokio::sync::mpsc;

use super::{PageQuery, DEFAULT_PAGE};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::state::AppState;
use crate::tar;

type FilePath = ApiPath<(String, String, String)>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadQuery {
    name: String,
}

/// The SHA-256 (hex) the uploaded bytes must have, if the client knows it.
const SHA256_HEADER: &str = "x-content-sha256";

fn header_text(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::BadParameter(format!("header {name} is not ASCII text")))
        })
        .transpose()
}

pub(crate) async fn upload(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<FileInfo>), ApiError> {
    let declared_size = header_text(&headers, "content-length")?
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::BadParameter("Content-Length is not a number".into()))
        })
        .transpose()?;
    let new = NewFile {
        name: q.name,
        content_type: header_text(&headers, "content-type")?,
        declared_size,
        expected_sha256: header_text(&headers, SHA256_HEADER)?,
    };
    // A client that asked to wait (`Expect: 100-continue`) has sent nothing yet when the upload
    // is refused; any other is still sending, and is drained before it hears the refusal.
    let waits_for_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut frames = body.into_data_stream();
    let stored = receive(&app, (who, ns, user), new, &mut frames).await;
    // A body that stalled or broke is not drained: nothing more is coming.
    let drainable = matches!(&stored, Err(e) if !matches!(e, ApiError::UploadStalled { .. } | ApiError::BodyFailed));
    if drainable && !waits_for_continue {
        drain(&mut frames).await;
    }
    stored.map(|info| (StatusCode::CREATED, Json(info)))
}

/// Bytes and time spent reading a refused upload's body before answering.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

async fn receive(
    app: &AppState,
    (who, ns, user): (strongroom_core::Principal, String, String),
    new: NewFile,
    frames: &mut BodyDataStream,
) -> Result<FileInfo, ApiError> {
    let mut writer = app
        .run(move |v| v.begin_upload(&who, &ns, &user, new))
        .await?;
    // A failure abandons the upload before the client hears of it, so its quota reservation
    // is free by then; a request cancelled midway abandons it when the writer is dropped.
    if let Err(e) = receive_body(&mut writer, frames, app.settings.upload_idle_ms).await {
        writer.abandon().await;
        return Err(e);
    }
    let finished = writer.finish().await?;
    app.run(move |_| finished.commit()).await
}

/// Streams the body into the writer. A body that sends nothing for `idle_ms` is cut off
/// (a client that declared a large size and stalled must not hold its reservation forever).
async fn receive_body(
    writer: &mut UploadWriter,
    frames: &mut BodyDataStream,
    idle_ms: u64,
) -> Result<(), ApiError> {
    let idle = std::time::Duration::from_millis(idle_ms);
    loop {
        match tokio::time::timeout(idle, frames.next()).await {
            Err(_) => {
                return Err(ApiError::UploadStalled {
                    idle_secs: idle.as_secs(),
                })
            }
            Ok(None) => return Ok(()),
            Ok(Some(Err(_))) => return Err(ApiError::BodyFailed),
            Ok(Some(Ok(bytes))) => writer.write(&bytes).await?,
        }
    }
}

/// Reads and drops what a client is still sending after its upload was refused, up to
/// [`DRAIN_LIMIT`] bytes or [`DRAIN_TIME`]. Closing the connection on unread data resets it,
/// and the client would lose the refusal (its status and code) with it.
async fn drain(frames: &mut BodyDataStream) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut read = 0;
        while let Some(Ok(bytes)) = frames.next().await {
            read += bytes.len();
            if read > DRAIN_LIMIT {
                break;
            }
        }
    })
    .await;
}

pub(crate) async fn list(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user)): ApiPath<(String, String)>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<FileInfo>>, ApiError> {
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    app.run(move |v| v.list_files(&who, &ns, &user, page.cursor(), limit))
        .await
        .map(Json)
}

pub(crate) async fn info(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, file)): FilePath,
) -> Result<Json<FileInfo>, ApiError> {
    app.run(move |v| v.get_file_info(&who, &ns, &user, &file))
        .await
        .map(Json)
}

pub(crate) async fn delete(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, file)): FilePath,
) -> Result<StatusCode, ApiError> {
    app.run(move |v| v.delete_file(&who, &ns, &user, &file))
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

pub(crate) async fn download(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, file)): FilePath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let range = parse_range(&headers)?;
    let reader = app
        .run(move |v| v.open_file(&who, &ns, &user, &file, range))
        .await?;
    file_response(reader).await
}

pub(crate) async fn create_link(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, file)): FilePath,
    ApiJson(request): ApiJson<LinkRequest>,
) -> Result<(StatusCode, Json<DownloadLink>), ApiError> {
    app.run(move |v| v.create_file_link(&who, &ns, &user, &file, request))
        .await
        .map(|link| (StatusCode::CREATED, Json(link)))
}

/// Downloads through a signed link: no API token, the link is the authority.
pub(crate) async fn download_link(
    State(app): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let range = parse_range(&headers)?;
    let reader = app.run(move |v| v.open_file_link(&token, range)).await?;
    file_response(reader).await
}

pub(crate) async fn get_policy(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
) -> Result<Json<FilePolicyView>, ApiError> {
    app.run(move |v| v.get_file_policy(&who, &ns))
        .await
        .map(Json)
}

pub(crate) async fn put_policy(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
    ApiJson(policy): ApiJson<FilePolicy>,
) -> Result<Json<FilePolicyView>, ApiError> {
    app.run(move |v| v.set_file_policy(&who, &ns, policy))
        .await
        .map(Json)
}

/// The `Range` header, if any (see [`crate::range::parse`]).
fn parse_range(headers: &HeaderMap) -> Result<Option<ByteRange>, ApiError> {
    headers
        .get(header::RANGE)
        .map(|value| crate::range::parse(value.as_bytes()).map_err(ApiError::BadRange))
        .transpose()
}

/// `attachment; filename*=UTF-8''…` with the name percent-encoded (no header injection).
fn content_disposition(name: &str) -> HeaderValue {
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Headers of every stored-content response: a download, never rendered on the API's origin
/// (an uploaded HTML file must not run there), never cached by shared caches.
fn attachment_headers(
    response: &mut Response,
    content_type: HeaderValue,
    disposition: HeaderValue,
) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
}

/// Streams a reader as the response. The first segment is decrypted before the status is
/// sent, so damage there is a clean `integrity_error`; damage found later aborts the
/// transfer (the client sees a truncated body, never unauthenticated bytes).
async fn file_response(mut reader: FileReader) -> Result<Response, ApiError> {
    let first = reader.next_chunk().await.transpose()?;
    let info = reader.info().clone();
    let range = reader.range();
    let partial = reader.is_partial();
    let mut response = Response::new(Body::from_stream(
        futures::stream::iter(first.map(Ok::<Bytes, CoreError>)).chain(futures::stream::unfold(
            reader,
            |mut r| async move {
                let item = r.next_chunk().await?;
                if item.is_err() {
                    settle_before_abort().await;
                }
                Some((item, r))
            },
        )),
    ));
    let content_type = HeaderValue::from_str(&info.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    attachment_headers(&mut response, content_type, content_disposition(&info.name));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(range.end - range.start),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", info.sha256)) {
        headers.insert(header::ETAG, etag);
    }
    if partial {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            range.start,
            range.end - 1,
            info.size
        )) {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

/// Gives the connection a moment to send what it holds before a stream is aborted: damage
/// found mid-file cuts the transfer off after the last good segment, and without a pause the
/// buffered good bytes were dropped with the connection (the client saw an empty reply).
async fn settle_before_abort() {
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
}

/// The export archive: `export.json` (the same document as `GET …/export`) followed by every
/// file as `files/<id>`; streamed, so its size is not bounded by memory.
pub(crate) async fn export_archive(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let export = {
        let (who, ns, user) = (who.clone(), ns.clone(), user.clone());
        app.run(move |v| v.export_user(&who, &ns, &user)).await?
    };
    let document = serde_json::to_vec_pretty(&export)
        .map_err(|e| ApiError::Core(CoreError::Internal(e.to_string())))?;
    let mtime = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    let ids: Vec<String> = export.files.iter().map(|f| f.id.clone()).collect();
    let (tx, rx) = mpsc::channel::<Result<Bytes, CoreError>>(4);
    tokio::spawn(async move {
        let send = |b: Vec<u8>| tx.send(Ok(Bytes::from(b)));
        let mut entry = tar::file_header("export.json", document.len() as u64, mtime).to_vec();
        let pad = tar::padding(document.len() as u64);
        entry.extend_from_slice(&document);
        entry.extend(std::iter::repeat_n(0u8, pad));
        if send(entry).await.is_err() {
            return;
        }
        for id in ids {
            let opened = {
                let (who, ns, user, id) = (who.clone(), ns.clone(), user.clone(), id.clone());
                app.run(move |v| v.open_file_for_export(&who, &ns, &user, &id))
                    .await
            };
            let mut reader = match opened {
                Ok(r) => r,
                Err(ApiError::Core(e)) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                Err(_) => return,
            };
            let size = reader.info().size;
            let header = tar::file_header(&format!("files/{id}"), size, mtime).to_vec();
            if send(header).await.is_err() {
                return;
            }
            while let Some(chunk) = reader.next_chunk().await {
                let failed = chunk.is_err();
                if failed {
                    settle_before_abort().await;
                }
                if tx.send(chunk).await.is_err() || failed {
                    return;
                }
            }
            if send(vec![0u8; tar::padding(size)]).await.is_err() {
                return;
            }
        }
        let _ = send(vec![0u8; 2 * tar::BLOCK]).await;
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let mut response = Response::new(body);
    attachment_headers(
        &mut response,
        HeaderValue::from_static("application/x-tar"),
        HeaderValue::from_static("attachment; filename=\"export.tar\""),
    );
    Ok(response)
}
