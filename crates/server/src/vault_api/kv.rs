//! KV v2 (`secret/`) over credentials: the KV path `<user id>/<name>` is the credential
//! `<name>` of that user; `data` is a `secret` credential (an `oauth2` credential reads back
//! as its token-set fields). `LIST secret/metadata/<user id>/` lists a user's credentials;
//! `LIST secret/metadata/` lists the namespace's users and needs `export` on top of `list`
//! (it names every user). Shapes, status codes and messages follow Vault's; ARCHITECTURE.md
//! lists the differences.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use strongroom_core::credentials::{CredentialData, PutOptions, VersionInfo};
use strongroom_core::raw_json::RawObject;
use strongroom_core::{CoreError, Op};

use super::{
    body_object, bool_field, uint_field, ListFlag, VaultCaller, VaultError, VaultReply, VaultResult,
};
use crate::state::AppState;

const CAS_MISMATCH: &str = "check-and-set parameter did not match the current version";

/// `<user id>/<name>` → (user id, name).
fn split_path(path: &str) -> Result<(String, String), VaultError> {
    let path = path.trim_end_matches('/');
    match path.split('/').collect::<Vec<_>>().as_slice() {
        [user, name] if !user.is_empty() && !name.is_empty() => {
            Ok((user.to_string(), name.to_string()))
        }
        parts => Err(VaultError::bad_request(format!(
            "Strongroom maps a KV path to <user id>/<credential name>; this path has {} segment(s)",
            parts.len()
        ))),
    }
}

/// Vault's time format for "not set".
fn time_or_empty(t: &Option<String>) -> &str {
    t.as_deref().unwrap_or("")
}

fn version_metadata(v: &VersionInfo) -> Value {
    json!({
        "created_time": v.created_at,
        "custom_metadata": null,
        "deletion_time": time_or_empty(&v.deleted_at),
        "destroyed": v.destroyed,
        "version": v.version,
    })
}

/// The `data` of a KV read: a secret's object as stored, or a token set's fields.
fn data_text(data: &CredentialData) -> Result<String, VaultError> {
    let text = match data {
        CredentialData::Secret(secret) => Ok(secret.data.as_str().to_string()),
        CredentialData::Oauth2(set) => serde_json::to_string(set),
    };
    text.map_err(|e| CoreError::Internal(e.to_string()).into())
}

/// A conflict on a KV write is Vault's check-and-set message.
fn write_error(err: crate::error::ApiError) -> VaultError {
    match err {
        crate::error::ApiError::Core(CoreError::Conflict(_)) => {
            VaultError::bad_request(CAS_MISMATCH)
        }
        other => other.into(),
    }
}

#[derive(Deserialize)]
pub(crate) struct VersionQuery {
    version: Option<String>,
}

pub(crate) async fn read(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(path): Path<String>,
    Query(q): Query<VersionQuery>,
) -> VaultResult {
    let (user, name) = split_path(&path)?;
    let version = match q.version.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => return Err(VaultError::bad_request("version: must be a version number")),
        },
    };
    let VaultCaller { who, namespace } = caller;
    let read = app
        .run(move |v| v.read_credential_version(&who, &namespace, &user, &name, version))
        .await?;
    let metadata = version_metadata(&read.metadata);
    match read.data {
        Some(data) => Ok(VaultReply::Data(format!(
            r#"{{"data":{},"metadata":{metadata}}}"#,
            data_text(&data)?
        ))),
        // Vault answers a deleted or destroyed version with 404 and its metadata.
        None => Ok(VaultReply::DataWithStatus(
            StatusCode::NOT_FOUND,
            format!(r#"{{"data":null,"metadata":{metadata}}}"#),
        )),
    }
}

/// A write's body: `data` kept as sent, `options.cas`.
#[derive(Deserialize)]
struct WriteBody<'a> {
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    options: Option<Value>,
}

fn cas_option(options: &Option<Value>) -> Result<Option<u64>, VaultError> {
    match options {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => uint_field(o, "cas"),
        Some(_) => Err(VaultError::bad_request("options: must be an object")),
    }
}

fn written(info: &VersionInfo) -> Value {
    version_metadata(info)
}

pub(crate) async fn write(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(path): Path<String>,
    body: Bytes,
) -> VaultResult {
    let (user, name) = split_path(&path)?;
    body_object(&body)?;
    let text = std::str::from_utf8(&body).unwrap_or("{}");
    let text = if text.trim().is_empty() || text.trim() == "null" {
        "{}"
    } else {
        text
    };
    let parsed: WriteBody<'_> = serde_json::from_str(text)
        .map_err(|_| VaultError::bad_request("failed to parse JSON input"))?;
    let cas = cas_option(&parsed.options)?;
    let data = match parsed.data {
        None => return Err(VaultError::bad_request("no data provided")),
        Some(raw) => RawObject::parse(raw.get())
            .map_err(|_| VaultError::bad_request("data: must be a JSON object"))?,
    };
    let data = CredentialData::Secret(strongroom_core::credentials::SecretData { data });
    let VaultCaller { who, namespace } = caller;
    let options = PutOptions {
        cas,
        max_versions: None,
    };
    let info = app
        .run(move |v| v.put_credential(&who, &namespace, &user, &name, &data, options))
        .await
        .map_err(write_error)?;
    VaultReply::data(&written(&info))
}

pub(crate) async fn patch(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> VaultResult {
    let merge = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().map(str::trim) == Some("application/merge-patch+json")
        });
    if !merge {
        return Err(VaultError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "PATCH requires Content-Type of application/merge-patch+json",
        ));
    }
    let (user, name) = split_path(&path)?;
    let body = body_object(&body)?;
    let cas = cas_option(&body.get("options").cloned())?;
    let patch = match body.get("data") {
        Some(Value::Object(p)) => p.clone(),
        None | Some(Value::Null) => return Err(VaultError::bad_request("no data provided")),
        Some(_) => return Err(VaultError::bad_request("data: must be a JSON object")),
    };
    let VaultCaller { who, namespace } = caller;
    let info = app
        .run(move |v| v.patch_secret(&who, &namespace, &user, &name, &patch, cas))
        .await
        .map_err(write_error)?;
    VaultReply::data(&written(&info))
}

pub(crate) async fn delete_latest(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(path): Path<String>,
) -> VaultResult {
    let (user, name) = split_path(&path)?;
    let VaultCaller { who, namespace } = caller;
    absent_is_done(
        app.run(move |v| v.delete_credential_versions(&who, &namespace, &user, &name, &[]))
            .await,
    )
}

/// Vault answers 204 to deleting, undeleting or destroying what is not there.
fn absent_is_done<T>(result: Result<T, crate::error::ApiError>) -> VaultResult {
    match result {
        Ok(_) | Err(crate::error::ApiError::Core(CoreError::NotFound(_))) => {
            Ok(VaultReply::NoContent)
        }
        Err(other) => Err(other.into()),
    }
}

/// `{"versions": [1, 2]}` (numbers or numeric strings, as Vault takes them).
fn versions(body: &Bytes) -> Result<Vec<u64>, VaultError> {
    let body = body_object(body)?;
    let bad = || VaultError::bad_request("versions: must be a list of version numbers");
    match body.get("versions") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Number(n) => n.as_u64().ok_or_else(bad),
                Value::String(s) => s.parse().map_err(|_| bad()),
                _ => Err(bad()),
            })
            .collect(),
        None | Some(Value::Null) => Err(VaultError::bad_request("no version number provided")),
        Some(_) => Err(bad()),
    }
}

/// A vault call over some versions of one credential (delete, undelete, destroy).
type VersionsOp = fn(
    &strongroom_core::Vault,
    &strongroom_core::Principal,
    &str,
    &str,
    &str,
    &[u64],
) -> strongroom_core::CoreResult<u64>;

/// `{"versions": […]}` on `<user id>/<name>`, answered 204 as Vault does.
async fn on_versions(
    app: AppState,
    caller: VaultCaller,
    path: String,
    body: Bytes,
    op: VersionsOp,
) -> VaultResult {
    let (user, name) = split_path(&path)?;
    let list = versions(&body)?;
    let VaultCaller { who, namespace } = caller;
    absent_is_done(
        app.run(move |v| op(v, &who, &namespace, &user, &name, &list))
            .await,
    )
}

pub(crate) async fn delete_versions(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(path): Path<String>,
    body: Bytes,
) -> VaultResult {
    on_versions(app, caller, path, body, |v, who, ns, user, name, list| {
        v.delete_credential_versions(who, ns, user, name, list)
    })
    .await
}

pub(crate) async fn undelete_versions(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(path): Path<String>,
    body: Bytes,
) -> VaultResult {
    on_versions(app, caller, path, body, |v, who, ns, user, name, list| {
        v.undelete_credential_versions(who, ns, user, name, list)
    })
    .await
}

pub(crate) async fn destroy_versions(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(path): Path<String>,
    body: Bytes,
) -> VaultResult {
    on_versions(app, caller, path, body, |v, who, ns, user, name, list| {
        v.destroy_credential_versions(who, ns, user, name, list)
    })
    .await
}

/// `LIST secret/metadata/`: the namespace's users, as folders. Naming every user of an app is
/// an export-level act: it needs `export` besides `list`.
pub(crate) async fn list_root(
    State(app): State<AppState>,
    caller: VaultCaller,
    ListFlag(listing): ListFlag,
) -> VaultResult {
    if !listing {
        return Err(VaultError::bad_request(
            "Strongroom maps a KV path to <user id>/<credential name>; LIST this path to see the users",
        ));
    }
    let VaultCaller { who, namespace } = caller;
    let users = app
        .run(move |v| {
            if !who.may(Op::UserExport, &namespace) {
                v.check_access(&who, Op::UserExport, &namespace)?;
            }
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = v.list_users(&who, &namespace, cursor.as_deref(), 1000)?;
                all.extend(page.items.into_iter().map(|u| format!("{}/", u.user)));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => return Ok(all),
                }
            }
        })
        .await?;
    keys_reply(users)
}

fn keys_reply(mut keys: Vec<String>) -> VaultResult {
    if keys.is_empty() {
        return Err(VaultError::not_found());
    }
    keys.sort();
    VaultReply::data(&json!({ "keys": keys }))
}

pub(crate) async fn metadata(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(path): Path<String>,
    ListFlag(listing): ListFlag,
) -> VaultResult {
    let VaultCaller { who, namespace } = caller;
    if listing {
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() {
            return list_root(State(app), VaultCaller { who, namespace }, ListFlag(true)).await;
        }
        if trimmed.contains('/') {
            // Credentials hold no folders.
            return Err(VaultError::not_found());
        }
        let user = trimmed.to_string();
        let names = app
            .run(move |v| {
                let mut all = Vec::new();
                let mut cursor: Option<String> = None;
                loop {
                    let page =
                        v.list_credentials(&who, &namespace, &user, cursor.as_deref(), 1000)?;
                    all.extend(page.items.into_iter().map(|c| c.name));
                    match page.next_cursor {
                        Some(next) => cursor = Some(next),
                        None => return Ok(all),
                    }
                }
            })
            .await?;
        return keys_reply(names);
    }
    let (user, name) = split_path(&path)?;
    let meta = app
        .run(move |v| v.credential_metadata(&who, &namespace, &user, &name))
        .await?;
    let versions: Map<String, Value> = meta
        .versions
        .iter()
        .map(|v| {
            (
                v.version.to_string(),
                json!({
                    "created_time": v.created_at,
                    "deletion_time": time_or_empty(&v.deleted_at),
                    "destroyed": v.destroyed,
                }),
            )
        })
        .collect();
    VaultReply::data(&json!({
        "cas_required": false,
        "created_time": meta.created_at,
        "current_metadata_version": 0,
        "current_version": meta.current_version,
        "custom_metadata": null,
        "delete_version_after": "0s",
        "max_versions": meta.max_versions,
        "metadata_cas_required": false,
        "oldest_version": meta.oldest_version,
        "updated_time": meta.updated_at,
        "versions": versions,
    }))
}

/// Settings Strongroom does not keep: refused unless they ask for what it does anyway.
fn refuse_unsupported(body: &Map<String, Value>) -> Result<(), VaultError> {
    if bool_field(body, "cas_required")? == Some(true) {
        return Err(VaultError::bad_request(
            "cas_required is not supported by Strongroom: send options.cas on each write instead",
        ));
    }
    match body.get("delete_version_after") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if matches!(s.as_str(), "" | "0" | "0s") => {}
        Some(Value::Number(n)) if n.as_u64() == Some(0) => {}
        Some(_) => {
            return Err(VaultError::bad_request(
                "delete_version_after is not supported by Strongroom: only 0s (keep versions until deleted)",
            ))
        }
    }
    match body.get("custom_metadata") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) if m.is_empty() => Ok(()),
        Some(_) => Err(VaultError::bad_request(
            "custom_metadata is not supported by Strongroom (it would be stored in the clear)",
        )),
    }
}

pub(crate) async fn set_metadata(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(path): Path<String>,
    body: Bytes,
) -> VaultResult {
    let (user, name) = split_path(&path)?;
    let body = body_object(&body)?;
    refuse_unsupported(&body)?;
    let max = uint_field(&body, "max_versions")?.filter(|m| *m > 0);
    let VaultCaller { who, namespace } = caller;
    match max {
        Some(max) => {
            let max = u32::try_from(max)
                .map_err(|_| VaultError::bad_request("max_versions: must be between 1 and 100"))?;
            app.run(move |v| v.set_credential_max_versions(&who, &namespace, &user, &name, max))
                .await?;
        }
        // Nothing to change; the credential must exist all the same.
        None => {
            app.run(move |v| v.credential_metadata(&who, &namespace, &user, &name))
                .await?;
        }
    }
    Ok(VaultReply::NoContent)
}

pub(crate) async fn delete_all(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(path): Path<String>,
) -> VaultResult {
    let (user, name) = split_path(&path)?;
    let VaultCaller { who, namespace } = caller;
    absent_is_done(
        app.run(move |v| v.delete_credential(&who, &namespace, &user, &name))
            .await,
    )
}

pub(crate) async fn config(State(app): State<AppState>, caller: VaultCaller) -> VaultResult {
    let VaultCaller { who, namespace } = caller;
    // Reading the mount's configuration is a read of the namespace's settings.
    let max_versions = app
        .run(move |v| {
            v.check_access(&who, Op::CredentialMetadata, &namespace)?;
            Ok(v.default_max_versions())
        })
        .await?;
    VaultReply::data(&json!({
        "cas_required": false,
        "delete_version_after": "0s",
        "max_versions": max_versions,
        "metadata_cas_required": false,
    }))
}

pub(crate) async fn set_config(
    State(app): State<AppState>,
    caller: VaultCaller,
    body: Bytes,
) -> VaultResult {
    let body = body_object(&body)?;
    refuse_unsupported(&body)?;
    let default = u64::from(app.run(|v| Ok(v.default_max_versions())).await?);
    if let Some(max) = uint_field(&body, "max_versions")? {
        if max != 0 && max != default {
            return Err(VaultError::bad_request(format!(
                "max_versions: the default is the server's --default-max-versions ({default}); set max_versions per secret in its metadata instead"
            )));
        }
    }
    let VaultCaller { who, namespace } = caller;
    app.run(move |v| v.check_access(&who, Op::KeysStatus, &namespace))
        .await?;
    Ok(VaultReply::NoContent)
}
