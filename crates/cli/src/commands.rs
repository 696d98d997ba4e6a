//! The client commands: each builds one API request and prints the JSON answer.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};

use crate::client::{page_path, print, save_to, segment, Client, Connection};

type Outcome = Result<ExitCode>;

fn done(value: Value) -> Outcome {
    print(&value)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum NamespaceCommand {
    /// Create a namespace.
    Create { name: String },
    /// List the namespaces this token may see.
    List,
}

pub fn namespace(conn: &Connection, cmd: NamespaceCommand) -> Outcome {
    let c = Client::new(conn)?;
    match cmd {
        NamespaceCommand::Create { name } => {
            done(c.call("POST", "/v1/sys/namespaces", Some(&json!({ "name": name })))?)
        }
        NamespaceCommand::List => done(c.call("GET", "/v1/sys/namespaces", None)?),
    }
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once.
    Create {
        /// A label for the token.
        #[arg(long)]
        name: String,
        /// Namespaces it may touch (repeat, or `*` for all).
        #[arg(long = "namespace", required = true)]
        namespaces: Vec<String>,
        /// Capabilities: read, write, delete, list, export, erase, admin (comma-separated).
        #[arg(long = "cap", value_delimiter = ',', required = true)]
        capabilities: Vec<String>,
        /// Lifetime in seconds.
        #[arg(long)]
        expires_in: Option<u64>,
        /// Requests per second allowed.
        #[arg(long)]
        rate_limit: Option<u32>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: String },
    /// Show the token in use.
    Whoami,
    /// List tokens suspended after repeated authorization denials (operators).
    Suspended,
    /// Lift a token's suspension (operators); it works again on every node within a second.
    Unsuspend { id: String },
    /// Show a namespace's suspension policy, or set it with all three options.
    SuspensionPolicy {
        namespace: String,
        /// Authorization denials within the window that suspend a token (1–10,000).
        #[arg(long, requires_all = ["window_secs", "suspend_secs"])]
        denials: Option<u32>,
        /// The window, in seconds (1–86,400).
        #[arg(long, requires_all = ["denials", "suspend_secs"])]
        window_secs: Option<u32>,
        /// How long a suspension lasts, in seconds (1–604,800).
        #[arg(long, requires_all = ["denials", "window_secs"])]
        suspend_secs: Option<u32>,
    },
}

pub fn token(conn: &Connection, cmd: TokenCommand) -> Outcome {
    let c = Client::new(conn)?;
    match cmd {
        TokenCommand::Create {
            name,
            namespaces,
            capabilities,
            expires_in,
            rate_limit,
        } => {
            let mut body =
                json!({ "name": name, "namespaces": namespaces, "capabilities": capabilities });
            if let Some(secs) = expires_in {
                body["expires_in_secs"] = json!(secs);
            }
            if let Some(rate) = rate_limit {
                body["rate_limit_per_sec"] = json!(rate);
            }
            done(c.call("POST", "/v1/sys/tokens", Some(&body))?)
        }
        TokenCommand::List => done(c.call("GET", "/v1/sys/tokens", None)?),
        TokenCommand::Revoke { id } => {
            c.call("DELETE", &format!("/v1/sys/tokens/{}", segment(&id)), None)?;
            eprintln!("revoked {id}");
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Whoami => done(c.call("GET", "/v1/sys/tokens/self", None)?),
        TokenCommand::Suspended => done(c.call("GET", "/v1/sys/tokens/suspended", None)?),
        TokenCommand::Unsuspend { id } => {
            let path = format!("/v1/sys/tokens/{}/unsuspend", segment(&id));
            c.call("POST", &path, None)?;
            eprintln!("lifted the suspension of {id}");
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::SuspensionPolicy {
            namespace,
            denials,
            window_secs,
            suspend_secs,
        } => {
            let path = format!("/v1/ns/{}/security-policy", segment(&namespace));
            match (denials, window_secs, suspend_secs) {
                (Some(d), Some(w), Some(s)) => {
                    let body = json!({"denials": d, "window_secs": w, "suspend_secs": s});
                    done(c.call("PUT", &path, Some(&body))?)
                }
                _ => done(c.call("GET", &path, None)?),
            }
        }
    }
}

#[derive(Subcommand)]
pub enum CredentialCommand {
    /// Write a new version. The data is JSON: `{"type":"oauth2","access_token":…}` or
    /// `{"type":"secret","data":{…}}`, given inline, as @FILE, or as - for standard input.
    Put {
        namespace: String,
        user: String,
        name: String,
        #[arg(long)]
        data: String,
        /// Check-and-set: only write if the current version is this (0 = must not exist).
        #[arg(long)]
        cas: Option<u64>,
        /// Versions to keep.
        #[arg(long)]
        max_versions: Option<u32>,
    },
    /// Read the current (or a given) version.
    Get {
        namespace: String,
        user: String,
        name: String,
        #[arg(long)]
        version: Option<u64>,
    },
    /// Exit 0 if the credential exists, 1 if not.
    Exists {
        namespace: String,
        user: String,
        name: String,
    },
    /// List a user's credentials.
    List {
        namespace: String,
        user: String,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show the version history.
    History {
        namespace: String,
        user: String,
        name: String,
    },
    /// Soft-delete versions (default: the current one).
    Delete {
        namespace: String,
        user: String,
        name: String,
        #[arg(long, value_delimiter = ',')]
        versions: Vec<u64>,
    },
    /// Restore soft-deleted versions.
    Undelete {
        namespace: String,
        user: String,
        name: String,
        #[arg(long, value_delimiter = ',', required = true)]
        versions: Vec<u64>,
    },
    /// Destroy versions for good.
    Destroy {
        namespace: String,
        user: String,
        name: String,
        #[arg(long, value_delimiter = ',', required = true)]
        versions: Vec<u64>,
    },
    /// Ask the provider's "who am I" URL whether the access token (or, for a secret, the
    /// field the provider names) is accepted.
    Verify {
        namespace: String,
        user: String,
        name: String,
        /// For a secret credential: the provider to verify it against (default: the
        /// secret's own `provider` field).
        #[arg(long)]
        provider: Option<String>,
    },
    /// Revoke an OAuth grant at its provider, then remove the credential.
    Revoke {
        namespace: String,
        user: String,
        name: String,
    },
    /// Print an access token valid for at least --min-valid seconds, refreshing it if needed.
    AccessToken {
        namespace: String,
        user: String,
        name: String,
        #[arg(long, default_value_t = 60)]
        min_valid: u64,
    },
    /// Remove the credential and its whole history.
    Purge {
        namespace: String,
        user: String,
        name: String,
    },
}

fn cred_path(ns: &str, user: &str, name: &str) -> String {
    format!(
        "/v1/ns/{}/users/{}/credentials/{}",
        segment(ns),
        segment(user),
        segment(name)
    )
}

fn read_data(arg: &str) -> Result<Value> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading standard input")?;
        s
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?
    } else {
        arg.to_string()
    };
    serde_json::from_str(&text).context("--data is not valid JSON")
}

pub fn credential(conn: &Connection, cmd: CredentialCommand) -> Outcome {
    let c = Client::new(conn)?;
    match cmd {
        CredentialCommand::Put {
            namespace,
            user,
            name,
            data,
            cas,
            max_versions,
        } => {
            let mut options = json!({});
            if let Some(cas) = cas {
                options["cas"] = json!(cas);
            }
            if let Some(m) = max_versions {
                options["max_versions"] = json!(m);
            }
            let body = json!({ "data": read_data(&data)?, "options": options });
            done(c.call("PUT", &cred_path(&namespace, &user, &name), Some(&body))?)
        }
        CredentialCommand::Get {
            namespace,
            user,
            name,
            version,
        } => {
            let query = version.map(|v| format!("?version={v}")).unwrap_or_default();
            done(c.call(
                "GET",
                &format!("{}{query}", cred_path(&namespace, &user, &name)),
                None,
            )?)
        }
        CredentialCommand::Exists {
            namespace,
            user,
            name,
        } => match c.call("HEAD", &cred_path(&namespace, &user, &name), None) {
            Ok(_) => Ok(ExitCode::SUCCESS),
            Err(e) if e.to_string().starts_with("http_error: HTTP 404") => Ok(ExitCode::from(1)),
            Err(e) => Err(e),
        },
        CredentialCommand::List {
            namespace,
            user,
            cursor,
            limit,
        } => {
            let path = page_path(
                &format!(
                    "/v1/ns/{}/users/{}/credentials",
                    segment(&namespace),
                    segment(&user)
                ),
                limit,
                cursor.as_deref(),
            );
            done(c.call("GET", &path, None)?)
        }
        CredentialCommand::History {
            namespace,
            user,
            name,
        } => done(c.call(
            "GET",
            &format!("{}/metadata", cred_path(&namespace, &user, &name)),
            None,
        )?),
        CredentialCommand::Delete {
            namespace,
            user,
            name,
            versions,
        } => {
            if versions.is_empty() {
                c.call("DELETE", &cred_path(&namespace, &user, &name), None)?;
                eprintln!("deleted the current version");
                Ok(ExitCode::SUCCESS)
            } else {
                done(c.call(
                    "POST",
                    &format!("{}/delete", cred_path(&namespace, &user, &name)),
                    Some(&json!({ "versions": versions })),
                )?)
            }
        }
        CredentialCommand::Undelete {
            namespace,
            user,
            name,
            versions,
        } => done(c.call(
            "POST",
            &format!("{}/undelete", cred_path(&namespace, &user, &name)),
            Some(&json!({ "versions": versions })),
        )?),
        CredentialCommand::Destroy {
            namespace,
            user,
            name,
            versions,
        } => done(c.call(
            "POST",
            &format!("{}/destroy", cred_path(&namespace, &user, &name)),
            Some(&json!({ "versions": versions })),
        )?),
        CredentialCommand::Verify {
            namespace,
            user,
            name,
            provider,
        } => done(c.call(
            "POST",
            &format!(
                "{}/verify?{}",
                cred_path(&namespace, &user, &name),
                query_string(&[("provider", provider)])
            ),
            None,
        )?),
        CredentialCommand::Revoke {
            namespace,
            user,
            name,
        } => done(c.call(
            "POST",
            &format!("{}/revoke", cred_path(&namespace, &user, &name)),
            None,
        )?),
        CredentialCommand::AccessToken {
            namespace,
            user,
            name,
            min_valid,
        } => {
            let path = format!("{}/access-token", cred_path(&namespace, &user, &name));
            done(c.call("POST", &path, Some(&json!({ "min_valid_secs": min_valid })))?)
        }
        CredentialCommand::Purge {
            namespace,
            user,
            name,
        } => {
            c.call(
                "DELETE",
                &format!("{}/metadata", cred_path(&namespace, &user, &name)),
                None,
            )?;
            eprintln!("purged {name}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Export everything held about a user as JSON (format strongroom-user-export/1), or with
    /// `--archive FILE` as a tar of that document and every file's contents.
    Export {
        namespace: String,
        user: String,
        /// Write a tar archive (export.json + files/<id>) to this path instead.
        #[arg(long)]
        archive: Option<std::path::PathBuf>,
    },
    /// Erase a user for good: the data key is destroyed at once, then the rows are purged.
    Erase {
        namespace: String,
        user: String,
        /// Repeat the user id to confirm (erasure cannot be undone).
        #[arg(long)]
        confirm: String,
    },
    /// Show whether an erased user's rows are still being purged.
    ErasureStatus { namespace: String, user: String },
    /// List a namespace's users (ids are decrypted for the caller).
    List {
        namespace: String,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

pub fn users(conn: &Connection, cmd: UsersCommand) -> Outcome {
    let c = Client::new(conn)?;
    match cmd {
        UsersCommand::List {
            namespace,
            cursor,
            limit,
        } => {
            let path = page_path(
                &format!("/v1/ns/{}/users", segment(&namespace)),
                limit,
                cursor.as_deref(),
            );
            done(c.call("GET", &path, None)?)
        }
        UsersCommand::Export {
            namespace,
            user,
            archive,
        } => {
            let path = format!(
                "/v1/ns/{}/users/{}/export",
                segment(&namespace),
                segment(&user)
            );
            let Some(archive) = archive else {
                return done(c.call("GET", &path, None)?);
            };
            let response = c.get_stream(&format!("{path}/archive"), None)?;
            let n = save_to(response, &archive, "archive download")?;
            eprintln!("{n} bytes written to {}", archive.display());
            Ok(ExitCode::SUCCESS)
        }
        UsersCommand::Erase {
            namespace,
            user,
            confirm,
        } => {
            let path = format!(
                "/v1/ns/{}/users/{}?confirm={}",
                segment(&namespace),
                segment(&user),
                segment(&confirm)
            );
            done(c.call("DELETE", &path, None)?)
        }
        UsersCommand::ErasureStatus { namespace, user } => {
            let path = format!(
                "/v1/ns/{}/users/{}/erasure",
                segment(&namespace),
                segment(&user)
            );
            done(c.call("GET", &path, None)?)
        }
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Show key versions and how many users still use old ones.
    Status { namespace: String },
    /// Make a new key version primary (no downtime; old versions keep decrypting).
    Rotate { namespace: String },
    /// Re-wrap every user data key under the primary version.
    Rewrap { namespace: String },
    /// Retire versions below VERSION: they will no longer decrypt.
    Retire {
        namespace: String,
        /// The new minimum decryption version.
        #[arg(long)]
        below: u32,
    },
    /// Show or set the scheduled rotation: rotate when the primary version is this old, then
    /// rewrap and retire the old versions once nothing uses them.
    RotationPolicy {
        namespace: String,
        /// Rotate every DURATION (seconds, or with a unit: 90d, 12h, 30m, 45s).
        #[arg(long, value_parser = parse_duration)]
        every: Option<u64>,
        /// Keep old versions decryptable (do not retire them after rewrapping).
        #[arg(long)]
        keep_old_versions: bool,
        /// Remove the schedule.
        #[arg(long, conflicts_with = "every")]
        off: bool,
    },
    /// Move the root key to another source (a key file, a passphrase, AWS KMS or Shamir
    /// shares) without changing it; works on the database directly, like `init`.
    MoveRoot(Box<crate::move_root_cmd::MoveRootArgs>),
    /// Replace the root key: every namespace key re-wrapped, every authenticated row
    /// re-authenticated, the audit chain continued under a new key. Seals the cluster first;
    /// works on the database directly; resumable.
    RotateRoot(Box<crate::rotate_root_cmd::RotateRootArgs>),
}

/// `90d`, `12h`, `30m`, `45s` or plain seconds.
fn parse_duration(text: &str) -> Result<u64, String> {
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| "a number of seconds, or with a unit: 90d, 12h, 30m, 45s".to_string())?;
    let unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err("units are d, h, m, s".into()),
    };
    n.checked_mul(unit).ok_or_else(|| "too long".to_string())
}

pub fn keys(conn: &Connection, cmd: KeysCommand) -> Outcome {
    // A client only for the calls that go to a server (`move-root` and `rotate-root` work on
    // the database).
    let client = || Client::new(conn);
    let base = |ns: &str| format!("/v1/ns/{}/keys", segment(ns));
    match cmd {
        KeysCommand::MoveRoot(args) => crate::move_root_cmd::run(*args),
        KeysCommand::RotateRoot(args) => crate::rotate_root_cmd::run(*args),
        KeysCommand::Status { namespace } => {
            done(client()?.call("GET", &base(&namespace), None)?)
        }
        KeysCommand::Rotate { namespace } => {
            done(client()?.call("POST", &format!("{}/rotate", base(&namespace)), None)?)
        }
        KeysCommand::Rewrap { namespace } => {
            done(client()?.call("POST", &format!("{}/rewrap", base(&namespace)), None)?)
        }
        KeysCommand::Retire { namespace, below } => done(client()?.call(
            "POST",
            &format!("{}/min-version", base(&namespace)),
            Some(&json!({ "version": below })),
        )?),
        KeysCommand::RotationPolicy {
            namespace,
            every,
            keep_old_versions,
            off,
        } => {
            let path = format!("{}/rotation-policy", base(&namespace));
            let c = client()?;
            match (every, off) {
                (_, true) => done(c.call("DELETE", &path, None)?),
                (Some(secs), false) => done(c.call(
                    "PUT",
                    &path,
                    Some(&json!({"rotate_every_secs": secs, "retire_old_versions": !keep_old_versions})),
                )?),
                (None, false) => done(c.call("GET", &path, None)?),
            }
        }
    }
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain; exits 1 if any entry was edited or removed.
    Verify,
    /// List entries, oldest first (or newest first with --newest).
    Query(Box<AuditQueryArgs>),
}

#[derive(clap::Args)]
pub struct AuditQueryArgs {
    /// RFC 3339 time, inclusive.
    #[arg(long)]
    since: Option<String>,
    #[arg(long)]
    until: Option<String>,
    #[arg(long)]
    token_id: Option<String>,
    #[arg(long)]
    action: Option<String>,
    /// Entries about this credential name or event type (the server hashes it: entries
    /// never hold names in the clear).
    #[arg(long)]
    name: Option<String>,
    /// Entries about this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Entries about this user id of --namespace (the server hashes it as entries hold it).
    #[arg(long, requires = "namespace")]
    user: Option<String>,
    /// ok, denied, not_found, conflict, invalid, integrity_error or error.
    #[arg(long)]
    outcome: Option<String>,
    /// Newest first (the next cursor pages back in time).
    #[arg(long)]
    newest: bool,
    #[arg(long)]
    cursor: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

pub fn audit(conn: &Connection, cmd: AuditCommand) -> Outcome {
    let c = Client::new(conn)?;
    match cmd {
        AuditCommand::Verify => {
            let report = c.call("POST", "/v1/sys/audit/verify", None)?;
            print(&report)?;
            if report["valid"] == json!(true) {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(1))
            }
        }
        AuditCommand::Query(args) => {
            let AuditQueryArgs {
                since,
                until,
                token_id,
                action,
                name,
                namespace,
                user,
                outcome,
                newest,
                cursor,
                limit,
            } = *args;
            let mut query = vec![format!("limit={limit}")];
            if newest {
                query.push("order=newest".into());
            }
            for (key, value) in [
                ("since", since),
                ("until", until),
                ("token_id", token_id),
                ("action", action),
                ("name", name),
                ("namespace", namespace),
                ("user", user),
                ("outcome", outcome),
                ("cursor", cursor),
            ] {
                if let Some(v) = value {
                    query.push(format!("{key}={}", segment(&v)));
                }
            }
            done(c.call("GET", &format!("/v1/sys/audit?{}", query.join("&")), None)?)
        }
    }
}

pub fn keygen() -> Outcome {
    let key = strongroom_crypto::Key::<strongroom_crypto::Root>::generate()?;
    let text = strongroom_crypto::root_key::encode(&key);
    if text.is_empty() {
        bail!("key generation failed");
    }
    println!("{}", text.as_str());
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Append one event for a user.
    Append {
        namespace: String,
        user: String,
        /// The event type, e.g. command.play.
        #[arg(long = "type")]
        event_type: String,
        /// JSON object with the details.
        #[arg(long)]
        details: Option<String>,
        /// RFC 3339 time (default now).
        #[arg(long)]
        time: Option<String>,
    },
    /// List a user's events, newest first.
    List {
        namespace: String,
        user: String,
        #[arg(long = "type")]
        event_type: Option<String>,
        /// RFC 3339, inclusive.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Every user's events in a namespace, newest first (needs `list`).
    ListAll {
        namespace: String,
        #[arg(long = "type")]
        event_type: Option<String>,
        /// RFC 3339, inclusive.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// How many events of each type fell on each UTC day over every user (needs `list`).
    Counts {
        namespace: String,
        /// Event types, comma-separated (1 to 20).
        #[arg(long = "type")]
        types: String,
        /// RFC 3339, inclusive (default: 30 days before --to).
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339, inclusive (default: now).
        #[arg(long)]
        to: Option<String>,
    },
    /// Keep a namespace's events for N days (omit --days to keep them forever).
    Retention {
        namespace: String,
        #[arg(long)]
        days: Option<u32>,
    },
}

pub fn events(conn: &Connection, cmd: EventsCommand) -> Outcome {
    let c = Client::new(conn)?;
    match cmd {
        EventsCommand::Append {
            namespace,
            user,
            event_type,
            details,
            time,
        } => {
            let mut event = json!({ "type": event_type });
            if let Some(d) = details {
                event["details"] =
                    serde_json::from_str(&d).context("--details is not valid JSON")?;
            }
            if let Some(t) = time {
                event["time"] = json!(t);
            }
            let path = format!(
                "/v1/ns/{}/users/{}/events",
                segment(&namespace),
                segment(&user)
            );
            done(c.call("POST", &path, Some(&json!({ "events": [event] })))?)
        }
        EventsCommand::List {
            namespace,
            user,
            event_type,
            since,
            until,
            cursor,
            limit,
        } => {
            let mut query = vec![format!("limit={limit}")];
            for (key, value) in [
                ("type", event_type),
                ("since", since),
                ("until", until),
                ("cursor", cursor),
            ] {
                if let Some(v) = value {
                    query.push(format!("{key}={}", segment(&v)));
                }
            }
            let path = format!(
                "/v1/ns/{}/users/{}/events?{}",
                segment(&namespace),
                segment(&user),
                query.join("&")
            );
            done(c.call("GET", &path, None)?)
        }
        EventsCommand::ListAll {
            namespace,
            event_type,
            from,
            to,
            cursor,
            limit,
        } => {
            let query = query_string(&[
                ("limit", Some(limit.to_string())),
                ("type", event_type),
                ("from", from),
                ("to", to),
                ("cursor", cursor),
            ]);
            let path = format!("/v1/ns/{}/events?{query}", segment(&namespace));
            done(c.call("GET", &path, None)?)
        }
        EventsCommand::Counts {
            namespace,
            types,
            from,
            to,
        } => {
            let query = query_string(&[("type", Some(types)), ("from", from), ("to", to)]);
            let path = format!("/v1/ns/{}/events/counts?{query}", segment(&namespace));
            done(c.call("GET", &path, None)?)
        }
        EventsCommand::Retention { namespace, days } => {
            let path = format!("/v1/ns/{}/events/retention", segment(&namespace));
            done(c.call("PUT", &path, Some(&json!({ "days": days })))?)
        }
    }
}

/// `key=value&…` of the parameters given, each value encoded.
pub(crate) fn query_string(params: &[(&str, Option<String>)]) -> String {
    params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", segment(v))))
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Subcommand)]
pub enum RecordsCommand {
    /// Create or update a collection from its settings JSON (scope, ttl_secs, searchable,
    /// unique, fields, additional_fields).
    Collection {
        namespace: String,
        name: String,
        #[arg(long)]
        settings: String,
    },
    /// List a namespace's collections.
    Collections { namespace: String },
    /// Write a document (per-user collections need --user).
    Put {
        namespace: String,
        collection: String,
        key: String,
        #[arg(long)]
        user: Option<String>,
        /// The document: a JSON object, inline, @FILE or - for standard input.
        #[arg(long)]
        document: String,
        /// Check-and-set: only write if the current version is this (0 = must not exist).
        #[arg(long)]
        if_version: Option<u64>,
    },
    /// Read a document.
    Get {
        namespace: String,
        collection: String,
        key: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Delete a document.
    Delete {
        namespace: String,
        collection: String,
        key: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// List documents.
    List {
        namespace: String,
        collection: String,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Find documents whose searchable field equals a value.
    Lookup {
        namespace: String,
        collection: String,
        #[arg(long)]
        field: String,
        #[arg(long)]
        value: String,
    },
}

fn record_path(ns: &str, collection: &str, user: Option<&str>) -> String {
    match user {
        Some(u) => format!(
            "/v1/ns/{}/users/{}/records/{}",
            segment(ns),
            segment(u),
            segment(collection)
        ),
        None => format!("/v1/ns/{}/records/{}", segment(ns), segment(collection)),
    }
}

pub fn records(conn: &Connection, cmd: RecordsCommand) -> Outcome {
    let c = Client::new(conn)?;
    match cmd {
        RecordsCommand::Collection {
            namespace,
            name,
            settings,
        } => {
            let settings: Value =
                serde_json::from_str(&settings).context("--settings is not valid JSON")?;
            done(c.call(
                "PUT",
                &format!(
                    "/v1/ns/{}/collections/{}",
                    segment(&namespace),
                    segment(&name)
                ),
                Some(&settings),
            )?)
        }
        RecordsCommand::Collections { namespace } => done(c.call(
            "GET",
            &format!("/v1/ns/{}/collections", segment(&namespace)),
            None,
        )?),
        RecordsCommand::Put {
            namespace,
            collection,
            key,
            user,
            document,
            if_version,
        } => {
            let mut body = json!({ "document": read_data(&document)? });
            if let Some(v) = if_version {
                body["if_version"] = json!(v);
            }
            let path = format!(
                "{}/{}",
                record_path(&namespace, &collection, user.as_deref()),
                segment(&key)
            );
            done(c.call("PUT", &path, Some(&body))?)
        }
        RecordsCommand::Get {
            namespace,
            collection,
            key,
            user,
        } => done(c.call(
            "GET",
            &format!(
                "{}/{}",
                record_path(&namespace, &collection, user.as_deref()),
                segment(&key)
            ),
            None,
        )?),
        RecordsCommand::Delete {
            namespace,
            collection,
            key,
            user,
        } => {
            c.call(
                "DELETE",
                &format!(
                    "{}/{}",
                    record_path(&namespace, &collection, user.as_deref()),
                    segment(&key)
                ),
                None,
            )?;
            eprintln!("deleted {key}");
            Ok(ExitCode::SUCCESS)
        }
        RecordsCommand::List {
            namespace,
            collection,
            user,
            cursor,
            limit,
        } => {
            let path = page_path(
                &record_path(&namespace, &collection, user.as_deref()),
                limit,
                cursor.as_deref(),
            );
            done(c.call("GET", &path, None)?)
        }
        RecordsCommand::Lookup {
            namespace,
            collection,
            field,
            value,
        } => {
            let path = format!(
                "/v1/ns/{}/collections/{}/lookup?field={}&value={}",
                segment(&namespace),
                segment(&collection),
                segment(&field),
                segment(&value)
            );
            done(c.call("GET", &path, None)?)
        }
    }
}
