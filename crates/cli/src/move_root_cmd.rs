//! `strongroom keys move-root --to file|passphrase|kms|shamir`: moves a store's root key to
//! another source, working on the database directly (like `init`; running nodes need no
//! restart — they read the source at their next unseal). The current source is the store's
//! own: its shares (one per line on standard input), its passphrase, KMS, or the root key
//! (STRONGROOM_ROOT_KEY, --root-key-file, or DATA_DIR/root.key on SQLite).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use strongroom_core::seal::move_root::Destination;
use strongroom_core::seal::{KeySource, Node};
use strongroom_core::{CoreError, SystemClock};
use strongroom_crypto::passphrase::KdfParams;

use crate::current_root::CurrentRootArgs;
use crate::key_material::read_passphrase_file;
use crate::kms_flags::KmsArgs;
use crate::store_args::StoreArgs;

#[derive(Clone, Copy, ValueEnum)]
enum To {
    File,
    Passphrase,
    Kms,
    Shamir,
}

#[derive(Args)]
pub struct MoveRootArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Where the root key goes.
    #[arg(long, value_enum)]
    to: To,
    #[command(flatten)]
    current: CurrentRootArgs,
    /// --to file: write the root key to this new file (mode 0600; never replaces a file).
    #[arg(long)]
    new_root_key_file: Option<PathBuf>,
    /// --to passphrase: the new passphrase, from this file (owner-only, at least 12 characters).
    #[arg(long)]
    new_passphrase_file: Option<PathBuf>,
    /// --to shamir: how many shares to make (2–16).
    #[arg(long)]
    shares: Option<u8>,
    /// --to shamir: how many of them unseal (2 ≤ threshold ≤ shares).
    #[arg(long)]
    threshold: Option<u8>,
    /// Argon2id memory in MiB for the new passphrase (tests use less).
    #[arg(long, default_value_t = 128, hide = true)]
    passphrase_kdf_mib: u32,
    #[command(flatten)]
    kms: KmsArgs,
}

pub fn run(args: MoveRootArgs) -> Result<ExitCode> {
    let storage = args.store.open()?;
    let current = Node::stored_source(&*storage)?;
    let kms = args.kms.client(current == Some(KeySource::Kms))?;
    // What the move needs is read before anything is changed.
    let new_passphrase = match args.to {
        To::Passphrase => Some(read_passphrase_file(
            args.new_passphrase_file
                .as_deref()
                .context("--to passphrase needs --new-passphrase-file")?,
        )?),
        _ => None,
    };
    if matches!(args.to, To::Kms) && !args.kms.requested() {
        bail!("--to kms needs --kms-key-id (and the region and AWS credentials)");
    }
    if let (To::File, Some(path)) = (args.to, &args.new_root_key_file) {
        if path.exists() {
            bail!("{} exists; give a new path", path.display());
        }
    }
    let material = args.current.material(&args.store, current)?;
    let to = match args.to {
        To::File => {
            if args.new_root_key_file.is_none() {
                bail!("--to file needs --new-root-key-file");
            }
            Destination::File
        }
        To::Passphrase => Destination::Passphrase {
            passphrase: new_passphrase
                .as_ref()
                .map(|p| p.as_bytes())
                .unwrap_or_default(),
            params: KdfParams {
                m_cost: args.passphrase_kdf_mib.clamp(19, 4096) * 1024,
                ..KdfParams::DEFAULT
            },
        },
        To::Kms => Destination::Kms(kms.as_ref().context("no KMS is configured")?),
        To::Shamir => Destination::Shamir {
            shares: args.shares.context("--to shamir needs --shares")?,
            threshold: args.threshold.context("--to shamir needs --threshold")?,
        },
    };
    // `Destination::Kms` borrows the client; the reader gets its own for the current source.
    let reader_kms = args.kms.client(current == Some(KeySource::Kms))?;
    let moved = match Node::move_root(storage, Arc::new(SystemClock), material, reader_kms, to) {
        Ok(moved) => moved,
        Err(e @ (CoreError::WrongRootKey | CoreError::Invalid { .. })) => bail!("{e}"),
        Err(e @ CoreError::KeyService { .. }) => bail!("{e}"),
        Err(other) => return Err(other).context("moving the root key"),
    };
    if let (Some(root), Some(path)) = (&moved.root, &args.new_root_key_file) {
        strongroom_crypto::root_key::write_new_file(path, root)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    for (i, share) in moved.shares.iter().enumerate() {
        println!("Unseal share {}: {}", i + 1, share.as_str());
    }
    let default_key = args.store.data_dir.join("root.key");
    eprintln!("the root key is now kept {}", where_it_is(args.to));
    if !matches!(args.to, To::File) && args.store.is_sqlite()? && default_key.exists() {
        eprintln!(
            "{} still holds the root key: move it offline (nodes no longer need it)",
            default_key.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn where_it_is(to: To) -> &'static str {
    match to {
        To::File => "in the new key file: start nodes with --root-key-file",
        To::Passphrase => "under the new passphrase: start nodes with --passphrase-file",
        To::Kms => "wrapped by KMS: nodes unseal by asking KMS",
        To::Shamir => "under the printed shares (shown once): nodes start sealed until enough holders run `strongroom unseal --share-stdin`",
    }
}
