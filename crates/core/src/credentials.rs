//! Credentials: per-user secrets by name — OAuth token sets or generic JSON secrets — with
//! versions in the manner of Vault's KV v2: history, reading old versions, check-and-set,
//! soft delete / undelete, destroy, and a bounded number of versions kept.
//!
//! Each version is sealed under the user's data key with associated data binding namespace,
//! user hash, name and version, so a ciphertext copied to another row never decrypts. Rows are
//! stored under the name's id and the name itself is sealed beside them
//! ([`crate::sealed_names`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strongroom_crypto::{Data, Key};
use strongroom_storage::{ItemKey, ItemMeta, NewVersion, StorageError, VersionRow};

use crate::clock::{parse_rfc3339, rfc3339};
use crate::keyring::contexts;
use crate::operation::Op;
use crate::raw_json::RawObject;
use crate::secret_string::SecretString;
use crate::users::{page_limit, UserRef};
use crate::vault::At;
use crate::{names, sealed_names, CoreError, CoreResult, Page, Principal, Vault};

mod batch;
pub use batch::{BatchItem, BatchOutcome, BatchReport, MAX_BATCH};

const MAX_TOKEN_LEN: usize = 16 * 1024;
const MAX_JSON_DEPTH: usize = 32;
pub(crate) const MAX_VERSIONS_LIMIT: u32 = 100;

/// An OAuth 2.0 token set as an app received it from a provider.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthTokenSet {
    pub access_token: SecretString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<SecretString>,
    /// RFC 3339 time the access token expires. Integer Unix seconds (what many apps store)
    /// are accepted too and kept as the equivalent RFC 3339 time.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "expiry"
    )]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Any other fields the provider returned (e.g. `id_token`, `team_id`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// `expires_at` as RFC 3339 text or integer Unix seconds (1970 to 9999), kept as RFC 3339.
fn expiry<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Expiry {
        Text(String),
        Seconds(i64),
    }
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    match Option::<Expiry>::deserialize(d) {
        Ok(None) => Ok(None),
        Ok(Some(Expiry::Text(t))) => Ok(Some(t)),
        Ok(Some(Expiry::Seconds(s))) if (0..=LAST).contains(&s) => Ok(Some(rfc3339(s * 1000))),
        _ => Err(D::Error::custom(
            "expires_at: must be an RFC 3339 time such as 2026-01-31T12:00:00Z or integer Unix seconds",
        )),
    }
}

/// What a credential holds: `{"type": "oauth2", …token set…}` or
/// `{"type": "secret", "data": {…}}`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CredentialData {
    /// An OAuth 2.0 token set.
    Oauth2(OAuthTokenSet),
    /// Any JSON object: API keys, passwords, connection strings.
    Secret(SecretData),
}

/// A generic secret: a JSON object, kept byte for byte (see [`crate::raw_json`]).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretData {
    pub data: RawObject,
}

/// The wire form of a secret, `type` included (read by [`CredentialData`]'s `Deserialize`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaggedSecret {
    #[serde(rename = "type")]
    _kind: serde::de::IgnoredAny,
    data: RawObject,
}

/// The wire form of a token set, `type` included: read in one pass, without building a JSON
/// tree first. The same fields as [`OAuthTokenSet`] (the conversion below names every one, so
/// a field added there and not here does not compile).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaggedOAuth {
    #[serde(rename = "type")]
    _kind: serde::de::IgnoredAny,
    access_token: SecretString,
    #[serde(default)]
    refresh_token: Option<SecretString>,
    #[serde(default, deserialize_with = "expiry")]
    expires_at: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    extra: Map<String, Value>,
}

impl From<TaggedOAuth> for OAuthTokenSet {
    fn from(t: TaggedOAuth) -> Self {
        OAuthTokenSet {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            expires_at: t.expires_at,
            scope: t.scope,
            token_type: t.token_type,
            provider: t.provider,
            extra: t.extra,
        }
    }
}

/// Reads the `type` tag by hand: serde's internally tagged enums buffer the content, which
/// would lose a secret's exact text.
impl<'de> Deserialize<'de> for CredentialData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        struct Kind {
            #[serde(rename = "type")]
            kind: Option<String>,
        }
        const KINDS: &[&str] = &["oauth2", "secret"];
        // The inner parser's message without its position (the outer one adds the real one).
        fn inner<E: Error>(e: impl std::fmt::Display) -> E {
            let message = e.to_string();
            E::custom(message.split(" at line ").next().unwrap_or_default())
        }
        let raw = RawObject::deserialize(d)?;
        let kind: Kind = serde_json::from_str(raw.as_str()).map_err(inner)?;
        match kind.kind.as_deref() {
            Some("oauth2") => serde_json::from_str::<TaggedOAuth>(raw.as_str())
                .map(|t| CredentialData::Oauth2(t.into()))
                .map_err(inner),
            Some("secret") => serde_json::from_str::<TaggedSecret>(raw.as_str())
                .map(|s| CredentialData::Secret(SecretData { data: s.data }))
                .map_err(inner),
            Some(other) => Err(D::Error::unknown_variant(other, KINDS)),
            None => Err(D::Error::missing_field("type")),
        }
    }
}

impl std::fmt::Debug for CredentialData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialData::Oauth2(_) => f.write_str("CredentialData::Oauth2([redacted])"),
            CredentialData::Secret(_) => f.write_str("CredentialData::Secret([redacted])"),
        }
    }
}

/// Options of a write.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutOptions {
    /// Check-and-set: the write succeeds only if the current version is this (0 = must not exist).
    #[serde(default, deserialize_with = "crate::json::opt_u64")]
    pub cas: Option<u64>,
    /// Versions to keep from now on (1–100).
    #[serde(default, deserialize_with = "crate::json::opt_u32")]
    pub max_versions: Option<u32>,
}

/// The input rules of a credential write: the data's own, and the versions to keep.
pub(crate) fn check_write(data: &CredentialData, options: PutOptions) -> CoreResult<()> {
    data.validate()?;
    if let Some(m) = options.max_versions {
        if m == 0 || m > MAX_VERSIONS_LIMIT {
            return Err(CoreError::Invalid {
                field: "max_versions",
                rule: format!("must be between 1 and {MAX_VERSIONS_LIMIT}"),
            });
        }
    }
    Ok(())
}

/// A credential write made ready for its transaction ([`Vault::prepare_write`]).
pub(crate) struct PreparedWrite {
    namespace: String,
    user_hash: Vec<u8>,
    /// The plain name (bound by the ciphertext's associated data).
    name: String,
    pub item: ItemKey,
    key: std::sync::Arc<Key<Data>>,
    plaintext: zeroize::Zeroizing<Vec<u8>>,
    pub new: NewVersion,
    pub cas: Option<u64>,
}

impl PreparedWrite {
    /// The ciphertext of this write as version `version`.
    pub(crate) fn seal(&self, version: u64) -> Result<Vec<u8>, String> {
        self.key
            .seal(
                1,
                &contexts::credential(&self.namespace, &self.user_hash, &self.name, version),
                &self.plaintext,
            )
            .map_err(|e| e.to_string())
    }
}

/// One version's bookkeeping, as returned to callers.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    pub version: u64,
    pub created_at: String,
    pub deleted_at: Option<String>,
    pub destroyed: bool,
}

/// A decrypted credential.
#[derive(Debug, Serialize)]
pub struct Credential {
    pub name: String,
    pub data: CredentialData,
    pub metadata: VersionInfo,
}

/// A credential's history.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialMetadata {
    pub name: String,
    pub current_version: u64,
    pub oldest_version: u64,
    pub max_versions: u32,
    pub created_at: String,
    pub updated_at: String,
    pub versions: Vec<VersionInfo>,
}

/// A credential as listed.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialSummary {
    pub name: String,
    pub current_version: u64,
    pub updated_at: String,
}

pub(crate) fn version_info(v: &VersionRow) -> VersionInfo {
    VersionInfo {
        version: v.version,
        created_at: rfc3339(v.created_at),
        deleted_at: v.deleted_at.map(rfc3339),
        destroyed: v.destroyed,
    }
}

fn json_depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// How deep a JSON object nests, counting the object itself (`{}` is 1, `{"a":[1]}` is 2).
pub(crate) fn object_depth(map: &Map<String, Value>) -> usize {
    map.values().map(json_depth).max().unwrap_or(0) + 1
}

fn check_object(field: &'static str, map: &Map<String, Value>) -> CoreResult<()> {
    let depth = object_depth(map);
    if depth > MAX_JSON_DEPTH {
        return Err(CoreError::Invalid {
            field,
            rule: format!("nests {depth} levels deep; at most {MAX_JSON_DEPTH} are allowed"),
        });
    }
    Ok(())
}

fn check_text(field: &'static str, value: &str, max: usize) -> CoreResult<()> {
    if value.len() > max {
        return Err(CoreError::Invalid {
            field,
            rule: format!("must be at most {max} bytes"),
        });
    }
    if value.chars().any(char::is_control) {
        return Err(CoreError::Invalid {
            field,
            rule: "must not contain control characters".into(),
        });
    }
    Ok(())
}

impl CredentialData {
    /// Checks the documented rules; values are stored exactly as given.
    pub fn validate(&self) -> CoreResult<()> {
        match self {
            CredentialData::Oauth2(t) => {
                if t.access_token.expose().is_empty() {
                    return Err(CoreError::Invalid {
                        field: "access_token",
                        rule: "must not be empty".into(),
                    });
                }
                check_text("access_token", t.access_token.expose(), MAX_TOKEN_LEN)?;
                if let Some(r) = &t.refresh_token {
                    check_text("refresh_token", r.expose(), MAX_TOKEN_LEN)?;
                }
                if let Some(at) = &t.expires_at {
                    if parse_rfc3339(at).is_none() {
                        return Err(CoreError::Invalid {
                            field: "expires_at",
                            rule: "must be an RFC 3339 time such as 2026-01-31T12:00:00Z".into(),
                        });
                    }
                }
                if let Some(s) = &t.scope {
                    check_text("scope", s, 4096)?;
                }
                if let Some(s) = &t.token_type {
                    check_text("token_type", s, 64)?;
                }
                if let Some(p) = &t.provider {
                    names::credential_name(p).map_err(|e| match e {
                        CoreError::Invalid { rule, .. } => CoreError::Invalid {
                            field: "provider",
                            rule,
                        },
                        other => other,
                    })?;
                }
                check_object("extra", &t.extra)
            }
            CredentialData::Secret(s) => {
                let too_deep = |_| CoreError::Invalid {
                    field: "data",
                    rule: format!("nests too deep; at most {MAX_JSON_DEPTH} levels are allowed"),
                };
                let members = s.data.to_map().map_err(too_deep)?;
                if members.is_empty() {
                    return Err(CoreError::Invalid {
                        field: "data",
                        rule: "must be a non-empty JSON object".into(),
                    });
                }
                check_object("data", &members)
            }
        }
    }
}

/// Where a user's credential `name` is stored: under the name's id, never the name.
pub(crate) fn item_key(user: &UserRef, name: &str) -> ItemKey {
    ItemKey {
        namespace: user.keys.name.clone(),
        user_hash: user.hash.clone(),
        name: user.keys.credential_id(name),
    }
}

/// `name` sealed for the credential stored as `item` (bound to its name id).
pub(crate) fn seal_credential_name(
    key: &Key<Data>,
    item: &ItemKey,
    name: &str,
) -> CoreResult<Vec<u8>> {
    sealed_names::seal(
        key,
        &sealed_names::credential_ad(&item.namespace, &item.user_hash, &item.name),
        name,
    )
}

/// The name of a stored credential, from its sealed copy (bound to the id it is stored under).
pub(crate) fn credential_name_of(
    key: &Key<Data>,
    item: &ItemKey,
    sealed: Option<&[u8]>,
) -> CoreResult<String> {
    sealed_names::open(
        key,
        &sealed_names::credential_ad(&item.namespace, &item.user_hash, &item.name),
        sealed,
        "credential name",
    )
}

fn check_versions(versions: &[u64]) -> CoreResult<()> {
    if versions.is_empty() || versions.len() > 100 || versions.contains(&0) {
        return Err(CoreError::Invalid {
            field: "versions",
            rule: "must list 1 to 100 version numbers, each at least 1".into(),
        });
    }
    Ok(())
}

/// Decrypts one stored version under its owner's data key; a missing or altered ciphertext
/// is an integrity error.
pub(crate) fn open_credential(
    key: &Key<Data>,
    ns: &str,
    user_hash: &[u8],
    name: &str,
    row: &VersionRow,
) -> CoreResult<CredentialData> {
    let ciphertext = row
        .ciphertext
        .as_deref()
        .ok_or(CoreError::Integrity("credential"))?;
    let plaintext = key
        .open(
            &contexts::credential(ns, user_hash, name, row.version),
            ciphertext,
        )
        .map_err(|e| CoreError::from_crypto("credential", e))?;
    serde_json::from_slice(&plaintext).map_err(|_| CoreError::Integrity("credential"))
}

impl Vault {
    /// Runs a credential operation on one user's credential `name`.
    pub(crate) fn credential_op<T>(
        &self,
        who: &Principal,
        op: Op,
        ns: &str,
        user_id: &str,
        name: &str,
        work: impl FnOnce(&UserRef) -> CoreResult<T>,
    ) -> CoreResult<T> {
        let check = || names::credential_name(name);
        self.execute_on_user(who, op, At::name(ns, name), user_id, check, work)
    }

    /// Writes a new version of a credential.
    pub fn put_credential(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        name: &str,
        data: &CredentialData,
        options: PutOptions,
    ) -> CoreResult<VersionInfo> {
        self.credential_op(who, Op::CredentialPut, ns, user_id, name, |user| {
            self.write_credential(user, user_id, name, data, options)
        })
    }

    /// Writes the next version of a credential of a resolved user (no authorization or audit:
    /// the caller's operation does both). `cas` in `options` makes it check-and-set.
    pub(crate) fn write_credential(
        &self,
        user: &UserRef,
        user_id: &str,
        name: &str,
        data: &CredentialData,
        options: PutOptions,
    ) -> CoreResult<VersionInfo> {
        let write = self.prepare_write(user, user_id, name, data, options)?;
        let seal = |version: u64| write.seal(version);
        let pointer = |version: u64| self.credential_pointer(&write.item, version);
        let stored = self.storage().put_credential_version(
            &write.item,
            write.cas,
            &write.new,
            &seal,
            &pointer,
        );
        self.finish_write(&write, stored)
    }

    /// Everything a credential write needs before its transaction: input checked, the user's
    /// key (created for a new user), the plaintext and the sealed name.
    pub(crate) fn prepare_write(
        &self,
        user: &UserRef,
        user_id: &str,
        name: &str,
        data: &CredentialData,
        options: PutOptions,
    ) -> CoreResult<PreparedWrite> {
        check_write(data, options)?;
        let plaintext = zeroize::Zeroizing::new(
            serde_json::to_vec(data).map_err(|e| CoreError::Internal(e.to_string()))?,
        );
        let key = self.user_key_for_write(user, user_id)?;
        let item = item_key(user, name);
        let sealed_name = seal_credential_name(&key, &item, name)?;
        let status = match data {
            CredentialData::Oauth2(set) => self.status_on_write(&item, name, &sealed_name, set)?,
            _ => None,
        };
        let new = NewVersion {
            created_at: self.now_ms(),
            max_versions: options.max_versions,
            default_max_versions: self.default_max_versions(),
            sealed_name: Some(sealed_name),
            status,
        };
        Ok(PreparedWrite {
            namespace: user.keys.name.clone(),
            user_hash: user.hash.clone(),
            name: name.to_string(),
            item,
            key,
            plaintext,
            new,
            cas: options.cas,
        })
    }

    /// The answer to a credential write's transaction (a token set's refresh status was
    /// written in it).
    pub(crate) fn finish_write(
        &self,
        write: &PreparedWrite,
        stored: Result<ItemMeta, StorageError>,
    ) -> CoreResult<VersionInfo> {
        match stored {
            Ok(meta) => Ok(VersionInfo {
                version: meta.current_version,
                created_at: rfc3339(write.new.created_at),
                deleted_at: None,
                destroyed: false,
            }),
            Err(StorageError::Conflict(msg)) => {
                Err(CoreError::Conflict(format!("check-and-set failed: {msg}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads and decrypts a credential version (the current one by default).
    pub fn get_credential(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        name: &str,
        version: Option<u64>,
    ) -> CoreResult<Credential> {
        self.credential_op(who, Op::CredentialRead, ns, user_id, name, |user| {
            let (row, data) = self.read_version(user, name, version)?;
            let data = match data {
                Some(data) => data,
                None if row.destroyed => return Err(CoreError::Destroyed(row.version)),
                None => return Err(CoreError::Deleted(row.version)),
            };
            Ok(Credential {
                name: name.to_string(),
                data,
                metadata: version_info(&row),
            })
        })
    }

    /// One version of a resolved user's credential (the current one by default) and its data,
    /// `None` when that version is deleted or destroyed (no authorization or audit).
    pub(crate) fn read_version(
        &self,
        user: &UserRef,
        name: &str,
        version: Option<u64>,
    ) -> CoreResult<(VersionRow, Option<CredentialData>)> {
        let item = item_key(user, name);
        // A user whose data key is not held unwrapped: its row comes with the version.
        let cached = self.keyring().cached_data_key(&user.keys.name, &user.hash);
        let (meta, row, user_row) = match cached {
            Some(_) => self
                .storage()
                .get_credential_version(&item, version)?
                .map(|(meta, row)| (meta, row, None)),
            None => self
                .storage()
                .get_credential_version_and_user(&item, version)?
                .map(|(meta, row, user_row)| (meta, row, Some(user_row))),
        }
        .ok_or(CoreError::NotFound("credential"))?;
        if version.is_none() {
            self.check_credential_pointer(&item, &meta)?;
        }
        if row.destroyed || row.deleted_at.is_some() {
            return Ok((row, None));
        }
        let key = match (cached, user_row) {
            (Some(key), _) => key,
            (None, Some(user_row)) => self.keyring().data_key(&user.keys, &user_row)?,
            (None, None) => return Err(CoreError::Integrity("credential")),
        };
        let data = open_credential(&key, &user.keys.name, &user.hash, name, &row)?;
        Ok((row, Some(data)))
    }

    /// Whether the credential exists and its current version is readable (not deleted).
    pub fn credential_exists(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        name: &str,
    ) -> CoreResult<bool> {
        self.credential_op(who, Op::CredentialExists, ns, user_id, name, |user| {
            let item = item_key(user, name);
            match self.storage().get_credential_version(&item, None)? {
                Some((meta, v)) => {
                    self.check_credential_pointer(&item, &meta)?;
                    Ok(v.deleted_at.is_none() && !v.destroyed)
                }
                None => Ok(false),
            }
        })
    }

    /// The credential's version history.
    pub fn credential_metadata(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        name: &str,
    ) -> CoreResult<CredentialMetadata> {
        self.credential_op(who, Op::CredentialMetadata, ns, user_id, name, |user| {
            let item = item_key(user, name);
            let meta: ItemMeta = self
                .storage()
                .get_credential_meta(&item)?
                .ok_or(CoreError::NotFound("credential"))?;
            let versions = self
                .storage()
                .list_credential_versions(&item)?
                .iter()
                .map(version_info)
                .collect();
            Ok(CredentialMetadata {
                name: name.to_string(),
                current_version: meta.current_version,
                oldest_version: meta.oldest_version,
                max_versions: meta.max_versions,
                created_at: rfc3339(meta.created_at),
                updated_at: rfc3339(meta.updated_at),
                versions,
            })
        })
    }

    /// A user's credentials, a page at a time (in a stable order that is not by name: storage
    /// orders them by name id).
    pub fn list_credentials(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> CoreResult<Page<CredentialSummary>> {
        let check = || {
            page_limit(limit)?;
            cursor.map_or(Ok(()), sealed_names::check_cursor)
        };
        self.execute_on_user(
            who,
            Op::CredentialList,
            At::new(ns, ""),
            user_id,
            check,
            |user| {
                let rows = self
                    .storage()
                    .list_credentials(ns, &user.hash, cursor, limit)?;
                let next_cursor = (rows.len() == limit)
                    .then(|| rows.last().map(|r| r.0.clone()))
                    .flatten();
                let Some(key) = self.existing_user_key(user)? else {
                    return Ok(Page {
                        items: Vec::new(),
                        next_cursor: None,
                    });
                };
                let items = rows
                    .into_iter()
                    .map(|(id, m)| {
                        let item = ItemKey {
                            namespace: ns.to_string(),
                            user_hash: user.hash.clone(),
                            name: id,
                        };
                        Ok(CredentialSummary {
                            name: credential_name_of(&key, &item, m.sealed_name.as_deref())?,
                            current_version: m.current_version,
                            updated_at: rfc3339(m.updated_at),
                        })
                    })
                    .collect::<CoreResult<_>>()?;
                Ok(Page { items, next_cursor })
            },
        )
    }

    /// Every credential of a resolved user with its name, key and metadata, for export and
    /// erasure (no authorization or audit).
    pub(crate) fn all_user_credentials(
        &self,
        user: &UserRef,
    ) -> CoreResult<Vec<(String, ItemKey, ItemMeta)>> {
        let Some(key) = self.existing_user_key(user)? else {
            return Ok(Vec::new());
        };
        let ns = user.keys.name.as_str();
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .storage()
                .list_credentials(ns, &user.hash, after.as_deref(), 1000)?;
            let Some((last, _)) = page.last() else {
                return Ok(all);
            };
            after = Some(last.clone());
            for (id, meta) in page {
                let item = ItemKey {
                    namespace: ns.to_string(),
                    user_hash: user.hash.clone(),
                    name: id,
                };
                let name = credential_name_of(&key, &item, meta.sealed_name.as_deref())?;
                all.push((name, item, meta));
            }
        }
    }

    /// Soft-deletes versions (the current one when `versions` is empty); undelete restores them.
    pub fn delete_credential_versions(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        name: &str,
        versions: &[u64],
    ) -> CoreResult<u64> {
        self.credential_op(who, Op::CredentialDelete, ns, user_id, name, |user| {
            let item = item_key(user, name);
            let meta = self
                .storage()
                .get_credential_meta(&item)?
                .ok_or(CoreError::NotFound("credential"))?;
            let versions = if versions.is_empty() {
                vec![meta.current_version]
            } else {
                versions.to_vec()
            };
            check_versions(&versions)?;
            Ok(self
                .storage()
                .set_credential_deleted(&item, &versions, Some(self.now_ms()))?)
        })
    }

    /// Restores soft-deleted versions.
    pub fn undelete_credential_versions(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        name: &str,
        versions: &[u64],
    ) -> CoreResult<u64> {
        self.credential_op(who, Op::CredentialUndelete, ns, user_id, name, |user| {
            check_versions(versions)?;
            let item = item_key(user, name);
            self.storage()
                .get_credential_meta(&item)?
                .ok_or(CoreError::NotFound("credential"))?;
            Ok(self
                .storage()
                .set_credential_deleted(&item, versions, None)?)
        })
    }

    /// Erases the ciphertext of versions for good.
    pub fn destroy_credential_versions(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        name: &str,
        versions: &[u64],
    ) -> CoreResult<u64> {
        self.credential_op(who, Op::CredentialDestroy, ns, user_id, name, |user| {
            check_versions(versions)?;
            let item = item_key(user, name);
            self.storage()
                .get_credential_meta(&item)?
                .ok_or(CoreError::NotFound("credential"))?;
            Ok(self
                .storage()
                .destroy_credential_versions(&item, versions)?)
        })
    }

    /// Removes a credential with its whole history.
    pub fn delete_credential(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        name: &str,
    ) -> CoreResult<()> {
        self.credential_op(who, Op::CredentialPurge, ns, user_id, name, |user| {
            if self.storage().delete_credential(&item_key(user, name))? {
                Ok(())
            } else {
                Err(CoreError::NotFound("credential"))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_set_keeps_every_field_through_a_round_trip() {
        let text = r#"{"type":"oauth2","access_token":"at","refresh_token":"rt","expires_at":"2026-01-31T12:00:00Z","scope":"a b","token_type":"Bearer","provider":"slack","extra":{"n":[1,2],"team_id":"T1"}}"#;
        let data: CredentialData = serde_json::from_str(text).unwrap();
        assert!(matches!(data, CredentialData::Oauth2(_)));
        assert_eq!(serde_json::to_string(&data).unwrap(), text);
    }

    #[test]
    fn a_token_set_takes_unix_seconds_and_refuses_unknown_fields() {
        let data: CredentialData =
            serde_json::from_str(r#"{"type":"oauth2","access_token":"at","expires_at":0}"#)
                .unwrap();
        let CredentialData::Oauth2(set) = data else {
            panic!("a token set")
        };
        assert_eq!(set.expires_at.as_deref(), Some("1970-01-01T00:00:00Z"));
        let err = serde_json::from_str::<CredentialData>(
            r#"{"type":"oauth2","access_token":"at","colour":"x"}"#,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("unknown field `colour`"), "{err}");
        let err = serde_json::from_str::<CredentialData>(r#"{"type":"oauth2"}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("missing field `access_token`"), "{err}");
    }
}
