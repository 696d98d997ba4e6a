//! The embedded default backend: every storage trait on one SQLite file.
//!
//! One writer connection (SQLite admits one writer at a time anyway) takes `BEGIN IMMEDIATE`
//! transactions, so check-and-set writes and audit chaining are serialized by the database
//! itself; a small pool of reader connections serves reads concurrently thanks to WAL mode.
//! The schema is versioned with `PRAGMA user_version` and migrated at open.

mod audit;
mod connection;
mod copy;
mod credentials;
mod erasure;
mod events;
mod files;
mod leases;
mod lockouts;
mod namespaces;
mod oauth;
mod records;
mod schema;
pub mod snapshot;
mod tokens;
mod transit;
mod users;
mod webhooks;

pub use connection::SqliteStore;
