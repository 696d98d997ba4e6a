//! Data-subject rights: export everything held about a user, and erase it.
//!
//! Erasure is immediate by crypto-shredding: the user's row — holding the wrapped data key —
//! is deleted first, in the same transaction that records a pending erasure, and the key is
//! dropped from this node's cache. From that moment every ciphertext of the user is unreadable
//! (storage returns a user's rows only while the user row exists, so other nodes' cached keys
//! find nothing to decrypt either). The rows are then purged: in the same call for small users,
//! by the `erasure-purge` background job for large ones or when a node died mid-purge.
//! The audit log records the erasure with the user's keyed hash, never the id.
//!
//! Backups: a backup taken before the erasure still holds the wrapped data key. Restoring it
//! would resurrect the user; operators must re-apply erasures after a restore (the audit log's
//! `user.erase` entries list the keyed hashes) or expire backups within their retention promise.

use serde::Serialize;

use crate::clock::rfc3339;
use crate::credentials::{open_credential, CredentialData, VersionInfo};
use std::collections::BTreeMap;

use crate::events::Event;
use crate::operation::Op;
use crate::records::Record;
use crate::vault::At;
use crate::{CoreError, CoreResult, Principal, Vault};

/// Rows purged within the erase call before the rest is left to the background job.
pub const SYNC_PURGE_LIMIT: u64 = 1000;
const PURGE_BATCH: usize = 500;
/// Files purged per step (each costs object-store round trips).
const FILE_PURGE_BATCH: usize = 50;
const EXPORT_FORMAT: &str = "strongroom-user-export/1";

/// What an erase did.
#[derive(Debug, Clone, Serialize)]
pub struct ErasureReport {
    /// The user's keyed hash (the only name the audit log keeps).
    pub user_hash: String,
    pub erased_at: String,
    pub items_purged: u64,
    /// True when rows remain for the background purge (they are already unreadable).
    pub purge_pending: bool,
    /// OAuth grants revoked at their providers before the keys were destroyed.
    pub provider_revocations: u64,
    /// Providers that could not be reached or refused (each is audited); the erasure went on.
    pub provider_revocation_failures: u64,
    /// Whether the erasure reached the erasure ledger outside the store.
    pub ledger: LedgerCopy,
}

/// Where an erasure's entry in the erasure ledger outside the store stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerCopy {
    /// Written outside the store: a restore of an older backup will erase the user again.
    Recorded,
    /// Not written yet (the location did not answer in time); the `erasure-ledger` job
    /// retries until it is.
    Pending,
    /// No ledger location is configured (`serve --erasure-ledger`): the entry is only in the
    /// store itself, so a restored older backup would not know of it.
    NotConfigured,
}

/// Where an erasure stands.
#[derive(Debug, Clone, Serialize)]
pub struct ErasureStatus {
    pub user_hash: String,
    pub purge_pending: bool,
    pub items_remaining: u64,
}

/// Everything held about a user, decrypted (the documented export format).
#[derive(Debug, Serialize)]
pub struct UserExport {
    pub format: &'static str,
    pub namespace: String,
    pub user: String,
    pub exported_at: String,
    pub credentials: Vec<ExportedCredential>,
    /// Every live document in per-user collections, by collection.
    pub records: BTreeMap<String, Vec<Record>>,
    /// Every event, newest first.
    pub events: Vec<Event>,
    /// Every file's metadata, oldest first. The contents are in the archive form of the
    /// export (`files/<id>` beside this document), or readable one by one.
    pub files: Vec<crate::files::FileInfo>,
}

#[derive(Debug, Serialize)]
pub struct ExportedCredential {
    pub name: String,
    pub current_version: u64,
    /// Every live version (soft-deleted and destroyed versions are not data the app holds).
    pub versions: Vec<ExportedVersion>,
}

#[derive(Debug, Serialize)]
pub struct ExportedVersion {
    #[serde(flatten)]
    pub metadata: VersionInfo,
    pub data: CredentialData,
}

impl Vault {
    /// Exports everything held about a user, decrypted (needs `export`, and only that: the
    /// parts are read by internal functions, and the export is audited once, as itself).
    pub fn export_user(&self, who: &Principal, ns: &str, user_id: &str) -> CoreResult<UserExport> {
        self.execute_on_user(
            who,
            Op::UserExport,
            At::new(ns, ""),
            user_id,
            || Ok(()),
            |user| {
                let key = self
                    .existing_user_key(user)?
                    .ok_or(CoreError::NotFound("user"))?;
                let mut credentials = Vec::new();
                for (name, item, meta) in self.all_user_credentials(user)? {
                    let mut versions = Vec::new();
                    for v in self.storage().list_credential_versions(&item)? {
                        if v.destroyed || v.deleted_at.is_some() {
                            continue;
                        }
                        let Some((_, row)) = self
                            .storage()
                            .get_credential_version(&item, Some(v.version))?
                        else {
                            continue;
                        };
                        let data = open_credential(&key, ns, &user.hash, &name, &row)?;
                        versions.push(ExportedVersion {
                            metadata: VersionInfo {
                                version: row.version,
                                created_at: rfc3339(row.created_at),
                                deleted_at: None,
                                destroyed: false,
                            },
                            data,
                        });
                    }
                    credentials.push(ExportedCredential {
                        name,
                        current_version: meta.current_version,
                        versions,
                    });
                }
                // Storage orders credentials by name id; the export lists them by name.
                credentials.sort_by(|a, b| a.name.cmp(&b.name));
                let events = self.all_events(user)?;
                let records = self.all_user_records(user)?;
                let files = self.all_user_files(user)?;
                Ok(UserExport {
                    format: EXPORT_FORMAT,
                    namespace: ns.to_string(),
                    user: user_id.to_string(),
                    exported_at: rfc3339(self.now_ms()),
                    credentials,
                    records,
                    events,
                    files,
                })
            },
        )
    }

    /// Erases a user: crypto-shred at once, then purge. `confirm` must repeat the user id.
    pub fn erase_user(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        confirm: &str,
    ) -> CoreResult<ErasureReport> {
        let check = || {
            if confirm == user_id {
                Ok(())
            } else {
                Err(CoreError::Invalid {
                    field: "confirm",
                    rule: "must repeat the user id exactly (erasure cannot be undone)".into(),
                })
            }
        };
        self.execute_on_user(
            who,
            Op::UserErase,
            At::new(ns, ""),
            user_id,
            check,
            |user| {
                if self.storage().get_user(ns, &user.hash)?.is_none() {
                    return Err(CoreError::NotFound("user"));
                }
                // Read what revoking the user's OAuth grants needs while the keys still exist;
                // the provider calls happen after the shredding, so they cannot delay it.
                let grants = self.grants_to_revoke(user, ns)?;
                let now = self.now_ms();
                let ledger_id = crate::erasure_ledger::new_id(now)?;
                let event = self.wanted_event(
                    ns,
                    "user.erased",
                    &user.hash,
                    serde_json::json!({"erased_at": rfc3339(now)}),
                )?;
                if !self
                    .storage()
                    .begin_erasure(ns, &user.hash, now, &ledger_id, event.as_ref())?
                {
                    return Err(CoreError::NotFound("user"));
                }
                self.keyring().forget_data_key(ns, &user.hash);
                let (provider_revocations, provider_revocation_failures) =
                    self.revoke_grants(ns, &user.hash, grants);
                let (items_purged, done) =
                    self.purge_user(ns, &user.hash, SYNC_PURGE_LIMIT, false)?;
                let ledger = match self.ship_ledger_soon() {
                    None => LedgerCopy::NotConfigured,
                    Some(true) => LedgerCopy::Recorded,
                    Some(false) => LedgerCopy::Pending,
                };
                Ok(ErasureReport {
                    user_hash: hex::encode(&user.hash),
                    erased_at: rfc3339(now),
                    items_purged,
                    purge_pending: !done,
                    provider_revocations,
                    provider_revocation_failures,
                    ledger,
                })
            },
        )
    }

    /// Where a user's erasure stands (needs `erase`).
    pub fn erasure_status(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
    ) -> CoreResult<ErasureStatus> {
        self.execute_on_user(
            who,
            Op::UserErasureStatus,
            At::new(ns, ""),
            user_id,
            || Ok(()),
            |user| {
                Ok(ErasureStatus {
                    user_hash: hex::encode(&user.hash),
                    purge_pending: self.storage().erasure_pending(ns, &user.hash)?,
                    items_remaining: self.storage().count_user_items(ns, &user.hash)?,
                })
            },
        )
    }

    /// Purges up to `budget` rows of an erased user; finishes the erasure when none remain.
    /// Returns rows purged and whether the erasure is finished.
    /// Files (whose objects take object-store round trips) are purged only when `with_files`:
    /// by the background job, never inside the erase call, which must stay immediate.
    fn purge_user(
        &self,
        ns: &str,
        user_hash: &[u8],
        budget: u64,
        with_files: bool,
    ) -> CoreResult<(u64, bool)> {
        let mut purged = 0u64;
        while purged < budget {
            let mut n = 0;
            if with_files {
                n += self.purge_user_files(ns, user_hash, FILE_PURGE_BATCH)?;
            }
            n += self
                .storage()
                .purge_user_items(ns, user_hash, PURGE_BATCH)?;
            purged += n;
            if n == 0 {
                if !with_files && !self.storage().user_file_rows(ns, user_hash, 1)?.is_empty() {
                    return Ok((purged, false));
                }
                self.storage().finish_erasure(ns, user_hash)?;
                return Ok((purged, true));
            }
        }
        Ok((purged, false))
    }

    /// Purges everything of an erased user, files included (a restore replaying erasures,
    /// before the store serves). Returns rows purged and whether the erasure is finished.
    pub(crate) fn purge_user_fully(&self, ns: &str, user_hash: &[u8]) -> CoreResult<(u64, bool)> {
        self.purge_user(ns, user_hash, u64::MAX, true)
    }

    /// Background work: continues the oldest unfinished erasure. `Ok(true)` when it did work.
    pub(crate) fn purge_some(&self) -> CoreResult<bool> {
        let Some(next) = self.storage().pending_erasures(1)?.pop() else {
            return Ok(false);
        };
        let who = Principal::system("job:erasure-purge");
        let purged = self
            .purge_user(
                &next.namespace,
                &next.user_hash,
                10 * PURGE_BATCH as u64,
                true,
            )
            .map(|_| true);
        self.record_internal(
            &who,
            Op::UserPurge,
            At::new(&next.namespace, ""),
            &next.user_hash,
            &purged,
        );
        purged
    }
}
