//! `strongroom seal`, `unseal` and `seal-status`: the incident switch and its undo.
//!
//! `seal` (an operator token) drops every key on every node of the cluster; `unseal` brings
//! the key material back to one node — the root key file, or the passphrase file the store's
//! root key is sealed under — and needs no token, since a sealed node can check none.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use crate::client::{print, Client, Connection};
use crate::key_material::read_passphrase_file;

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct UnsealArgs {
    /// The root key file (base64, owner-only).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// A file holding the passphrase the store's root key is sealed under (owner-only).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
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
    let body = match (&args.key_file, &args.passphrase_file) {
        (Some(path), _) => {
            let key = strongroom_crypto::root_key::load_file(path)
                .with_context(|| format!("reading the root key file {}", path.display()))?;
            json!({ "key": strongroom_crypto::root_key::encode(&key).as_str() })
        }
        (None, Some(path)) => json!({ "passphrase": read_passphrase_file(path)?.as_str() }),
        (None, None) => anyhow::bail!("give --key-file or --passphrase-file"),
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
