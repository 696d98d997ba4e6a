//! Strongroom's domain layer — the only place that composes crypto and storage.
//!
//! A [`Vault`] holds a storage backend (`Arc<dyn Storage>`), the root key, the key cache and
//! the audit writer. Every data operation takes a [`Principal`] (who is asking), is authorized
//! here against that principal's policy, and is audited here — so the HTTP server, the CLI and
//! library users all get the same checks, and no entry point can forget them.

pub mod access;
pub mod audit;
pub mod clock;
pub mod credentials;
mod error;
pub mod jobs;
pub mod keyring;
pub mod names;
pub mod namespaces;
pub mod secret_string;
pub mod tokens;
pub mod users;
mod vault;

pub use access::{Capability, Policy, Principal};
pub use clock::{Clock, SystemClock};
pub use error::{CoreError, CoreResult};
pub use vault::{Opened, Vault, VaultSettings};

/// A page of results and the cursor to pass for the next one (`None` at the end).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
