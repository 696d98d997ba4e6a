//! Loading, creating and checking the root key.
//!
//! The root key comes from exactly one place: a key file (which must not be readable by group
//! or others, or we refuse to start) or an environment variable. Both hold the 32 key bytes as
//! standard base64. A *key check value* — a fixed plaintext sealed under the root key and kept
//! in the database — lets the server refuse a wrong root key at start with a clear message
//! instead of failing later on every read.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::Zeroizing;

use crate::{AssociatedData, CryptoError, Key, Root};

const CHECK_PLAINTEXT: &[u8] = b"strongroom root key check v1";

/// Reads the root key from `path`, refusing files that group or others can access.
pub fn load_file(path: &Path) -> Result<Key<Root>, CryptoError> {
    let shown = path.display().to_string();
    let fail = |reason: String| CryptoError::KeyFile {
        path: shown.clone(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(fail(format!(
            "permissions are {mode:o}; the key file must be readable by its owner only (chmod 600)"
        )));
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?,
    );
    decode(text.trim()).map_err(|e| fail(e.to_string()))
}

/// Creates a new random root key at `path` with mode 0600; fails if the file exists.
pub fn create_file(path: &Path) -> Result<Key<Root>, CryptoError> {
    let key = Key::<Root>::generate()?;
    write_new_file(path, &key)?;
    Ok(key)
}

/// Writes `key` to a new file at `path` with mode 0600; fails if the file exists.
pub fn write_new_file(path: &Path, key: &Key<Root>) -> Result<(), CryptoError> {
    let encoded = Zeroizing::new(STANDARD.encode(key.expose_bytes()));
    let fail = |reason: String| CryptoError::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    // Written beside the target, synced, then linked into place: the key file appears whole
    // or not at all (a full disk leaves no empty key file behind), and an existing key file
    // is never replaced.
    let suffix: String = crate::random::bytes::<6>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let temporary = path.with_extension(format!("tmp-{suffix}"));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(encoded.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::hard_link(&temporary, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok::<(), std::io::Error>(())
    })();
    let _ = std::fs::remove_file(&temporary);
    written.map_err(|e| fail(format!("cannot create: {e}")))
}

/// Decodes a root key given as base64 text (the environment-variable form).
pub fn decode(text: &str) -> Result<Key<Root>, CryptoError> {
    let bytes = Zeroizing::new(
        STANDARD
            .decode(text.trim())
            .map_err(|_| CryptoError::InvalidKey("the root key is not valid base64".into()))?,
    );
    if bytes.len() != 32 {
        return Err(CryptoError::InvalidKey(format!(
            "the root key must be 32 bytes, this one is {}",
            bytes.len()
        )));
    }
    Key::from_bytes(&bytes)
}

/// Encodes a root key as base64 text (for printing once, e.g. `strongroom keys generate-root`).
pub fn encode(key: &Key<Root>) -> Zeroizing<String> {
    Zeroizing::new(STANDARD.encode(key.expose_bytes()))
}

/// The check value to store beside the data this root key protects.
pub fn check_value(key: &Key<Root>) -> Result<Vec<u8>, CryptoError> {
    key.seal(0, &AssociatedData::new("root-key-check"), CHECK_PLAINTEXT)
}

/// Whether `key` is the key that made `check`.
pub fn verify_check(key: &Key<Root>, check: &[u8]) -> bool {
    matches!(key.open(&AssociatedData::new("root-key-check"), check), Ok(p) if p.as_slice() == CHECK_PLAINTEXT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_file_is_private_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        let key = create_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = load_file(&path).unwrap();
        assert_eq!(loaded.expose_bytes(), key.expose_bytes());
        assert!(
            create_file(&path).is_err(),
            "never overwrite an existing key"
        );
        assert_eq!(load_file(&path).unwrap().expose_bytes(), key.expose_bytes());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("root.key")],
            "no temporary file is left"
        );
    }

    #[test]
    fn world_readable_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        create_file(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_file(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn check_value_tells_keys_apart() {
        let a = Key::<Root>::generate().unwrap();
        let b = Key::<Root>::generate().unwrap();
        let check = check_value(&a).unwrap();
        assert!(verify_check(&a, &check));
        assert!(!verify_check(&b, &check));
    }

    #[test]
    fn bad_encodings_are_clear_errors() {
        assert!(decode("not base64!")
            .unwrap_err()
            .to_string()
            .contains("base64"));
        assert!(decode("AAAA").unwrap_err().to_string().contains("32 bytes"));
    }
}
