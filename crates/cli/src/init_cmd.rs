//! `strongroom init`: initialises a new store with its root key under the source chosen here —
//! a key file (the default), a passphrase, AWS KMS, or Shamir shares — prints the first
//! operator token (and the shares) once, and exits. `strongroom serve` then opens it with that
//! source: the key file, the passphrase, KMS at every start, or sealed until enough share
//! holders run `strongroom unseal --share-stdin`. The trade-offs are in ARCHITECTURE.md
//! ("Where the root key comes from").

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use strongroom_core::seal::{InitWith, Node};
use strongroom_core::{CoreError, SystemClock, VaultSettings};
use strongroom_crypto::passphrase::KdfParams;

use crate::key_material::{prompt_passphrase, read_passphrase_file};
use crate::kms_flags::KmsArgs;
use crate::store_args::StoreArgs;

#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Split the root key into this many unseal shares (2–16); each goes to a different person.
    #[arg(long, requires = "threshold", conflicts_with_all = ["passphrase_file", "passphrase_prompt", "root_key_file"])]
    shares: Option<u8>,
    /// Shares needed to unseal (2 ≤ threshold ≤ shares).
    #[arg(long, requires = "shares")]
    threshold: Option<u8>,
    /// Seal the root key under the passphrase in this file (owner-only, at least 12 characters).
    #[arg(long, conflicts_with_all = ["passphrase_prompt", "root_key_file"])]
    passphrase_file: Option<PathBuf>,
    /// Seal the root key under a passphrase typed at a prompt.
    #[arg(long, conflicts_with = "root_key_file")]
    passphrase_prompt: bool,
    /// Without another source: write the new root key to this file (default:
    /// DATA_DIR/root.key; never replaces a file).
    #[arg(long)]
    root_key_file: Option<PathBuf>,
    /// Argon2id memory in MiB for the passphrase (tests use less).
    #[arg(long, default_value_t = 128, hide = true)]
    passphrase_kdf_mib: u32,
    #[command(flatten)]
    kms: KmsArgs,
}

pub fn run(args: InitArgs) -> Result<ExitCode> {
    let passphrase = match &args.passphrase_file {
        Some(path) => Some(read_passphrase_file(path)?),
        None if args.passphrase_prompt => Some(prompt_passphrase("Passphrase for the root key")?),
        None => None,
    };
    if args.kms.requested() && (passphrase.is_some() || args.shares.is_some()) {
        bail!("choose one place for the root key: --kms-key-id, --passphrase-file or --shares");
    }
    let kms = args.kms.client(false)?;
    let store = args.store.open()?;
    if strongroom_core::seal::store_has_root_key(&*store)? {
        bail!("this store is already initialised: it has a root key");
    }
    let key_path = args
        .root_key_file
        .clone()
        .unwrap_or_else(|| args.store.data_dir.join("root.key"));
    let with = if let (Some(shares), Some(threshold)) = (args.shares, args.threshold) {
        InitWith::Shares { threshold, shares }
    } else if let Some(passphrase) = &passphrase {
        InitWith::Passphrase {
            passphrase: passphrase.as_bytes(),
            params: KdfParams {
                m_cost: args.passphrase_kdf_mib.clamp(19, 4096) * 1024,
                ..KdfParams::DEFAULT
            },
        }
    } else if let Some(kms) = &kms {
        InitWith::Kms(kms)
    } else {
        let key = strongroom_crypto::root_key::create_file(&key_path)
            .with_context(|| format!("creating the root key file {}", key_path.display()))?;
        InitWith::Key(key)
    };
    let source = match &with {
        InitWith::Key(_) => format!("in the key file {}", key_path.display()),
        InitWith::Passphrase { .. } => "under the passphrase (in the database)".into(),
        InitWith::Kms(_) => "wrapped by AWS KMS (in the database)".into(),
        InitWith::Shares { threshold, shares } => format!(
            "under {shares} unseal shares, printed once: give each to a different person; the \
             server starts sealed and any {threshold} of them unseal it \
             (`strongroom unseal --share-stdin`). Nobody holds the root key"
        ),
    };
    let (shares, opened) = match Node::init(
        store,
        Arc::new(SystemClock),
        VaultSettings {
            files: None,
            ..VaultSettings::default()
        },
        with,
    ) {
        Ok(done) => done,
        Err(
            e @ (CoreError::Conflict(_) | CoreError::Invalid { .. } | CoreError::KeyService { .. }),
        ) => {
            bail!("{e}")
        }
        Err(other) => return Err(other).context("initialising the store"),
    };
    println!(
        "Initialised a new Strongroom in {}",
        args.store.data_dir.display()
    );
    for (i, share) in shares.iter().enumerate() {
        println!("Unseal share {}: {}", i + 1, share.as_str());
    }
    if let Some(token) = &opened.bootstrap_token {
        println!(
            "Admin token (shown once; store it safely): {}",
            token.expose_text()
        );
    }
    opened
        .vault
        .flush_audit()
        .context("flushing the audit log")?;
    eprintln!("the root key is kept {source}");
    Ok(ExitCode::SUCCESS)
}
