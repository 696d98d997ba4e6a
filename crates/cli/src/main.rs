//! The `strongroom` binary: `serve` runs the server; every other command is a client of a
//! running server's HTTP API (address and token from flags or the environment).

mod backup_cmd;
mod backup_io;
mod client;
mod commands;
mod config_file;
mod current_root;
mod files_cmd;
mod import_cmd;
mod import_sources;
mod init_cmd;
mod key_material;
mod kms_flags;
mod migrate;
mod move_root_cmd;
mod restore_cmd;
mod rotate_root_cmd;
mod s3_flags;
mod seal_cmd;
mod serve;
mod store_args;
mod webhook_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// What `--version` reports: the version, the commit, and what this build can talk to.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("STRONGROOM_COMMIT"),
    "; databases: sqlite, postgres; files: folder, s3; vault-compatible API: kv-v2, transit)"
);

/// Strongroom: encrypted, audited, per-user storage for app credentials and user data.
#[derive(Parser)]
#[command(name = "strongroom", version = VERSION, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    conn: client::Connection,
    /// A TOML file of serve settings (flag names with `_`); flags and environment win over it.
    #[arg(long, env = "STRONGROOM_CONFIG", global = true)]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (creates the data directory, root key and admin token on first start).
    ///
    /// Serves the API under /v1 (and the Vault-compatible API under /vault), the admin console
    /// at /ui (sign in with an operator or namespace token) and the API reference at /docs.
    Serve(Box<serve::ServeArgs>),
    /// Initialise a new store, choosing where its root key is kept: a key file (default), a
    /// passphrase, AWS KMS, or Shamir unseal shares (printed once).
    Init(init_cmd::InitArgs),
    /// Import an app's existing secrets (a SQLite query or JSON Lines; plaintext, base64 or
    /// Fernet columns) as credentials, skipping those that exist.
    Import(Box<import_cmd::ImportArgs>),
    /// Create and list namespaces (one per app or tenant).
    #[command(subcommand)]
    Namespace(commands::NamespaceCommand),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(commands::TokenCommand),
    /// Store, read, version and delete users' credentials.
    #[command(subcommand, name = "cred")]
    Credential(commands::CredentialCommand),
    /// List, export and erase the users of a namespace.
    #[command(subcommand)]
    Users(commands::UsersCommand),
    /// Collections and records (per-user or namespace-wide JSON documents).
    #[command(subcommand)]
    Records(commands::RecordsCommand),
    /// Upload, download (with ranges), list and delete users' encrypted files; make download
    /// links; set a namespace's file policy.
    #[command(subcommand)]
    Files(files_cmd::FilesCommand),
    /// Append and query users' events; set a namespace's event retention.
    #[command(subcommand)]
    Events(commands::EventsCommand),
    /// Webhook subscriptions: signed events pushed to the app, their deliveries, redelivery.
    #[command(subcommand)]
    Webhook(webhook_cmd::WebhookCommand),
    /// Rotate, rewrap and retire namespace keys.
    #[command(subcommand)]
    Keys(commands::KeysCommand),
    /// Query and verify the audit log.
    #[command(subcommand)]
    Audit(commands::AuditCommand),
    /// Back up a SQLite store while it serves (encrypted snapshot + file objects + manifest),
    /// or check a backup with `backup verify`.
    Backup(Box<backup_cmd::BackupArgs>),
    /// Restore a backup into an empty data directory, replaying the erasures made since; or
    /// replay erasures on a database restored by its own tools (`--replay-erasures`).
    Restore(Box<restore_cmd::RestoreArgs>),
    /// Copy a whole store between backends (e.g. SQLite → PostgreSQL), verified by checksums.
    Migrate(migrate::MigrateArgs),
    /// Print a new random root key (base64) for STRONGROOM_ROOT_KEY.
    Keygen,
    /// Seal the cluster (operators): every node drops every key from memory within a second
    /// and answers 503 `sealed` until it is unsealed.
    Seal,
    /// Unseal the node at --addr with the root key file or the passphrase (no token needed).
    Unseal(seal_cmd::UnsealArgs),
    /// Show whether the node at --addr is sealed (no token needed).
    SealStatus,
}

fn main() -> ExitCode {
    if let Err(err) = config_file::apply() {
        eprintln!("error: {err:#}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Init(args) => init_cmd::run(args),
        Command::Import(args) => import_cmd::run(&cli.conn, *args),
        Command::Namespace(c) => commands::namespace(&cli.conn, c),
        Command::Token(c) => commands::token(&cli.conn, c),
        Command::Credential(c) => commands::credential(&cli.conn, c),
        Command::Users(c) => commands::users(&cli.conn, c),
        Command::Records(c) => commands::records(&cli.conn, c),
        Command::Events(c) => commands::events(&cli.conn, c),
        Command::Webhook(c) => webhook_cmd::webhook(&cli.conn, c),
        Command::Files(c) => files_cmd::files(&cli.conn, c),
        Command::Keys(c) => commands::keys(&cli.conn, c),
        Command::Audit(c) => commands::audit(&cli.conn, c),
        Command::Migrate(args) => migrate::run(args),
        Command::Backup(args) => backup_cmd::run(*args),
        Command::Restore(args) => restore_cmd::run(*args),
        Command::Keygen => commands::keygen(),
        Command::Seal => seal_cmd::seal(&cli.conn),
        Command::Unseal(args) => seal_cmd::unseal(&cli.conn, args),
        Command::SealStatus => seal_cmd::seal_status(&cli.conn),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
