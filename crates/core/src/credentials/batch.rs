//! Writing many credentials at once (`POST /v1/ns/{ns}/credentials/batch`): up to
//! [`MAX_BATCH`] items, across users, in one storage transaction, each with its own result.
//!
//! Authorization and the batch's own audit entry go through the one entry point
//! (`credential.put_batch`, capability `write`, target the item count). Each item is checked
//! and prepared exactly as a single write is ([`Vault::prepare_write`]: name, data, options,
//! the user's key — created for a new user — and the sealed name); the prepared items are
//! written together (`CredentialStore::put_credential_versions`), where a lost check-and-set
//! is that item's result and spares the others. Every item is audited as
//! `credential.put_batch_item` under its user's keyed hash and the name's audit name, and the
//! log is flushed before the answer, so "who wrote this user's token" has the same answer as
//! for a single write.

use serde::Deserialize;
use serde_json::value::RawValue;
use strongroom_storage::BatchWrite;

use super::{CredentialData, PreparedWrite, PutOptions, VersionInfo};
use crate::operation::Op;
use crate::users::UserRef;
use crate::vault::At;
use crate::{names, CoreError, CoreResult, Principal, Vault};

/// The most items one batch may hold.
pub const MAX_BATCH: usize = 1000;

/// One item of a batch as the caller sends it; `data` is parsed per item, so one malformed
/// item is that item's error rather than the whole request's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    pub user: String,
    pub name: String,
    pub data: Box<RawValue>,
    #[serde(default)]
    pub options: PutOptions,
}

/// Each item's outcome, in the order sent.
pub type BatchOutcome = CoreResult<VersionInfo>;

/// What a batch did.
pub struct BatchReport {
    pub results: Vec<BatchOutcome>,
}

struct Ready {
    index: usize,
    write: PreparedWrite,
}

impl Vault {
    /// Writes up to [`MAX_BATCH`] credentials in one transaction (needs `write`).
    pub fn put_credentials_batch(
        &self,
        who: &Principal,
        ns: &str,
        items: &[BatchItem],
    ) -> CoreResult<BatchReport> {
        let count = items.len().to_string();
        let check = || {
            if items.is_empty() || items.len() > MAX_BATCH {
                return Err(CoreError::Invalid {
                    field: "items",
                    rule: format!("must hold between 1 and {MAX_BATCH} items"),
                });
            }
            Ok(())
        };
        self.execute(
            who,
            Op::CredentialPutBatch,
            At::new(ns, &count),
            check,
            |()| {
                let mut results: Vec<Option<BatchOutcome>> =
                    (0..items.len()).map(|_| None).collect();
                let mut hashes: Vec<Vec<u8>> = vec![Vec::new(); items.len()];
                // Input first: only items that can be written create their users.
                let mut checked = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    match self.check_item(ns, item) {
                        Ok((user, data)) => {
                            hashes[index] = user.hash.clone();
                            checked.push((index, user, data));
                        }
                        Err((hash, e)) => {
                            hashes[index] = hash;
                            results[index] = Some(Err(e));
                        }
                    }
                }
                // Every new user of the batch made at once (one transaction, one key reload).
                let users: Vec<(&UserRef, &str)> = checked
                    .iter()
                    .map(|(index, user, _)| (user, items[*index].user.as_str()))
                    .collect();
                self.create_users(ns, &users)?;
                let mut ready = Vec::with_capacity(checked.len());
                for (index, user, data) in checked {
                    let item = &items[index];
                    match self.prepare_write(&user, &item.user, &item.name, &data, item.options) {
                        Ok(write) => ready.push(Ready { index, write }),
                        Err(e) => results[index] = Some(Err(e)),
                    }
                }
                // One order for every batch (by row key), so two batches touching the same
                // credentials lock them in the same order.
                ready.sort_by(|a, b| {
                    (&a.write.item.user_hash, &a.write.item.name)
                        .cmp(&(&b.write.item.user_hash, &b.write.item.name))
                });
                let seals: Vec<_> = ready
                    .iter()
                    .map(|r| move |version: u64| r.write.seal(version))
                    .collect();
                let pointers: Vec<_> = ready
                    .iter()
                    .map(|r| move |version: u64| self.credential_pointer(&r.write.item, version))
                    .collect();
                let writes: Vec<BatchWrite<'_>> = ready
                    .iter()
                    .enumerate()
                    .map(|(i, r)| BatchWrite {
                        key: &r.write.item,
                        expected_current: r.write.cas,
                        new: &r.write.new,
                        seal: &seals[i],
                        pointer: &pointers[i],
                    })
                    .collect();
                let stored = self.storage().put_credential_versions(&writes)?;
                for (r, outcome) in ready.iter().zip(stored) {
                    results[r.index] = Some(self.finish_write(&r.write, outcome));
                }
                let results: Vec<BatchOutcome> = results
                    .into_iter()
                    .map(|r| {
                        r.unwrap_or_else(|| Err(CoreError::Internal("an item was lost".into())))
                    })
                    .collect();
                for ((item, outcome), hash) in items.iter().zip(&results).zip(&hashes) {
                    self.record_internal(
                        who,
                        Op::CredentialPutBatchItem,
                        At::name(ns, &item.name),
                        hash,
                        outcome,
                    );
                }
                self.audit_log().flush()?;
                Ok(BatchReport { results })
            },
        )
    }

    /// Checks one item's input and resolves its user; the user's keyed hash comes with a
    /// refusal (empty when the user id itself is invalid), for its audit entry.
    #[allow(
        clippy::result_large_err,
        reason = "built once per item, on the way to its own result"
    )]
    fn check_item(
        &self,
        ns: &str,
        item: &BatchItem,
    ) -> Result<(UserRef, CredentialData), (Vec<u8>, CoreError)> {
        let user = self
            .resolve_user(ns, &item.user)
            .map_err(|e| (Vec::new(), e))?;
        let fail = |e: CoreError| (user.hash.clone(), e);
        names::credential_name(&item.name).map_err(fail)?;
        // serde's messages quote the offending value: the rule names only the shape wanted.
        let data: CredentialData = serde_json::from_str(item.data.get()).map_err(|_| {
            fail(CoreError::Invalid {
                field: "data",
                rule: "must be a credential as a single write takes it: {\"type\": \"oauth2\", \"access_token\": …} or {\"type\": \"secret\", \"data\": {…}}".into(),
            })
        })?;
        super::check_write(&data, item.options).map_err(fail)?;
        Ok((user, data))
    }
}
