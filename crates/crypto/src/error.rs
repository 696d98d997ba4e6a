//! The crypto layer's error type. Messages never contain key material or plaintext.

/// Why a cryptographic operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The ciphertext, its header or its associated data were altered, or the wrong key was used.
    /// Deliberately carries no detail: an attacker learns nothing from which check failed.
    #[error(
        "integrity check failed: the ciphertext was altered, moved, or does not belong to this key"
    )]
    Integrity,
    /// The envelope names a format or algorithm this build does not know.
    #[error("unsupported ciphertext format {format} / algorithm {algorithm}")]
    UnsupportedFormat { format: u8, algorithm: u8 },
    /// The envelope is shorter than its header and tag.
    #[error("ciphertext is truncated ({len} bytes)")]
    Truncated { len: usize },
    /// Key material could not be loaded or has the wrong shape.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The root key file is unsafe or unreadable.
    #[error("root key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    /// The system random generator failed (should never happen on a healthy OS).
    #[error("the system random number generator failed")]
    Random,
}
