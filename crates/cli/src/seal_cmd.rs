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
use serde::Serialize;
use zeroize::Zeroizing;

use crate::client::{print, Client, Connection};
use crate::key_material::{prompt_passphrase, read_passphrase_file};

#[derive(Args)]
#[group(id = "material", required = true, multiple = true)]
pub struct UnsealArgs {
    /// The root key file (base64, owner-only).
    #[arg(long, conflicts_with_all = ["passphrase_file", "passphrase_prompt", "share_stdin", "reset"])]
    key_file: Option<PathBuf>,
    /// A file holding the passphrase the store's root key is sealed under (owner-only).
    #[arg(long, conflicts_with_all = ["share_stdin", "reset"])]
    passphrase_file: Option<PathBuf>,
    /// Read one unseal share from standard input (each holder submits their own; the node
    /// unseals when the threshold is met).
    #[arg(long)]
    share_stdin: bool,
    /// Type the passphrase at a prompt (no echo on a terminal; or one line from a pipe).
    #[arg(long, conflicts_with_all = ["passphrase_file", "share_stdin", "reset"])]
    passphrase_prompt: bool,
    /// Forget the shares submitted so far on this node (start the attempt over).
    #[arg(long)]
    reset: bool,
    /// Ask the node to unwrap the root key with its KMS (after an operator's seal, or when
    /// KMS was unreachable).
    #[arg(long, conflicts_with_all = ["key_file", "passphrase_file", "passphrase_prompt", "share_stdin", "reset"])]
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

/// The unseal request, borrowing the key material (so no copy outlives the zeroized body).
#[derive(Serialize, Default)]
struct UnsealRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    passphrase: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    share: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    reset: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    kms: bool,
}

/// `request` as JSON in a buffer that is zeroized when dropped (sized up front, so it never
/// reallocates and leaves a copy behind).
fn zeroized_json(request: &UnsealRequest<'_>) -> Result<Zeroizing<Vec<u8>>> {
    let mut body = Zeroizing::new(Vec::with_capacity(16 * 1024));
    serde_json::to_writer(&mut *body, request).context("encoding the unseal request")?;
    Ok(body)
}

pub fn unseal(conn: &Connection, args: UnsealArgs) -> Result<ExitCode> {
    let mut material = Zeroizing::new(String::new());
    let mut request = UnsealRequest {
        reset: args.reset,
        ..UnsealRequest::default()
    };
    if let Some(path) = &args.key_file {
        let key = strongroom_crypto::root_key::load_file(path)
            .with_context(|| format!("reading the root key file {}", path.display()))?;
        material = strongroom_crypto::root_key::encode(&key);
        request.key = Some(&material);
    } else if let Some(path) = &args.passphrase_file {
        material = read_passphrase_file(path)?;
        request.passphrase = Some(&material);
    } else if args.passphrase_prompt {
        material = prompt_passphrase("Passphrase")?;
        request.passphrase = Some(&material);
    } else if args.share_stdin {
        std::io::stdin()
            .read_line(&mut material)
            .context("reading a share from standard input")?;
        request.share = Some(material.trim());
    } else if args.kms {
        request.kms = true;
    } else if !args.reset {
        anyhow::bail!(
            "give --key-file, --passphrase-file, --passphrase-prompt, --share-stdin, --kms or --reset"
        );
    }
    let body = zeroized_json(&request)?;
    let status = Client::anonymous(conn)?.call_bytes("POST", "/v1/sys/unseal", &body)?;
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
