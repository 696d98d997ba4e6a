//! Moving a store's root key to another source — a key file, a passphrase, AWS KMS or Shamir
//! shares — without changing the key itself (so nothing is re-encrypted).
//!
//! The root key is opened from what the operator brings for the current source and checked
//! against the store's key check value; it is then put under the new source, which is read
//! back (a passphrase blob reopened, a KMS wrap unwrapped, shares recombined) before the other
//! sources' copies are cleared. Each step is one `meta` write, so a crash at any point leaves
//! a store that opens with the old material, the new, or both — never with neither — and
//! running the move again finishes it. Audited as `keys.move_root` (the target names the new
//! source).

use std::sync::Arc;

use strongroom_crypto::passphrase::KdfParams;
use strongroom_crypto::{shamir, Key, Root};
use strongroom_storage::Storage;
use zeroize::Zeroizing;

use super::kms::{Kms, KMS_META};
use super::{meta_present, KeySource, Node, UnsealMaterial, PASSPHRASE_META, SHAMIR_META};
use crate::clock::Clock;
use crate::operation::Op;
use crate::vault::At;
use crate::{CoreError, CoreResult, Principal, Vault, VaultSettings};

/// Where to move the root key.
pub enum Destination<'a> {
    /// Back to a key file (the caller writes the returned key).
    File,
    Passphrase {
        passphrase: &'a [u8],
        params: KdfParams,
    },
    Kms(&'a Kms),
    Shamir {
        threshold: u8,
        shares: u8,
    },
}

impl Destination<'_> {
    fn source(&self) -> KeySource {
        match self {
            Destination::File => KeySource::File,
            Destination::Passphrase { .. } => KeySource::Passphrase,
            Destination::Kms(_) => KeySource::Kms,
            Destination::Shamir { .. } => KeySource::Shamir,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Destination::File => "file",
            Destination::Passphrase { .. } => "passphrase",
            Destination::Kms(_) => "kms",
            Destination::Shamir { .. } => "shamir",
        }
    }
}

/// What a move hands back: the root key (for a key file) or the new shares (shown once).
pub struct Moved {
    pub root: Option<Key<Root>>,
    pub shares: Vec<Zeroizing<String>>,
}

/// Every stored copy of the root key, by the source it serves.
const STORED: [(KeySource, &str); 3] = [
    (KeySource::Passphrase, PASSPHRASE_META),
    (KeySource::Shamir, SHAMIR_META),
    (KeySource::Kms, KMS_META),
];

impl Node {
    /// Moves the root key of `storage` from where `material` opens it to `to`.
    pub fn move_root(
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        material: UnsealMaterial,
        kms: Option<Kms>,
        to: Destination<'_>,
    ) -> CoreResult<Moved> {
        crate::blocking::check();
        if !super::store_has_root_key(&*storage)? {
            return Err(CoreError::Invalid {
                field: "store",
                rule: "has no root key yet: start it once (or `strongroom init`) first".into(),
            });
        }
        let mut reader = Node::sealed(
            storage.clone(),
            clock.clone(),
            VaultSettings {
                files: None,
                ..VaultSettings::default()
            },
            None,
            KeySource::File,
        );
        if let Some(kms) = kms {
            reader = reader.with_kms(kms);
        }
        let root = reader.open_root(material)?;
        if let Some(check) = storage.get_meta(crate::vault::ROOT_CHECK_META)? {
            if !strongroom_crypto::root_key::verify_check(&root, &check) {
                return Err(CoreError::WrongRootKey);
            }
        }
        let mut moved = Moved {
            root: None,
            shares: Vec::new(),
        };
        match &to {
            Destination::File => {
                let copy = Key::<Root>::from_bytes(root.expose_bytes())
                    .map_err(|e| CoreError::Internal(e.to_string()))?;
                moved.root = Some(copy);
            }
            Destination::Passphrase { passphrase, params } => {
                Node::seal_root_under_passphrase(&*storage, &root, passphrase, *params)?;
                let blob = storage.get_meta(PASSPHRASE_META)?.unwrap_or_default();
                strongroom_crypto::passphrase::open_root(&blob, passphrase)
                    .map_err(|_| CoreError::Integrity("the passphrase-sealed root key"))?;
            }
            Destination::Kms(kms) => Node::wrap_root_under_kms(&*storage, &root, kms)?,
            Destination::Shamir { threshold, shares } => {
                let split = shamir::split_root(&root, *threshold, *shares).map_err(|_| {
                    CoreError::Invalid {
                        field: "shares",
                        rule: "need 2 ≤ threshold ≤ shares ≤ 16".into(),
                    }
                })?;
                let parsed: Vec<_> = split
                    .shares
                    .iter()
                    .take(usize::from(*threshold))
                    .filter_map(|s| shamir::parse_share(s))
                    .collect();
                let back = shamir::open_root(&split.blob, &parsed)
                    .map_err(|_| CoreError::Integrity("the split root key"))?;
                if back.expose_bytes() != root.expose_bytes() {
                    return Err(CoreError::Integrity("the split root key"));
                }
                storage.put_meta(SHAMIR_META, &split.blob)?;
                moved.shares = split.shares;
            }
        }
        let keep = to.source();
        for (source, meta) in STORED {
            if source != keep && meta_present(&*storage, meta)? {
                storage.put_meta(meta, b"")?;
            }
        }
        let opened = Vault::open(
            storage,
            root,
            clock,
            VaultSettings {
                files: None,
                ..VaultSettings::default()
            },
        )?;
        opened.vault.record_internal(
            &Principal::system("move-root"),
            Op::KeysMoveRoot,
            At::new("", to.name()),
            &[],
            &Ok::<(), CoreError>(()),
        );
        opened.vault.flush_audit()?;
        Ok(moved)
    }
}
