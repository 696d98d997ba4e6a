//! Named objects beside the pieces: small documents and chunked archives that other tools
//! keep in a folder or bucket (backups and their manifests, the erasure ledger). Paths are
//! slash-separated segments of `[A-Za-z0-9._-]` (no `.` or `..` segment), chosen by the
//! caller, never derived from user data. Every call blocks the calling thread while the work
//! runs on the store's own runtime, so synchronous commands and jobs can use them.

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};

use super::{unavailable, BlobStore};
use crate::{ObjectError, ObjectResult};

/// Checks a caller-chosen object path (refusing anything that could climb out of the
/// location or that object stores spell differently).
fn named_path(path: &str) -> ObjectResult<Path> {
    let valid = !path.is_empty()
        && path.len() <= 512
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if !valid {
        return Err(ObjectError::Config(format!(
            "`{path}` is not an object path (segments of letters, digits, '.', '_' or '-')"
        )));
    }
    Ok(Path::from(path))
}

impl BlobStore {
    fn block_on<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = ObjectResult<T>> + Send + 'static,
    ) -> ObjectResult<T> {
        futures::executor::block_on(self.on_runtime(fut))
    }

    /// Writes (or replaces) the object at `path`.
    pub fn put_named(&self, path: &str, bytes: Bytes) -> ObjectResult<()> {
        let path = named_path(path)?;
        let store = self.inner.store.clone();
        self.block_on(async move {
            store
                .put(&path, PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(unavailable)
        })
    }

    /// The object at `path`, or `None` if there is none.
    pub fn get_named(&self, path: &str) -> ObjectResult<Option<Bytes>> {
        let path = named_path(path)?;
        let store = self.inner.store.clone();
        self.block_on(async move {
            match store.get(&path).await {
                Ok(found) => found.bytes().await.map(Some).map_err(unavailable),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(unavailable(e)),
            }
        })
    }

    /// Every object under `prefix` (a path of segments, or empty for the whole location) as
    /// (path, size), sorted by path.
    pub fn list_named(&self, prefix: &str) -> ObjectResult<Vec<(String, u64)>> {
        let prefix = if prefix.is_empty() {
            None
        } else {
            Some(named_path(prefix)?)
        };
        let store = self.inner.store.clone();
        self.block_on(async move {
            let mut listed = store.list(prefix.as_ref());
            let mut out = Vec::new();
            while let Some(meta) = listed.next().await {
                let meta = meta.map_err(unavailable)?;
                out.push((meta.location.to_string(), meta.size));
            }
            out.sort();
            Ok(out)
        })
    }

    /// Copies piece `index` of `object_id` from this store into `to` (the bytes as they are);
    /// returns the bytes copied.
    pub fn copy_piece_to(
        &self,
        object_id: &str,
        index: u64,
        to: &BlobStore,
    ) -> ObjectResult<Bytes> {
        let bytes = self.get_piece_blocking(object_id, index)?;
        futures::executor::block_on(to.put_piece(
            object_id,
            index,
            bytes.clone(),
            &super::InFlight::default(),
        ))?;
        Ok(bytes)
    }

    /// [`Self::get_piece`] for synchronous callers.
    pub fn get_piece_blocking(&self, object_id: &str, index: u64) -> ObjectResult<Bytes> {
        futures::executor::block_on(self.get_piece(object_id, index))
    }

    /// [`Self::pieces`] for synchronous callers.
    pub fn pieces_blocking(&self, object_id: &str) -> ObjectResult<Vec<(u64, u64)>> {
        futures::executor::block_on(self.pieces(object_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ObjectLocation, S3Settings};

    #[test]
    fn named_objects_round_trip_and_list_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(
            &ObjectLocation::Local(dir.path().into()),
            &S3Settings::default(),
        )
        .unwrap();
        store
            .put_named("ledger/b.json", Bytes::from_static(b"two"))
            .unwrap();
        store
            .put_named("ledger/a.json", Bytes::from_static(b"one"))
            .unwrap();
        assert_eq!(
            store.get_named("ledger/a.json").unwrap().unwrap(),
            Bytes::from_static(b"one")
        );
        assert!(store.get_named("ledger/none.json").unwrap().is_none());
        let listed = store.list_named("ledger").unwrap();
        assert_eq!(
            listed,
            vec![("ledger/a.json".into(), 3), ("ledger/b.json".into(), 3)]
        );
    }

    #[test]
    fn paths_that_could_escape_are_refused() {
        for bad in ["", "../x", "a/../b", "a//b", "a/./b", "a b", "a\\b", "/abs"] {
            assert!(named_path(bad).is_err(), "{bad:?} accepted");
        }
        assert!(named_path("backups/2026-12-04T01.00/manifest.json").is_ok());
    }
}
