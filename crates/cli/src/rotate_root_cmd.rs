//! `strongroom keys rotate-root`: replaces the root key (see `strongroom_core::seal::rotate_root`).
//! Works on the database directly, like `keys move-root`: it seals the cluster first (every
//! node drops its keys within a second), and nodes are unsealed with the new material after.
//! The store keeps the new key where it kept the old: a key file or the environment (the new
//! key is written to `--new-root-key-file` before anything changes), the same passphrase, the
//! same KMS key, or the same Shamir shares. Interrupted, it is run again with the old key or
//! the new one to finish.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use strongroom_core::seal::rotate_root::Keep;
use strongroom_core::seal::{KeySource, Node, UnsealMaterial};
use strongroom_core::{CoreError, SystemClock};
use strongroom_crypto::passphrase::KdfParams;
use strongroom_crypto::{root_key, Key, Root};

use crate::current_root::CurrentRootArgs;
use crate::kms_flags::KmsArgs;
use crate::store_args::StoreArgs;

#[derive(Args)]
pub struct RotateRootArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    current: CurrentRootArgs,
    /// For a store whose root key is a file or STRONGROOM_ROOT_KEY: where the new root key is
    /// written (mode 0600) before the rotation starts. An existing file is used as it is
    /// (to finish an interrupted rotation, give the same path).
    #[arg(long)]
    new_root_key_file: Option<PathBuf>,
    /// Argon2id memory in MiB when resealing under the passphrase (tests use less).
    #[arg(long, default_value_t = 128, hide = true)]
    passphrase_kdf_mib: u32,
    #[command(flatten)]
    kms: KmsArgs,
}

pub fn run(args: RotateRootArgs) -> Result<ExitCode> {
    let storage = args.store.open()?;
    let source = Node::stored_source(&*storage)?;
    let kms = args.kms.client(source == Some(KeySource::Kms))?;
    let reader_kms = args.kms.client(source == Some(KeySource::Kms))?;
    let material = args.current.material(&args.store, source)?;
    let passphrase = match &material {
        UnsealMaterial::Passphrase(p) => Some(p.clone()),
        _ => None,
    };
    let new_root = match source {
        None => {
            let path = args.new_root_key_file.as_deref().context(
                "give --new-root-key-file: the new root key is written there before the rotation starts",
            )?;
            if path.exists() {
                root_key::load_file(path)
                    .with_context(|| format!("reading the new root key file {}", path.display()))?
            } else {
                let key = Key::<Root>::generate()?;
                root_key::write_new_file(path, &key)
                    .with_context(|| format!("writing {}", path.display()))?;
                key
            }
        }
        Some(_) => Key::<Root>::generate()?,
    };
    let keep = match source {
        None => Keep::File,
        Some(KeySource::Passphrase) => Keep::Passphrase {
            passphrase: passphrase
                .as_deref()
                .map(String::as_bytes)
                .unwrap_or_default(),
            params: KdfParams {
                m_cost: args.passphrase_kdf_mib.clamp(19, 4096) * 1024,
                ..KdfParams::DEFAULT
            },
        },
        Some(KeySource::Kms) => Keep::Kms(kms.as_ref().context("no KMS is configured")?),
        Some(KeySource::Shamir) => Keep::Shamir,
        Some(KeySource::File | KeySource::Env) => Keep::File,
    };
    eprintln!("sealing the cluster and rotating the root key…");
    let (_, report) = match Node::rotate_root(
        storage,
        Arc::new(SystemClock),
        material,
        reader_kms,
        keep,
        new_root,
    ) {
        Ok(done) => done,
        Err(e @ (CoreError::WrongRootKey | CoreError::Invalid { .. } | CoreError::Conflict(_))) => {
            bail!("{e}")
        }
        Err(e @ CoreError::KeyService { .. }) => bail!("{e}"),
        Err(other) => return Err(other).context("rotating the root key"),
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    let unseal = match source {
        None => format!(
            "start or unseal every node with the new key ({}); the old key opens nothing now",
            args.new_root_key_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        Some(KeySource::Passphrase) => "unseal every node with the same passphrase".into(),
        Some(KeySource::Kms) => {
            "unseal every node with `strongroom unseal --kms` (or restart it)".into()
        }
        Some(_) => "unseal every node with the same shares".into(),
    };
    eprintln!("the root key was rotated; {unseal}");
    Ok(ExitCode::SUCCESS)
}
