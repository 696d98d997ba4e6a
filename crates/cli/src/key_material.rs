//! Reading what unseals a store: a passphrase file (owner-only, like the root key file),
//! checked for a minimum length before any key is derived from it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use zeroize::Zeroizing;

/// The shortest passphrase accepted when sealing a root key under one.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// The passphrase in `path` (one trailing newline dropped). The file must be readable by its
/// owner only; the passphrase is never printed.
pub fn read_passphrase_file(path: &Path) -> Result<Zeroizing<String>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("reading the passphrase file {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "the passphrase file {} has permissions {mode:o}; it must be readable by its owner only (chmod 600)",
            path.display()
        );
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("reading the passphrase file {}", path.display()))?,
    );
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if trimmed.chars().count() < MIN_PASSPHRASE_CHARS {
        bail!(
            "the passphrase in {} is too short: at least {MIN_PASSPHRASE_CHARS} characters",
            path.display()
        );
    }
    Ok(Zeroizing::new(trimmed.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str, mode: u32) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    #[test]
    fn drops_one_trailing_newline_only() {
        let f = file("correct horse battery\n", 0o600);
        assert_eq!(
            read_passphrase_file(f.path()).unwrap().as_str(),
            "correct horse battery"
        );
        let f = file("correct horse battery \n\n", 0o600);
        assert_eq!(
            read_passphrase_file(f.path()).unwrap().as_str(),
            "correct horse battery \n"
        );
    }

    #[test]
    fn refuses_short_or_shared_files_without_echoing_them() {
        let err = read_passphrase_file(file("short-pass\n", 0o600).path()).unwrap_err();
        assert!(format!("{err:#}").contains("at least 12"));
        assert!(!format!("{err:#}").contains("short-pass"));
        let err = read_passphrase_file(file("a long enough passphrase", 0o644).path()).unwrap_err();
        assert!(format!("{err:#}").contains("chmod 600"));
    }
}
