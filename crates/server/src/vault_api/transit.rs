//! Transit (`transit/`) over the namespace's transit keys: keys, encrypt, decrypt, rewrap,
//! data keys — single items or `batch_input` (up to 1,000; any failed item makes the whole
//! answer a 400 that still carries every item's result, as Vault does).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};
use strongroom_core::transit::{CiphertextItem, EncryptItem, NewTransitKey, TransitKeyConfig};
use zeroize::Zeroizing;

use super::{
    body_object, bool_field, uint_field, ListFlag, VaultCaller, VaultError, VaultReply, VaultResult,
};
use crate::state::AppState;

/// An optional base64 field.
fn b64_field(item: &Map<String, Value>, field: &str) -> Result<Option<Vec<u8>>, String> {
    match item.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => STANDARD
            .decode(s)
            .map(Some)
            .map_err(|_| format!("{field}: must be base64")),
        Some(_) => Err(format!("{field}: must be a base64 string")),
    }
}

fn version_field(item: &Map<String, Value>) -> Result<Option<u32>, String> {
    match item.get("key_version") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .map(Some)
            .ok_or_else(|| "key_version: must be a version number".to_string()),
        Some(_) => Err("key_version: must be a version number".into()),
    }
}

fn reference(item: &Map<String, Value>) -> Value {
    match item.get("reference") {
        Some(Value::String(s)) => Value::String(s.clone()),
        _ => Value::String(String::new()),
    }
}

/// Refusals that apply to every item: what Strongroom does not do.
fn refuse_unsupported(item: &Map<String, Value>) -> Result<(), String> {
    if item.get("nonce").is_some_and(|n| !n.is_null() && n != "") {
        return Err(
            "nonce: convergent encryption is not supported by Strongroom (nonces are random)"
                .into(),
        );
    }
    Ok(())
}

/// The items of a request: `batch_input`, or the body itself as one item.
fn items(body: &Map<String, Value>) -> Result<(bool, Vec<Map<String, Value>>), VaultError> {
    match body.get("batch_input") {
        None | Some(Value::Null) => Ok((false, vec![body.clone()])),
        Some(Value::Array(list)) => {
            let items = list
                .iter()
                .map(|v| match v {
                    Value::Object(m) => Ok(m.clone()),
                    _ => Err(VaultError::bad_request(
                        "batch_input: every item must be an object",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if items.is_empty() {
                return Err(VaultError::bad_request(
                    "batch_input: must hold at least one item",
                ));
            }
            Ok((true, items))
        }
        Some(_) => Err(VaultError::bad_request(
            "batch_input: must be a list of objects",
        )),
    }
}

/// Per-item results into Vault's answer: the single result's fields, or `batch_results`
/// (400 with every result when any item failed).
fn answer(batch: bool, results: Vec<(Value, Result<Value, String>)>) -> VaultResult {
    if !batch {
        let (_, result) = results
            .into_iter()
            .next()
            .ok_or_else(|| VaultError::bad_request("the request holds no item"))?;
        return match result {
            Ok(v) => VaultReply::data(&v),
            Err(message) => Err(VaultError::bad_request(message)),
        };
    }
    let failed = results.iter().any(|(_, r)| r.is_err());
    let list: Vec<Value> = results
        .into_iter()
        .map(|(reference, r)| match r {
            Ok(Value::Object(mut m)) => {
                m.insert("reference".into(), reference);
                Value::Object(m)
            }
            Ok(other) => other,
            Err(message) => json!({"error": message, "reference": reference}),
        })
        .collect();
    let data = json!({ "batch_results": list }).to_string();
    if failed {
        Ok(VaultReply::DataWithStatus(StatusCode::BAD_REQUEST, data))
    } else {
        Ok(VaultReply::Data(data))
    }
}

pub(crate) async fn list_keys(
    State(app): State<AppState>,
    caller: VaultCaller,
    ListFlag(listing): ListFlag,
) -> VaultResult {
    if !listing {
        return Err(VaultError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "LIST this path to see the keys",
        ));
    }
    let VaultCaller { who, namespace } = caller;
    let keys = app.run(move |v| v.transit_keys(&who, &namespace)).await?;
    if keys.is_empty() {
        return Err(VaultError::not_found());
    }
    VaultReply::data(&json!({ "keys": keys }))
}

pub(crate) async fn read_key(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(name): Path<String>,
) -> VaultResult {
    let VaultCaller { who, namespace } = caller;
    let info = app
        .run(move |v| v.transit_key(&who, &namespace, &name))
        .await?;
    VaultReply::data(&info)
}

pub(crate) async fn create_key(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(name): Path<String>,
    body: Bytes,
) -> VaultResult {
    let body = body_object(&body)?;
    let kind = match body.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(VaultError::bad_request("type: must be a string")),
    };
    let new = NewTransitKey {
        kind,
        derived: bool_field(&body, "derived")?.unwrap_or(false),
        convergent_encryption: bool_field(&body, "convergent_encryption")?.unwrap_or(false),
        exportable: bool_field(&body, "exportable")?.unwrap_or(false),
        allow_plaintext_backup: bool_field(&body, "allow_plaintext_backup")?.unwrap_or(false),
    };
    let VaultCaller { who, namespace } = caller;
    let info = app
        .run(move |v| v.transit_create_key(&who, &namespace, &name, &new))
        .await?;
    VaultReply::data(&info)
}

pub(crate) async fn delete_key(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(name): Path<String>,
) -> VaultResult {
    let VaultCaller { who, namespace } = caller;
    app.run(move |v| v.transit_delete_key(&who, &namespace, &name))
        .await?;
    Ok(VaultReply::NoContent)
}

pub(crate) async fn rotate(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(name): Path<String>,
) -> VaultResult {
    let VaultCaller { who, namespace } = caller;
    let info = app
        .run(move |v| v.transit_rotate(&who, &namespace, &name))
        .await?;
    VaultReply::data(&info)
}

pub(crate) async fn configure(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(name): Path<String>,
    body: Bytes,
) -> VaultResult {
    let body = body_object(&body)?;
    for (field, what) in [
        ("exportable", "exportable keys"),
        ("allow_plaintext_backup", "plaintext key backups"),
    ] {
        if bool_field(&body, field)? == Some(true) {
            return Err(VaultError::bad_request(format!(
                "{field}: {what} are not supported by Strongroom: keys never leave the server"
            )));
        }
    }
    if uint_field(&body, "auto_rotate_period")?.is_some_and(|p| p > 0) {
        return Err(VaultError::bad_request(
            "auto_rotate_period is not supported by Strongroom: rotate with transit/keys/<name>/rotate",
        ));
    }
    let small = |field: &str| -> Result<Option<u32>, VaultError> {
        uint_field(&body, field)?
            .map(|v| {
                u32::try_from(v).map_err(|_| VaultError::bad_request(format!("{field}: too large")))
            })
            .transpose()
    };
    let config = TransitKeyConfig {
        min_decryption_version: small("min_decryption_version")?,
        min_encryption_version: small("min_encryption_version")?,
        deletion_allowed: bool_field(&body, "deletion_allowed")?,
    };
    let VaultCaller { who, namespace } = caller;
    let info = app
        .run(move |v| v.transit_configure(&who, &namespace, &name, &config))
        .await?;
    VaultReply::data(&info)
}

pub(crate) async fn encrypt(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(name): Path<String>,
    body: Bytes,
) -> VaultResult {
    let body = body_object(&body)?;
    let (batch, raw) = items(&body)?;
    if !batch && body.get("plaintext").is_none_or(Value::is_null) {
        return Err(VaultError::bad_request("missing plaintext to encrypt"));
    }
    // Items that do not parse are answered in place; the rest go to the vault in one call.
    let mut parsed: Vec<Result<EncryptItem, String>> = Vec::with_capacity(raw.len());
    for item in &raw {
        parsed.push((|| {
            refuse_unsupported(item)?;
            let plaintext = match item.get("plaintext") {
                Some(Value::String(s)) => STANDARD
                    .decode(s)
                    .map_err(|_| "plaintext: must be base64".to_string())?,
                None | Some(Value::Null) => return Err("missing plaintext to encrypt".into()),
                Some(_) => return Err("plaintext: must be a base64 string".into()),
            };
            Ok(EncryptItem {
                plaintext: Zeroizing::new(plaintext),
                context: b64_field(item, "context")?,
                associated_data: b64_field(item, "associated_data")?,
                key_version: version_field(item)?,
            })
        })());
    }
    let good: Vec<EncryptItem> = parsed
        .iter_mut()
        .filter_map(|p| p.as_mut().ok().map(std::mem::take))
        .collect();
    let VaultCaller { who, namespace } = caller;
    let done = if good.is_empty() {
        Vec::new()
    } else {
        app.run(move |v| v.transit_encrypt(&who, &namespace, &name, &good))
            .await?
    };
    let mut done = done.into_iter();
    let results = raw
        .iter()
        .zip(parsed)
        .map(|(item, p)| {
            let result = match p {
                Err(e) => Err(e),
                Ok(_) => match done.next() {
                    Some(Ok(e)) => {
                        Ok(json!({"ciphertext": e.ciphertext, "key_version": e.key_version}))
                    }
                    Some(Err(e)) => Err(e),
                    None => Err("the item was not processed".into()),
                },
            };
            (reference(item), result)
        })
        .collect();
    answer(batch, results)
}

fn ciphertext_items(raw: &[Map<String, Value>]) -> Vec<Result<CiphertextItem, String>> {
    raw.iter()
        .map(|item| {
            refuse_unsupported(item)?;
            let ciphertext = match item.get("ciphertext") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                None | Some(Value::Null) => return Err("missing ciphertext".into()),
                Some(Value::String(_)) => return Err("missing ciphertext".into()),
                Some(_) => return Err("ciphertext: must be a string".into()),
            };
            Ok(CiphertextItem {
                ciphertext,
                context: b64_field(item, "context")?,
                associated_data: b64_field(item, "associated_data")?,
                key_version: version_field(item)?,
            })
        })
        .collect()
}

/// A vault call over ciphertext items (decrypt, rewrap), answering per item.
type CiphertextOp<T> = fn(
    &strongroom_core::Vault,
    &strongroom_core::Principal,
    &str,
    &str,
    &[CiphertextItem],
) -> strongroom_core::CoreResult<Vec<Result<T, String>>>;

/// Decrypt or rewrap: parse the items, run the good ones in one vault call, answer in place.
async fn over_ciphertexts<T: Send + 'static>(
    app: &AppState,
    caller: VaultCaller,
    name: String,
    body: Bytes,
    run: CiphertextOp<T>,
    shape: fn(T) -> Value,
) -> VaultResult {
    let body = body_object(&body)?;
    let (batch, raw) = items(&body)?;
    let mut parsed = ciphertext_items(&raw);
    let good: Vec<CiphertextItem> = parsed
        .iter_mut()
        .filter_map(|p| p.as_mut().ok().map(std::mem::take))
        .collect();
    let VaultCaller { who, namespace } = caller;
    let done = if good.is_empty() {
        Vec::new()
    } else {
        app.run(move |v| run(v, &who, &namespace, &name, &good))
            .await?
    };
    let mut done = done.into_iter();
    let results = raw
        .iter()
        .zip(parsed)
        .map(|(item, p)| {
            let result = match p {
                Err(e) => Err(e),
                Ok(_) => match done.next() {
                    Some(Ok(v)) => Ok(shape(v)),
                    Some(Err(e)) => Err(e),
                    None => Err("the item was not processed".into()),
                },
            };
            (reference(item), result)
        })
        .collect();
    answer(batch, results)
}

pub(crate) async fn decrypt(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(name): Path<String>,
    body: Bytes,
) -> VaultResult {
    over_ciphertexts(
        &app,
        caller,
        name,
        body,
        |v, who, ns, name, items| v.transit_decrypt(who, ns, name, items),
        |plain| json!({ "plaintext": STANDARD.encode(plain.as_slice()) }),
    )
    .await
}

pub(crate) async fn rewrap(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path(name): Path<String>,
    body: Bytes,
) -> VaultResult {
    over_ciphertexts(
        &app,
        caller,
        name,
        body,
        |v, who, ns, name, items| v.transit_rewrap(who, ns, name, items),
        |e| json!({"ciphertext": e.ciphertext, "key_version": e.key_version}),
    )
    .await
}

pub(crate) async fn datakey(
    State(app): State<AppState>,
    caller: VaultCaller,
    Path((kind, name)): Path<(String, String)>,
    body: Bytes,
) -> VaultResult {
    let with_plaintext = match kind.as_str() {
        "plaintext" => true,
        "wrapped" => false,
        _ => {
            return Err(VaultError::bad_request(
                "invalid type: use datakey/plaintext/<name> or datakey/wrapped/<name>",
            ))
        }
    };
    let body = body_object(&body)?;
    refuse_unsupported(&body).map_err(VaultError::bad_request)?;
    let bits = uint_field(&body, "bits")?.unwrap_or(256);
    let bits = u32::try_from(bits)
        .map_err(|_| VaultError::bad_request("bits: must be 128, 256 or 512"))?;
    let context = b64_field(&body, "context").map_err(VaultError::bad_request)?;
    let VaultCaller { who, namespace } = caller;
    let key = app
        .run(move |v| v.transit_datakey(&who, &namespace, &name, with_plaintext, bits, context))
        .await?;
    let mut data = json!({"ciphertext": key.ciphertext, "key_version": key.key_version});
    if let Some(plain) = &key.plaintext {
        data["plaintext"] = Value::String(STANDARD.encode(plain.as_slice()));
    }
    VaultReply::data(&data)
}
