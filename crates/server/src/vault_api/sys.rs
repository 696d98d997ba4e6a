//! The parts of Vault's `sys/` and `auth/token/` that clients call before anything else:
//! health (also `HEAD`), seal status, the mount table and the CLI's mount preflight, and the
//! token's own lookup (its policies are named after its capabilities).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use axum::body::Bytes;
use strongroom_core::seal::{SealStatus, UnsealMaterial};
use zeroize::Zeroizing;

use super::{body_object, VaultCaller, VaultError, VaultPrincipal, VaultReply, VaultResult};
use crate::state::AppState;

/// The version clients see: Strongroom's, marked as such.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+strongroom");

fn now_secs() -> i64 {
    use strongroom_core::clock::Clock;
    strongroom_core::SystemClock.now_ms() / 1000
}

async fn healthy(app: &AppState) -> bool {
    app.run(|v| v.ping()).await.is_ok()
}

fn health_body(sealed: bool) -> Value {
    json!({
        "initialized": true,
        "sealed": sealed,
        "standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": now_secs(),
        "version": VERSION,
        "cluster_name": "strongroom",
        "cluster_id": "",
    })
}

/// `GET sys/health`: 200 while the node can serve audited requests, else 503 (as Vault answers
/// a node that cannot serve). Not wrapped in the envelope, and needs no token.
pub(crate) async fn health(State(app): State<AppState>) -> VaultReply {
    let status = if healthy(&app).await {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    VaultReply::Bare(status, health_body(app.node.is_sealed()))
}

/// `HEAD sys/health`: the status alone.
pub(crate) async fn health_head(State(app): State<AppState>) -> Response {
    let status = if healthy(&app).await {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = status.into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET sys/leader` (read by `vault operator unseal` and `status`): Strongroom nodes are all
/// active and elect no leader, which Vault clients read as HA not enabled. Answers sealed too.
pub(crate) async fn leader() -> VaultReply {
    VaultReply::Bare(
        StatusCode::OK,
        json!({
            "ha_enabled": false,
            "is_self": false,
            "active_time": "0001-01-01T00:00:00Z",
            "leader_address": "",
            "leader_cluster_address": "",
            "performance_standby": false,
            "performance_standby_last_remote_wal": 0,
        }),
    )
}

/// Vault's seal-status body for this node: Shamir stores show their threshold, share count
/// and progress; other sources show a scheme of one.
fn seal_status_body(status: &SealStatus) -> Value {
    let (t, n, progress, nonce) = match &status.shamir {
        Some(s) => (
            s.threshold,
            s.shares,
            s.progress,
            s.nonce.clone().unwrap_or_default(),
        ),
        None => (1, 1, 0, String::new()),
    };
    let kind = match status.key_source {
        strongroom_core::seal::KeySource::Kms => "awskms",
        _ => "shamir",
    };
    json!({
        "type": kind,
        "initialized": true,
        "sealed": status.sealed,
        "t": t,
        "n": n,
        "progress": progress,
        "nonce": nonce,
        "version": VERSION,
        "migration": false,
        "cluster_name": "strongroom",
        "cluster_id": "",
        "recovery_seal": false,
        "storage_type": "strongroom",
    })
}

pub(crate) async fn seal_status(State(app): State<AppState>) -> VaultResult {
    let status = app.run_node(|n| n.status()).await?;
    Ok(VaultReply::Bare(StatusCode::OK, seal_status_body(&status)))
}

/// `PUT sys/seal` (`vault operator seal`): an operator seals the cluster.
pub(crate) async fn seal(
    State(app): State<AppState>,
    VaultPrincipal(who): VaultPrincipal,
) -> VaultResult {
    app.run_node(move |n| n.seal(&who)).await?;
    Ok(VaultReply::NoContent)
}

/// `PUT sys/unseal` (`vault operator unseal`): `key` is a share on a store split into shares,
/// else the root key (base64); `reset` forgets the shares so far. No token, as in Vault.
pub(crate) async fn unseal(State(app): State<AppState>, body: Bytes) -> VaultResult {
    let body = body_object(&body)?;
    let reset = match body.get("reset") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(VaultError::bad_request("reset: must be a boolean")),
    };
    let key = match body.get("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(Zeroizing::new(k.clone())),
        Some(_) => return Err(VaultError::bad_request("key: must be a string")),
    };
    if key.is_none() && !reset {
        return Err(VaultError::bad_request("missing required 'key' parameter"));
    }
    let status = app
        .run_node(move |n| {
            if reset {
                n.reset_shares();
            }
            if let Some(key) = key {
                if n.status()?.shamir.is_some() {
                    n.submit_share(&key)?;
                } else {
                    n.unseal(UnsealMaterial::root_key_text(&key)?)?;
                }
            }
            n.status()
        })
        .await?;
    Ok(VaultReply::Bare(StatusCode::OK, seal_status_body(&status)))
}

fn mount(path: &str, kind: &str, description: &str) -> Value {
    let options = if kind == "kv" {
        json!({"version": "2"})
    } else {
        Value::Null
    };
    json!({
        "accessor": format!("{kind}_strongroom"),
        "config": {"default_lease_ttl": 0, "force_no_cache": false, "max_lease_ttl": 0},
        "description": description,
        "external_entropy_access": false,
        "local": false,
        "options": options,
        "path": path,
        "plugin_version": "",
        "running_plugin_version": "",
        "running_sha256": "",
        "seal_wrap": false,
        "type": kind,
        "uuid": "",
    })
}

fn secret_mount() -> Value {
    mount(
        "secret/",
        "kv",
        "per-user credentials: <user id>/<name> (Strongroom)",
    )
}

fn transit_mount() -> Value {
    mount(
        "transit/",
        "transit",
        "the namespace's transit keys (Strongroom)",
    )
}

/// `GET sys/mounts`: the two mounts (as Vault answers: both at the top level and in `data`).
pub(crate) async fn mounts(_caller: VaultCaller) -> VaultReply {
    let table = json!({"secret/": secret_mount(), "transit/": transit_mount()});
    let mut body = table.clone();
    body["data"] = table;
    body["request_id"] = Value::String(String::new());
    VaultReply::Bare(StatusCode::OK, body)
}

/// `GET sys/internal/ui/mounts/<path>`: which mount a path is in (the CLI's preflight for
/// `kv` commands; without it the CLI would fall back to KV v1).
pub(crate) async fn ui_mount(_caller: VaultCaller, Path(path): Path<String>) -> VaultResult {
    let first = path.split('/').next().unwrap_or_default();
    let found = match first {
        "secret" => secret_mount(),
        "transit" => transit_mount(),
        _ => {
            return Err(VaultError::new(
                StatusCode::FORBIDDEN,
                "preflight capability check returned 403: Strongroom serves the secret/ and transit/ mounts",
            ))
        }
    };
    VaultReply::data(&found)
}

/// `auth/token/lookup-self`: the token as Vault describes one; policies are its capabilities.
pub(crate) async fn lookup_self(State(app): State<AppState>, caller: VaultCaller) -> VaultResult {
    let VaultCaller { who, .. } = caller;
    let me = app.run(move |v| v.token_self(&who)).await?;
    let policies: Vec<&str> = me.policy.capabilities.iter().map(|c| c.as_str()).collect();
    VaultReply::data(&json!({
        "accessor": "",
        "creation_time": 0,
        "creation_ttl": 0,
        "display_name": format!("token-{}", me.token_id),
        "entity_id": "",
        "expire_time": null,
        "explicit_max_ttl": 0,
        "id": me.token_id,
        "issue_time": "",
        "meta": {"namespaces": me.policy.namespaces.join(",")},
        "num_uses": 0,
        "orphan": true,
        "path": "auth/token/create",
        "policies": policies,
        "renewable": false,
        "ttl": 0,
        "type": "service",
    }))
}
