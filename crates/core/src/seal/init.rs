//! Initialising a brand-new store with its root key under the source the operator chooses
//! (`strongroom init`): a key the caller keeps (file or environment), a passphrase, AWS KMS, or
//! Shamir shares (returned to be shown once). The source's copy is stored before the first
//! open, so data never exists under a root key that nobody can rebuild.

use std::sync::Arc;

use strongroom_crypto::passphrase::KdfParams;
use strongroom_crypto::{shamir, Key, Root};
use strongroom_storage::Storage;
use zeroize::Zeroizing;

use super::kms::{Kms, KMS_META};
use super::{meta_present, Node, PASSPHRASE_META, SHAMIR_META};
use crate::clock::Clock;
use crate::{CoreError, CoreResult, Opened, VaultSettings};

/// Where a new store's root key goes.
pub enum InitWith<'a> {
    /// The caller keeps this key (a key file, the environment).
    Key(Key<Root>),
    Passphrase {
        passphrase: &'a [u8],
        params: KdfParams,
    },
    Kms(&'a Kms),
    Shares {
        threshold: u8,
        shares: u8,
    },
}

impl Node {
    /// Initialises a brand-new store; returns the shares (for [`InitWith::Shares`], to show
    /// once) and what the first open returns (the bootstrap operator token). A store that has
    /// a root key is refused.
    pub fn init(
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        settings: VaultSettings,
        with: InitWith<'_>,
    ) -> CoreResult<(Vec<Zeroizing<String>>, Opened)> {
        crate::blocking::check();
        if super::store_has_root_key(&*storage)?
            || meta_present(&*storage, SHAMIR_META)?
            || meta_present(&*storage, PASSPHRASE_META)?
            || meta_present(&*storage, KMS_META)?
        {
            return Err(CoreError::Conflict(
                "this store is already initialised: it has a root key".into(),
            ));
        }
        let generate = || Key::<Root>::generate().map_err(|e| CoreError::Internal(e.to_string()));
        let mut shown = Vec::new();
        let root = match with {
            InitWith::Key(key) => key,
            InitWith::Passphrase { passphrase, params } => {
                let root = generate()?;
                Node::seal_root_under_passphrase(&*storage, &root, passphrase, params)?;
                root
            }
            InitWith::Kms(kms) => {
                let root = generate()?;
                Node::wrap_root_under_kms(&*storage, &root, kms)?;
                root
            }
            InitWith::Shares { threshold, shares } => {
                let root = generate()?;
                let split = shamir::split_root(&root, threshold, shares).map_err(|_| {
                    CoreError::Invalid {
                        field: "shares",
                        rule: "need 2 ≤ threshold ≤ shares ≤ 16".into(),
                    }
                })?;
                storage.put_meta(SHAMIR_META, &split.blob)?;
                shown = split.shares;
                root
            }
        };
        let opened = crate::Vault::open(storage, root, clock, settings)?;
        Ok((shown, opened))
    }
}
