//! Object storage for encrypted files, below the core and beside the metadata backends.
//!
//! A stored file is one opaque byte stream (already encrypted by the core) cut into fixed-size
//! *pieces*, each its own object named `<object id>/<piece index>`. Pieces keep every write a
//! single bounded `put` (no multipart state to orphan when a node dies mid-upload; constant
//! memory whatever the file size), make a range read touch only the pieces it needs, and look
//! the same on a local folder and on S3. Object ids are random and chosen by the caller: no
//! user id or file name ever reaches the bucket.
//!
//! All I/O runs on this crate's own small runtime, so the same store serves the async HTTP
//! paths (`put_piece`, `read_range`) and the synchronous background jobs (`delete_object_blocking`).

pub mod aws_signing;
mod location;
mod store;

pub use location::{ObjectLocation, S3Settings};
pub use store::{BlobStore, InFlight, ObjectError, ObjectResult, PendingPut, DEFAULT_PIECE_SIZE};
/// The receiving end of a ranged read ([`BlobStore::read_range`]).
pub use tokio::sync::mpsc::Receiver as ByteReceiver;
