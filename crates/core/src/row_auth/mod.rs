//! Rows that decide who may do what, or where secrets go, are authenticated.
//!
//! API tokens and their policies, OAuth provider configurations, collection settings, file
//! policies and suspension policies are stored as `FORMAT ‖ HMAC-SHA-256(row key, "row" ‖
//! kind ‖ identity… ‖ body) ‖ body`, where the row key is derived from the root key and the
//! identity binds the row to what it is (a token's id, secret digest, name, times and
//! revocation; a provider's namespace and name; …). Someone who can write the database but
//! lacks the root key can neither insert such a row (a token with an admin policy, a provider
//! pointing elsewhere) nor edit one nor move one to another identity: it is refused as
//! `integrity_error` (audited) instead of obeyed. What it cannot stop: replacing a row with an
//! older authentic copy of the same row (a backup's) — there is no trusted counter to tell old
//! from new; ARCHITECTURE.md's threat model says so.
//!
//! Stores created before this format hold these rows unauthenticated; [`Vault::open`]
//! authenticates them once ("trust on first upgrade"), resumably, and records that in `meta`;
//! from then on an unauthenticated row is refused like an edited one.
//!
//! Format (frozen, version 1): `0x01 ‖ mac (32 bytes) ‖ body`; the MAC input is the
//! length-prefixed [`AssociatedData`] `"row" ‖ kind ‖ identity fields… ‖ body`.

use std::borrow::Cow;

use strongroom_crypto::keyed_hash::constant_time_eq;
use strongroom_crypto::{AssociatedData, Index, Key};
use strongroom_storage::{ItemKey, ItemMeta, TokenRow};

use crate::{CoreError, CoreResult, Vault};

mod upgrade;

pub(crate) use upgrade::visit_rows;

const FORMAT: u8 = 1;
const MAC_LEN: usize = 32;
/// `meta` key recording that every row of the kinds above is authenticated.
pub(crate) const UPGRADED_META: &str = "rows_authenticated";
/// `meta` key recording that every credential's current-version pointer is authenticated.
pub(crate) const POINTERS_META: &str = "credential_pointers_authenticated";

/// What an authenticated row is, for its MAC.
pub(crate) struct RowId<'a> {
    pub kind: &'static str,
    pub fields: Vec<Cow<'a, [u8]>>,
}

impl<'a> RowId<'a> {
    pub(crate) fn new(kind: &'static str) -> Self {
        Self {
            kind,
            fields: Vec::new(),
        }
    }

    pub(crate) fn field(mut self, value: &'a [u8]) -> Self {
        self.fields.push(Cow::Borrowed(value));
        self
    }

    /// A time (ms since the epoch) as 8 big-endian bytes.
    pub(crate) fn time(mut self, ms: i64) -> Self {
        self.fields.push(Cow::Owned(ms.to_be_bytes().to_vec()));
        self
    }

    /// A count or version as 8 big-endian bytes.
    pub(crate) fn number(mut self, n: u64) -> Self {
        self.fields.push(Cow::Owned(n.to_be_bytes().to_vec()));
        self
    }

    /// An optional time: empty when absent, else as [`RowId::time`].
    pub(crate) fn opt_time(mut self, ms: Option<i64>) -> Self {
        self.fields.push(Cow::Owned(
            ms.map(|t| t.to_be_bytes().to_vec()).unwrap_or_default(),
        ));
        self
    }
}

/// Every kind of authenticated row, and what binds it to its identity.
impl<'a> RowId<'a> {
    /// A token row: every column but the policy itself (which is the body).
    pub(crate) fn token(row: &'a TokenRow) -> Self {
        Self::new("token")
            .field(row.id.as_bytes())
            .field(&row.secret_hash)
            .field(row.name.as_bytes())
            .time(row.created_at)
            .opt_time(row.expires_at)
            .opt_time(row.revoked_at)
    }

    /// An OAuth provider's configuration (where refresh tokens and the client secret go).
    pub(crate) fn provider(ns: &'a str, name: &'a str) -> Self {
        Self::new("provider")
            .field(ns.as_bytes())
            .field(name.as_bytes())
    }

    /// A webhook subscription's configuration (URL, options).
    pub(crate) fn webhook(ns: &'a str, name: &'a str) -> Self {
        Self::new("webhook")
            .field(ns.as_bytes())
            .field(name.as_bytes())
    }

    /// A collection's settings (scope, unique and searchable fields).
    pub(crate) fn collection(ns: &'a str, name: &'a str) -> Self {
        Self::new("collection")
            .field(ns.as_bytes())
            .field(name.as_bytes())
    }

    /// A namespace's file policy (quotas, types).
    pub(crate) fn file_policy(ns: &'a str) -> Self {
        Self::new("file policy").field(ns.as_bytes())
    }

    /// A credential's current-version pointer (no body: the MAC is the whole row value). A
    /// lowered pointer serving an older retained version fails it.
    pub(crate) fn credential_pointer(item: &'a ItemKey, version: u64) -> Self {
        Self::new("credential pointer")
            .field(item.namespace.as_bytes())
            .field(&item.user_hash)
            .field(item.name.as_bytes())
            .number(version)
    }

    /// A namespace's token-suspension policy.
    pub(crate) fn suspension_policy(ns: &'a str) -> Self {
        Self::new("suspension policy").field(ns.as_bytes())
    }
}

fn mac(key: &Key<Index>, id: &RowId<'_>, body: &[u8]) -> [u8; MAC_LEN] {
    let mut ad = AssociatedData::new("row").field(id.kind);
    for f in &id.fields {
        ad = ad.field(f.as_ref());
    }
    key.mac(ad.field(body).as_bytes())
}

/// `body` authenticated as the row `id`.
pub(crate) fn seal(key: &Key<Index>, id: &RowId<'_>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + MAC_LEN + body.len());
    out.push(FORMAT);
    out.extend_from_slice(&mac(key, id, body));
    out.extend_from_slice(body);
    out
}

/// What a stored row holds.
pub(crate) enum Opened<'a> {
    /// Authenticated as `id`: the body.
    Authentic(&'a [u8]),
    /// Written before rows were authenticated (only acceptable while upgrading).
    Legacy(&'a [u8]),
}

/// Checks a stored row against `id`. An edited, moved or forged row is an integrity error.
pub(crate) fn open<'a>(
    key: &Key<Index>,
    id: &RowId<'_>,
    stored: &'a [u8],
) -> CoreResult<Opened<'a>> {
    match stored.split_first() {
        Some((&FORMAT, rest)) if rest.len() >= MAC_LEN => {
            let (tag, body) = rest.split_at(MAC_LEN);
            if constant_time_eq(tag, &mac(key, id, body)) {
                Ok(Opened::Authentic(body))
            } else {
                Err(CoreError::Integrity(id.kind))
            }
        }
        // Bodies are JSON objects: a legacy row starts with `{`.
        Some((b'{', _)) => Ok(Opened::Legacy(stored)),
        _ => Err(CoreError::Integrity(id.kind)),
    }
}

impl Vault {
    /// `body` sealed as the row `id`.
    pub(crate) fn seal_row(&self, id: &RowId<'_>, body: &[u8]) -> CoreResult<Vec<u8>> {
        Ok(seal(self.row_key(), id, body))
    }

    /// The authenticator of `item`'s current-version pointer at `version`.
    pub(crate) fn credential_pointer(&self, item: &ItemKey, version: u64) -> Vec<u8> {
        seal(
            self.row_key(),
            &RowId::credential_pointer(item, version),
            b"",
        )
    }

    /// Refuses a current-version pointer this store did not write (lowered to serve an older
    /// version, or stripped).
    pub(crate) fn check_credential_pointer(
        &self,
        item: &ItemKey,
        meta: &ItemMeta,
    ) -> CoreResult<()> {
        let id = RowId::credential_pointer(item, meta.current_version);
        match meta
            .pointer
            .as_deref()
            .map(|p| open(self.row_key(), &id, p))
        {
            Some(Ok(Opened::Authentic(_))) => Ok(()),
            _ => Err(CoreError::Integrity("credential version")),
        }
    }

    /// The body of an authenticated row. Unauthenticated (legacy) rows are refused: the ones
    /// that predate the format were authenticated by [`Vault::authenticate_legacy_rows`] before
    /// the store served anything.
    pub(crate) fn open_row(&self, id: &RowId<'_>, stored: &[u8]) -> CoreResult<Vec<u8>> {
        match open(self.row_key(), id, stored)? {
            Opened::Authentic(body) => Ok(body.to_vec()),
            Opened::Legacy(_) => {
                tracing::warn!(kind = id.kind, "an unauthenticated row was refused");
                Err(CoreError::Integrity(id.kind))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key<Index> {
        Key::<Index>::from_bytes(&[7u8; 32]).unwrap()
    }

    #[test]
    fn rows_open_only_as_what_they_were_sealed_as() {
        let id = RowId::new("provider").field(b"app").field(b"spotify");
        let sealed = seal(&key(), &id, br#"{"token_url":"https://a"}"#);
        assert!(
            matches!(open(&key(), &id, &sealed), Ok(Opened::Authentic(b)) if b == br#"{"token_url":"https://a"}"#)
        );
        // Edited body, another identity, another kind, a flipped MAC byte: refused.
        let mut edited = sealed.clone();
        *edited.last_mut().unwrap() ^= 1;
        assert!(open(&key(), &id, &edited).is_err());
        let other = RowId::new("provider").field(b"app").field(b"github");
        assert!(open(&key(), &other, &sealed).is_err());
        let kind = RowId::new("collection").field(b"app").field(b"spotify");
        assert!(open(&key(), &kind, &sealed).is_err());
        let mut tag = sealed.clone();
        tag[5] ^= 1;
        assert!(open(&key(), &id, &tag).is_err());
        assert!(open(&key(), &id, b"").is_err());
        assert!(matches!(open(&key(), &id, b"{}"), Ok(Opened::Legacy(_))));
    }

    /// Frozen: the MAC of this row was computed outside this code base (Python's hmac over
    /// the length-prefixed fields) and must never change.
    #[test]
    fn format_is_pinned() {
        let id = RowId::new("token").field(b"0123456789abcdef");
        let sealed = seal(&key(), &id, b"{}");
        assert_eq!(sealed[0], 1);
        assert_eq!(
            hex::encode(&sealed[1..33]),
            "81f9a6430df668a2566634b90f64c549df698f6a879f74059ad005a0bc64f022"
        );
        assert_eq!(&sealed[33..], b"{}");
    }
}
