//! The piece store: puts, ranged reads and deletes of a file's pieces, on a dedicated runtime.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, PutPayload, RetryConfig};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::mpsc;

use crate::{ObjectLocation, S3Settings};

mod named;

/// Stored bytes per piece unless configured otherwise (a multiple of typical segment sizes).
pub const DEFAULT_PIECE_SIZE: u64 = 8 * 1024 * 1024;
/// Largest ranged read: one GET (one `read` on a local file) per block.
pub const READ_BLOCK: u64 = 1024 * 1024;
/// Blocks buffered between the object store and a reader: bounds a download's memory.
const READ_AHEAD_BLOCKS: usize = 4;

/// Object storage failures. Messages name objects by their random ids only.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// A piece the metadata promises is not there (deleted or damaged storage).
    #[error("object piece {0} is missing")]
    Missing(String),
    /// The store could not be reached or refused the request.
    #[error("object storage is unavailable: {0}")]
    Unavailable(String),
    /// The configured location or settings are unusable.
    #[error("files location: {0}")]
    Config(String),
}

pub type ObjectResult<T> = Result<T, ObjectError>;

/// Tells damage from an outage after a failed ranged read: a piece that is missing or shorter
/// than `needed` bytes is damage (stores report a range past the end in their own ways);
/// anything else means the store could not answer.
async fn classify(
    store: &dyn ObjectStore,
    path: &Path,
    needed: u64,
    err: object_store::Error,
) -> ObjectError {
    match store.head(path).await {
        Err(object_store::Error::NotFound { .. }) => ObjectError::Missing(path.to_string()),
        Ok(meta) if meta.size < needed => ObjectError::Missing(format!(
            "{path} (holds {} bytes, {needed} needed)",
            meta.size
        )),
        _ => unavailable(err),
    }
}

fn unavailable(e: object_store::Error) -> ObjectError {
    match e {
        object_store::Error::NotFound { path, .. } => ObjectError::Missing(path),
        other => ObjectError::Unavailable(other.to_string()),
    }
}

/// Counts one upload's piece writes still running on the store's runtime.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<()>);

impl InFlight {
    /// Waits (blocking) until no write is running, at most `timeout`; false if some still are.
    pub fn wait_idle(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while Arc::strong_count(&self.0) > 1 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        true
    }
}

/// A piece write running on the store's runtime.
pub struct PendingPut(tokio::task::JoinHandle<ObjectResult<()>>);

impl PendingPut {
    /// Waits for the write to finish.
    pub async fn finish(self) -> ObjectResult<()> {
        joined(self.0).await
    }
}

/// The outcome of a task on the store's runtime (a task that panicked or was cancelled counts
/// as the store being unavailable).
async fn joined<T>(task: tokio::task::JoinHandle<ObjectResult<T>>) -> ObjectResult<T> {
    task.await
        .map_err(|e| ObjectError::Unavailable(format!("I/O task failed: {e}")))?
}

/// Shuts the runtime down without blocking, so the store may be dropped anywhere.
struct OwnedRuntime(Option<Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    handle: Handle,
    location: ObjectLocation,
    _runtime: OwnedRuntime,
}

/// A file-piece store over any `object_store` backend. Cheap to clone.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobStore({})", self.inner.location)
    }
}

fn check_object_id(id: &str) -> ObjectResult<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ObjectError::Config(format!(
            "object ids are hex strings, not `{id}`"
        )));
    }
    Ok(())
}

fn piece_path(object_id: &str, index: u64) -> Path {
    Path::from(format!("{object_id}/{index:08}"))
}

impl BlobStore {
    /// Opens the store at `location`. Local folders are created; S3 buckets must exist.
    pub fn open(location: &ObjectLocation, s3: &S3Settings) -> ObjectResult<Self> {
        let store: Arc<dyn ObjectStore> = match location {
            ObjectLocation::Memory => Arc::new(InMemory::new()),
            ObjectLocation::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| ObjectError::Config(format!("creating {}: {e}", dir.display())))?;
                let fs = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| ObjectError::Config(e.to_string()))?
                    .with_automatic_cleanup(true);
                Arc::new(fs)
            }
            ObjectLocation::S3 { bucket, prefix } => {
                let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(v) = &s3.endpoint {
                    b = b.with_endpoint(v);
                }
                if let Some(v) = &s3.region {
                    b = b.with_region(v);
                }
                if let Some(v) = &s3.access_key_id {
                    b = b.with_access_key_id(v);
                }
                if let Some(v) = &s3.secret_access_key {
                    b = b.with_secret_access_key(v.as_str());
                }
                // Fail within seconds when the store is down (the caller answers 503 and the
                // client retries), instead of object_store's default of retrying for minutes.
                b = b
                    .with_retry(RetryConfig {
                        max_retries: 3,
                        retry_timeout: Duration::from_secs(10),
                        ..RetryConfig::default()
                    })
                    .with_client_options(
                        ClientOptions::new()
                            .with_connect_timeout(Duration::from_secs(5))
                            .with_timeout(Duration::from_secs(120))
                            .with_allow_http(s3.allow_http),
                    );
                if s3.allow_http {
                    b = b.with_allow_http(true);
                }
                let s3 = b.build().map_err(|e| ObjectError::Config(e.to_string()))?;
                if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix.as_str()))
                }
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("strongroom-objects")
            .enable_all()
            .build()
            .map_err(|e| ObjectError::Config(format!("starting the I/O runtime: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                handle: runtime.handle().clone(),
                location: location.clone(),
                _runtime: OwnedRuntime(Some(runtime)),
            }),
        })
    }

    /// Runs `fut` on the store's runtime.
    async fn on_runtime<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = ObjectResult<T>> + Send + 'static,
    ) -> ObjectResult<T> {
        joined(self.inner.handle.spawn(fut)).await
    }

    /// Writes piece `index` of object `object_id`. The write is counted in `inflight` until it
    /// has finished — even if the caller stops waiting for it — so whoever cleans up after an
    /// abandoned upload can wait for it instead of racing it (and leaving a piece behind).
    pub async fn put_piece(
        &self,
        object_id: &str,
        index: u64,
        bytes: Bytes,
        inflight: &InFlight,
    ) -> ObjectResult<()> {
        self.start_put(object_id, index, bytes, inflight)?
            .finish()
            .await
    }

    /// Starts writing a piece and returns at once, so the caller can prepare the next piece
    /// while this one is written; [`PendingPut::finish`] reports the outcome.
    pub fn start_put(
        &self,
        object_id: &str,
        index: u64,
        bytes: Bytes,
        inflight: &InFlight,
    ) -> ObjectResult<PendingPut> {
        check_object_id(object_id)?;
        let store = self.inner.store.clone();
        let path = piece_path(object_id, index);
        let hold = inflight.0.clone();
        Ok(PendingPut(self.inner.handle.spawn(async move {
            let result = store
                .put(&path, PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(unavailable);
            drop(hold);
            result
        })))
    }

    /// Streams bytes `range` of the object's logical byte stream (pieces of `piece_size`), in
    /// blocks of at most [`READ_BLOCK`] fetched one ranged GET at a time; at most
    /// [`READ_AHEAD_BLOCKS`] blocks wait in the channel, whatever the range's length.
    pub fn read_range(
        &self,
        object_id: &str,
        piece_size: u64,
        range: Range<u64>,
    ) -> ObjectResult<mpsc::Receiver<ObjectResult<Bytes>>> {
        check_object_id(object_id)?;
        if piece_size == 0 {
            return Err(ObjectError::Config("piece size must be positive".into()));
        }
        let (tx, rx) = mpsc::channel(READ_AHEAD_BLOCKS);
        let store = self.inner.store.clone();
        let object_id = object_id.to_string();
        self.inner.handle.spawn(async move {
            let mut at = range.start;
            while at < range.end {
                let piece = at / piece_size;
                let piece_start = piece * piece_size;
                let end = range.end.min(piece_start + piece_size).min(at + READ_BLOCK);
                let path = piece_path(&object_id, piece);
                let within = (at - piece_start)..(end - piece_start);
                let block = match store.get_range(&path, within.clone()).await {
                    Ok(b) if b.len() as u64 == within.end - within.start => Ok(b),
                    // A piece shorter than the metadata says: damage, not an outage.
                    Ok(b) => Err(ObjectError::Missing(format!(
                        "{path} (short by {} bytes)",
                        (within.end - within.start).saturating_sub(b.len() as u64)
                    ))),
                    Err(e) => Err(classify(store.as_ref(), &path, within.end, e).await),
                };
                let failed = block.is_err();
                if tx.send(block).await.is_err() || failed {
                    return;
                }
                at = end;
            }
        });
        Ok(rx)
    }

    /// Deletes every piece of an object; returns how many there were. Missing is fine.
    pub async fn delete_object(&self, object_id: &str) -> ObjectResult<u64> {
        check_object_id(object_id)?;
        let store = self.inner.store.clone();
        let prefix = Path::from(object_id);
        // A node that died during a local write can leave object_store's staging file
        // (`<piece>#<n>`), which listings skip: on a folder the object's directory goes whole.
        let folder = match &self.inner.location {
            ObjectLocation::Local(dir) => Some(dir.join(object_id)),
            _ => None,
        };
        self.on_runtime(async move {
            if let Some(folder) = folder {
                return joined(tokio::task::spawn_blocking(move || {
                    let pieces = std::fs::read_dir(&folder).map_or(0, |d| d.count() as u64);
                    match std::fs::remove_dir_all(&folder) {
                        Ok(()) => Ok(pieces),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
                        Err(e) => Err(ObjectError::Unavailable(format!(
                            "removing {}: {e}",
                            folder.display()
                        ))),
                    }
                }))
                .await;
            }
            let mut listed = store.list(Some(&prefix));
            let mut paths = Vec::new();
            while let Some(meta) = listed.next().await {
                paths.push(meta.map_err(unavailable)?.location);
            }
            for p in &paths {
                match store.delete(p).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(unavailable(e)),
                }
            }
            Ok(paths.len() as u64)
        })
        .await
    }

    /// [`Self::delete_object`] for synchronous callers (background jobs, blocking threads).
    /// The work itself runs on the store's runtime; this thread only waits for it.
    pub fn delete_object_blocking(&self, object_id: &str) -> ObjectResult<u64> {
        futures::executor::block_on(self.delete_object(object_id))
    }

    /// The pieces of one object as (index, stored bytes), in order.
    pub async fn pieces(&self, object_id: &str) -> ObjectResult<Vec<(u64, u64)>> {
        check_object_id(object_id)?;
        let store = self.inner.store.clone();
        let prefix = Path::from(object_id);
        self.on_runtime(async move {
            let mut listed = store.list(Some(&prefix));
            let mut out = Vec::new();
            while let Some(meta) = listed.next().await {
                let meta = meta.map_err(unavailable)?;
                let index = meta
                    .location
                    .filename()
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(|| ObjectError::Missing(meta.location.to_string()))?;
                out.push((index, meta.size));
            }
            out.sort_unstable();
            Ok(out)
        })
        .await
    }

    /// One whole piece (for tools and tests; readers use [`Self::read_range`]).
    pub async fn get_piece(&self, object_id: &str, index: u64) -> ObjectResult<Bytes> {
        check_object_id(object_id)?;
        let store = self.inner.store.clone();
        let path = piece_path(object_id, index);
        self.on_runtime(async move {
            store
                .get(&path)
                .await
                .map_err(unavailable)?
                .bytes()
                .await
                .map_err(unavailable)
        })
        .await
    }

    /// Ids of every object in the store (for audits and tests; lists the whole bucket prefix).
    pub async fn list_object_ids(&self) -> ObjectResult<Vec<String>> {
        let store = self.inner.store.clone();
        self.on_runtime(async move {
            let mut listed = store.list(None);
            let mut ids = Vec::new();
            while let Some(meta) = listed.next().await {
                let meta = meta.map_err(unavailable)?;
                let first = meta.location.parts().next().map(|p| p.as_ref().to_string());
                if let Some(id) = first {
                    if ids.last() != Some(&id) {
                        ids.push(id);
                    }
                }
            }
            ids.sort();
            ids.dedup();
            Ok(ids)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(
        store: &BlobStore,
        id: &str,
        piece: u64,
        r: Range<u64>,
    ) -> ObjectResult<Vec<u8>> {
        let mut rx = store.read_range(id, piece, r)?;
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    async fn exercise(store: BlobStore) {
        let data: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
        for (i, piece) in data.chunks(100).enumerate() {
            store
                .put_piece(
                    "ab12",
                    i as u64,
                    Bytes::copy_from_slice(piece),
                    &InFlight::default(),
                )
                .await
                .unwrap();
        }
        assert_eq!(collect(&store, "ab12", 100, 0..250).await.unwrap(), data);
        assert_eq!(
            collect(&store, "ab12", 100, 95..205).await.unwrap(),
            data[95..205]
        );
        assert_eq!(
            collect(&store, "ab12", 100, 200..201).await.unwrap(),
            data[200..201]
        );
        // Asking past what is stored reports damage instead of returning less, also when the
        // request starts beyond the end of a piece.
        assert!(matches!(
            collect(&store, "ab12", 100, 240..260).await,
            Err(ObjectError::Missing(_))
        ));
        assert!(matches!(
            collect(&store, "ab12", 100, 255..260).await,
            Err(ObjectError::Missing(_))
        ));
        assert!(collect(&store, "ab12", 100, 0..300).await.is_err());
        assert_eq!(
            store.list_object_ids().await.unwrap(),
            vec!["ab12".to_string()]
        );
        assert_eq!(
            store.pieces("ab12").await.unwrap(),
            vec![(0, 100), (1, 100), (2, 50)]
        );
        assert_eq!(store.get_piece("ab12", 2).await.unwrap(), data[200..250]);
        assert_eq!(store.delete_object("ab12").await.unwrap(), 3);
        assert!(matches!(
            collect(&store, "ab12", 100, 0..10).await,
            Err(ObjectError::Missing(_))
        ));
        assert_eq!(store.delete_object("ab12").await.unwrap(), 0);
        assert!(store.list_object_ids().await.unwrap().is_empty());
        assert!(store
            .put_piece("../x", 0, Bytes::new(), &InFlight::default())
            .await
            .is_err());
    }

    #[tokio::test]
    async fn pieces_round_trip_in_memory() {
        exercise(BlobStore::open(&ObjectLocation::Memory, &S3Settings::default()).unwrap()).await;
    }

    #[tokio::test]
    async fn pieces_round_trip_on_local_disk() {
        let dir = tempfile::tempdir().unwrap();
        let loc = ObjectLocation::Local(dir.path().join("objects"));
        exercise(BlobStore::open(&loc, &S3Settings::default()).unwrap()).await;
        // Deleting cleans up the object's folder too, staging files of a crashed write included.
        let count = || {
            std::fs::read_dir(dir.path().join("objects"))
                .unwrap()
                .count()
        };
        assert_eq!(count(), 0);
        let store = BlobStore::open(&loc, &S3Settings::default()).unwrap();
        store
            .put_piece("cd34", 0, Bytes::from_static(b"x"), &InFlight::default())
            .await
            .unwrap();
        std::fs::write(dir.path().join("objects/cd34/00000001#7"), b"half").unwrap();
        assert_eq!(store.delete_object("cd34").await.unwrap(), 2);
        assert_eq!(count(), 0);
    }

    #[test]
    fn blocking_delete_works_off_any_runtime() {
        let store = BlobStore::open(&ObjectLocation::Memory, &S3Settings::default()).unwrap();
        assert_eq!(store.delete_object_blocking("00ff").unwrap(), 0);
    }
}
