//! Unsealing with Shamir shares: the root key is sealed under an unseal key split into shares
//! at initialisation ([`Node::init`], the shares shown once); a sealed node collects
//! submitted shares in memory — with a nonce naming the attempt, and a reset — until the
//! threshold is met, then opens the root key and unseals. Shares are never stored.

use serde::Serialize;
use strongroom_crypto::shamir;
use strongroom_storage::Storage;
use zeroize::Zeroizing;

use super::{KeySource, Node, UnsealMaterial};
use crate::{CoreError, CoreResult, Opened};

/// Where the split root key is kept (in the shared database, for every node).
pub const SHAMIR_META: &str = "root_key_shamir";

/// One unseal attempt in progress.
pub(super) struct Progress {
    nonce: String,
    shares: Vec<Zeroizing<Vec<u8>>>,
}

/// The share scheme and this node's progress (what `seal-status` shows).
#[derive(Debug, Clone, Serialize)]
pub struct ShamirStatus {
    pub threshold: u8,
    pub shares: u8,
    /// Distinct shares submitted so far in this attempt.
    pub progress: u8,
    /// Names the attempt in progress (a reset or an unseal ends it).
    pub nonce: Option<String>,
}

fn not_a_share() -> CoreError {
    CoreError::Invalid {
        field: "share",
        rule: "must be one of this store's unseal shares: 33 bytes in standard base64".into(),
    }
}

impl Node {
    pub(super) fn shamir_status(&self) -> CoreResult<Option<ShamirStatus>> {
        let Some(blob) = super::stored_meta(&**self.store(), SHAMIR_META)? else {
            return Ok(None);
        };
        let (threshold, shares) = shamir::params_of(&blob)
            .map_err(|_| CoreError::Integrity("unseal-share parameters"))?;
        let progress = self.progress.lock();
        Ok(Some(ShamirStatus {
            threshold,
            shares,
            progress: progress.as_ref().map_or(0, |p| p.shares.len() as u8),
            nonce: progress.as_ref().map(|p| p.nonce.clone()),
        }))
    }

    /// Adds one share to this node's unseal attempt; at the threshold the shares are combined
    /// and the node unseals (`Some`, with what opening returned). Wrong shares end the attempt
    /// with [`CoreError::WrongRootKey`]; a share given twice is refused.
    pub fn submit_share(&self, text: &str) -> CoreResult<Option<Opened>> {
        if !self.is_sealed() {
            return Err(CoreError::NotSealed);
        }
        let share = shamir::parse_share(text).ok_or_else(not_a_share)?;
        let blob = super::stored_meta(&**self.store(), SHAMIR_META)?
            .ok_or_else(|| CoreError::Invalid {
                field: "share",
                rule: "this store's root key is not split into shares; unseal with its key or passphrase".into(),
            })?;
        let (threshold, _) = shamir::params_of(&blob)
            .map_err(|_| CoreError::Integrity("unseal-share parameters"))?;
        let ready = {
            let mut progress = self.progress.lock();
            let attempt = match progress.as_mut() {
                Some(p) => p,
                None => progress.insert(Progress {
                    nonce: new_nonce()?,
                    shares: Vec::new(),
                }),
            };
            let id = shamir::share_id(&share);
            if attempt.shares.iter().any(|s| shamir::share_id(s) == id) {
                return Err(CoreError::Invalid {
                    field: "share",
                    rule: "this share was already submitted in this unseal attempt".into(),
                });
            }
            attempt.shares.push(share);
            if attempt.shares.len() < usize::from(threshold) {
                return Ok(None);
            }
            progress.take().map(|p| p.shares).unwrap_or_default()
        };
        let root = shamir::open_root(&blob, &ready).map_err(|_| CoreError::WrongRootKey)?;
        self.unseal_with(UnsealMaterial::RootKey(root), KeySource::Shamir)
            .map(Some)
    }

    /// Forgets the shares submitted so far.
    pub fn reset_shares(&self) {
        self.progress.lock().take();
    }

    /// Where a store's root key is kept when no key is given: under shares, a passphrase, or
    /// neither.
    pub fn stored_source(storage: &dyn Storage) -> CoreResult<Option<KeySource>> {
        super::source_from(&|key| super::stored_meta(storage, key))
    }
}

fn new_nonce() -> CoreResult<String> {
    let bytes =
        strongroom_crypto::random::bytes::<16>().map_err(|e| CoreError::Internal(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
