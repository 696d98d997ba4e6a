//! `strongroom seal`, `unseal` and `seal-status`: the incident switch and its undo.
//!
//! `seal` (an operator token) drops every key on every node of the cluster; `unseal` brings
//! the key material back to one node — the root key file, or the passphrase file the store's
//! root key is sealed under, one Shamir share per holder, or a request to ask KMS — and needs no token, since a
//! sealed node can check none.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use crate::client::{print, Client, Connection};
use crate::key_material::read_passphrase_file;

#[derive(Args)]
#[group(id = "material", required = true, multiple = true)]
pub struct UnsealArgs {
    /// The root key file (base64, owner-only).
    #[arg(long, conflicts_with_all = ["passphrase_file", "share_stdin", "reset"])]
    key_file: Option<PathBuf>,
    /// A file holding the passphrase the store's root key is sealed under (owner-only).
    #[arg(long, conflicts_with_all = ["share_stdin", "reset"])]
    passphrase_file: Option<PathBuf>,
    /// Read one unseal share from standard input (each holder submits their own; the node
    /// unseals when the threshold is met).
    #[arg(long)]
    share_stdin: bool,
    /// Forget the shares submitted so far on this node (start the attempt over).
    #[arg(long)]
    reset: bool,
    /// Ask the node to unwrap the root key with its KMS (after an operator's seal, or when
    /// KMS was unreachable).
    #[arg(long, conflicts_with_all = ["key_file", "passphrase_file", "share_stdin", "reset"])]
    kms: bool,
}

pub fn seal(conn: &Connection) -> Result<ExitCode> {
    let status = Client::new(conn)?.call("POST", "/v1/sys/seal", None)?;
    print(&status)?;
    eprintln!(
        "sealed: every node drops its keys within a second; unseal each with `strongroom unseal`"
    );
    Ok(ExitCode::SUCCESS)
}

pub fn unseal(conn: &Connection, args: UnsealArgs) -> Result<ExitCode> {
    let body = if let Some(path) = &args.key_file {
        let key = strongroom_crypto::root_key::load_file(path)
            .with_context(|| format!("reading the root key file {}", path.display()))?;
        json!({ "key": strongroom_crypto::root_key::encode(&key).as_str() })
    } else if let Some(path) = &args.passphrase_file {
        json!({ "passphrase": read_passphrase_file(path)?.as_str() })
    } else if args.share_stdin {
        let mut line = zeroize::Zeroizing::new(String::new());
        std::io::stdin()
            .read_line(&mut line)
            .context("reading a share from standard input")?;
        json!({ "share": line.trim(), "reset": args.reset })
    } else if args.kms {
        json!({ "kms": true })
    } else if args.reset {
        json!({ "reset": true })
    } else {
        anyhow::bail!("give --key-file, --passphrase-file, --share-stdin, --kms or --reset");
    };
    let status = Client::anonymous(conn)?.call("POST", "/v1/sys/unseal", Some(&body))?;
    if let Some(token) = status["bootstrap_token"].as_str() {
        println!("Admin token (shown once; store it safely): {token}");
    }
    print(&status)?;
    Ok(ExitCode::SUCCESS)
}

pub fn seal_status(conn: &Connection) -> Result<ExitCode> {
    let status = Client::anonymous(conn)?.call("GET", "/v1/sys/seal-status", None)?;
    print(&status)?;
    Ok(ExitCode::SUCCESS)
}
