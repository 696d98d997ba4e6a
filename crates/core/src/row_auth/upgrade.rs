//! The one-time upgrade of a store whose rows predate row authentication.
//!
//! Runs in [`Vault::open`](crate::Vault::open) before anything is served, on every node that
//! opens a store without the `rows_authenticated` mark: each token, provider, collection, file
//! policy and suspension policy row still in the legacy (plain JSON) form is authenticated as
//! it stands, then the mark is set. It is idempotent and resumable — rows already authenticated
//! are left alone, so a crash half-way or two nodes upgrading at once only repeat work — and a
//! row that is neither legacy nor authentic is left as it is (it stays refused, and is
//! counted in the log line). This is "trust on first upgrade": a row forged before the upgrade
//! is authenticated with the rest; the threat model says so.

use strongroom_storage::Storage;

use super::{open, seal, Opened, RowId, POINTERS_META, UPGRADED_META};
use crate::{CoreResult, Vault};

/// How many rows the upgrade authenticated, and how many it found neither legacy nor authentic.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Upgraded {
    pub authenticated: u64,
    pub refused: u64,
}

impl Upgraded {
    /// `Some(sealed)` if `stored` is a legacy row to rewrite as `id`.
    fn consider(
        &mut self,
        key: &strongroom_crypto::Key<strongroom_crypto::Index>,
        id: &RowId<'_>,
        stored: &[u8],
    ) -> Option<Vec<u8>> {
        match open(key, id, stored) {
            Ok(Opened::Legacy(body)) => {
                self.authenticated += 1;
                Some(seal(key, id, body))
            }
            Ok(Opened::Authentic(_)) => None,
            Err(_) => {
                self.refused += 1;
                None
            }
        }
    }
}

impl Vault {
    /// Authenticates the rows written before row authentication, once per store.
    pub(crate) fn authenticate_legacy_rows(&self) -> CoreResult<()> {
        let storage = self.storage().clone();
        if storage.get_meta(UPGRADED_META)?.is_none() {
            let done = self.upgrade_rows(storage.as_ref())?;
            storage.put_meta(UPGRADED_META, b"1")?;
            tracing::info!(
                authenticated = done.authenticated,
                refused = done.refused,
                "authenticated the rows that decide access (one-time upgrade)"
            );
        }
        if storage.get_meta(POINTERS_META)?.is_none() {
            let done = self.upgrade_pointers(storage.as_ref())?;
            storage.put_meta(POINTERS_META, b"1")?;
            tracing::info!(
                authenticated = done,
                "authenticated the credentials' current-version pointers (one-time upgrade)"
            );
        }
        Ok(())
    }

    /// Marks a brand-new store as holding only authenticated rows.
    pub(crate) fn mark_rows_authenticated(&self) -> CoreResult<()> {
        self.storage().put_meta(UPGRADED_META, b"1")?;
        self.storage().put_meta(POINTERS_META, b"1")?;
        Ok(())
    }

    /// Authenticates the pointer of every credential written before pointers were; a pointer
    /// that moved meanwhile (another node wrote a version) already has one.
    fn upgrade_pointers(&self, storage: &dyn Storage) -> CoreResult<u64> {
        let mut done = 0;
        let mut after = None;
        loop {
            let page = storage.credentials_without_pointer(after.as_ref(), 1000)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (item, version) in &page {
                let pointer = self.credential_pointer(item, *version);
                done += u64::from(storage.set_credential_pointer(item, *version, &pointer)?);
            }
        }
        Ok(done)
    }

    fn upgrade_rows(&self, storage: &dyn Storage) -> CoreResult<Upgraded> {
        let key = self.row_key();
        let mut done = Upgraded::default();
        let now = self.now_ms();
        visit_rows(storage, now, |id, stored| done.consider(key, id, stored))?;
        Ok(done)
    }
}

/// Calls `rewrite` with every authenticated row of the kinds above (tokens, providers,
/// collections, file policies, suspension policies) and stores what it returns in place of
/// the row. Credential pointers are visited separately (they are one per credential).
pub(crate) fn visit_rows(
    storage: &dyn Storage,
    now: i64,
    mut rewrite: impl FnMut(&RowId<'_>, &[u8]) -> Option<Vec<u8>>,
) -> CoreResult<()> {
    let mut after: Option<String> = None;
    loop {
        let page = storage.list_tokens(after.as_deref(), 500)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for row in &page {
            if let Some(sealed) = rewrite(&RowId::token(row), &row.policy) {
                storage.set_token_policy(&row.id, &sealed)?;
            }
        }
    }
    for namespace in storage.list_namespaces()? {
        let ns = namespace.name.as_str();
        for (name, config) in storage.list_providers(ns)? {
            if let Some(sealed) = rewrite(&RowId::provider(ns, &name), &config) {
                if let Some((_, secret)) = storage.get_provider(ns, &name)? {
                    storage.put_provider(ns, &name, &sealed, &secret)?;
                }
            }
        }
        for (name, settings) in storage.list_collections(ns)? {
            if let Some(sealed) = rewrite(&RowId::collection(ns, &name), &settings) {
                storage.put_collection(ns, &name, &sealed, now)?;
            }
        }
        if let Some(policy) = storage.get_file_policy(ns)? {
            if let Some(sealed) = rewrite(&RowId::file_policy(ns), &policy) {
                storage.set_file_policy(ns, Some(&sealed))?;
            }
        }
        let meta = crate::guard::suspension_meta_key(ns);
        if let Some(policy) = storage.get_meta(&meta)? {
            if let Some(sealed) = rewrite(&RowId::suspension_policy(ns), &policy) {
                storage.put_meta(&meta, &sealed)?;
            }
        }
    }
    Ok(())
}
