//! Rotating the root key: a new root key replaces the old one everywhere the old one is used,
//! so the old key (and everything derived from it) opens nothing written from then on.
//!
//! What changes: every namespace's index key and key-encryption keys are re-wrapped under the
//! new root key; every authenticated row (tokens, providers, collections, file and suspension
//! policies) and every credential's pointer is re-authenticated under the new row key; the
//! audit chain continues under the new chain key, the old one kept as an epoch
//! ([`crate::audit::epochs`]) so the whole log still verifies; the anchor is re-authenticated;
//! the key check value is replaced; the source the store keeps the root key under (passphrase,
//! KMS, the same Shamir shares) holds the new key. Signed download links made before stop
//! working (their MAC key is derived from the root key). User data keys, ciphertexts and name
//! ids do not change: they hang below the namespace keys.
//!
//! The cluster is sealed first (every node drops its keys within a second), so nothing is
//! written under the old keys meanwhile; nodes are unsealed with the new material afterwards.
//!
//! Crash-safe and resumable: a record in `meta['root_rotation']` holds the new key wrapped
//! under the old and the old under the new, so running the rotation again with *either* key
//! finishes it; every re-wrap and re-authentication is idempotent (a row already under the new
//! key is left alone; one under neither is counted as refused and left as it is, never
//! laundered). The switch is prepared in the record first, then applied write by write, the
//! key check value last; until then the old key opens the store. While a rotation is
//! unfinished, no node unseals.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use strongroom_crypto::passphrase::KdfParams;
use strongroom_crypto::{root_key, AssociatedData, Index, Kek, Key, Root};
use strongroom_storage::Storage;

use super::kms::{Kms, KMS_META};
use super::{meta_present, stored_meta, KeySource, Node, UnsealMaterial};
use super::{PASSPHRASE_META, SEAL_META, SHAMIR_META};
use crate::audit::anchor::{self, Anchor};
use crate::audit::epochs::{self, Epoch};
use crate::clock::Clock;
use crate::keyring::contexts;
use crate::operation::Op;
use crate::row_auth::{self, Opened, RowId};
use crate::vault::{At, ROOT_CHECK_META};
use crate::{CoreError, CoreResult, Principal, Vault, VaultSettings};

/// The unfinished rotation, if any.
pub const ROTATION_META: &str = "root_rotation";
const FORMAT: u64 = 1;
/// Nodes follow a seal mark within a second; the rotation waits this long after setting it.
const SEAL_SETTLE: Duration = Duration::from_secs(2);

/// Where the store keeps the new root key: where it kept the old one.
pub enum Keep<'a> {
    /// A key file or the environment: the caller hands the new key out.
    File,
    Passphrase {
        passphrase: &'a [u8],
        params: KdfParams,
    },
    Kms(&'a Kms),
    /// Under the same unseal key, so every holder keeps their share.
    Shamir,
}

/// What a rotation did (this run; a resumed run counts only what was left).
#[derive(Debug, Default, Clone, Serialize)]
pub struct RotationReport {
    pub resumed: bool,
    pub namespaces_rewrapped: u64,
    pub rows_reauthenticated: u64,
    pub pointers_reauthenticated: u64,
    /// Rows under neither key (tampered before the rotation): left as they were, still refused.
    pub refused: u64,
    /// The last audit entry chained under the old key.
    pub audit_boundary_seq: u64,
}

#[derive(Serialize, Deserialize)]
struct Record {
    format: u64,
    old_check: String,
    new_check: String,
    new_under_old: String,
    old_under_new: String,
    #[serde(default)]
    commit: Option<Commit>,
}

/// Everything the switch writes, prepared before the first of those writes.
#[derive(Serialize, Deserialize)]
struct Commit {
    boundary_seq: u64,
    epochs: String,
    name_key: String,
    anchor: String,
    source: Option<(String, String)>,
}

fn new_ad() -> AssociatedData {
    AssociatedData::new("root-rotation-new")
}

fn old_ad() -> AssociatedData {
    AssociatedData::new("root-rotation-old")
}

fn internal(e: impl std::fmt::Display) -> CoreError {
    CoreError::Internal(e.to_string())
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn unb64(text: &str) -> CoreResult<Vec<u8>> {
    STANDARD
        .decode(text)
        .map_err(|_| CoreError::Integrity("the root-key rotation record"))
}

fn copy(key: &Key<Root>) -> CoreResult<Key<Root>> {
    Key::from_bytes(key.expose_bytes()).map_err(internal)
}

fn derive(root: &Key<Root>, label: &str) -> CoreResult<Key<Index>> {
    root.derive(label).map_err(internal)
}

fn settings() -> VaultSettings {
    VaultSettings {
        files: None,
        ..VaultSettings::default()
    }
}

impl Node {
    /// Rotates the root key of `storage` (opened by `material`) to `new_root`, or finishes
    /// an unfinished rotation (then `new_root` is ignored: the record's key is the new one).
    /// Returns the root key the store now uses.
    pub fn rotate_root(
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        material: UnsealMaterial,
        kms: Option<Kms>,
        keep: Keep<'_>,
        new_root: Key<Root>,
    ) -> CoreResult<(Key<Root>, RotationReport)> {
        crate::blocking::check();
        let shares = match &material {
            UnsealMaterial::Shares(texts) => texts
                .iter()
                .filter_map(|t| strongroom_crypto::shamir::parse_share(t))
                .collect(),
            _ => Vec::new(),
        };
        let mut reader = Node::sealed(
            storage.clone(),
            clock.clone(),
            settings(),
            None,
            KeySource::File,
        );
        if let Some(kms) = kms {
            reader = reader.with_kms(kms);
        }
        let given = reader.open_root(material)?;
        let check = storage
            .get_meta(ROOT_CHECK_META)?
            .ok_or_else(|| CoreError::Invalid {
                field: "store",
                rule: "has no root key yet: start it once first".into(),
            })?;
        let mut report = RotationReport::default();
        let (old, new, mut record) = match stored_meta(&*storage, ROTATION_META)? {
            None => {
                if !root_key::verify_check(&given, &check) {
                    return Err(CoreError::WrongRootKey);
                }
                let record = Record {
                    format: FORMAT,
                    old_check: b64(&check),
                    new_check: b64(&root_key::check_value(&new_root).map_err(internal)?),
                    new_under_old: b64(&given.wrap(0, &new_ad(), &new_root).map_err(internal)?),
                    old_under_new: b64(&new_root.wrap(0, &old_ad(), &given).map_err(internal)?),
                    commit: None,
                };
                storage.put_meta(
                    ROTATION_META,
                    &serde_json::to_vec(&record).map_err(internal)?,
                )?;
                (given, new_root, record)
            }
            Some(bytes) => {
                report.resumed = true;
                let record: Record = serde_json::from_slice(&bytes)
                    .map_err(|_| CoreError::Integrity("the root-key rotation record"))?;
                if record.format != FORMAT {
                    return Err(CoreError::Integrity("the root-key rotation record"));
                }
                let bad = |_| CoreError::Integrity("the root-key rotation record");
                if root_key::verify_check(&given, &unb64(&record.old_check)?) {
                    let new = given
                        .unwrap(&new_ad(), &unb64(&record.new_under_old)?)
                        .map_err(bad)?;
                    (given, new, record)
                } else if root_key::verify_check(&given, &unb64(&record.new_check)?) {
                    let old = given
                        .unwrap(&old_ad(), &unb64(&record.old_under_new)?)
                        .map_err(bad)?;
                    (old, given, record)
                } else {
                    return Err(CoreError::WrongRootKey);
                }
            }
        };
        // Seal the cluster: no node writes under the old keys while they are replaced.
        let mark = serde_json::json!({"at": clock.now_ms(), "by": "root-rotation"}).to_string();
        storage.put_meta(SEAL_META, mark.as_bytes())?;
        std::thread::sleep(SEAL_SETTLE);

        if record.commit.is_none() {
            let commit =
                rewrap_everything(&storage, &clock, &old, &new, &keep, &shares, &mut report)?;
            record.commit = Some(commit);
            storage.put_meta(
                ROTATION_META,
                &serde_json::to_vec(&record).map_err(internal)?,
            )?;
        }
        let commit = record
            .commit
            .as_ref()
            .ok_or_else(|| internal("no commit"))?;
        report.audit_boundary_seq = commit.boundary_seq;
        // The switch: each write idempotent, the key check value last.
        storage.put_meta(epochs::EPOCHS_META, &unb64(&commit.epochs)?)?;
        storage.put_meta(epochs::NAME_KEY_META, &unb64(&commit.name_key)?)?;
        storage.put_meta(anchor::META_KEY, &unb64(&commit.anchor)?)?;
        if let Some((meta, value)) = &commit.source {
            storage.put_meta(meta, &unb64(value)?)?;
        }
        storage.put_meta(ROOT_CHECK_META, &unb64(&record.new_check)?)?;

        // Under the new key the whole log must verify across the change.
        let opened = Vault::open(storage.clone(), copy(&new)?, clock.clone(), settings())?;
        opened.vault.record_internal(
            &Principal::system("root-rotation"),
            Op::KeysRotateRoot,
            At::new("", "completed"),
            &[],
            &Ok::<(), CoreError>(()),
        );
        opened.vault.flush_audit()?;
        let verified = opened.vault.verify_chain()?;
        if !verified.valid {
            return Err(CoreError::AuditLogDamaged(
                verified
                    .problem
                    .unwrap_or_else(|| "the audit log does not verify".into()),
            ));
        }
        drop(opened);
        storage.put_meta(ROTATION_META, b"")?;
        storage.put_meta(SEAL_META, b"")?;
        tracing::info!(?report, "the root key was rotated");
        Ok((new, report))
    }
}

/// Everything under the old key moves under the new one; returns the prepared switch.
fn rewrap_everything(
    storage: &Arc<dyn Storage>,
    clock: &Arc<dyn Clock>,
    old: &Key<Root>,
    new: &Key<Root>,
    keep: &Keep<'_>,
    shares: &[zeroize::Zeroizing<Vec<u8>>],
    report: &mut RotationReport,
) -> CoreResult<Commit> {
    let opened = Vault::open(storage.clone(), copy(old)?, clock.clone(), settings())?;
    let vault = opened.vault;
    let who = Principal::system("root-rotation");
    vault.record_internal(
        &who,
        Op::KeysRotateRoot,
        At::new("", "started"),
        &[],
        &Ok::<(), CoreError>(()),
    );
    for ns in storage.list_namespaces()? {
        let ad = contexts::index_key(&ns.name);
        let (index, mut changed) = rewrap::<Index>(old, new, &ad, &ns.wrapped_index_key)?;
        let mut keks = Vec::new();
        for kek in storage.list_keks(&ns.name)? {
            let ad = contexts::kek(&ns.name, kek.version);
            let (wrapped, moved) = rewrap::<Kek>(old, new, &ad, &kek.wrapped_key)?;
            changed |= moved;
            keks.push((kek.version, wrapped));
        }
        if changed {
            storage.set_namespace_wrapping(&ns.name, &index, &keks)?;
            report.namespaces_rewrapped += 1;
        }
    }
    let (old_rows, new_rows) = (derive(old, "row-auth")?, derive(new, "row-auth")?);
    row_auth::visit_rows(storage.as_ref(), clock.now_ms(), |id, stored| {
        reauthenticate(&old_rows, &new_rows, id, stored, report)
    })?;
    let mut after = None;
    loop {
        let page = storage.credential_pointers(after.as_ref(), 1000)?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        for p in &page {
            let id = RowId::credential_pointer(&p.key, p.current_version);
            let Some(stored) = &p.pointer else {
                report.refused += 1;
                continue;
            };
            let before = report.rows_reauthenticated;
            if let Some(sealed) = reauthenticate(&old_rows, &new_rows, &id, stored, report) {
                report.rows_reauthenticated = before;
                if storage.replace_credential_pointer(&p.key, p.current_version, &sealed)? {
                    report.pointers_reauthenticated += 1;
                }
            }
        }
    }
    vault.record_internal(
        &who,
        Op::KeysRotateRoot,
        At::new("", "rewrapped"),
        &[],
        &Ok::<(), CoreError>(()),
    );
    vault.flush_audit()?;
    // The old vault's audit writer stops (and anchors under the old key) before the switch.
    drop(vault);
    let tail = storage
        .audit_tail()?
        .ok_or_else(|| internal("the audit log is empty after writing to it"))?;
    let mut chain_keys = epochs::load(storage.as_ref(), old)?;
    chain_keys.push(Epoch {
        until_seq: tail.seq,
        key: derive(old, "audit-chain")?,
    });
    let name_key = epochs::name_key(storage.as_ref(), old)?;
    let anchor = anchor::encode(
        &derive(new, "audit-anchor")?,
        &Anchor {
            seq: tail.seq,
            hash: tail.hash.clone(),
        },
    );
    let source = match keep {
        Keep::File => None,
        Keep::Passphrase { passphrase, params } => Some((
            PASSPHRASE_META,
            strongroom_crypto::passphrase::seal_root(new, passphrase, *params).map_err(internal)?,
        )),
        Keep::Kms(kms) => {
            let stored = stored_meta(storage.as_ref(), KMS_META)?.unwrap_or_default();
            let blob = kms.wrap_like(&stored, new)?;
            if kms.unwrap(&blob)?.expose_bytes() != new.expose_bytes() {
                return Err(CoreError::Integrity("KMS's answer"));
            }
            Some((KMS_META, blob))
        }
        Keep::Shamir => {
            let blob = stored_meta(storage.as_ref(), SHAMIR_META)?
                .ok_or_else(|| internal("no split root key"))?;
            Some((
                SHAMIR_META,
                strongroom_crypto::shamir::reseal_root(&blob, shares, new)
                    .map_err(|_| CoreError::WrongRootKey)?,
            ))
        }
    };
    Ok(Commit {
        boundary_seq: tail.seq,
        epochs: b64(&epochs::encode(new, &chain_keys)?),
        name_key: b64(&epochs::encode_name_key(new, &name_key)?),
        anchor: b64(&anchor),
        source: source.map(|(meta, value)| (meta.to_string(), b64(&value))),
    })
}

/// `wrapped` under `new` (and whether it moved): already there, or moved from `old`.
fn rewrap<Q>(
    old: &Key<Root>,
    new: &Key<Root>,
    ad: &AssociatedData,
    wrapped: &[u8],
) -> CoreResult<(Vec<u8>, bool)> {
    if new.unwrap::<Q>(ad, wrapped).is_ok() {
        return Ok((wrapped.to_vec(), false));
    }
    let key: Key<Q> = old
        .unwrap(ad, wrapped)
        .map_err(|_| CoreError::Integrity("namespace key"))?;
    Ok((new.wrap(0, ad, &key).map_err(internal)?, true))
}

/// A row authentic under the old row key, sealed under the new; `None` if it is already
/// under the new key, or under neither (counted as refused: never laundered).
fn reauthenticate(
    old: &Key<Index>,
    new: &Key<Index>,
    id: &RowId<'_>,
    stored: &[u8],
    report: &mut RotationReport,
) -> Option<Vec<u8>> {
    if let Ok(Opened::Authentic(_)) = row_auth::open(new, id, stored) {
        return None;
    }
    match row_auth::open(old, id, stored) {
        Ok(Opened::Authentic(body)) => {
            report.rows_reauthenticated += 1;
            Some(row_auth::seal(new, id, body))
        }
        _ => {
            report.refused += 1;
            None
        }
    }
}

/// Refuses to unseal while a rotation is unfinished (the node would write under the old keys).
pub(super) fn refuse_while_rotating(storage: &dyn Storage) -> CoreResult<()> {
    if meta_present(storage, ROTATION_META)? {
        return Err(CoreError::Conflict(
            "a root-key rotation is unfinished: run `strongroom keys rotate-root` again to finish it, then unseal".into(),
        ));
    }
    Ok(())
}
