//! `strongroom import`: moves an app's existing secrets into Strongroom — rows from a SQLite
//! file or a PostgreSQL database (a query the operator gives), a CSV file or JSON Lines
//! (`import_sources`), one credential per row, decoded per column (plaintext, base64, JSON —
//! a whole JSON column as a token set —, Fernet with one or several keys in MultiFernet order,
//! or Fernet with a key derived by PBKDF2-HMAC-SHA256 from a password and salt).
//!
//! Rows are written through the server's batch endpoint, 500 per call — one transaction each,
//! every item authorized and audited like a single write — with check-and-set `0`, so an
//! existing credential is skipped (`--overwrite` replaces it): running the import again after
//! a kill finishes it. A row that cannot be read is reported by its source row id and the
//! reason, never with its value. With `--to records:COLLECTION` or `--to events` rows become
//! documents (skipped when they exist) or appended events, one call per row. The summary counts `{read, imported, skipped_existing,
//! failed}` (and a progress line on a terminal); `--dry-run` decodes every row and checks what
//! exists without writing anything.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use base64::Engine;
use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};
use strongroom_crypto::fernet::{self, FernetKey, Freshness};
use zeroize::Zeroizing;

use crate::client::{segment, Client, Connection};

#[derive(Clone, Copy, ValueEnum)]
enum Decode {
    /// The column holds the value as it is.
    Plain,
    /// Standard or URL-safe base64 of the value.
    Base64,
    /// A Fernet token (`--fernet-key-env`, or `--fernet-password-env` with `--fernet-salt`).
    Fernet,
}

#[derive(Args)]
pub struct ImportArgs {
    /// Where rows come from: sqlite:PATH or postgres://USER@HOST/DB (with --query), csv:PATH
    /// (a header row names the columns) or jsonl:PATH (one JSON object per line).
    #[arg(long)]
    from: String,
    /// For sqlite and postgres: the query whose rows are imported (its column names are the
    /// ones below); PostgreSQL runs it in a read-only transaction.
    #[arg(long)]
    query: Option<String>,
    /// The namespace the rows go to.
    #[arg(long)]
    namespace: String,
    /// The column holding the app's user id.
    #[arg(long)]
    user_column: String,
    /// What each row becomes: `credentials` (the default; batched), `records:COLLECTION` (the
    /// value column a JSON document, keyed by --key-column) or `events` (the value column the
    /// details, typed by --event-type or --type-column, at --time-column or now).
    #[arg(long, default_value = "credentials")]
    to: String,
    /// Credentials: the name for every row…
    #[arg(long, conflicts_with = "name_column")]
    name: Option<String>,
    /// …or the column holding it.
    #[arg(long)]
    name_column: Option<String>,
    /// Records: the column holding each record's key.
    #[arg(long)]
    key_column: Option<String>,
    /// Events: the type of every row…
    #[arg(long, conflicts_with = "type_column")]
    event_type: Option<String>,
    /// …or the column holding it.
    #[arg(long)]
    type_column: Option<String>,
    /// Events: the column holding each event's time (RFC 3339, or Unix seconds).
    #[arg(long)]
    time_column: Option<String>,
    /// The column holding the secret.
    #[arg(long)]
    value_column: String,
    /// How the secret column is encoded.
    #[arg(long, value_enum, default_value = "plain")]
    decode: Decode,
    /// An environment variable holding a Fernet key; repeat for MultiFernet (tried in order).
    #[arg(long)]
    fernet_key_env: Vec<String>,
    /// An environment variable holding the password the Fernet key is derived from (PBKDF2).
    #[arg(long, requires = "fernet_salt")]
    fernet_password_env: Option<String>,
    /// The PBKDF2 salt (as text).
    #[arg(long)]
    fernet_salt: Option<String>,
    /// The PBKDF2 iteration count.
    #[arg(long, default_value_t = 480_000)]
    fernet_iterations: u32,
    /// Refuse Fernet tokens older than this many seconds (as `Fernet.decrypt(ttl=…)`).
    #[arg(long)]
    fernet_ttl_secs: Option<u64>,
    /// The column that names a row in the report (default: its position, from 1).
    #[arg(long)]
    id_column: Option<String>,
    /// Decode every row and check what exists; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace credentials that exist (default: skip them).
    #[arg(long)]
    overwrite: bool,
}

#[derive(Default, serde::Serialize)]
struct Summary {
    read: u64,
    imported: u64,
    skipped_existing: u64,
    failed: u64,
    failures: Vec<Value>,
}

/// A row failed: why, in words that never hold its value.
struct Refused(String);

/// Items per batch call (one transaction each on the server; at most 1,000).
const BATCH: usize = 500;

/// A decoded row waiting for its batch.
struct Pending {
    id: String,
    item: Value,
}

/// What the import has done so far, and the rows waiting to be written.
struct Import<'a> {
    client: &'a Client,
    args: &'a ImportArgs,
    target: &'a Target,
    keys: &'a [FernetKey],
    summary: Summary,
    pending: Vec<Pending>,
    progress: Option<std::time::Instant>,
}

/// Where the rows go.
enum Target {
    Credentials,
    Records(String),
    Events,
}

impl Target {
    fn of(args: &ImportArgs) -> Result<Self> {
        Ok(match args.to.split_once(':') {
            None if args.to == "credentials" => {
                if args.name.is_none() && args.name_column.is_none() {
                    bail!("--to credentials needs --name or --name-column");
                }
                Target::Credentials
            }
            None if args.to == "events" => {
                if args.event_type.is_none() && args.type_column.is_none() {
                    bail!("--to events needs --event-type or --type-column");
                }
                Target::Events
            }
            Some(("records", collection)) if !collection.is_empty() => {
                if args.key_column.is_none() {
                    bail!("--to records:COLLECTION needs --key-column");
                }
                Target::Records(collection.to_string())
            }
            _ => bail!("--to must be credentials, records:COLLECTION or events"),
        })
    }
}

pub fn run(conn: &Connection, args: ImportArgs) -> Result<ExitCode> {
    use std::io::IsTerminal;
    let target = Target::of(&args)?;
    let keys = fernet_keys(&args)?;
    let client = Client::new(conn)?;
    let mut import = Import {
        client: &client,
        args: &args,
        target: &target,
        keys: &keys,
        summary: Summary::default(),
        pending: Vec::new(),
        progress: std::io::stderr()
            .is_terminal()
            .then(std::time::Instant::now),
    };
    crate::import_sources::read_rows(&args.from, args.query.as_deref(), &mut |(position, row)| {
        import.process(position, row.map_err(Refused));
        if import.pending.len() >= BATCH {
            import.flush()?;
        }
        Ok(())
    })?;
    import.flush()?;
    if import.progress.is_some() {
        eprintln!();
    }
    let summary = import.summary;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

impl Import<'_> {
    /// Decodes one row (or records why it cannot be read); a row to write joins the batch.
    fn process(&mut self, position: u64, row: Result<Map<String, Value>, Refused>) {
        self.summary.read += 1;
        let id = match (&self.args.id_column, &row) {
            (Some(c), Ok(row)) => row.get(c).map(cell_text).unwrap_or_default(),
            _ => position.to_string(),
        };
        let prepared = row.and_then(|row| match self.target {
            Target::Credentials => prepare_row(self.client, self.args, self.keys, &row),
            other => prepare_single(self.client, self.args, self.keys, other, &row),
        });
        match prepared {
            Ok(Prepared::Write(item)) => self.pending.push(Pending { id, item }),
            Ok(Prepared::Done(Outcome::Imported)) => self.summary.imported += 1,
            Ok(Prepared::Done(Outcome::Exists)) => self.summary.skipped_existing += 1,
            Err(Refused(reason)) => self.fail(id, reason),
        }
    }

    fn fail(&mut self, id: String, reason: String) {
        self.summary.failed += 1;
        if self.summary.failures.len() < 1000 {
            self.summary
                .failures
                .push(json!({"row": id, "reason": reason}));
        }
    }

    /// Writes the waiting rows in one batch call (one transaction on the server).
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let items: Vec<&Value> = pending.iter().map(|p| &p.item).collect();
        let path = format!("/v1/ns/{}/credentials/batch", segment(&self.args.namespace));
        let answer = self
            .client
            .call("POST", &path, Some(&json!({ "items": items })))
            .context("writing a batch")?;
        let results = answer["items"].as_array().cloned().unwrap_or_default();
        if results.len() != pending.len() {
            bail!(
                "the server answered a batch of {} with {} results",
                pending.len(),
                results.len()
            );
        }
        for (row, result) in pending.into_iter().zip(results) {
            match (result["status"].as_u64(), result["error"]["code"].as_str()) {
                (Some(200), _) => self.summary.imported += 1,
                (_, Some("version_conflict")) if !self.args.overwrite => {
                    self.summary.skipped_existing += 1
                }
                (_, code) => {
                    let message = result["error"]["message"].as_str().unwrap_or("");
                    self.fail(
                        row.id,
                        format!(
                            "the server refused it: {}: {message}",
                            code.unwrap_or("error")
                        ),
                    );
                }
            }
        }
        if let Some(started) = self.progress {
            let s = &self.summary;
            eprint!(
                "\rread {} · imported {} · skipped {} · failed {} · {:.0} rows/s   ",
                s.read,
                s.imported,
                s.skipped_existing,
                s.failed,
                s.read as f64 / started.elapsed().as_secs_f64().max(0.001)
            );
        }
        Ok(())
    }
}

fn fernet_keys(args: &ImportArgs) -> Result<Vec<FernetKey>> {
    if !matches!(args.decode, Decode::Fernet) {
        return Ok(Vec::new());
    }
    let secret_env = |name: &str| -> Result<Zeroizing<String>> {
        std::env::var(name)
            .map(Zeroizing::new)
            .with_context(|| format!("the environment variable {name} is not set"))
    };
    let mut keys = Vec::new();
    for name in &args.fernet_key_env {
        keys.push(
            FernetKey::from_text(&secret_env(name)?)
                .with_context(|| format!("{name} does not hold a Fernet key"))?,
        );
    }
    if let Some(name) = &args.fernet_password_env {
        let salt = args.fernet_salt.as_deref().unwrap_or_default();
        keys.push(FernetKey::from_password(
            secret_env(name)?.as_bytes(),
            salt.as_bytes(),
            args.fernet_iterations,
        )?);
    }
    if keys.is_empty() {
        bail!(
            "--decode fernet needs --fernet-key-env, or --fernet-password-env with --fernet-salt"
        );
    }
    Ok(keys)
}

fn cell_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

enum Outcome {
    Imported,
    Exists,
}

fn column<'a>(row: &'a Map<String, Value>, name: &str) -> Result<&'a Value, Refused> {
    match row.get(name) {
        Some(Value::Null) | None => Err(Refused(format!("column {name} is empty or missing"))),
        Some(v) => Ok(v),
    }
}

/// What a row becomes: an item for the next batch, or (on a dry run) its outcome already.
enum Prepared {
    Write(Value),
    Done(Outcome),
}

/// A record or an event: written at once, one call (one transaction) per row. Records are
/// written with `if_version: 0`, so existing ones are skipped (`--overwrite` replaces them);
/// events are appended — a second run appends them again.
fn prepare_single(
    client: &Client,
    args: &ImportArgs,
    keys: &[FernetKey],
    target: &Target,
    row: &Map<String, Value>,
) -> Result<Prepared, Refused> {
    let user = cell_text(column(row, &args.user_column)?);
    let plain = decoded(args, keys, column(row, &args.value_column)?)?;
    let text = std::str::from_utf8(&plain)
        .map_err(|_| Refused("the decoded value is not UTF-8 text".into()))?;
    let parsed = serde_json::from_str::<Value>(text).ok();
    let ns = segment(&args.namespace);
    let (path, body, method) = match target {
        Target::Records(collection) => {
            let key_column = args.key_column.as_deref().unwrap_or_default();
            let key = cell_text(column(row, key_column)?);
            let Some(Value::Object(document)) = parsed else {
                return Err(Refused(format!(
                    "column {} is not a JSON object (a record is a document)",
                    args.value_column
                )));
            };
            let path = format!(
                "/v1/ns/{ns}/users/{}/records/{}/{}",
                segment(&user),
                segment(collection),
                segment(&key)
            );
            let mut body = json!({ "document": document });
            if !args.overwrite {
                body["if_version"] = json!(0);
            }
            (path, body, "PUT")
        }
        Target::Events => {
            let event_type = match (&args.event_type, &args.type_column) {
                (Some(t), _) => t.clone(),
                (None, Some(c)) => cell_text(column(row, c)?),
                (None, None) => return Err(Refused("no event type".into())),
            };
            let details = match parsed {
                Some(Value::Object(details)) => details,
                _ => Map::from_iter([("value".to_string(), Value::String(text.to_string()))]),
            };
            let mut event = json!({ "type": event_type, "details": details });
            if let Some(c) = &args.time_column {
                event["time"] = match column(row, c)? {
                    Value::Number(n) => json!(strongroom_core::clock::rfc3339(
                        (n.as_f64().unwrap_or_default() * 1000.0) as i64
                    )),
                    other => json!(cell_text(other)),
                };
            }
            let path = format!("/v1/ns/{ns}/users/{}/events", segment(&user));
            (path, json!({ "events": [event] }), "POST")
        }
        Target::Credentials => return Err(Refused("not a single-row target".into())),
    };
    if args.dry_run {
        if method == "POST" {
            return Ok(Prepared::Done(Outcome::Imported));
        }
        return match client.call("GET", &path, None) {
            Ok(_) => Ok(Prepared::Done(Outcome::Exists)),
            Err(e) if e.to_string().starts_with("not_found:") => {
                Ok(Prepared::Done(Outcome::Imported))
            }
            Err(e) => Err(Refused(server_reason(&e))),
        };
    }
    match client.call(method, &path, Some(&body)) {
        Ok(_) => Ok(Prepared::Done(Outcome::Imported)),
        Err(e) if e.to_string().starts_with("version_conflict:") && !args.overwrite => {
            Ok(Prepared::Done(Outcome::Exists))
        }
        Err(e) => Err(Refused(server_reason(&e))),
    }
}

fn prepare_row(
    client: &Client,
    args: &ImportArgs,
    keys: &[FernetKey],
    row: &Map<String, Value>,
) -> Result<Prepared, Refused> {
    let user = cell_text(column(row, &args.user_column)?);
    let name = match (&args.name, &args.name_column) {
        (Some(name), _) => name.clone(),
        (None, Some(c)) => cell_text(column(row, c)?),
        (None, None) => return Err(Refused("no credential name".into())),
    };
    let plain = decoded(args, keys, column(row, &args.value_column)?)?;
    let data = credential_data(&plain)?;
    if args.dry_run {
        let path = format!(
            "/v1/ns/{}/users/{}/credentials/{}",
            segment(&args.namespace),
            segment(&user),
            segment(&name)
        );
        return match client.call("GET", &path, None) {
            Ok(_) => Ok(Prepared::Done(Outcome::Exists)),
            Err(e) if e.to_string().starts_with("not_found:") => {
                Ok(Prepared::Done(Outcome::Imported))
            }
            Err(e) => Err(Refused(server_reason(&e))),
        };
    }
    let mut item = json!({ "user": user, "name": name, "data": data });
    if !args.overwrite {
        item["options"] = json!({"cas": 0});
    }
    Ok(Prepared::Write(item))
}

/// The server's refusal, by its stable code (its message names fields, never values).
fn server_reason(e: &anyhow::Error) -> String {
    format!("the server refused it: {e}")
}

fn decoded(
    args: &ImportArgs,
    keys: &[FernetKey],
    cell: &Value,
) -> Result<Zeroizing<Vec<u8>>, Refused> {
    let text = Zeroizing::new(cell_text(cell));
    match args.decode {
        Decode::Plain => Ok(Zeroizing::new(text.as_bytes().to_vec())),
        Decode::Base64 => {
            let t = text.trim();
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(t))
                .map(Zeroizing::new)
                .map_err(|_| Refused(format!("column {} is not base64", args.value_column)))
        }
        Decode::Fernet => {
            let freshness = Freshness {
                now_secs: (strongroom_core::Clock::now_ms(&strongroom_core::SystemClock) / 1000)
                    .max(0) as u64,
                ttl_secs: args.fernet_ttl_secs,
            };
            fernet::decrypt(keys, &text, freshness)
                .map(|(plain, _)| plain)
                .map_err(|e| Refused(format!("column {}: {e}", args.value_column)))
        }
    }
}

/// A JSON object with `access_token` becomes an OAuth token set; any other JSON object a
/// secret with its fields; anything else a secret `{"value": text}`.
fn credential_data(plain: &[u8]) -> Result<Value, Refused> {
    let text = std::str::from_utf8(plain)
        .map_err(|_| Refused("the decoded value is not UTF-8 text".into()))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) if fields.get("access_token").is_some_and(Value::is_string) => {
            let mut data = json!({"type": "oauth2"});
            for key in [
                "access_token",
                "refresh_token",
                "scope",
                "token_type",
                "provider",
            ] {
                if let Some(Value::String(v)) = fields.get(key) {
                    data[key] = json!(v);
                }
            }
            match fields.get("expires_at") {
                Some(Value::String(at)) => data["expires_at"] = json!(at),
                Some(Value::Number(n)) => {
                    let secs = n.as_f64().unwrap_or_default() as i64;
                    data["expires_at"] = json!(strongroom_core::clock::rfc3339(secs * 1000));
                }
                _ => {}
            }
            Ok(data)
        }
        Ok(Value::Object(fields)) => Ok(json!({"type": "secret", "data": fields})),
        _ => Ok(json!({"type": "secret", "data": {"value": text}})),
    }
}
