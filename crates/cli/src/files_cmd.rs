//! `strongroom files …`: upload, download (whole or a range), list, show, delete, make
//! download links, and read or set a namespace's file policy. Transfers stream: neither side
//! holds a whole file in memory.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{json, Map, Value};

use crate::client::{page_path, print, save_to, segment, Client, Connection};

#[derive(Subcommand)]
pub enum FilesCommand {
    /// Upload a file (encrypted at rest; prints its id and SHA-256).
    Upload {
        namespace: String,
        user: String,
        /// The local file to upload.
        path: PathBuf,
        /// Name to store (default: the local file's name).
        #[arg(long)]
        name: Option<String>,
        /// Content type to store.
        #[arg(long, default_value = "application/octet-stream")]
        content_type: String,
    },
    /// Download a file (or a byte range of it) to a local path, or to standard output with `-`.
    Download {
        namespace: String,
        user: String,
        file: String,
        /// Where to write: a path, or `-` for standard output.
        #[arg(long, short)]
        output: PathBuf,
        /// One byte range: FIRST-LAST, FIRST- or -COUNT.
        #[arg(long)]
        range: Option<String>,
    },
    /// List a user's files.
    List {
        namespace: String,
        user: String,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show a file's metadata.
    Info {
        namespace: String,
        user: String,
        file: String,
    },
    /// Delete a file (its download links stop working at once).
    Delete {
        namespace: String,
        user: String,
        file: String,
    },
    /// Create a signed download link that needs no API token.
    Link {
        namespace: String,
        user: String,
        file: String,
        /// Seconds until it expires (1 to 604800).
        #[arg(long, default_value_t = 900)]
        expires_in_secs: u64,
        /// Make the link work for one download only.
        #[arg(long)]
        one_time: bool,
    },
    /// Show a namespace's file policy and usage.
    Policy { namespace: String },
    /// Set a namespace's file policy (operator); unset limits are unlimited.
    SetPolicy {
        namespace: String,
        #[arg(long)]
        max_file_size: Option<u64>,
        #[arg(long)]
        user_max_bytes: Option<u64>,
        #[arg(long)]
        user_max_files: Option<u64>,
        #[arg(long)]
        namespace_max_bytes: Option<u64>,
        #[arg(long)]
        namespace_max_files: Option<u64>,
        /// Allowed content types (`image/png`, `image/*`); repeat or separate with commas.
        #[arg(long, value_delimiter = ',')]
        allow_type: Vec<String>,
    },
}

fn file_path(ns: &str, user: &str, file: &str) -> String {
    format!(
        "/v1/ns/{}/users/{}/files/{}",
        segment(ns),
        segment(user),
        segment(file)
    )
}

pub fn files(conn: &Connection, cmd: FilesCommand) -> Result<ExitCode> {
    let c = Client::new(conn)?;
    let answer = match cmd {
        FilesCommand::Upload {
            namespace,
            user,
            path,
            name,
            content_type,
        } => {
            let name = match name {
                Some(n) => n,
                None => path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_string)
                    .context("the path has no usable file name; pass --name")?,
            };
            let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            let len = file.metadata()?.len();
            let url = format!(
                "/v1/ns/{}/users/{}/files?name={}",
                segment(&namespace),
                segment(&user),
                segment(&name)
            );
            c.send_stream(
                "POST",
                &url,
                &content_type,
                len,
                BufReader::with_capacity(256 * 1024, file),
            )?
        }
        FilesCommand::Download {
            namespace,
            user,
            file,
            output,
            range,
        } => {
            let path = format!("{}/content", file_path(&namespace, &user, &file));
            let response = c.get_stream(&path, range.as_deref())?;
            let written = if output.as_os_str() == "-" {
                std::io::copy(&mut response.into_reader(), &mut std::io::stdout().lock())?
            } else {
                save_to(response, &output, "download")?
            };
            eprintln!("{written} bytes");
            Value::Null
        }
        FilesCommand::List {
            namespace,
            user,
            cursor,
            limit,
        } => {
            let path = page_path(
                &format!(
                    "/v1/ns/{}/users/{}/files",
                    segment(&namespace),
                    segment(&user)
                ),
                limit,
                cursor.as_deref(),
            );
            c.call("GET", &path, None)?
        }
        FilesCommand::Info {
            namespace,
            user,
            file,
        } => c.call("GET", &file_path(&namespace, &user, &file), None)?,
        FilesCommand::Delete {
            namespace,
            user,
            file,
        } => {
            c.call("DELETE", &file_path(&namespace, &user, &file), None)?;
            eprintln!("deleted {file}");
            Value::Null
        }
        FilesCommand::Link {
            namespace,
            user,
            file,
            expires_in_secs,
            one_time,
        } => c.call(
            "POST",
            &format!("{}/links", file_path(&namespace, &user, &file)),
            Some(&json!({"expires_in_secs": expires_in_secs, "one_time": one_time})),
        )?,
        FilesCommand::Policy { namespace } => c.call(
            "GET",
            &format!("/v1/ns/{}/file-policy", segment(&namespace)),
            None,
        )?,
        FilesCommand::SetPolicy {
            namespace,
            max_file_size,
            user_max_bytes,
            user_max_files,
            namespace_max_bytes,
            namespace_max_files,
            allow_type,
        } => {
            let mut policy = Map::new();
            for (key, value) in [
                ("max_file_size", max_file_size),
                ("user_max_bytes", user_max_bytes),
                ("user_max_files", user_max_files),
                ("namespace_max_bytes", namespace_max_bytes),
                ("namespace_max_files", namespace_max_files),
            ] {
                if let Some(v) = value {
                    policy.insert(key.into(), json!(v));
                }
            }
            if !allow_type.is_empty() {
                policy.insert("allowed_content_types".into(), json!(allow_type));
            }
            c.call(
                "PUT",
                &format!("/v1/ns/{}/file-policy", segment(&namespace)),
                Some(&Value::Object(policy)),
            )?
        }
    };
    print(&answer)?;
    Ok(ExitCode::SUCCESS)
}
