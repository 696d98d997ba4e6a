//! `strongroom init --shares N --threshold T`: initialises a new store with its root key
//! split into Shamir shares, prints the shares and the first operator token once, and exits.
//! `strongroom serve` on such a store starts sealed until `threshold` share holders each run
//! `strongroom unseal --share-stdin`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use strongroom_core::seal::Node;
use strongroom_core::{CoreError, SystemClock, VaultSettings};

use crate::store_args::StoreArgs;

#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Unseal shares to make (2–16); each goes to a different person.
    #[arg(long)]
    shares: u8,
    /// Shares needed to unseal (2 ≤ threshold ≤ shares).
    #[arg(long)]
    threshold: u8,
}

pub fn run(args: InitArgs) -> Result<ExitCode> {
    let store = args.store.open()?;
    let settings = VaultSettings {
        files: None,
        ..VaultSettings::default()
    };
    let (shares, opened) = match Node::init_with_shares(
        store,
        Arc::new(SystemClock),
        settings,
        args.threshold,
        args.shares,
    ) {
        Ok(done) => done,
        Err(e @ (CoreError::Conflict(_) | CoreError::Invalid { .. })) => anyhow::bail!("{e}"),
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
    eprintln!(
        "{} shares were printed once: give each to a different person. The server starts sealed; \
         any {} of them unseal it (`strongroom unseal --share-stdin`). Nobody holds the root key.",
        args.shares, args.threshold
    );
    Ok(ExitCode::SUCCESS)
}
