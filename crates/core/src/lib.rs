//! Strongroom's domain layer — the only place that composes crypto and storage.
//!
//! A [`Vault`] holds a storage backend (`Arc<dyn Storage>`), the root key, the key cache and
//! the audit writer. Every data operation takes a [`Principal`] (who is asking), is authorized
//! here against that principal's policy, and is audited here — so the HTTP server, the CLI and
//! library users all get the same checks, and no entry point can forget them.
//!
//! Used as a library:
//!
//! ```
//! use std::sync::Arc;
//! use strongroom_core::credentials::{CredentialData, PutOptions};
//! use strongroom_core::{Principal, SystemClock, Vault, VaultSettings};
//! use strongroom_crypto::{Key, Root};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Arc::new(strongroom_sqlite::SqliteStore::open(&dir.path().join("vault.db")).unwrap());
//! let root = Key::<Root>::generate().unwrap(); // in real use: root_key::load_file(...)
//! let vault = Vault::open(store, root, Arc::new(SystemClock), VaultSettings::default()).unwrap().vault;
//! let me = Principal::system("my-bot"); // audited as "my-bot"
//! vault.create_namespace(&me, "musicbot").unwrap();
//!
//! let token: CredentialData = serde_json::from_str(
//!     r#"{"type": "oauth2", "access_token": "BQD…", "refresh_token": "AQC…", "provider": "spotify"}"#,
//! ).unwrap();
//! vault.put_credential(&me, "musicbot", "telegram:123456789", "spotify", &token, PutOptions::default()).unwrap();
//! let read = vault.get_credential(&me, "musicbot", "telegram:123456789", "spotify", None).unwrap();
//! assert_eq!(read.metadata.version, 1);
//! ```

pub mod access;
pub mod audit;
pub mod backup;
pub mod blocking;
pub mod clock;
pub mod credentials;
mod data_key_cache;
pub mod erasure_ledger;
mod error;
pub mod events;
pub mod files;
#[cfg(test)]
mod format_vectors;
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
pub mod jobs;
pub mod json;
pub mod key_rotation;
pub mod keyring;
pub mod kv;
pub mod lifecycle;
pub mod names;
pub mod namespaces;
pub mod oauth;
pub mod operation;
pub mod raw_json;
pub mod records;
pub(crate) mod row_auth;
pub mod seal;
pub(crate) mod sealed_names;
pub mod secret_string;
pub(crate) mod stored_config;
pub mod tokens;
pub mod transit;
pub mod users;
pub(crate) mod vault;
pub mod webhooks;

pub use access::{Capability, Policy, Principal};
pub use clock::{Clock, SystemClock};
pub use error::{CoreError, CoreResult};
pub use operation::{Access, Durability, Op};
pub use vault::{Counters, Opened, Vault, VaultSettings};

/// A page of results and the cursor to pass for the next one (`None` at the end).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
