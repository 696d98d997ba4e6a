//! Reading what unseals a store: a passphrase file (owner-only, like the root key file) or a
//! prompt (no echo on a terminal; one line from a pipe otherwise), checked for a minimum
//! length before any key is derived from it.

use std::io::{BufRead, IsTerminal};
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
    checked(&text, &format!("in {}", path.display()))
}

/// The passphrase typed at a prompt on standard input: without echo on a terminal, else one
/// line from the pipe (a secrets tool's output).
pub fn prompt_passphrase(prompt: &str) -> Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    let mut line = Zeroizing::new(String::with_capacity(1024));
    if stdin.is_terminal() {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
        let saved = tcgetattr(&stdin).context("reading the terminal's settings")?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        // Echo off before the prompt shows: what is typed after it is never echoed.
        tcsetattr(&stdin, OptionalActions::Now, &quiet).context("turning echo off")?;
        // One write, so the prompt shows whole.
        let mut err = std::io::stderr().lock();
        std::io::Write::write_all(&mut err, format!("{prompt}: ").as_bytes())
            .and_then(|()| std::io::Write::flush(&mut err))
            .context("showing the prompt")?;
        drop(err);
        let read = stdin.lock().read_line(&mut line);
        let restored = tcsetattr(&stdin, OptionalActions::Now, &saved);
        read.context("reading the passphrase")?;
        restored.context("turning echo back on")?;
    } else {
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the passphrase from standard input")?;
    }
    checked(&line, "typed")
}

/// One trailing newline dropped; at least [`MIN_PASSPHRASE_CHARS`].
fn checked(text: &str, whence: &str) -> Result<Zeroizing<String>> {
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    if trimmed.chars().count() < MIN_PASSPHRASE_CHARS {
        bail!("the passphrase {whence} is too short: at least {MIN_PASSPHRASE_CHARS} characters");
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
