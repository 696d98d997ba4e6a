//! The optional configuration file (`--config FILE` or `STRONGROOM_CONFIG`): a TOML table whose
//! keys are the long flag names of `strongroom serve` with `_` for `-` (for example
//! `database = "postgres://…"`, `lockout_threshold = 5`). Each key becomes the default of its
//! flag through the flag's environment variable, so the order of precedence is: command-line
//! flag, then environment, then file. Unknown keys are refused by name, and the root key itself
//! may not be written in the file (give `root_key_file` or `STRONGROOM_ROOT_KEY`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// Keys the file may set: the serve flags.
const KEYS: &[&str] = &[
    "data_dir",
    "listen",
    "vault_listen",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
    "root_key_file",
    "log_format",
    "max_body_bytes",
    "request_timeout_secs",
    "lockout_threshold",
    "lockout_window_secs",
    "lockout_secs",
    "trusted_proxies",
    "header_read_timeout_secs",
    "idle_timeout_secs",
    "max_connections",
    "upload_idle_secs",
    "database",
    "db_pool_size",
    "db_connect_timeout_secs",
    "db_checkout_timeout_secs",
    "db_schema",
    "node_id",
    "job_interval_secs",
    "lease_ttl_secs",
    "data_key_cache",
    "files",
    "s3_endpoint",
    "s3_region",
    "s3_access_key_id",
    "s3_allow_http",
    "erasure_ledger",
    "webhook_allow_private",
    "max_file_size",
    "upload_stale_secs",
];

fn config_path() -> Option<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    for (i, arg) in args.iter().enumerate() {
        if arg == "--config" {
            return args.get(i + 1).map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("STRONGROOM_CONFIG").map(PathBuf::from)
}

/// Reads the configuration file, if one is named, into flag defaults.
pub fn apply() -> Result<()> {
    let Some(path) = config_path() else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    for (key, value) in &table {
        if key == "s3_secret_access_key" {
            bail!("{}: the S3 secret key may not be written in the configuration file; use STRONGROOM_S3_SECRET_ACCESS_KEY or AWS_SECRET_ACCESS_KEY", path.display());
        }
        if key == "root_key" {
            bail!("{}: the root key may not be written in the configuration file; use root_key_file or STRONGROOM_ROOT_KEY", path.display());
        }
        if !KEYS.contains(&key.as_str()) {
            bail!(
                "{}: unknown setting {key:?}; the settings are: {}",
                path.display(),
                KEYS.join(", ")
            );
        }
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => bail!(
                "{}: {key} must be a string, an integer or a boolean",
                path.display()
            ),
        };
        let env = format!("STRONGROOM_{}", key.to_ascii_uppercase());
        if std::env::var_os(&env).is_none() {
            std::env::set_var(env, text);
        }
    }
    Ok(())
}
