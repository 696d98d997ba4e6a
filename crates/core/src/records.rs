//! Records: JSON documents in named collections — per user (a profile, settings) or per
//! namespace (an app-wide cache) — encrypted like credentials, with a version for
//! check-and-set, optional expiry, and per-collection rules:
//!
//! - `ttl_secs`: a document expires that long after each write; it is not returned from the
//!   moment it expires, and the `record-expiry` job deletes it;
//! - `searchable` and `unique` fields: equality look-ups through a keyed-hash index (HMAC under
//!   the namespace's index key of collection, field and canonical JSON value), so the database
//!   never holds the plaintext value; a unique field's value may be held by one live document;
//! - `fields`: typed fields with constraints and defaults (defaults are filled in on read, so a
//!   changed default applies to documents already stored), and `additional_fields: false` to
//!   refuse undeclared fields.
//!
//! Namespace-wide documents belong to a reserved pseudo-user of the namespace, whose id cannot
//! be given through the API (ids may not contain control characters).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strongroom_crypto::{Data, Index, Key};
use strongroom_storage::{IndexEntry, RecordKey, RecordRow, RecordWrite, StorageError};

use crate::clock::rfc3339;
use crate::credentials::object_depth;
use crate::keyring::contexts;
use crate::operation::Op;
use crate::raw_json::RawObject;
use crate::row_auth::RowId;
use crate::users::{page_limit, UserRef};
use crate::vault::{At, Input, Subject};
use crate::{names, sealed_names, CoreError, CoreResult, Page, Principal, Vault};

/// The reserved owner of namespace-wide documents.
pub(crate) const NAMESPACE_OWNER: &str = "\u{0}namespace";
const MAX_TTL_SECS: u64 = 10 * 365 * 24 * 3600;
const MAX_DOC_DEPTH: usize = 32;
const MAX_FIELDS: usize = 256;
const MAX_PATTERN_LEN: usize = 512;

/// Who owns a collection's documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    User,
    Namespace,
}

/// A declared field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    Object,
    Array,
}

/// A typed field: constraints and an optional default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::opt_usize"
    )]
    pub min_length: Option<usize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::opt_usize"
    )]
    pub max_length: Option<usize>,
    /// A regular expression the whole string must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
}

fn yes() -> bool {
    true
}

/// A collection's rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionSettings {
    pub scope: Scope,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::opt_u64"
    )]
    pub ttl_secs: Option<u64>,
    #[serde(default)]
    pub searchable: Vec<String>,
    #[serde(default)]
    pub unique: Vec<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
    #[serde(default = "yes")]
    pub additional_fields: bool,
}

/// A document to write (the body of a PUT).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    /// Kept exactly as sent (see [`crate::raw_json`]).
    pub document: RawObject,
    /// Check-and-set: write only if the current version is this (0 = must not exist).
    #[serde(default, deserialize_with = "crate::json::opt_u64")]
    pub if_version: Option<u64>,
}

/// A document as returned.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// The owning user, on look-ups in per-user collections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub key: String,
    pub version: u64,
    pub updated_at: String,
    pub expires_at: Option<String>,
    /// As written, with missing declared fields' defaults appended.
    pub document: RawObject,
}

/// A collection as listed.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionInfo {
    pub name: String,
    #[serde(flatten)]
    pub settings: CollectionSettings,
}

/// Collection names follow the credential-name rules, reported as `collection`.
fn collection_name(name: &str) -> CoreResult<()> {
    names::credential_name(name).map_err(|e| match e {
        CoreError::Invalid { rule, .. } => invalid("collection", rule),
        other => other,
    })
}

/// What a record operation resolved: the collection's settings and the documents' owner.
struct RecordOwner {
    settings: CollectionSettings,
    owner: UserRef,
    /// The owner's id (the user's, or the namespace pseudo-user's).
    id: String,
}

impl Subject for RecordOwner {
    fn audited_user(&self) -> &[u8] {
        &self.owner.hash
    }
}

fn invalid(field: &'static str, rule: impl Into<String>) -> CoreError {
    CoreError::Invalid {
        field,
        rule: rule.into(),
    }
}

fn check_field_name(name: &str) -> CoreResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "fields",
            format!(
                "field name {name:?} must be 1-64 of A-Z a-z 0-9 _, starting with a letter or _"
            ),
        ))
    }
}

/// Identifies an owner's document: stored under the key's id, never the key.
fn record_key(ns: &str, collection: &str, owner: &UserRef, key: &str) -> RecordKey {
    RecordKey {
        namespace: ns.to_string(),
        collection: collection.to_string(),
        user_hash: owner.hash.clone(),
        key: owner.keys.record_key_id(collection, key),
    }
}

/// Record keys follow the credential-name rules; errors name the field `key`.
fn check_key(key: &str) -> CoreResult<()> {
    names::credential_name(key).map_err(|e| match e {
        CoreError::Invalid { rule, .. } => invalid("key", rule),
        other => other,
    })
}

fn compile(pattern: &str) -> CoreResult<regex::Regex> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(invalid(
            "pattern",
            format!("must be at most {MAX_PATTERN_LEN} characters"),
        ));
    }
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|_| {
            invalid(
                "pattern",
                format!("{pattern:?} is not a valid regular expression"),
            )
        })
}

impl FieldSpec {
    /// Checks `value` against this spec; the message names the field and the rule.
    fn check(&self, name: &str, value: &Value) -> CoreResult<()> {
        let fail = |rule: String| {
            Err(CoreError::Invalid {
                field: "document",
                rule: format!("{name}: {rule}"),
            })
        };
        let type_ok = match self.kind {
            FieldType::String => value.is_string(),
            FieldType::Integer => value.is_i64() || value.is_u64(),
            FieldType::Number => value.is_number(),
            FieldType::Boolean => value.is_boolean(),
            FieldType::Object => value.is_object(),
            FieldType::Array => value.is_array(),
        };
        if !type_ok {
            return fail(format!("must be of type {:?}", self.kind).to_lowercase());
        }
        if let Some(s) = value.as_str() {
            let len = s.chars().count();
            if self.min_length.is_some_and(|min| len < min) {
                return fail(format!(
                    "must be at least {} characters",
                    self.min_length.unwrap_or(0)
                ));
            }
            if self.max_length.is_some_and(|max| len > max) {
                return fail(format!(
                    "must be at most {} characters",
                    self.max_length.unwrap_or(0)
                ));
            }
            if let Some(p) = &self.pattern {
                if !compile(p)?.is_match(s) {
                    return fail(format!("must match the pattern {p:?}"));
                }
            }
        }
        if let Some(n) = value.as_f64() {
            if self.minimum.is_some_and(|min| n < min) || self.maximum.is_some_and(|max| n > max) {
                return fail(format!(
                    "must be between {:?} and {:?}",
                    self.minimum, self.maximum
                ));
            }
        }
        Ok(())
    }
}

impl CollectionSettings {
    fn validate(&self) -> CoreResult<()> {
        if let Some(ttl) = self.ttl_secs {
            if !(1..=MAX_TTL_SECS).contains(&ttl) {
                return Err(invalid(
                    "ttl_secs",
                    format!("must be between 1 and {MAX_TTL_SECS} seconds"),
                ));
            }
        }
        if self.fields.len() > MAX_FIELDS || self.searchable.len() + self.unique.len() > MAX_FIELDS
        {
            return Err(invalid(
                "fields",
                format!("at most {MAX_FIELDS} fields may be declared"),
            ));
        }
        for (name, spec) in &self.fields {
            check_field_name(name)?;
            if let Some(p) = &spec.pattern {
                compile(p)?;
            }
            if let Some(default) = &spec.default {
                spec.check(name, default)
                    .map_err(|e| invalid("default", e.to_string()))?;
            }
        }
        for name in self.searchable.iter().chain(&self.unique) {
            check_field_name(name)?;
        }
        Ok(())
    }

    /// Checks a document against the declared fields.
    fn check_document(&self, doc: &Map<String, Value>) -> CoreResult<()> {
        let nested = object_depth(doc);
        if nested > MAX_DOC_DEPTH {
            return Err(invalid(
                "document",
                format!("nests {nested} levels deep; at most {MAX_DOC_DEPTH} are allowed"),
            ));
        }
        for (name, spec) in &self.fields {
            match doc.get(name) {
                Some(value) => spec.check(name, value)?,
                None if spec.required && spec.default.is_none() => {
                    return Err(invalid("document", format!("{name}: is required")));
                }
                None => {}
            }
        }
        if !self.additional_fields {
            if let Some(extra) = doc.keys().find(|k| !self.fields.contains_key(*k)) {
                return Err(invalid(
                    "document",
                    format!("{extra}: is not a declared field of this collection"),
                ));
            }
        }
        Ok(())
    }

    /// Missing declared fields take their defaults, appended after the members as written.
    fn with_defaults(&self, doc: &RawObject, members: &Map<String, Value>) -> RawObject {
        let missing: Vec<(&str, &Value)> = self
            .fields
            .iter()
            .filter(|(name, _)| !members.contains_key(*name))
            .filter_map(|(name, spec)| spec.default.as_ref().map(|d| (name.as_str(), d)))
            .collect();
        doc.with_members(&missing)
    }

    fn is_searchable(&self, field: &str) -> bool {
        self.searchable
            .iter()
            .chain(&self.unique)
            .any(|f| f == field)
    }
}

/// A document past serde_json's nesting limit (deeper than any allowed document).
fn too_deep() -> CoreError {
    invalid(
        "document",
        format!("nests too deep; at most {MAX_DOC_DEPTH} levels are allowed"),
    )
}

/// Whether two JSON values are the same value as the index sees it (its canonical text).
fn same_json(a: &Value, b: &Value) -> bool {
    serde_json::to_string(a).ok() == serde_json::to_string(b).ok()
}

/// The keyed hash a searchable or unique field's value is indexed by. Frozen (pinned in
/// `format_vectors`): collection and field names cannot hold NUL, so the encoding is unambiguous.
pub(crate) fn value_hash(
    index_key: &Key<Index>,
    collection: &str,
    field: &str,
    value: &Value,
) -> CoreResult<Vec<u8>> {
    if !(value.is_string() || value.is_number() || value.is_boolean()) {
        return Err(invalid(
            "document",
            format!("{field}: a searchable field must hold a string, number or boolean"),
        ));
    }
    let canonical = serde_json::to_string(value).map_err(|e| CoreError::Internal(e.to_string()))?;
    let message = format!("record-index\0{collection}\0{field}\0{canonical}");
    Ok(index_key.mac(message.as_bytes()).to_vec())
}

impl Vault {
    fn collection(&self, ns: &str, name: &str) -> CoreResult<CollectionSettings> {
        let bytes = self
            .storage()
            .get_collection(ns, name)?
            .ok_or(CoreError::NotFound("collection"))?;
        self.collection_settings(ns, name, &bytes)
    }

    /// Stored collection settings, if authentic (see [`crate::row_auth`]).
    pub(crate) fn collection_settings(
        &self,
        ns: &str,
        name: &str,
        stored: &[u8],
    ) -> CoreResult<CollectionSettings> {
        let body = self.open_row(&RowId::collection(ns, name), stored)?;
        crate::stored_config::decode(&body, "collection")
    }

    /// Collection settings authenticated as `ns`/`name`, as stored.
    pub(crate) fn seal_collection_settings(
        &self,
        ns: &str,
        name: &str,
        settings: &CollectionSettings,
    ) -> CoreResult<Vec<u8>> {
        let body = crate::stored_config::encode(settings)?;
        self.seal_row(&RowId::collection(ns, name), &body)
    }

    /// Creates or updates a collection (`admin` on the namespace). The scope cannot change.
    pub fn put_collection(
        &self,
        who: &Principal,
        ns: &str,
        name: &str,
        settings: CollectionSettings,
    ) -> CoreResult<CollectionInfo> {
        let valid = settings.validate();
        let check = move || {
            collection_name(name)?;
            valid?;
            self.keyring().namespace(ns).map(|_| ())
        };
        self.execute(who, Op::CollectionPut, At::new(ns, name), check, |()| {
            if let Some(old) = self.storage().get_collection(ns, name)? {
                let old = self.collection_settings(ns, name, &old)?;
                if old.scope != settings.scope {
                    return Err(CoreError::Immutable {
                        field: "scope",
                        rule: "a collection's scope cannot change; create another collection",
                    });
                }
            }
            let bytes = self.seal_collection_settings(ns, name, &settings)?;
            self.storage()
                .put_collection(ns, name, &bytes, self.now_ms())?;
            Ok(CollectionInfo {
                name: name.to_string(),
                settings,
            })
        })
    }

    /// The collections of a namespace (`list`).
    pub fn list_collections(&self, who: &Principal, ns: &str) -> CoreResult<Vec<CollectionInfo>> {
        self.execute(
            who,
            Op::CollectionList,
            At::new(ns, ""),
            || Ok(()),
            |()| {
                self.storage()
                    .list_collections(ns)?
                    .into_iter()
                    .map(|(name, bytes)| {
                        let settings = self.collection_settings(ns, &name, &bytes)?;
                        Ok(CollectionInfo { name, settings })
                    })
                    .collect()
            },
        )
    }

    /// Resolves the owner of a collection's documents: the user for per-user collections,
    /// the namespace pseudo-user for namespace-wide ones.
    fn record_owner(
        &self,
        ns: &str,
        settings: &CollectionSettings,
        user: Option<&str>,
    ) -> CoreResult<(UserRef, String)> {
        match (settings.scope, user) {
            (Scope::User, Some(u)) => Ok((self.resolve_user(ns, u)?, u.to_string())),
            (Scope::Namespace, None) => {
                let keys = self.keyring().namespace(ns)?;
                let hash = keys.user_hash(NAMESPACE_OWNER);
                Ok((UserRef { keys, hash }, NAMESPACE_OWNER.to_string()))
            }
            (Scope::User, None) => Err(invalid(
                "collection",
                "this collection is per user: use /users/{user}/records/…",
            )),
            (Scope::Namespace, Some(_)) => Err(invalid(
                "collection",
                "this collection is namespace-wide: use /records/…",
            )),
        }
    }

    /// Runs a record operation: the collection's settings and the documents' owner (the user,
    /// or the namespace pseudo-user) are resolved after authorization.
    fn record_op<T>(
        &self,
        who: &Principal,
        op: Op,
        ns: &str,
        collection: &str,
        user: Option<&str>,
        work: impl FnOnce(&CollectionSettings, &UserRef, &str) -> CoreResult<T>,
    ) -> CoreResult<T> {
        let resolve = || {
            collection_name(collection)?;
            let settings = self.collection(ns, collection)?;
            let (owner, id) = self.record_owner(ns, &settings, user)?;
            Ok(RecordOwner {
                settings,
                owner,
                id,
            })
        };
        self.execute(who, op, At::new(ns, collection), resolve, |r| {
            work(&r.settings, &r.owner, &r.id)
        })
    }

    fn decode_record(
        &self,
        ns: &str,
        collection: &str,
        settings: &CollectionSettings,
        owner: &UserRef,
        row: RecordRow,
    ) -> CoreResult<Record> {
        let key = self
            .existing_user_key(owner)?
            .ok_or(CoreError::Integrity("record"))?;
        self.open_record(ns, collection, settings, owner, &key, row)
    }

    /// A record opened with its owner's data key `key`.
    fn open_record(
        &self,
        ns: &str,
        collection: &str,
        settings: &CollectionSettings,
        owner: &UserRef,
        key: &Key<Data>,
        row: RecordRow,
    ) -> CoreResult<Record> {
        let record_key = sealed_names::open(
            key,
            &sealed_names::record_ad(ns, collection, &owner.hash, &row.key),
            row.sealed_key.as_deref(),
            "record key",
        )?;
        let plain = key
            .open(
                &contexts::record(ns, collection, &owner.hash, &record_key, row.version),
                &row.ciphertext,
            )
            .map_err(|e| CoreError::from_crypto("record", e))?;
        let text = std::str::from_utf8(&plain).map_err(|_| CoreError::Integrity("record"))?;
        let doc = RawObject::parse(text).map_err(|_| CoreError::Integrity("record"))?;
        let members = doc.to_map().map_err(|_| CoreError::Integrity("record"))?;
        Ok(Record {
            user: None,
            key: record_key,
            version: row.version,
            updated_at: rfc3339(row.updated_at),
            expires_at: row.expires_at.map(rfc3339),
            document: settings.with_defaults(&doc, &members),
        })
    }

    /// Writes a document (`write`). `if_version`: check-and-set (0 = must not exist).
    pub fn put_record(
        &self,
        who: &Principal,
        ns: &str,
        collection: &str,
        user: Option<&str>,
        key: &str,
        input: &RecordInput,
    ) -> CoreResult<Record> {
        let (document, if_version) = (&input.document, input.if_version);
        self.record_op(
            who,
            Op::RecordPut,
            ns,
            collection,
            user,
            |settings, owner, owner_id| {
                check_key(key)?;
                let members = document.to_map().map_err(|_| too_deep())?;
                settings.check_document(&members)?;
                let mut index = Vec::new();
                for field in settings.searchable.iter().chain(&settings.unique) {
                    let unique = settings.unique.contains(field);
                    if index.iter().any(|e: &IndexEntry| &e.field == field) {
                        continue;
                    }
                    if let Some(value) = members.get(field) {
                        index.push(IndexEntry {
                            field: field.clone(),
                            value_hash: value_hash(
                                &owner.keys.index_key,
                                collection,
                                field,
                                value,
                            )?,
                            unique,
                        });
                    }
                }
                let now = self.now_ms();
                let expires_at = settings.ttl_secs.map(|t| now + t as i64 * 1000);
                let data_key = self.user_key_for_write(owner, owner_id)?;
                let plain = zeroize::Zeroizing::new(document.as_str().as_bytes().to_vec());
                let record_key = record_key(ns, collection, owner, key);
                let sealed_key = sealed_names::seal(
                    &data_key,
                    &sealed_names::record_ad(ns, collection, &owner.hash, &record_key.key),
                    key,
                )?;
                let write = RecordWrite {
                    key: record_key,
                    expected_version: if_version,
                    expires_at,
                    now,
                    index,
                    sealed_key: Some(sealed_key),
                };
                let seal = |version: u64| {
                    data_key
                        .seal(
                            1,
                            &contexts::record(ns, collection, &owner.hash, key, version),
                            &plain,
                        )
                        .map_err(|e| e.to_string())
                };
                let version = match self.storage().put_record(&write, &seal) {
                    Ok(v) => v,
                    Err(StorageError::Conflict(msg)) => {
                        return Err(CoreError::Conflict(format!("check-and-set failed: {msg}")))
                    }
                    Err(other) => return Err(other.into()),
                };
                Ok(Record {
                    user: None,
                    key: key.to_string(),
                    version,
                    updated_at: rfc3339(now),
                    expires_at: expires_at.map(rfc3339),
                    document: settings.with_defaults(document, &members),
                })
            },
        )
    }

    /// Reads a document (`read`), with defaults filled in.
    pub fn get_record(
        &self,
        who: &Principal,
        ns: &str,
        collection: &str,
        user: Option<&str>,
        key: &str,
    ) -> CoreResult<Record> {
        self.record_op(
            who,
            Op::RecordRead,
            ns,
            collection,
            user,
            |settings, owner, _| {
                check_key(key)?;
                let record_key = record_key(ns, collection, owner, key);
                let row = self
                    .storage()
                    .get_record(&record_key, self.now_ms())?
                    .ok_or(CoreError::NotFound("record"))?;
                self.decode_record(ns, collection, settings, owner, row)
            },
        )
    }

    /// Deletes a document (`delete`).
    pub fn delete_record(
        &self,
        who: &Principal,
        ns: &str,
        collection: &str,
        user: Option<&str>,
        key: &str,
    ) -> CoreResult<()> {
        self.record_op(
            who,
            Op::RecordDelete,
            ns,
            collection,
            user,
            |_, owner, _| {
                let record_key = record_key(ns, collection, owner, key);
                if self.storage().delete_record(&record_key)? {
                    Ok(())
                } else {
                    Err(CoreError::NotFound("record"))
                }
            },
        )
    }

    /// Lists an owner's live documents by key (`list`).
    pub fn list_records(
        &self,
        who: &Principal,
        ns: &str,
        collection: &str,
        user: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> CoreResult<Page<Record>> {
        self.record_op(
            who,
            Op::RecordList,
            ns,
            collection,
            user,
            |settings, owner, _| self.records_page(collection, settings, owner, cursor, limit),
        )
    }

    /// One page of an owner's live documents, decrypted (no authorization or audit).
    fn records_page(
        &self,
        collection: &str,
        settings: &CollectionSettings,
        owner: &UserRef,
        cursor: Option<&str>,
        limit: usize,
    ) -> CoreResult<Page<Record>> {
        let ns = owner.keys.name.as_str();
        {
            {
                let limit = page_limit(limit)?;
                let cursor = cursor.filter(|c| !c.is_empty());
                if let Some(c) = cursor {
                    sealed_names::check_cursor(c)?;
                }
                let rows = self.storage().list_records(
                    ns,
                    collection,
                    &owner.hash,
                    cursor,
                    limit,
                    self.now_ms(),
                )?;
                let next_cursor = (rows.len() == limit)
                    .then(|| rows.last().map(|r| r.key.clone()))
                    .flatten();
                let items = rows
                    .into_iter()
                    .map(|row| self.decode_record(ns, collection, settings, owner, row))
                    .collect::<CoreResult<_>>()?;
                Ok(Page { items, next_cursor })
            }
        }
    }

    /// Equality look-up on a searchable field (`read`): the documents whose field equals
    /// `value`, with their owning user for per-user collections.
    pub fn lookup_records(
        &self,
        who: &Principal,
        ns: &str,
        collection: &str,
        field: &str,
        value: &Value,
    ) -> CoreResult<Vec<Record>> {
        // The settings come with the rows (one read): the name is checked first, the settings
        // once read.
        let resolve = || collection_name(collection).map(Input);
        self.execute(who, Op::RecordLookup, At::new(ns, collection), resolve, |_| {
            let keys = self.keyring().namespace(ns)?;
            let hash = value_hash(&keys.index_key, collection, field, value).map_err(|_| invalid("value", "must be a string, number or boolean"))?;
            let lookup = self.storage().lookup_records(ns, collection, field, &hash, self.now_ms(), 100)?;
            let stored = lookup.settings.ok_or(CoreError::NotFound("collection"))?;
            let settings = self.collection_settings(ns, collection, &stored)?;
            if !settings.is_searchable(field) {
                return Err(invalid("field", format!("{field:?} is not declared searchable in collection {collection:?}; declare it in `searchable` or `unique`")));
            }
            let mut found = Vec::with_capacity(lookup.found.len());
            for (row, user_row) in lookup.found {
                let owner = UserRef { keys: keys.clone(), hash: row.user_hash.clone() };
                if user_row.user_hash != owner.hash || user_row.namespace != ns {
                    return Err(CoreError::Integrity("record owner"));
                }
                let key = self.keyring().data_key(&keys, &user_row)?;
                let user = match settings.scope {
                    Scope::User => Some(self.decrypt_user_id(&keys, &user_row)?),
                    Scope::Namespace => None,
                };
                let mut record = self.open_record(ns, collection, &settings, &owner, &key, row)?;
                // The index is a row anyone with the database can point elsewhere: a document is
                // returned only if its own (decrypted) field holds the value asked for.
                let holds = record
                    .document
                    .to_map()
                    .is_ok_and(|doc| doc.get(field).is_some_and(|v| same_json(v, value)));
                if !holds {
                    return Err(CoreError::Integrity("record index"));
                }
                record.user = user;
                found.push(record);
            }
            Ok(found)
        })
    }

    /// Background work: deletes expired documents. `Ok(true)` when more may be waiting.
    pub(crate) fn purge_expired_records(&self) -> CoreResult<bool> {
        const BATCH: usize = 1000;
        let purged = self.storage().purge_expired_records(self.now_ms(), BATCH)?;
        if purged > 0 {
            let who = Principal::system("job:record-expiry");
            let count = purged.to_string();
            self.record_internal(
                &who,
                Op::RecordExpire,
                At::new("", &count),
                &[],
                &Ok::<(), CoreError>(()),
            );
        }
        Ok(purged == BATCH as u64)
    }

    /// Every live document of a resolved user in per-user collections, for export (no
    /// authorization or audit).
    pub(crate) fn all_user_records(
        &self,
        user: &UserRef,
    ) -> CoreResult<BTreeMap<String, Vec<Record>>> {
        let mut all = BTreeMap::new();
        for (name, bytes) in self.storage().list_collections(&user.keys.name)? {
            let settings = self.collection_settings(&user.keys.name, &name, &bytes)?;
            if settings.scope != Scope::User {
                continue;
            }
            let mut records = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = self.records_page(&name, &settings, user, cursor.as_deref(), 1000)?;
                records.extend(page.items);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            if !records.is_empty() {
                all.insert(name, records);
            }
        }
        Ok(all)
    }
}
