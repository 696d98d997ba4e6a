//! Validation of every identifier that reaches storage. Rules are documented here and in the
//! API reference; a rejected input names the field and the rule it broke. Nothing is ever
//! "cleaned up": an identifier is accepted exactly as given or refused.

use crate::{CoreError, CoreResult};

/// Namespace names: 1–63 of `a-z 0-9 _ -`, starting with a letter or digit.
pub fn namespace(value: &str) -> CoreResult<()> {
    check("namespace", value, 63, "a-z 0-9 _ -", |b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
    })
}

/// Credential names: 1–128 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub fn credential_name(value: &str) -> CoreResult<()> {
    check("name", value, 128, "A-Z a-z 0-9 . _ -", |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
    })
}

/// Event types: 1–64 of `A-Z a-z 0-9 . _ - :`, starting with a letter or digit.
pub fn event_type(value: &str) -> CoreResult<()> {
    check("type", value, 64, "A-Z a-z 0-9 . _ - :", |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':')
    })
}

/// Token names (labels): 1–128 of `A-Z a-z 0-9 . _ - :` and space, starting with a letter or digit.
pub fn token_name(value: &str) -> CoreResult<()> {
    check("name", value, 128, "A-Z a-z 0-9 . _ - : and space", |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b' ')
    })
}

/// User ids (the app's own id, e.g. `telegram:123456789`): 1–256 printable ASCII characters
/// other than space, `/`, `\`, `?`, `#` and `%`, starting with a letter or digit.
pub fn user_id(value: &str) -> CoreResult<()> {
    check(
        "user",
        value,
        256,
        "printable ASCII except space / \\ ? # %",
        |b| b.is_ascii_graphic() && !matches!(b, b'/' | b'\\' | b'?' | b'#' | b'%'),
    )
}

/// Token ids: the 16 lowercase hex characters after `sr_` in a token.
pub fn token_id(value: &str) -> CoreResult<()> {
    if value.len() == 16
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(CoreError::Invalid {
            field: "id",
            rule: "must be a token id (16 lowercase hex characters)".into(),
        })
    }
}

/// Checks length and characters. Messages name the field and the rule, never the value (not
/// even the offending character: a secret pasted into the wrong field must not come back).
fn check(
    field: &'static str,
    value: &str,
    max: usize,
    charset: &str,
    allowed: impl Fn(u8) -> bool,
) -> CoreResult<()> {
    let invalid = |rule: String| Err(CoreError::Invalid { field, rule });
    if value.is_empty() {
        return invalid("must not be empty".into());
    }
    if value.len() > max {
        return invalid(format!("must be at most {max} characters"));
    }
    if !value.bytes().all(allowed) {
        return invalid(format!("may only contain {charset}"));
    }
    if !value.as_bytes()[0].is_ascii_alphanumeric() {
        return invalid("must start with a letter or digit".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_documented_shapes() {
        namespace("music-bot_2").unwrap();
        credential_name("spotify.oauth").unwrap();
        user_id("telegram:123456789").unwrap();
        user_id("alice@example.com").unwrap();
    }

    #[test]
    fn refuses_path_tricks_and_control_characters() {
        for bad in [
            "", "..", "../etc", "a/b", "a\nb", "a\u{0}b", ".hidden", "x y",
        ] {
            assert!(credential_name(bad).is_err(), "{bad:?}");
        }
        for bad in ["", "a/b", "..", "a b", "a\tb", "ü", "a%2fb"] {
            assert!(user_id(bad).is_err(), "{bad:?}");
        }
        assert!(namespace("Upper").is_err());
        assert!(namespace(&"a".repeat(64)).is_err());
    }

    #[test]
    fn errors_name_field_and_rule() {
        let err = user_id("a/b").unwrap_err().to_string();
        assert_eq!(
            err,
            "user: may only contain printable ASCII except space / \\ ? # %"
        );
        let err = namespace("Secret-Value").unwrap_err().to_string();
        assert!(!err.contains("Secret"), "{err}");
    }
}
