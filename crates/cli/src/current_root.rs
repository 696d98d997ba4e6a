//! The current root key material, for the commands that work on the database directly
//! (`keys move-root`, `keys rotate-root`): whatever opens the store's root key where it is
//! now — its shares (one per line on standard input), its passphrase, KMS, or the root key
//! itself (STRONGROOM_ROOT_KEY, --root-key-file, or DATA_DIR/root.key on SQLite).

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use strongroom_core::seal::{KeySource, UnsealMaterial};
use zeroize::Zeroizing;

use crate::key_material::{prompt_passphrase, read_passphrase_file};
use crate::store_args::StoreArgs;

#[derive(Args)]
pub struct CurrentRootArgs {
    /// The current root key file (when the store's key is not under a passphrase, KMS or
    /// shares; default: STRONGROOM_ROOT_KEY, then DATA_DIR/root.key on SQLite).
    #[arg(long, env = "STRONGROOM_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
    /// The current passphrase, from this file (owner-only).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// The current passphrase, typed at a prompt.
    #[arg(long, conflicts_with = "passphrase_file")]
    pub passphrase_prompt: bool,
}

impl CurrentRootArgs {
    /// What opens the root key where it is now.
    pub fn material(
        &self,
        store: &StoreArgs,
        current: Option<KeySource>,
    ) -> Result<UnsealMaterial> {
        Ok(match current {
            Some(KeySource::Shamir) => {
                eprintln!("reading the current unseal shares from standard input, one per line");
                let mut shares = Vec::new();
                for line in std::io::stdin().lock().lines() {
                    let line = Zeroizing::new(line.context("reading shares")?);
                    if !line.trim().is_empty() {
                        shares.push(Zeroizing::new(line.trim().to_string()));
                    }
                }
                if shares.is_empty() {
                    bail!("this store's root key is under shares: give enough of them on standard input");
                }
                UnsealMaterial::Shares(shares)
            }
            Some(KeySource::Passphrase) => UnsealMaterial::Passphrase(match &self.passphrase_file {
                Some(path) => read_passphrase_file(path)?,
                None if self.passphrase_prompt => prompt_passphrase("Current passphrase")?,
                None => bail!(
                    "this store's root key is under a passphrase: give --passphrase-file or --passphrase-prompt"
                ),
            }),
            Some(KeySource::Kms) => UnsealMaterial::Kms,
            _ => {
                let key = if let Ok(text) = std::env::var("STRONGROOM_ROOT_KEY") {
                    strongroom_crypto::root_key::decode(text.trim())
                        .context("STRONGROOM_ROOT_KEY is not a root key (32 bytes, base64)")?
                } else {
                    let path = match &self.root_key_file {
                        Some(path) => path.clone(),
                        None if store.is_sqlite()? => store.data_dir.join("root.key"),
                        None => bail!(
                            "give the current root key (STRONGROOM_ROOT_KEY or --root-key-file)"
                        ),
                    };
                    strongroom_crypto::root_key::load_file(&path)
                        .with_context(|| format!("reading the root key file {}", path.display()))?
                };
                UnsealMaterial::RootKey(key)
            }
        })
    }
}
