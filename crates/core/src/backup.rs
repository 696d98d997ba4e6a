//! The backup format (`strongroom backup` / `backup verify` / `restore`), frozen as
//! `strongroom-backup/1`.
//!
//! A backup is a folder or bucket prefix holding:
//!
//! - `data/<index>` and `audit/<index>`: the two SQLite files of a consistent snapshot, cut
//!   into pieces of [`PIECE_PLAINTEXT`] bytes, each sealed (AES-256-GCM envelope) under a
//!   fresh *backup key* with `("backup-piece", backup id, part, index, last)` as associated
//!   data — so a piece moved, dropped, reordered or taken from another backup fails;
//! - `objects/<object id>/<index>`: the file pieces the snapshot's file rows lead to, copied
//!   as they are (already ciphertext under keys derived from their owners' data keys, which
//!   are in the sealed snapshot);
//! - `manifest.json`, written last: time, format, store id, the backup key wrapped under the
//!   root key (associated data: `("backup-key", backup id)`), SHA-256 of each part's plaintext
//!   and of every stored piece, the audit chain head and the erasure-ledger position of the
//!   snapshot, the stored copies of the root key the store had (passphrase-sealed, KMS-wrapped,
//!   Shamir; all ciphertext) with its key check value — so a backup can be opened with the
//!   same material as its store — and an HMAC over all of it under a key derived from the
//!   backup key.
//!
//! Opening a backup with another root key fails on the key check value first, with a clear
//! message, instead of as a cascade of integrity errors.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use strongroom_crypto::{AssociatedData, Data, Index, Key, Root};
use zeroize::Zeroizing;

use crate::seal::{self, KeySource};
use crate::{CoreError, CoreResult};

/// The format name in every manifest this version writes and reads.
pub const FORMAT: &str = "strongroom-backup/1";
/// Plaintext bytes per sealed piece of a part.
pub const PIECE_PLAINTEXT: usize = 8 * 1024 * 1024;
/// The manifest's object name.
pub const MANIFEST: &str = "manifest.json";

/// One stored piece: its stored length and SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PieceSum {
    pub index: u64,
    pub size: u64,
    pub sha256: String,
}

/// One sealed part (`data` or `audit`): the plaintext's size and SHA-256, and its pieces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub pieces: Vec<PieceSum>,
}

/// A file object copied into the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectCopy {
    pub id: String,
    pub pieces: Vec<PieceSum>,
}

/// The audit chain's last entry in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: String,
}

/// How far the snapshot's erasure ledger goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerPosition {
    pub entries: u64,
    pub last_id: Option<String>,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub backup_id: String,
    pub created_at: String,
    pub created_at_ms: i64,
    pub strongroom_version: String,
    pub backend: String,
    pub store_id: String,
    /// The store's stored copies of its root key and its key check value, base64.
    pub root_meta: BTreeMap<String, String>,
    pub wrapped_backup_key: String,
    pub parts: Vec<Part>,
    pub objects: Vec<ObjectCopy>,
    /// File objects the snapshot names that were gone when the backup copied them (files
    /// deleted while the backup ran).
    pub objects_missing: Vec<String>,
    pub audit_head: Option<AuditHead>,
    pub erasure_ledger: LedgerPosition,
    /// HMAC-SHA-256 (hex) of the manifest with this field empty.
    pub mac: String,
}

impl Manifest {
    /// Parses a manifest, refusing other formats by name.
    pub fn parse(bytes: &[u8]) -> CoreResult<Self> {
        #[derive(Deserialize)]
        struct Probe {
            format: Option<String>,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|_| CoreError::Invalid {
            field: "manifest",
            rule: "is not a Strongroom backup manifest (JSON)".into(),
        })?;
        if probe.format.as_deref() != Some(FORMAT) {
            return Err(CoreError::Invalid {
                field: "manifest",
                rule: format!("must be format {FORMAT} (this backup was made by another version or is not a Strongroom backup)"),
            });
        }
        serde_json::from_slice(bytes).map_err(|_| CoreError::Integrity("backup manifest"))
    }

    /// Reads the stored root-key copies the manifest carries.
    pub fn root_meta(&self, key: &str) -> CoreResult<Option<Vec<u8>>> {
        self.root_meta
            .get(key)
            .map(|b| {
                STANDARD
                    .decode(b)
                    .map_err(|_| CoreError::Integrity("backup manifest"))
            })
            .transpose()
    }

    /// Where the backed-up store's root key came from (`None`: the key itself).
    pub fn key_source(&self) -> CoreResult<Option<KeySource>> {
        seal::source_from(&|key| self.root_meta(key))
    }

    fn unsigned_bytes(&self) -> CoreResult<Vec<u8>> {
        let mut copy = self.clone();
        copy.mac.clear();
        serde_json::to_vec(&copy).map_err(|e| CoreError::Internal(e.to_string()))
    }
}

/// The key a backup is sealed under.
pub struct BackupKey {
    key: Key<Data>,
    backup_id: String,
}

fn wrap_ad(backup_id: &str) -> AssociatedData {
    AssociatedData::new("backup-key").field(backup_id.as_bytes())
}

fn piece_ad(backup_id: &str, part: &str, index: u64, last: bool) -> AssociatedData {
    AssociatedData::new("backup-piece")
        .field(backup_id.as_bytes())
        .field(part.as_bytes())
        .number(index)
        .number(u64::from(last))
}

fn crypto(e: strongroom_crypto::CryptoError) -> CoreError {
    CoreError::Internal(e.to_string())
}

impl BackupKey {
    /// A fresh backup key and id; returns the key and its wrapping under `root` (base64).
    pub fn generate(root: &Key<Root>) -> CoreResult<(Self, String)> {
        let backup_id = hex::encode(strongroom_crypto::random::bytes::<16>().map_err(crypto)?);
        let key = Key::<Data>::generate().map_err(crypto)?;
        let wrapped = root.wrap(0, &wrap_ad(&backup_id), &key).map_err(crypto)?;
        Ok((Self { key, backup_id }, STANDARD.encode(wrapped)))
    }

    pub fn backup_id(&self) -> &str {
        &self.backup_id
    }

    /// Opens the backup key of `manifest` with `root` and checks the manifest's MAC. A root
    /// key other than the backed-up store's is [`CoreError::WrongRootKey`].
    pub fn open(root: &Key<Root>, manifest: &Manifest) -> CoreResult<Self> {
        let check = manifest
            .root_meta(crate::vault::ROOT_CHECK_META)?
            .ok_or(CoreError::Integrity("backup manifest"))?;
        seal::check_root(root, &check)?;
        let wrapped = STANDARD
            .decode(&manifest.wrapped_backup_key)
            .map_err(|_| CoreError::Integrity("backup manifest"))?;
        let key = root
            .unwrap(&wrap_ad(&manifest.backup_id), &wrapped)
            .map_err(|_| CoreError::Integrity("backup key"))?;
        let opened = Self {
            key,
            backup_id: manifest.backup_id.clone(),
        };
        let expected = opened.mac(manifest)?;
        if !strongroom_crypto::keyed_hash::constant_time_eq(
            expected.as_bytes(),
            manifest.mac.as_bytes(),
        ) {
            return Err(CoreError::Integrity("backup manifest"));
        }
        Ok(opened)
    }

    fn mac(&self, manifest: &Manifest) -> CoreResult<String> {
        let key: Key<Index> = self.key.derive("backup-manifest").map_err(crypto)?;
        Ok(hex::encode(key.mac(&manifest.unsigned_bytes()?)))
    }

    /// Sets the manifest's MAC (the last change before it is written).
    pub fn sign(&self, manifest: &mut Manifest) -> CoreResult<()> {
        manifest.mac = self.mac(manifest)?;
        Ok(())
    }

    /// Seals piece `index` of `part`; `last` for the part's final piece.
    pub fn seal_piece(
        &self,
        part: &str,
        index: u64,
        last: bool,
        plaintext: &[u8],
    ) -> CoreResult<Vec<u8>> {
        self.key
            .seal(0, &piece_ad(&self.backup_id, part, index, last), plaintext)
            .map_err(crypto)
    }

    /// Opens a piece sealed by [`Self::seal_piece`]; anything else is an integrity error.
    pub fn open_piece(
        &self,
        part: &str,
        index: u64,
        last: bool,
        sealed: &[u8],
    ) -> CoreResult<Zeroizing<Vec<u8>>> {
        self.key
            .open(&piece_ad(&self.backup_id, part, index, last), sealed)
            .map_err(|_| CoreError::Integrity("backup piece"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(root: &Key<Root>, key: &BackupKey, wrapped: String) -> Manifest {
        let mut meta = BTreeMap::new();
        meta.insert(
            crate::vault::ROOT_CHECK_META.to_string(),
            STANDARD.encode(strongroom_crypto::root_key::check_value(root).unwrap()),
        );
        let mut m = Manifest {
            format: FORMAT.into(),
            backup_id: key.backup_id().into(),
            created_at: "2026-12-04T00:00:00Z".into(),
            created_at_ms: 1,
            strongroom_version: "test".into(),
            backend: "sqlite".into(),
            store_id: "00".repeat(16),
            root_meta: meta,
            wrapped_backup_key: wrapped,
            parts: vec![],
            objects: vec![],
            objects_missing: vec![],
            audit_head: None,
            erasure_ledger: LedgerPosition {
                entries: 0,
                last_id: None,
            },
            mac: String::new(),
        };
        key.sign(&mut m).unwrap();
        m
    }

    #[test]
    fn a_backup_opens_with_its_root_key_only() {
        let root = Key::<Root>::generate().unwrap();
        let (key, wrapped) = BackupKey::generate(&root).unwrap();
        let m = manifest(&root, &key, wrapped);
        let bytes = serde_json::to_vec(&m).unwrap();
        let parsed = Manifest::parse(&bytes).unwrap();
        let opened = BackupKey::open(&root, &parsed).unwrap();
        let sealed = key.seal_piece("data", 0, true, b"snapshot").unwrap();
        assert_eq!(
            &opened.open_piece("data", 0, true, &sealed).unwrap()[..],
            b"snapshot"
        );
        for (part, index, last) in [("audit", 0, true), ("data", 1, true), ("data", 0, false)] {
            assert!(opened.open_piece(part, index, last, &sealed).is_err());
        }
        let other = Key::<Root>::generate().unwrap();
        assert!(matches!(
            BackupKey::open(&other, &parsed),
            Err(CoreError::WrongRootKey)
        ));
    }

    #[test]
    fn an_edited_manifest_is_refused() {
        let root = Key::<Root>::generate().unwrap();
        let (key, wrapped) = BackupKey::generate(&root).unwrap();
        let mut m = manifest(&root, &key, wrapped);
        m.erasure_ledger.entries = 5;
        assert!(matches!(
            BackupKey::open(&root, &m),
            Err(CoreError::Integrity(_))
        ));
        assert!(Manifest::parse(br#"{"format": "strongroom-backup/9"}"#).is_err());
        assert!(Manifest::parse(b"not json").is_err());
    }
}
