//! `strongroom serve`: prepare the data directory and the root key (a key file, the
//! environment, or a passphrase it is sealed under), unseal the node — or start it sealed —,
//! serve HTTP until SIGINT/SIGTERM, then drain and flush the audit log.
//!
//! Standard output carries only what a person must see once (the bootstrap admin token and the
//! listening address); logs go to standard error and never contain secrets.

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use strongroom_core::guard::LockoutPolicy;
use strongroom_core::jobs::{self, JobSettings};
use strongroom_core::seal::kms::Kms;
use strongroom_core::seal::{self, KeySource, Node, UnsealMaterial};
use strongroom_core::{CoreError, Policy, Principal, SystemClock, VaultSettings};
use strongroom_crypto::passphrase::KdfParams;
use strongroom_crypto::{root_key, Key, Root};
use strongroom_objects::{BlobStore, ObjectLocation};

use crate::s3_flags::S3Args;
use strongroom_postgres::{PgSettings, PgStore};
use strongroom_server::{AppState, ServerSettings};
use strongroom_sqlite::SqliteStore;
use strongroom_storage::Storage;
use zeroize::Zeroizing;

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Directory for the database and (by default) the root key file.
    #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "./strongroom-data")]
    data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "STRONGROOM_LISTEN", default_value = "127.0.0.1:8470")]
    listen: SocketAddr,
    /// Also serve the Vault-compatible API (KV v2, Transit) at the root of this address, for
    /// clients that drop a path prefix from VAULT_ADDR. Off by default; the main listener
    /// always serves it under /vault.
    #[arg(long, env = "STRONGROOM_VAULT_LISTEN")]
    vault_listen: Option<SocketAddr>,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate chain; needs --tls-key.
    /// Both files are read again on SIGHUP (open connections keep theirs).
    #[arg(long, env = "STRONGROOM_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key.
    #[arg(long, env = "STRONGROOM_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this PEM CA (mTLS between apps and Strongroom).
    #[arg(long, env = "STRONGROOM_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Root key file (base64, mode 0600). Default: DATA_DIR/root.key, created on first start.
    #[arg(long, env = "STRONGROOM_ROOT_KEY_FILE")]
    root_key_file: Option<PathBuf>,
    /// Keep the root key sealed under the passphrase in this file (owner-only, at least 12
    /// characters) instead of a key file: on a new store a root key is made and sealed under
    /// it; a store opened with a root key is sealed under it from now on (the key file may then
    /// be moved offline); later starts unseal with it. Without this flag, a passphrase-sealed
    /// store starts sealed until `strongroom unseal --passphrase-file`.
    #[arg(long, env = "STRONGROOM_PASSPHRASE_FILE")]
    passphrase_file: Option<PathBuf>,
    /// As --passphrase-file, but typed at a prompt at start (no echo on a terminal; or one
    /// line from a pipe).
    #[arg(long, conflicts_with = "passphrase_file")]
    passphrase_prompt: bool,
    #[command(flatten)]
    kms: crate::kms_flags::KmsArgs,
    /// Argon2id memory in MiB for a newly sealed passphrase (tests use less).
    #[arg(
        long,
        env = "STRONGROOM_PASSPHRASE_KDF_MIB",
        default_value_t = 128,
        hide = true
    )]
    passphrase_kdf_mib: u32,
    /// Log format on standard error.
    #[arg(
        long,
        env = "STRONGROOM_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Largest request body in bytes.
    #[arg(long, env = "STRONGROOM_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    max_body_bytes: usize,
    /// Request timeout in seconds.
    #[arg(long, env = "STRONGROOM_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    request_timeout_secs: u64,
    /// Failed authentications within the lock-out window that lock out the failing key: the
    /// client address for unknown tokens, the token id for a known id with a wrong secret (or
    /// revoked, or expired). A valid token is never refused for others' failures.
    #[arg(long, env = "STRONGROOM_LOCKOUT_THRESHOLD", default_value_t = 10)]
    lockout_threshold: u32,
    /// Seconds over which failed authentications are counted.
    #[arg(long, env = "STRONGROOM_LOCKOUT_WINDOW_SECS", default_value_t = 60)]
    lockout_window_secs: u64,
    /// Seconds a locked-out address or token id waits.
    #[arg(long, env = "STRONGROOM_LOCKOUT_SECS", default_value_t = 60)]
    lockout_secs: u64,
    /// Proxies whose Forwarded / X-Forwarded-For headers name the client (comma-separated
    /// CIDRs or addresses, e.g. 10.0.0.0/8,192.168.1.7). Without it, the peer is the client.
    #[arg(long, env = "STRONGROOM_TRUSTED_PROXIES", default_value = "")]
    trusted_proxies: String,
    /// Seconds a connection has to send a request's headers.
    #[arg(
        long,
        env = "STRONGROOM_HEADER_READ_TIMEOUT_SECS",
        default_value_t = 10
    )]
    header_read_timeout_secs: u64,
    /// Seconds a connection may move no byte before it is closed.
    #[arg(long, env = "STRONGROOM_IDLE_TIMEOUT_SECS", default_value_t = 120)]
    idle_timeout_secs: u64,
    /// Open connections at most (default: the open-file limit minus 128, at least 64); at the
    /// cap the longest-idle connection is closed to make room.
    #[arg(long, env = "STRONGROOM_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Seconds an upload's body may send nothing before the upload is abandoned (408) and its
    /// quota reservation freed.
    #[arg(long, env = "STRONGROOM_UPLOAD_IDLE_SECS", default_value_t = 60)]
    upload_idle_secs: u64,
    /// Start even though the audit log lost entries the database anchored (it was deleted,
    /// truncated or replaced): the loss is recorded in the log as `audit.reset`. Without this
    /// flag such a store refuses to start.
    #[arg(long)]
    accept_audit_loss: bool,
    /// Storage: sqlite://PATH (default: DATA_DIR/strongroom.db) or postgres://USER@HOST:PORT/DB
    /// (several nodes may share one PostgreSQL database).
    #[arg(long, env = "STRONGROOM_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// PostgreSQL: connections per node.
    #[arg(long, env = "STRONGROOM_DB_POOL_SIZE", default_value_t = 16)]
    db_pool_size: usize,
    /// PostgreSQL: seconds to wait when connecting.
    #[arg(long, env = "STRONGROOM_DB_CONNECT_TIMEOUT_SECS", default_value_t = 5)]
    db_connect_timeout_secs: u64,
    /// PostgreSQL: seconds a request waits for a free connection before answering 503.
    #[arg(long, env = "STRONGROOM_DB_CHECKOUT_TIMEOUT_SECS", default_value_t = 5)]
    db_checkout_timeout_secs: u64,
    /// PostgreSQL: schema to use instead of public (created if missing).
    #[arg(long, env = "STRONGROOM_DB_SCHEMA")]
    db_schema: Option<String>,
    /// Print a new operator token at start (recovery when every operator token is lost);
    /// needs the root key, and is audited.
    #[arg(long)]
    new_admin_token: bool,
    /// This node's name in job leases (default: a random id).
    #[arg(long, env = "STRONGROOM_NODE_ID")]
    node_id: Option<String>,
    /// Seconds between background job ticks (key rewrap after rotation, …).
    #[arg(long, env = "STRONGROOM_JOB_INTERVAL_SECS", default_value_t = 10)]
    job_interval_secs: u64,
    /// Seconds a job lease lasts without renewal (how soon another node takes over a dead one).
    #[arg(long, env = "STRONGROOM_LEASE_TTL_SECS", default_value_t = 30)]
    lease_ttl_secs: u64,
    /// User data keys kept unwrapped in memory.
    #[arg(long, env = "STRONGROOM_DATA_KEY_CACHE", default_value_t = 65_536)]
    data_key_cache: usize,
    /// Where file contents go: a folder (default: DATA_DIR/files), file:///PATH, or
    /// s3://BUCKET/PREFIX for any S3-compatible store (nodes sharing a PostgreSQL database
    /// must share this too).
    #[arg(long, env = "STRONGROOM_FILES")]
    files: Option<String>,
    #[command(flatten)]
    s3: S3Args,
    /// The erasure ledger outside the store: a folder or s3://BUCKET/PREFIX apart from the
    /// database and its backups, where every erasure is also recorded (keyed user hash and
    /// time), so `strongroom restore` can erase again whoever was erased after a backup.
    #[arg(long, env = "STRONGROOM_ERASURE_LEDGER")]
    erasure_ledger: Option<String>,
    /// Let webhooks target private, loopback and link-local addresses (receivers on the same
    /// host or network; refused by default against SSRF).
    #[arg(long, env = "STRONGROOM_WEBHOOK_ALLOW_PRIVATE")]
    webhook_allow_private: bool,
    /// Milliseconds before a failed webhook delivery's first retry (doubling after; tests use
    /// less).
    #[arg(
        long,
        env = "STRONGROOM_WEBHOOK_RETRY_BASE_MS",
        default_value_t = 5_000,
        hide = true
    )]
    webhook_retry_base_ms: u64,
    /// Seconds a node holds the webhook deliveries it claimed (after a crash, others deliver
    /// them once this has passed).
    #[arg(
        long,
        env = "STRONGROOM_WEBHOOK_CLAIM_SECS",
        default_value_t = 60,
        hide = true
    )]
    webhook_claim_secs: u64,
    /// Largest file accepted in bytes (a namespace's policy may set less).
    #[arg(long, env = "STRONGROOM_MAX_FILE_SIZE", default_value_t = 16 << 30)]
    max_file_size: u64,
    /// Seconds after which an upload that never completed (its node died) is swept.
    #[arg(long, env = "STRONGROOM_UPLOAD_STALE_SECS", default_value_t = 24 * 3600)]
    upload_stale_secs: u64,
    /// Stored bytes per object piece of new files (tests use small pieces).
    #[arg(long, env = "STRONGROOM_FILE_PIECE_BYTES", default_value_t = strongroom_objects::DEFAULT_PIECE_SIZE, hide = true)]
    file_piece_bytes: u64,
}

/// Opens the object store `--files` names (default: a folder in the data directory).
fn open_files(args: &ServeArgs) -> Result<BlobStore> {
    let location: ObjectLocation = match &args.files {
        Some(v) => v.parse().context("--files")?,
        None => ObjectLocation::Local(args.data_dir.join("files")),
    };
    if !(1024..=1 << 30).contains(&args.file_piece_bytes) {
        bail!("--file-piece-bytes must be between 1 KiB and 1 GiB");
    }
    let store = args.s3.open_location(&location, "the files location")?;
    tracing::info!(files = %location, "file storage");
    Ok(store)
}

fn init_logs(format: LogFormat) {
    use std::io::IsTerminal;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colours only for a person at a terminal, never into a file or a log collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The root key: `STRONGROOM_ROOT_KEY` if set, else the key file (created on a fresh data dir).
fn load_root_key(args: &ServeArgs, db_exists: bool) -> Result<Key<Root>> {
    if let Ok(text) = std::env::var("STRONGROOM_ROOT_KEY") {
        if args.root_key_file.is_some() {
            bail!("give the root key in exactly one way: STRONGROOM_ROOT_KEY or --root-key-file, not both");
        }
        return root_key::decode(&text).context("STRONGROOM_ROOT_KEY");
    }
    let path = args
        .root_key_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("root.key"));
    if path.exists() {
        return Ok(root_key::load_file(&path)?);
    }
    if db_exists {
        bail!(
            "the root key file {} is missing, but {} holds data encrypted under a root key; restore the key file or set STRONGROOM_ROOT_KEY",
            path.display(),
            args.data_dir.display()
        );
    }
    let key = root_key::create_file(&path)?;
    eprintln!(
        "created root key file {} (mode 0600): back it up; without it the data cannot be read",
        path.display()
    );
    Ok(key)
}

pub(crate) fn prepare_data_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
    }
    Ok(())
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    init_logs(args.log_format);
    prepare_data_dir(&args.data_dir)?;
    let database = Database::parse(args.database.as_deref(), &args.data_dir)?;
    // Read before any store is made, so a refused passphrase leaves nothing behind.
    let passphrase = match &args.passphrase_file {
        Some(path) => Some(crate::key_material::read_passphrase_file(path)?),
        None if args.passphrase_prompt => Some(crate::key_material::prompt_passphrase(
            "Passphrase for the root key",
        )?),
        None => None,
    };
    let (store, existed): (Arc<dyn Storage>, bool) = match &database {
        Database::Sqlite(path) => {
            let store =
                SqliteStore::open(path).with_context(|| format!("opening {}", path.display()))?;
            // A database file left by a start that failed before the first open is still new.
            let existed = seal::store_has_root_key(&store)?;
            (Arc::new(store), existed)
        }
        Database::Postgres(url) => {
            let settings = PgSettings {
                pool_size: args.db_pool_size,
                connect_timeout: Duration::from_secs(args.db_connect_timeout_secs),
                checkout_timeout: Duration::from_secs(args.db_checkout_timeout_secs),
                schema: args.db_schema.clone(),
                ..PgSettings::new(url)
            };
            let store = PgStore::open(settings).context("connecting to PostgreSQL")?;
            (Arc::new(store), true)
        }
    };
    let shared = matches!(database, Database::Postgres(_));
    let kms = args
        .kms
        .client(Node::stored_source(&*store)? == Some(KeySource::Kms))?;
    let startup = startup_material(&args, passphrase, kms.as_ref(), &*store, existed, shared)?;
    serve_store(args, store, startup, kms)
}

/// What this start unseals with, if anything.
enum Startup {
    Unseal(UnsealMaterial, KeySource),
    /// A store whose root key is under shares or a passphrase, started without them: sealed
    /// until an unseal.
    Sealed(KeySource),
}

/// Decides where the root key comes from: a passphrase (sealing a given or new root key under
/// it first when the store has none), the environment, or the key file.
fn startup_material(
    args: &ServeArgs,
    passphrase: Option<Zeroizing<String>>,
    kms: Option<&Kms>,
    store: &dyn Storage,
    existed: bool,
    shared: bool,
) -> Result<Startup> {
    let stored = Node::stored_source(store)?;
    let sealed_under_passphrase = stored == Some(KeySource::Passphrase);
    let key_given = std::env::var("STRONGROOM_ROOT_KEY").is_ok() || args.root_key_file.is_some();
    if stored == Some(KeySource::Shamir) && (passphrase.is_some() || args.kms.requested()) {
        bail!("this store's root key is split into unseal shares: start without --passphrase-file or --kms-key-id and unseal with `strongroom unseal --share-stdin`");
    }
    if args.kms.requested() && passphrase.is_some() {
        bail!("choose one place for the root key: --passphrase-file or --kms-key-id");
    }
    if stored == Some(KeySource::Passphrase) && args.kms.requested() {
        bail!("this store's root key is sealed under a passphrase; moving it to KMS is not supported yet (start with --passphrase-file)");
    }
    if stored == Some(KeySource::Kms) && passphrase.is_some() {
        bail!("this store's root key is wrapped by AWS KMS; moving it under a passphrase is not supported yet (start without --passphrase-file)");
    }
    if let Some(kms) = kms {
        if stored == Some(KeySource::Kms) && !key_given {
            return Ok(Startup::Unseal(UnsealMaterial::Kms, KeySource::Kms));
        }
        let root = new_or_given_root(
            args,
            store,
            key_given,
            existed,
            shared,
            "--kms-key-id",
            "wrap it with KMS",
        )?;
        match Node::wrap_root_under_kms(store, &root, kms) {
            Err(CoreError::WrongRootKey) => bail!("{}", CoreError::WrongRootKey),
            Err(e @ CoreError::KeyService { .. }) => bail!("{e}"),
            other => other.context("wrapping the root key with KMS")?,
        }
        eprintln!(
            "the root key is now wrapped by AWS KMS in the database: nodes unseal by asking KMS, \
             and a root key file is no longer needed to start (keep an offline copy)"
        );
        return Ok(Startup::Unseal(
            UnsealMaterial::RootKey(root),
            KeySource::Kms,
        ));
    }
    let Some(passphrase) = passphrase else {
        match stored {
            Some(source) if !key_given => return Ok(Startup::Sealed(source)),
            _ => {}
        }
        if shared && !key_given {
            bail!(
                "with a PostgreSQL database every node needs the same root key: set STRONGROOM_ROOT_KEY \
                 or --root-key-file (make one with `strongroom keygen`), or keep it sealed under a \
                 passphrase (--passphrase-file)"
            );
        }
        let source = if std::env::var("STRONGROOM_ROOT_KEY").is_ok() {
            KeySource::Env
        } else {
            KeySource::File
        };
        let root = load_root_key(args, existed)?;
        return Ok(Startup::Unseal(UnsealMaterial::RootKey(root), source));
    };
    if sealed_under_passphrase {
        return Ok(Startup::Unseal(
            UnsealMaterial::Passphrase(passphrase),
            KeySource::Passphrase,
        ));
    }
    let params = KdfParams {
        m_cost: args.passphrase_kdf_mib.clamp(19, 4096) * 1024,
        ..KdfParams::DEFAULT
    };
    let root = new_or_given_root(
        args,
        store,
        key_given,
        existed,
        shared,
        "--passphrase-file",
        "seal it under the passphrase",
    )?;
    match Node::seal_root_under_passphrase(store, &root, passphrase.as_bytes(), params) {
        Err(CoreError::WrongRootKey) => bail!("{}", CoreError::WrongRootKey),
        other => other.context("sealing the root key under the passphrase")?,
    }
    eprintln!(
        "the root key is now sealed under the passphrase in the database: nodes unseal with the \
         passphrase, and a root key file is no longer needed to start (keep an offline copy)"
    );
    Ok(Startup::Unseal(
        UnsealMaterial::RootKey(root),
        KeySource::Passphrase,
    ))
}

/// The root key to put under a passphrase or KMS: the one given (or this SQLite store's key
/// file), or a new one for a new store.
fn new_or_given_root(
    args: &ServeArgs,
    store: &dyn Storage,
    key_given: bool,
    existed: bool,
    shared: bool,
    flag: &str,
    what: &str,
) -> Result<Key<Root>> {
    if key_given || (existed && !shared) {
        load_root_key(args, true)
    } else if seal::store_has_root_key(store)? {
        bail!("this store already has a root key: give it (STRONGROOM_ROOT_KEY or --root-key-file) once with {flag} to {what}");
    } else {
        Ok(Key::<Root>::generate()?)
    }
}

/// Which backend `--database` names.
pub(crate) enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Database {
    pub(crate) fn parse(value: Option<&str>, data_dir: &Path) -> Result<Self> {
        match value {
            None => Ok(Database::Sqlite(data_dir.join("strongroom.db"))),
            Some(v) if v.starts_with("postgres://") || v.starts_with("postgresql://") => {
                Ok(Database::Postgres(v.to_string()))
            }
            Some(v) => match v.strip_prefix("sqlite://") {
                Some(path) if !path.is_empty() => Ok(Database::Sqlite(PathBuf::from(path))),
                _ => bail!(
                    "--database must be sqlite://PATH or postgres://USER@HOST:PORT/DB (got a value of another shape)"
                ),
            },
        }
    }
}

fn serve_store(
    args: ServeArgs,
    store: Arc<dyn Storage>,
    startup: Startup,
    kms: Option<Kms>,
) -> Result<ExitCode> {
    let shared_database = matches!(
        Database::parse(args.database.as_deref(), &args.data_dir),
        Ok(Database::Postgres(_))
    );
    if shared_database
        && !args
            .files
            .as_deref()
            .is_some_and(|f| f.starts_with("s3://"))
    {
        tracing::warn!(
            "files are kept on this node's disk while the database is shared: other nodes will not \
             find them; give every node the same --files s3://bucket/prefix"
        );
    }
    let settings = VaultSettings {
        data_key_cache: args.data_key_cache,
        files: Some(open_files(&args)?),
        webhook_allow_private: args.webhook_allow_private,
        webhook_retry_base_ms: args.webhook_retry_base_ms.clamp(1, 3_600_000) as i64,
        webhook_claim_ms: (args.webhook_claim_secs.clamp(1, 3600) * 1000) as i64,
        erasure_ledger: match &args.erasure_ledger {
            Some(location) => Some(args.s3.open(location, "--erasure-ledger")?),
            None => None,
        },
        file_piece_size: args.file_piece_bytes,
        max_file_size: args.max_file_size,
        upload_stale_ms: (args.upload_stale_secs as i64).saturating_mul(1000),
        lockout: LockoutPolicy {
            threshold: args.lockout_threshold.max(1),
            window_ms: (args.lockout_window_secs.max(1) as i64).saturating_mul(1000),
            lockout_ms: (args.lockout_secs as i64).saturating_mul(1000),
        },
        accept_audit_loss: args.accept_audit_loss,
        // One node owns a SQLite store: its entries go through a journal beside the log.
        audit_journal: match Database::parse(args.database.as_deref(), &args.data_dir) {
            Ok(Database::Sqlite(path)) => Some(SqliteStore::audit_journal_path(&path)),
            _ => None,
        },
        ..VaultSettings::default()
    };
    let node_id = match &args.node_id {
        Some(id) => id.clone(),
        None => format!("node-{}", hex_id()?),
    };
    let job_settings = JobSettings {
        node_id: node_id.clone(),
        interval: Duration::from_secs(args.job_interval_secs.max(1)),
        lease_ttl: Duration::from_secs(args.lease_ttl_secs.max(1)),
    };
    let (material, source) = match startup {
        Startup::Unseal(material, source) => (Some(material), source),
        Startup::Sealed(source) => (None, source),
    };
    let mut node = Node::sealed(
        store,
        Arc::new(SystemClock),
        settings,
        Some((jobs::standard_jobs(), job_settings)),
        source,
    );
    if let Some(kms) = kms {
        node = node.with_kms(kms);
    }
    let node = Arc::new(node);
    let material = match material {
        Some(_) if node.cluster_sealed()? => {
            tracing::warn!(
                "the cluster is sealed (an operator sealed it): starting sealed; unseal with `strongroom unseal`"
            );
            None
        }
        other => other,
    };
    let opened = match material {
        Some(material) => match node.unseal(material) {
            Ok(opened) => Some(opened),
            Err(
                e @ CoreError::KeyService {
                    transient: true, ..
                },
            ) => {
                tracing::warn!(error = %e, "KMS did not answer: serving sealed and asking again every few seconds");
                node.retry_kms_unseal();
                None
            }
            Err(e @ CoreError::KeyService { .. }) => bail!("{e}"),
            Err(CoreError::WrongRootKey) => bail!("{}", CoreError::WrongRootKey),
            Err(e @ CoreError::AuditLogDamaged(_)) => bail!(
                "{e}. Restore the audit log from a backup, or start once with --accept-audit-loss \
                 to record the loss in the log and go on"
            ),
            Err(other) => return Err(other).context("opening the vault"),
        },
        None => None,
    };
    match opened {
        Some(opened) => {
            tracing::info!(node_id, "background jobs started");
            announce(&args, opened)?;
        }
        None => {
            if args.new_admin_token {
                bail!("--new-admin-token needs the root key at start, and this node starts sealed");
            }
            match source {
                KeySource::Passphrase => tracing::warn!(
                    "the root key is sealed under a passphrase and none was given: serving sealed; \
                     unseal with `strongroom unseal --passphrase-file FILE`"
                ),
                KeySource::Shamir => tracing::warn!(
                    "the root key is split into unseal shares: serving sealed; unseal by \
                     submitting shares (`strongroom unseal --share-stdin`, once per share holder)"
                ),
                KeySource::Kms => tracing::warn!(
                    "serving sealed; unseal with `strongroom unseal --kms` once KMS answers"
                ),
                KeySource::File | KeySource::Env => {}
            }
        }
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Arc::new(
            strongroom_server::tls::Tls::load(strongroom_server::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: args.tls_client_ca.clone(),
            })
            .context("loading the TLS certificate")?,
        )),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server_settings = ServerSettings {
        max_body_bytes: args.max_body_bytes,
        request_timeout_ms: args.request_timeout_secs.max(1) * 1000,
        upload_idle_ms: args.upload_idle_secs.max(1) * 1000,
        trusted_proxies: strongroom_server::proxies::parse_trusted(&args.trusted_proxies)
            .map_err(anyhow::Error::msg)?,
        header_read_timeout_ms: args.header_read_timeout_secs.max(1) * 1000,
        idle_timeout_ms: args.idle_timeout_secs.max(1) * 1000,
        max_connections: args.max_connections.unwrap_or_else(default_max_connections),
        tls: tls.clone(),
    };
    let state = AppState::with_node(node.clone(), server_settings, &node_id);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let vault_api = match args.vault_listen {
            Some(vault_addr) => {
                let vault_listener = tokio::net::TcpListener::bind(vault_addr)
                    .await
                    .with_context(|| format!("listening on {vault_addr} (--vault-listen)"))?;
                let vault_addr = vault_listener.local_addr()?;
                println!("Vault-compatible API on {scheme}://{vault_addr}");
                tracing::info!(%vault_addr, "vault-compatible API serving");
                let mut stopped = stopped;
                Some(tokio::spawn(strongroom_server::serve_vault(
                    vault_listener,
                    state.clone(),
                    async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    },
                )))
            }
            None => None,
        };
        if let Some(tls) = tls.clone() {
            tokio::spawn(reload_on_sighup(tls));
        }
        println!("Listening on {scheme}://{addr}");
        tracing::info!(%addr, "strongroom serving");
        // One signal stops both listeners.
        let shutdown = async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        };
        strongroom_server::serve(listener, state, shutdown).await?;
        if let Some(task) = vault_api {
            task.await??;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    node.shutdown()
        .context("flushing the audit log at shutdown")?;
    tracing::info!("shut down cleanly");
    Ok(ExitCode::SUCCESS)
}

/// Prints what a person must see once after opening: a new store's admin token, and the
/// recovery token `--new-admin-token` asks for.
fn announce(args: &ServeArgs, opened: strongroom_core::Opened) -> Result<()> {
    if let Some(token) = &opened.bootstrap_token {
        println!(
            "Initialised a new Strongroom in {}",
            args.data_dir.display()
        );
        println!(
            "Admin token (shown once; store it safely): {}",
            token.expose_text()
        );
    }
    if args.new_admin_token {
        let recovery = Principal::system("recovery");
        let (info, token) = opened
            .vault
            .create_token(&recovery, "recovery-admin", Policy::operator(), None)
            .context("creating a recovery operator token")?;
        tracing::warn!(
            token_id = info.id,
            "a recovery operator token was created at start"
        );
        println!(
            "Admin token (shown once; store it safely): {}",
            token.expose_text()
        );
    }
    Ok(())
}

/// The open-file limit of this process (from `/proc/self/limits`) less 128 descriptors for
/// the database, files and logs; at least 64. 4,096 where the limit cannot be read.
fn default_max_connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<usize>().ok())
        });
    match soft {
        Some(limit) => limit.saturating_sub(128).max(64),
        None => 4096,
    }
}

/// Eight random bytes as hex, for a default node id.
fn hex_id() -> Result<String> {
    let bytes = strongroom_crypto::random::bytes::<8>()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Reads the TLS files again on every SIGHUP.
async fn reload_on_sighup(tls: Arc<strongroom_server::tls::Tls>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match tls.reload() {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(err) => {
                tracing::error!(error = %err, "TLS certificate not reloaded; the previous one stays in use")
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; draining requests");
}
