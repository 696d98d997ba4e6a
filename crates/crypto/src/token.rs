//! API tokens: generation, parsing, and the hash that is all the database ever stores.
//!
//! A token reads `sr_<id>_<secret>`: `id` (16 hex characters) names the token in lists, audit
//! entries and revocation; `secret` (43 base64url characters, 256 bits) is never stored — only
//! its SHA-256 digest, which is compared in constant time. The whole token is a secret type:
//! no `Debug`, `Clone` or `Display`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use zeroize::Zeroizing;

use crate::keyed_hash::{constant_time_eq, sha256};
use crate::{random, CryptoError};

const PREFIX: &str = "sr_";

/// A full API token as handed to its holder once.
pub struct ApiToken {
    id: String,
    text: Zeroizing<String>,
    hash: [u8; 32],
}

impl ApiToken {
    /// A fresh random token.
    pub fn generate() -> Result<Self, CryptoError> {
        let id = to_hex(&random::bytes::<8>()?);
        let secret = Zeroizing::new(random::bytes::<32>()?);
        let secret_text = Zeroizing::new(URL_SAFE_NO_PAD.encode(secret.as_slice()));
        let text = Zeroizing::new(format!("{PREFIX}{id}_{}", secret_text.as_str()));
        let hash = digest(secret_text.as_bytes());
        Ok(Self { id, text, hash })
    }

    /// Parses a presented token. `None` when it is not shaped like a Strongroom token.
    pub fn parse(presented: &str) -> Option<Self> {
        let rest = presented.strip_prefix(PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let id_ok = id.len() == 16
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        let secret_ok = secret.len() == 43
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok || !secret_ok {
            return None;
        }
        Some(Self {
            id: id.to_string(),
            hash: digest(secret.as_bytes()),
            text: Zeroizing::new(presented.to_string()),
        })
    }

    /// The public id of the token.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The digest to store, or to compare against the stored one.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// Whether this token's secret matches a stored digest (constant time).
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        constant_time_eq(&self.hash, stored_hash)
    }

    /// The full token text, to hand to its holder exactly once.
    pub fn expose_text(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiToken {{ id: {:?}, secret: [redacted] }}", self.id)
    }
}

fn digest(secret: &[u8]) -> [u8; 32] {
    sha256(&[b"strongroom/v1/api-token", secret])
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_token_parses_and_matches() {
        let token = ApiToken::generate().unwrap();
        let parsed = ApiToken::parse(token.expose_text()).unwrap();
        assert_eq!(parsed.id(), token.id());
        assert!(parsed.matches(&token.hash()));
    }

    #[test]
    fn altered_secret_does_not_match() {
        let token = ApiToken::generate().unwrap();
        let mut text = token.expose_text().to_string();
        let last = text.pop().unwrap();
        text.push(if last == 'A' { 'B' } else { 'A' });
        let parsed = ApiToken::parse(&text).unwrap();
        assert!(!parsed.matches(&token.hash()));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "sr_",
            "sr_abc_def",
            "Bearer x",
            "sr_0123456789abcdef_short",
        ] {
            assert!(ApiToken::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let token = ApiToken::generate().unwrap();
        let printed = format!("{token:?}");
        // `sr_<id>_<secret>`: the secret itself may contain `_`.
        let secret = token
            .expose_text()
            .splitn(3, '_')
            .nth(2)
            .unwrap()
            .to_string();
        assert!(secret.len() >= 40, "{secret:?}");
        assert!(!printed.contains(&secret));
    }
}
