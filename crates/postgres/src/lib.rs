//! The scale-out backend: every storage trait on PostgreSQL, shared by any number of stateless
//! Strongroom nodes.
//!
//! Nothing home-made stands in for the database's guarantees: check-and-set writes lock the
//! credential row (`SELECT … FOR UPDATE`), the audit chain and schema migrations serialize on
//! transaction-scoped advisory locks, and leases are rows updated with a conditional upsert.
//! Connections come from a bounded pool with a checkout timeout; each caches its prepared
//! statements. A lost connection or a server restart surfaces as
//! [`StorageError::Unavailable`](strongroom_storage::StorageError::Unavailable) (HTTP 503 with
//! Retry-After), reads are retried once on a fresh connection, and the pool reconnects by itself.

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
mod tokens;
mod transit;
mod users;
mod webhooks;

pub use connection::{PgSettings, PgStore};
