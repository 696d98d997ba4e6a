//! Sealing and unsealing this node: `POST /v1/sys/seal` (operators; seals the cluster),
//! `POST /v1/sys/unseal` (no token — a sealed node can check none — but the key material
//! itself) and `GET /v1/sys/seal-status` (no token; names no token and no key).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use strongroom_core::seal::{SealStatus, UnsealMaterial};
use strongroom_core::CoreError;
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::extract::{ApiJson, Authenticated};
use crate::state::AppState;

pub(crate) async fn seal_status(State(app): State<AppState>) -> Result<Json<SealStatus>, ApiError> {
    Ok(Json(app.run_node(|n| n.status()).await?))
}

/// Stores the seal mark and drops every key; the other nodes follow within a second.
pub(crate) async fn seal(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
) -> Result<Json<SealStatus>, ApiError> {
    let status = app
        .run_node(move |n| {
            n.seal(&who)?;
            n.status()
        })
        .await?;
    Ok(Json(status))
}

/// At most one of key, passphrase, share and kms (none only with `reset`). No `Debug`: it carries
/// key material.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnsealBody {
    /// The root key, base64.
    key: Option<Zeroizing<String>>,
    /// The passphrase the store's root key is sealed under.
    passphrase: Option<Zeroizing<String>>,
    /// One unseal share (when the root key is split into shares).
    share: Option<Zeroizing<String>>,
    /// Forget the shares submitted so far (before this one, if any).
    #[serde(default)]
    reset: bool,
    /// Unwrap the root key with this node's KMS.
    #[serde(default)]
    kms: bool,
}

/// What one unseal request brings.
enum Brought {
    Material(UnsealMaterial),
    Share(Zeroizing<String>),
    Nothing,
}

fn brought(body: UnsealBody) -> Result<Brought, ApiError> {
    let invalid = || {
        ApiError::Core(CoreError::Invalid {
            field: "key",
            rule: "give exactly one of key (the root key, base64), passphrase (not empty), share and kms (true), or reset alone".into(),
        })
    };
    if body.kms {
        return match (&body.key, &body.passphrase, &body.share) {
            (None, None, None) => Ok(Brought::Material(UnsealMaterial::Kms)),
            _ => Err(invalid()),
        };
    }
    match (body.key, body.passphrase, body.share) {
        (Some(key), None, None) => Ok(Brought::Material(
            UnsealMaterial::root_key_text(&key).map_err(ApiError::Core)?,
        )),
        (None, Some(passphrase), None) if !passphrase.is_empty() => {
            Ok(Brought::Material(UnsealMaterial::Passphrase(passphrase)))
        }
        (None, None, Some(share)) => Ok(Brought::Share(share)),
        (None, None, None) if body.reset => Ok(Brought::Nothing),
        _ => Err(invalid()),
    }
}

#[derive(Serialize)]
pub(crate) struct Unsealed {
    #[serde(flatten)]
    status: SealStatus,
    /// Only when this unseal opened a brand-new store: its first operator token, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    bootstrap_token: Option<String>,
}

pub(crate) async fn unseal(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<UnsealBody>,
) -> Result<Json<Unsealed>, ApiError> {
    let reset = body.reset;
    let brought = brought(body)?;
    let unsealed = app
        .run_node(move |n| {
            if reset {
                n.reset_shares();
            }
            let opened = match brought {
                Brought::Material(material) => Some(n.unseal(material)?),
                Brought::Share(share) => n.submit_share(&share)?,
                Brought::Nothing => None,
            };
            Ok(Unsealed {
                status: n.status()?,
                bootstrap_token: opened
                    .and_then(|o| o.bootstrap_token)
                    .map(|t| t.expose_text().to_string()),
            })
        })
        .await;
    if let Err(ApiError::Core(CoreError::WrongRootKey)) = &unsealed {
        tracing::warn!("an unseal was refused: the key material does not open this store");
    }
    Ok(Json(unsealed?))
}
