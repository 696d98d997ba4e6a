//! Reading Fernet tokens, for importing what apps stored before Strongroom (the Python
//! `cryptography` package's `Fernet` / `MultiFernet`, often with the key derived by
//! PBKDF2-HMAC-SHA256 from a password and salt). Decrypt only: Strongroom never writes Fernet.
//!
//! A token is URL-safe base64 of `0x80 ‖ timestamp (u64 BE, seconds) ‖ IV (16) ‖ AES-128-CBC
//! ciphertext (PKCS#7) ‖ HMAC-SHA256 (32)`, the HMAC under the key's first 16 bytes over
//! everything before it, AES under the last 16. The HMAC is checked (in constant time) before
//! anything is decrypted; a token that fails under every key is refused, never guessed at.
//! Errors name what is wrong, never the token or the plaintext.

use aws_lc_rs::cipher::{DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey, AES_128};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use zeroize::Zeroizing;

const VERSION: u8 = 0x80;
const HEADER: usize = 1 + 8 + 16;
const MAC: usize = 32;

/// Why a token was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FernetError {
    #[error("not a Fernet token (not URL-safe base64, too short, or not version 0x80)")]
    Malformed,
    #[error("the token does not authenticate under any of the given keys (wrong key, or altered)")]
    NotAuthentic,
    #[error("the token is older than the allowed age")]
    Expired,
    #[error("the token's time is in the future beyond the allowed clock skew")]
    FromTheFuture,
    #[error("a Fernet key must be 32 bytes in URL-safe base64")]
    BadKey,
}

/// One Fernet key (signing half, encryption half). No `Debug`: it is a secret.
pub struct FernetKey {
    bytes: Zeroizing<[u8; 32]>,
}

impl FernetKey {
    /// The key as `Fernet.generate_key()` prints it (URL-safe base64 of 32 bytes).
    pub fn from_text(text: &str) -> Result<Self, FernetError> {
        let raw = Zeroizing::new(
            URL_SAFE
                .decode(text.trim())
                .map_err(|_| FernetError::BadKey)?,
        );
        Self::from_bytes(&raw)
    }

    pub fn from_bytes(raw: &[u8]) -> Result<Self, FernetError> {
        let bytes: [u8; 32] = raw.try_into().map_err(|_| FernetError::BadKey)?;
        Ok(Self {
            bytes: Zeroizing::new(bytes),
        })
    }

    /// The key `PBKDF2HMAC(SHA256, length=32, salt, iterations)` derives from `password`, then
    /// used as `Fernet(base64.urlsafe_b64encode(key))` — the usual recipe.
    pub fn from_password(
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, FernetError> {
        if iterations == 0 {
            return Err(FernetError::BadKey);
        }
        let mut out = Zeroizing::new([0u8; 32]);
        pbkdf2_hmac_sha256_one_block(password, salt, iterations, &mut out);
        Ok(Self { bytes: out })
    }
}

/// PBKDF2-HMAC-SHA256 for a 32-byte output (exactly one block, RFC 8018 §5.2).
fn pbkdf2_hmac_sha256_one_block(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8; 32]) {
    let key = hmac::Key::new(hmac::HMAC_SHA256, password);
    let mut first = Vec::with_capacity(salt.len() + 4);
    first.extend_from_slice(salt);
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = Zeroizing::new([0u8; 32]);
    u.copy_from_slice(hmac::sign(&key, &first).as_ref());
    out.copy_from_slice(&*u);
    for _ in 1..iterations {
        let next = hmac::sign(&key, &*u);
        u.copy_from_slice(next.as_ref());
        for (o, b) in out.iter_mut().zip(u.iter()) {
            *o ^= b;
        }
    }
}

/// Age limits, as `Fernet.decrypt(token, ttl=…)` checks them (`None`: any age).
#[derive(Debug, Clone, Copy, Default)]
pub struct Freshness {
    pub now_secs: u64,
    pub ttl_secs: Option<u64>,
}

/// Fernet's allowed clock skew for a token's time (60 s in `cryptography`).
const MAX_CLOCK_SKEW: u64 = 60;

/// The plaintext of `token` under the first of `keys` that authenticates it (MultiFernet's
/// order), and the token's timestamp.
pub fn decrypt(
    keys: &[FernetKey],
    token: &str,
    freshness: Freshness,
) -> Result<(Zeroizing<Vec<u8>>, u64), FernetError> {
    let raw = URL_SAFE
        .decode(token.trim())
        .or_else(|_| URL_SAFE_NO_PAD.decode(token.trim().trim_end_matches('=')))
        .map_err(|_| FernetError::Malformed)?;
    if raw.len() < HEADER + 16 + MAC
        || raw[0] != VERSION
        || !(raw.len() - HEADER - MAC).is_multiple_of(16)
    {
        return Err(FernetError::Malformed);
    }
    let timestamp = u64::from_be_bytes(raw[1..9].try_into().map_err(|_| FernetError::Malformed)?);
    let (signed, tag) = raw.split_at(raw.len() - MAC);
    let key = keys
        .iter()
        .find(|k| {
            let signing = hmac::Key::new(hmac::HMAC_SHA256, &k.bytes[..16]);
            hmac::verify(&signing, signed, tag).is_ok()
        })
        .ok_or(FernetError::NotAuthentic)?;
    if freshness.now_secs > 0 {
        if timestamp > freshness.now_secs + MAX_CLOCK_SKEW {
            return Err(FernetError::FromTheFuture);
        }
        if let Some(ttl) = freshness.ttl_secs {
            if timestamp + ttl < freshness.now_secs {
                return Err(FernetError::Expired);
            }
        }
    }
    let iv: [u8; 16] = raw[9..25].try_into().map_err(|_| FernetError::Malformed)?;
    let mut buffer = Zeroizing::new(signed[HEADER..].to_vec());
    let cipher = UnboundCipherKey::new(&AES_128, &key.bytes[16..])
        .and_then(PaddedBlockDecryptingKey::cbc_pkcs7)
        .map_err(|_| FernetError::BadKey)?;
    let plain_len = cipher
        .decrypt(&mut buffer, DecryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| FernetError::NotAuthentic)?
        .len();
    buffer.truncate(plain_len);
    Ok((buffer, timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with Python `cryptography` 48 (`Fernet._encrypt_from_parts` for a fixed time and IV;
    // the derived key by `PBKDF2HMAC(SHA256(), length=32, salt=b"slack-salt",
    // iterations=100000).derive(b"hunter2-password")`).
    const K1: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
    const K2: &str = "jtCkP1aC5vV8n2a6qE0b9m3z4yK7uQ1wX2sD5fG8hJk=";
    const T: u64 = 1796320000;
    const TOK1: &str = "gAAAAABrEasAAAECAwQFBgcICQoLDA0OD618zDypXMHVSC-7EzxanyPrx1EWYPSfvaMaSbh5k6Zb4uz02qO0ERMsF5VwKIvNAKhpfho3b_CXCFPAfnPLscA=";
    const TOK2: &str = "gAAAAABrEasFAAECAwQFBgcICQoLDA0OD7gB6qu7IuLsJ_VcjfkbM-oTz6fqJGvfLfBOgMSAjjyoNO26mmAM4TNstHxEbQiIG8vadjXtmQbgDcMm8xa8ni-PZpqDRH1LHVEdpwjf5J-B";
    const EMPTY: &str = "gAAAAABrEasAAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAmwQGSSrhHjDWRhAvVmYOhg59ByvwVb9fmBfDQID9vDcA==";
    const DERIVED: &str = "BPKBI__nkfcGaSk3iIpnyUmpBkhL3j46JlCrrUIcVBA=";
    const TOK3: &str = "gAAAAABrEasAAAECAwQFBgcICQoLDA0OD5LFm80EeUbjNkotK6UiMT2NO6IAytDQvYvLOASEx0r0JgibGIQZIVtmgF6Oo2z7EA==";

    fn keys(texts: &[&str]) -> Vec<FernetKey> {
        texts
            .iter()
            .map(|t| FernetKey::from_text(t).unwrap())
            .collect()
    }

    #[test]
    fn reads_what_pythons_fernet_and_multifernet_wrote() {
        let (plain, at) = decrypt(&keys(&[K1]), TOK1, Freshness::default()).unwrap();
        assert_eq!((plain.as_slice(), at), (&b"xoxb-plain-token"[..], T));
        // MultiFernet order: any listed key opens its own tokens.
        let both = keys(&[K1, K2]);
        let (plain, at) = decrypt(&both, TOK2, Freshness::default()).unwrap();
        assert_eq!(
            plain.as_slice(),
            br#"{"access_token":"at","refresh_token":"rt"}"#
        );
        assert_eq!(at, T + 5);
        let (plain, _) = decrypt(&both, EMPTY, Freshness::default()).unwrap();
        assert!(plain.is_empty());
    }

    #[test]
    fn derives_the_key_as_pbkdf2hmac_does() {
        let derived =
            FernetKey::from_password(b"hunter2-password", b"slack-salt", 100_000).unwrap();
        assert_eq!(URL_SAFE.encode(*derived.bytes), DERIVED);
        let (plain, _) = decrypt(&[derived], TOK3, Freshness::default()).unwrap();
        assert_eq!(plain.as_slice(), b"derived secret");
    }

    #[test]
    fn wrong_keys_altered_tokens_and_age_are_refused() {
        assert_eq!(
            decrypt(&keys(&[K2]), TOK1, Freshness::default()).unwrap_err(),
            FernetError::NotAuthentic
        );
        let mut raw = URL_SAFE.decode(TOK1).unwrap();
        raw[30] ^= 1;
        let altered = URL_SAFE.encode(&raw);
        assert_eq!(
            decrypt(&keys(&[K1]), &altered, Freshness::default()).unwrap_err(),
            FernetError::NotAuthentic
        );
        for bad in ["", "not base64!", "gAAAAAA="] {
            assert_eq!(
                decrypt(&keys(&[K1]), bad, Freshness::default()).unwrap_err(),
                FernetError::Malformed
            );
        }
        let late = Freshness {
            now_secs: T + 3600,
            ttl_secs: Some(60),
        };
        assert_eq!(
            decrypt(&keys(&[K1]), TOK1, late).unwrap_err(),
            FernetError::Expired
        );
        let early = Freshness {
            now_secs: T - 3600,
            ttl_secs: None,
        };
        assert_eq!(
            decrypt(&keys(&[K1]), TOK1, early).unwrap_err(),
            FernetError::FromTheFuture
        );
        assert!(matches!(
            FernetKey::from_text("short"),
            Err(FernetError::BadKey)
        ));
    }
}
