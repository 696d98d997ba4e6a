//! Transit: encryption as a service, in the manner of Vault's Transit engine.
//!
//! A namespace holds named keys (`aes256-gcm96`), each with numbered versions. Key material
//! never leaves the server: each version is 32 random bytes wrapped under the namespace's
//! primary key-encryption key (associated data: namespace, key name, version), so rotating
//! and retiring namespace keys covers transit keys too (`keys rewrap` moves them to the primary
//! version; `keys retire` waits for them). A key's versions and settings are one row,
//! authenticated under the root-derived row key and written check-and-set on its revision,
//! so a database writer can neither plant a key nor lower its minimum decryption version.
//!
//! Callers encrypt data they keep (`vault:v<N>:<base64>` ciphertexts, see
//! [`strongroom_crypto::transit`]), optionally bound to their own associated data and, for
//! *derived* keys, to a per-request context (one key per context). Batches of up to 1,000
//! items answer per item; the operation is audited once with its batch size. Not supported
//! (refused with a clear message): other key types, convergent encryption, exportable keys,
//! plaintext backups.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use strongroom_crypto::transit::Transit;
use strongroom_crypto::{random, Key};
use strongroom_storage::TransitKeyRow;
use zeroize::Zeroizing;

use crate::keyring::{contexts, NamespaceKeys};
use crate::operation::Op;
use crate::row_auth::RowId;
use crate::vault::{At, Input};
use crate::{Capability, CoreError, CoreResult, Principal, Vault};

/// The one key type.
pub const KEY_TYPE: &str = "aes256-gcm96";
/// Items per batch at most.
pub const MAX_BATCH: usize = 1000;
/// Plaintext bytes per item at most.
const MAX_PLAINTEXT: usize = 32 * 1024;
/// Attempts at a check-and-set write of a key row before giving up.
const WRITE_ATTEMPTS: usize = 8;

fn invalid(field: &'static str, rule: impl Into<String>) -> CoreError {
    CoreError::Invalid {
        field,
        rule: rule.into(),
    }
}

/// Transit key names: 1–128 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit (the
/// credential-name rules). Namespace-level names chosen by the operator, stored plain like
/// provider names.
fn check_name(name: &str) -> CoreResult<()> {
    crate::names::credential_name(name)
}

/// One version as stored: when it was made, which namespace key wraps it, the wrapped bytes.
#[derive(Clone, Serialize, Deserialize)]
struct StoredVersion {
    created_at: i64,
    kek_version: u32,
    /// The key wrapped under namespace KEK `kek_version`, base64.
    wrapped: String,
}

/// A key as stored (inside an authenticated row).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    #[serde(rename = "type")]
    kind: String,
    derived: bool,
    deletion_allowed: bool,
    min_decryption_version: u32,
    min_encryption_version: u32,
    versions: BTreeMap<u32, StoredVersion>,
}

impl StoredKey {
    fn latest(&self) -> u32 {
        self.versions.keys().next_back().copied().unwrap_or(0)
    }
}

/// What creating a key may ask for (Vault's parameters; unsupported ones are refused).
#[derive(Debug, Clone, Default)]
pub struct NewTransitKey {
    pub kind: Option<String>,
    pub derived: bool,
    pub convergent_encryption: bool,
    pub exportable: bool,
    pub allow_plaintext_backup: bool,
}

/// Settings a key's `config` may change.
#[derive(Debug, Clone, Default)]
pub struct TransitKeyConfig {
    pub min_decryption_version: Option<u32>,
    pub min_encryption_version: Option<u32>,
    pub deletion_allowed: Option<bool>,
}

/// A key as answered (Vault's shape; never key material).
#[derive(Debug, Clone, Serialize)]
pub struct TransitKeyInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub derived: bool,
    pub deletion_allowed: bool,
    pub exportable: bool,
    pub allow_plaintext_backup: bool,
    /// Versions still able to decrypt, each with its creation time (Unix seconds).
    pub keys: BTreeMap<String, i64>,
    pub latest_version: u32,
    pub min_available_version: u32,
    pub min_decryption_version: u32,
    pub min_encryption_version: u32,
    pub supports_encryption: bool,
    pub supports_decryption: bool,
    pub supports_derivation: bool,
    pub supports_signing: bool,
    pub auto_rotate_period: u64,
    pub imported_key: bool,
    pub soft_deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kdf: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub convergent_encryption: Option<bool>,
}

fn info(name: &str, k: &StoredKey) -> TransitKeyInfo {
    TransitKeyInfo {
        name: name.to_string(),
        kind: k.kind.clone(),
        derived: k.derived,
        deletion_allowed: k.deletion_allowed,
        exportable: false,
        allow_plaintext_backup: false,
        keys: k
            .versions
            .iter()
            .filter(|(v, _)| **v >= k.min_decryption_version)
            .map(|(v, s)| (v.to_string(), s.created_at / 1000))
            .collect(),
        latest_version: k.latest(),
        min_available_version: 0,
        min_decryption_version: k.min_decryption_version,
        min_encryption_version: k.min_encryption_version,
        supports_encryption: true,
        supports_decryption: true,
        supports_derivation: true,
        supports_signing: false,
        auto_rotate_period: 0,
        imported_key: false,
        soft_deleted: false,
        kdf: k.derived.then_some("hkdf_sha256"),
        convergent_encryption: k.derived.then_some(false),
    }
}

/// One item to encrypt (bytes already decoded from the caller's base64).
#[derive(Default)]
pub struct EncryptItem {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub context: Option<Vec<u8>>,
    pub associated_data: Option<Vec<u8>>,
    pub key_version: Option<u32>,
}

/// One item to decrypt or rewrap.
#[derive(Default)]
pub struct CiphertextItem {
    pub ciphertext: String,
    pub context: Option<Vec<u8>>,
    pub associated_data: Option<Vec<u8>>,
    /// For rewrap: the version to encrypt under (latest by default).
    pub key_version: Option<u32>,
}

/// A ciphertext made by a transit key.
#[derive(Debug, Clone, Serialize)]
pub struct Encrypted {
    pub ciphertext: String,
    pub key_version: u32,
}

/// What a data key request returns: the key encrypted, and (when asked) in plaintext.
pub struct DataKey {
    pub ciphertext: String,
    pub key_version: u32,
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
}

/// One item's failure in a batch: a message that names the rule, never a value.
pub type ItemError = String;

/// `vault:v<N>:<base64>` → (N, body).
pub(crate) fn parse_ciphertext(text: &str) -> Result<(u32, Vec<u8>), ItemError> {
    let Some(rest) = text.strip_prefix("vault:") else {
        return Err("invalid ciphertext: no prefix".into());
    };
    let Some((version, body)) = rest.split_once(':') else {
        return Err("invalid ciphertext: wrong number of fields".into());
    };
    let version = version
        .strip_prefix('v')
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| "invalid ciphertext: the key version is not a number".to_string())?;
    let body = STANDARD
        .decode(body)
        .map_err(|_| "invalid ciphertext: the body is not base64".to_string())?;
    if body.len() < strongroom_crypto::transit::MIN_LEN {
        return Err("invalid ciphertext length".into());
    }
    Ok((version, body))
}

fn format_ciphertext(version: u32, body: &[u8]) -> String {
    format!("vault:v{version}:{}", STANDARD.encode(body))
}

/// A key row opened: its settings and versions, and the namespace keys that unwrap them.
struct Opened {
    row: TransitKeyRow,
    key: StoredKey,
}

impl Vault {
    fn transit_row_id<'a>(ns: &'a str, name: &'a str, revision: u64) -> RowId<'a> {
        RowId::new("transit key")
            .field(ns.as_bytes())
            .field(name.as_bytes())
            .number(revision)
    }

    fn open_transit(&self, ns: &str, name: &str) -> CoreResult<Option<Opened>> {
        let Some(row) = self.storage().get_transit_key(ns, name)? else {
            return Ok(None);
        };
        let body = self.open_row(&Self::transit_row_id(ns, name, row.revision), &row.body)?;
        let key: StoredKey = crate::stored_config::decode(&body, "transit key")?;
        Ok(Some(Opened { row, key }))
    }

    fn existing_transit(&self, ns: &str, name: &str) -> CoreResult<Opened> {
        self.open_transit(ns, name)?
            .ok_or(CoreError::NotFound("transit key"))
    }

    /// Writes `key` as the next revision after `previous` (`None`: a new key). `false` when
    /// another writer got there first.
    fn write_transit(
        &self,
        ns: &str,
        name: &str,
        previous: Option<u64>,
        key: &StoredKey,
    ) -> CoreResult<bool> {
        let revision = previous.map_or(1, |r| r + 1);
        let body = crate::stored_config::encode(key)?;
        let row = TransitKeyRow {
            namespace: ns.to_string(),
            name: name.to_string(),
            revision,
            body: self.seal_row(&Self::transit_row_id(ns, name, revision), &body)?,
        };
        Ok(self.storage().put_transit_key(&row, previous)?)
    }

    /// Reads, changes and writes a key check-and-set, retrying lost races.
    fn update_transit(
        &self,
        ns: &str,
        name: &str,
        change: impl Fn(&mut StoredKey, &NamespaceKeys) -> CoreResult<()>,
    ) -> CoreResult<StoredKey> {
        for _ in 0..WRITE_ATTEMPTS {
            let opened = self.existing_transit(ns, name)?;
            let keys = self.keyring().namespace(ns)?;
            let mut key = opened.key;
            change(&mut key, &keys)?;
            if self.write_transit(ns, name, Some(opened.row.revision), &key)? {
                return Ok(key);
            }
        }
        Err(CoreError::Conflict(
            "the transit key kept changing under concurrent writers; try again".into(),
        ))
    }

    /// A fresh version wrapped under the namespace's primary key.
    fn new_version(
        &self,
        keys: &NamespaceKeys,
        name: &str,
        version: u32,
    ) -> CoreResult<StoredVersion> {
        let fresh = Key::<Transit>::generate().map_err(|e| CoreError::Internal(e.to_string()))?;
        let ad = contexts::transit_key(&keys.name, name, version);
        let wrapped = keys
            .primary_kek()?
            .wrap(keys.primary, &ad, &fresh)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(StoredVersion {
            created_at: self.now_ms(),
            kek_version: keys.primary,
            wrapped: STANDARD.encode(wrapped),
        })
    }

    /// The key of `version`, for `context` when the key is derived.
    fn version_key(
        &self,
        ns: &str,
        name: &str,
        key: &StoredKey,
        version: u32,
        context: Option<&[u8]>,
    ) -> Result<Key<Transit>, ItemErrorOrCore> {
        let stored = key
            .versions
            .get(&version)
            .ok_or(ItemErrorOrCore::Item("invalid key version".into()))?;
        let keys = self.keyring().namespace(ns)?;
        let kek = keys
            .keks
            .get(&stored.kek_version)
            .ok_or(CoreError::KeyRetired {
                version: stored.kek_version,
                minimum: keys.min_decrypt,
            })?;
        let wrapped = STANDARD
            .decode(&stored.wrapped)
            .map_err(|_| CoreError::Integrity("transit key"))?;
        let base: Key<Transit> = kek
            .unwrap(&contexts::transit_key(ns, name, version), &wrapped)
            .map_err(|e| CoreError::from_crypto("transit key", e))?;
        if !key.derived {
            return Ok(base);
        }
        let context = context.filter(|c| !c.is_empty()).ok_or(ItemErrorOrCore::Item(
            "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key".into(),
        ))?;
        Ok(base
            .for_context(context)
            .map_err(|e| CoreError::Internal(e.to_string()))?)
    }

    fn encrypt_one(
        &self,
        ns: &str,
        name: &str,
        key: &StoredKey,
        item: &EncryptItem,
    ) -> Result<Encrypted, ItemErrorOrCore> {
        if item.plaintext.len() > MAX_PLAINTEXT {
            return Err(ItemErrorOrCore::Item(format!(
                "plaintext: must be at most {MAX_PLAINTEXT} bytes"
            )));
        }
        let latest = key.latest();
        let version = match item.key_version {
            None | Some(0) => latest,
            Some(v) if v > latest => {
                return Err(ItemErrorOrCore::Item(
                    "requested version for encryption is higher than the latest key version"
                        .into(),
                ))
            }
            Some(v) if v < key.min_encryption_version || v < key.min_decryption_version => {
                return Err(ItemErrorOrCore::Item(
                    "requested version for encryption is less than the minimum encryption key version".into(),
                ))
            }
            Some(v) => v,
        };
        let k = self.version_key(ns, name, key, version, item.context.as_deref())?;
        let body = k
            .encrypt(
                item.associated_data.as_deref().unwrap_or_default(),
                &item.plaintext,
            )
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(Encrypted {
            ciphertext: format_ciphertext(version, &body),
            key_version: version,
        })
    }

    fn decrypt_one(
        &self,
        ns: &str,
        name: &str,
        key: &StoredKey,
        item: &CiphertextItem,
    ) -> Result<Zeroizing<Vec<u8>>, ItemErrorOrCore> {
        let (version, body) = parse_ciphertext(&item.ciphertext).map_err(ItemErrorOrCore::Item)?;
        if version < key.min_decryption_version {
            return Err(ItemErrorOrCore::Item(
                "ciphertext or signature version is disallowed by policy (too old)".into(),
            ));
        }
        if version > key.latest() {
            return Err(ItemErrorOrCore::Item(
                "invalid ciphertext: the key version is newer than the key".into(),
            ));
        }
        let k = self.version_key(ns, name, key, version, item.context.as_deref())?;
        k.decrypt(item.associated_data.as_deref().unwrap_or_default(), &body)
            .map_err(|_| {
                ItemErrorOrCore::Item(
                    "integrity check failed: the ciphertext was altered, or was made with another key, context or associated data".into(),
                )
            })
    }

    /// Runs one transit operation on the key `name`, audited once with the batch size.
    fn transit_op<T>(
        &self,
        who: &Principal,
        op: Op,
        ns: &str,
        name: &str,
        items: usize,
        work: impl FnOnce() -> CoreResult<T>,
    ) -> CoreResult<T> {
        let target = if items > 1 {
            format!("{name}/{items}")
        } else {
            name.to_string()
        };
        let check = || {
            check_name(name)?;
            if items > MAX_BATCH {
                return Err(invalid(
                    "batch_input",
                    format!("must hold at most {MAX_BATCH} items"),
                ));
            }
            Ok(Input(()))
        };
        self.execute(who, op, At::new(ns, &target), check, |_| work())
    }

    /// Creates a key; creating one that exists returns it unchanged (`admin`).
    pub fn transit_create_key(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        new: &NewTransitKey,
    ) -> CoreResult<TransitKeyInfo> {
        self.transit_op(who, Op::TransitKeyWrite, ns, name, 1, || {
            self.create_transit_key(ns, name, new)
        })
    }

    fn create_transit_key(
        &self,
        ns: &str,
        name: &str,
        new: &NewTransitKey,
    ) -> CoreResult<TransitKeyInfo> {
        if let Some(kind) = &new.kind {
            if kind != KEY_TYPE {
                return Err(invalid(
                    "type",
                    format!("only {KEY_TYPE} keys are supported by Strongroom"),
                ));
            }
        }
        for (set, field, what) in [
            (
                new.convergent_encryption,
                "convergent_encryption",
                "convergent encryption",
            ),
            (new.exportable, "exportable", "exportable keys"),
            (
                new.allow_plaintext_backup,
                "allow_plaintext_backup",
                "plaintext key backups",
            ),
        ] {
            if set {
                return Err(invalid(
                    field,
                    format!("{what} is not supported by Strongroom: keys never leave the server"),
                ));
            }
        }
        loop {
            if let Some(existing) = self.open_transit(ns, name)? {
                return Ok(info(name, &existing.key));
            }
            let keys = self.keyring().namespace(ns)?;
            let key = StoredKey {
                kind: KEY_TYPE.into(),
                derived: new.derived,
                deletion_allowed: false,
                min_decryption_version: 1,
                min_encryption_version: 0,
                versions: BTreeMap::from([(1, self.new_version(&keys, name, 1)?)]),
            };
            if self.write_transit(ns, name, None, &key)? {
                return Ok(info(name, &key));
            }
        }
    }

    /// A key's settings and versions (`read`).
    pub fn transit_key(&self, who: &Principal, ns: &str, name: &str) -> CoreResult<TransitKeyInfo> {
        self.transit_op(who, Op::TransitKeyRead, ns, name, 1, || {
            Ok(info(name, &self.existing_transit(ns, name)?.key))
        })
    }

    /// The namespace's key names (`list`).
    pub fn transit_keys(&self, who: &Principal, ns: &str) -> CoreResult<Vec<String>> {
        self.execute(
            who,
            Op::TransitKeyList,
            At::new(ns, ""),
            || Ok(()),
            |()| Ok(self.storage().list_transit_keys(ns)?),
        )
    }

    /// Adds a version, which encrypts from now on (`admin`).
    pub fn transit_rotate(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
    ) -> CoreResult<TransitKeyInfo> {
        self.transit_op(who, Op::TransitKeyWrite, ns, name, 1, || {
            let key = self.update_transit(ns, name, |key, keys| {
                let next = key.latest() + 1;
                key.versions
                    .insert(next, self.new_version(keys, name, next)?);
                Ok(())
            })?;
            Ok(info(name, &key))
        })
    }

    /// Changes a key's minimum versions or whether it may be deleted (`admin`).
    pub fn transit_configure(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        config: &TransitKeyConfig,
    ) -> CoreResult<TransitKeyInfo> {
        self.transit_op(who, Op::TransitKeyWrite, ns, name, 1, || {
            let key = self.update_transit(ns, name, |key, _| {
                let latest = key.latest();
                if let Some(v) = config.min_decryption_version {
                    if v == 0 || v > latest {
                        return Err(invalid(
                            "min_decryption_version",
                            "must be between 1 and the latest version",
                        ));
                    }
                    key.min_decryption_version = v;
                }
                if let Some(v) = config.min_encryption_version {
                    if v > latest {
                        return Err(invalid(
                            "min_encryption_version",
                            "must be at most the latest version (0: the latest)",
                        ));
                    }
                    key.min_encryption_version = v;
                }
                if key.min_encryption_version != 0
                    && key.min_encryption_version < key.min_decryption_version
                {
                    return Err(invalid(
                        "min_encryption_version",
                        "must not be below min_decryption_version",
                    ));
                }
                if let Some(allowed) = config.deletion_allowed {
                    key.deletion_allowed = allowed;
                }
                Ok(())
            })?;
            Ok(info(name, &key))
        })
    }

    /// Deletes a key whose settings allow it (`admin`); its ciphertexts become undecryptable.
    pub fn transit_delete_key(&self, who: &Principal, ns: &str, name: &str) -> CoreResult<()> {
        self.transit_op(who, Op::TransitKeyDelete, ns, name, 1, || {
            let opened = self.existing_transit(ns, name)?;
            if !opened.key.deletion_allowed {
                return Err(invalid(
                    "deletion_allowed",
                    "deletion is not allowed for this key: set deletion_allowed in its config first",
                ));
            }
            self.storage().delete_transit_key(ns, name)?;
            Ok(())
        })
    }

    /// Encrypts each item (`write`). A missing key is created when the caller may (`admin`),
    /// as Vault's upsert does; otherwise it is not found.
    pub fn transit_encrypt(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        items: &[EncryptItem],
    ) -> CoreResult<Vec<Result<Encrypted, ItemError>>> {
        self.transit_op(who, Op::TransitEncrypt, ns, name, items.len(), || {
            let key = match self.open_transit(ns, name)? {
                Some(opened) => opened.key,
                None if who.policy.allows(Capability::Admin, ns) => {
                    self.create_transit_key(ns, name, &NewTransitKey::default())?;
                    self.existing_transit(ns, name)?.key
                }
                None => return Err(CoreError::NotFound("transit key")),
            };
            batch(items, |item| self.encrypt_one(ns, name, &key, item))
        })
    }

    /// Decrypts each item (`read`).
    pub fn transit_decrypt(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        items: &[CiphertextItem],
    ) -> CoreResult<Vec<Result<Zeroizing<Vec<u8>>, ItemError>>> {
        self.transit_op(who, Op::TransitDecrypt, ns, name, items.len(), || {
            let key = self.existing_transit(ns, name)?.key;
            batch(items, |item| self.decrypt_one(ns, name, &key, item))
        })
    }

    /// Decrypts and encrypts again under the latest (or the given) version, without the
    /// plaintext leaving the server (`write`).
    pub fn transit_rewrap(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        items: &[CiphertextItem],
    ) -> CoreResult<Vec<Result<Encrypted, ItemError>>> {
        self.transit_op(who, Op::TransitRewrap, ns, name, items.len(), || {
            let key = self.existing_transit(ns, name)?.key;
            batch(items, |item| {
                let plaintext = self.decrypt_one(ns, name, &key, item)?;
                let again = EncryptItem {
                    plaintext,
                    context: item.context.clone(),
                    associated_data: item.associated_data.clone(),
                    key_version: item.key_version,
                };
                self.encrypt_one(ns, name, &key, &again)
            })
        })
    }

    /// A fresh data key of `bits` (128, 256 or 512) encrypted under the key, and in plaintext
    /// when `with_plaintext` (`write`).
    pub fn transit_datakey(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        with_plaintext: bool,
        bits: u32,
        context: Option<Vec<u8>>,
    ) -> CoreResult<DataKey> {
        self.transit_op(who, Op::TransitDataKey, ns, name, 1, || {
            if !matches!(bits, 128 | 256 | 512) {
                return Err(invalid("bits", "must be 128, 256 or 512"));
            }
            let key = self.existing_transit(ns, name)?.key;
            let mut plaintext = Zeroizing::new(vec![0u8; bits as usize / 8]);
            random::fill(&mut plaintext).map_err(|e| CoreError::Internal(e.to_string()))?;
            let item = EncryptItem {
                plaintext,
                context,
                ..EncryptItem::default()
            };
            let made = self
                .encrypt_one(ns, name, &key, &item)
                .map_err(|e| match e {
                    ItemErrorOrCore::Item(rule) => invalid("context", rule),
                    ItemErrorOrCore::Core(e) => e,
                })?;
            Ok(DataKey {
                ciphertext: made.ciphertext,
                key_version: made.key_version,
                plaintext: with_plaintext.then_some(item.plaintext),
            })
        })
    }

    /// For `keys rewrap`: re-wraps every transit key version still under a namespace key older
    /// than the primary. Returns how many versions moved.
    pub(crate) fn rewrap_transit_keys(&self, keys: &NamespaceKeys) -> CoreResult<u64> {
        let ns = keys.name.as_str();
        let mut moved = 0;
        for name in self.storage().list_transit_keys(ns)? {
            let Some(opened) = self.open_transit(ns, &name)? else {
                continue;
            };
            let below = opened
                .key
                .versions
                .values()
                .filter(|v| v.kek_version < keys.primary)
                .count() as u64;
            if below == 0 {
                continue;
            }
            self.update_transit(ns, &name, |key, keys| {
                for (version, stored) in key.versions.iter_mut() {
                    if stored.kek_version >= keys.primary {
                        continue;
                    }
                    let ad = contexts::transit_key(ns, &name, *version);
                    let wrapped = STANDARD
                        .decode(&stored.wrapped)
                        .map_err(|_| CoreError::Integrity("transit key"))?;
                    let kek = keys
                        .keks
                        .get(&stored.kek_version)
                        .ok_or(CoreError::KeyRetired {
                            version: stored.kek_version,
                            minimum: keys.min_decrypt,
                        })?;
                    let material: Key<Transit> = kek
                        .unwrap(&ad, &wrapped)
                        .map_err(|e| CoreError::from_crypto("transit key", e))?;
                    let again = keys
                        .primary_kek()?
                        .wrap(keys.primary, &ad, &material)
                        .map_err(|e| CoreError::Internal(e.to_string()))?;
                    stored.wrapped = STANDARD.encode(again);
                    stored.kek_version = keys.primary;
                }
                Ok(())
            })?;
            moved += below;
        }
        Ok(moved)
    }

    /// Transit key versions still wrapped under a namespace key below `version`.
    pub(crate) fn transit_versions_below(&self, ns: &str, version: u32) -> CoreResult<u64> {
        let mut below = 0;
        for name in self.storage().list_transit_keys(ns)? {
            if let Some(opened) = self.open_transit(ns, &name)? {
                below += opened
                    .key
                    .versions
                    .values()
                    .filter(|v| v.kek_version < version)
                    .count() as u64;
            }
        }
        Ok(below)
    }
}

/// An item's own failure, or one that ends the whole call.
enum ItemErrorOrCore {
    Item(ItemError),
    Core(CoreError),
}

impl From<CoreError> for ItemErrorOrCore {
    fn from(e: CoreError) -> Self {
        ItemErrorOrCore::Core(e)
    }
}

/// Runs `one` per item: item failures are answered per item, others end the call.
fn batch<I, T>(
    items: &[I],
    one: impl Fn(&I) -> Result<T, ItemErrorOrCore>,
) -> CoreResult<Vec<Result<T, ItemError>>> {
    if items.is_empty() {
        return Err(invalid("batch_input", "must hold at least one item"));
    }
    items
        .iter()
        .map(|item| match one(item) {
            Ok(v) => Ok(Ok(v)),
            Err(ItemErrorOrCore::Item(e)) => Ok(Err(e)),
            Err(ItemErrorOrCore::Core(e)) => Err(e),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciphertexts_parse_strictly() {
        let body = vec![7u8; strongroom_crypto::transit::MIN_LEN + 3];
        let text = format_ciphertext(12, &body);
        assert!(text.starts_with("vault:v12:"));
        assert_eq!(parse_ciphertext(&text).unwrap(), (12, body));
        for bad in [
            "garbage",
            "vault:",
            "vault:v1",
            "vault:x1:AAAA",
            "vault:v0:AAAA",
            "vault:v1:!!!",
            "vault:v1:AAAA",
        ] {
            assert!(parse_ciphertext(bad).is_err(), "{bad}");
        }
    }
}
