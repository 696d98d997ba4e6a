//! Strongroom's cryptography, and the only crate that touches key material.
//!
//! Everything here is pure computation over bytes (the one exception is reading and writing the
//! root key file). Keys are typed by purpose (`Key<Root>`, `Key<Kek>`, `Key<Data>`,
//! `Key<Index>`), zeroized on drop, never `Debug`-printed, and expose their bytes only through
//! [`Key::expose_bytes`]. Every encryption takes associated data as a required argument, and the
//! ciphertext format is versioned and self-describing (see [`envelope`]).

pub mod associated_data;
pub mod envelope;
mod error;
pub mod fernet;
pub mod keyed_hash;
pub mod keys;
pub mod passphrase;
pub mod random;
pub mod root_key;
pub mod segmented;
pub mod shamir;
pub mod token;
pub mod transit;

pub use associated_data::AssociatedData;
pub use error::CryptoError;
pub use keys::{Data, Index, Kek, Key, Root};
