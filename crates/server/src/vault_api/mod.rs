//! A Vault-compatible API (KV v2 and Transit), so clients written for HashiCorp Vault or
//! OpenBao — `hvac`, the `vault`/`bao` CLI, `node-vault` — work unmodified against Strongroom.
//!
//! Served under `/vault` on the main listener (`VAULT_ADDR=http://host:8470/vault`) and, with
//! `--vault-listen`, at the root of a listener of its own. It is a translation layer only:
//! every call becomes one core operation, authorized and audited there like any other (a KV
//! path `<user id>/<name>` is that user's credential; transit keys are the namespace's). What
//! it owns is Vault's protocol: the `LIST` method (rewritten to `GET` before routing, as axum
//! routes only standard methods), bodies without a content type, an empty or `null` body as
//! `{}`, the response envelope, errors as `{"errors": […]}`, and 403 for a missing or bad
//! token (`hvac` treats 401 as an exception when asking whether it is authenticated).
//!
//! The namespace comes from `X-Vault-Namespace` (a trailing `/` stripped) or, without it, is
//! the token's only namespace. Tokens are Strongroom API tokens, in `X-Vault-Token` or
//! `Authorization: Bearer`.

mod kv;
mod sys;
mod transit;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use serde_json::{json, Map, Value};
use strongroom_core::{CoreError, Principal};

use crate::error::ApiError;
use crate::state::AppState;

/// The routes of the Vault API, relative to where it is served (`/vault` or a root).
fn routes(timeout: Duration) -> Router<AppState> {
    Router::new()
        .route("/v1/sys/health", get(sys::health).head(sys::health_head))
        .route("/v1/sys/seal-status", get(sys::seal_status))
        .route("/v1/sys/leader", get(sys::leader))
        .route("/v1/sys/seal", post(sys::seal).put(sys::seal))
        .route("/v1/sys/unseal", post(sys::unseal).put(sys::unseal))
        .route("/v1/sys/mounts", get(sys::mounts))
        .route("/v1/sys/internal/ui/mounts/{*path}", get(sys::ui_mount))
        .route(
            "/v1/auth/token/lookup-self",
            get(sys::lookup_self).post(sys::lookup_self),
        )
        .route("/v1/secret/config", get(kv::config).post(kv::set_config))
        .route(
            "/v1/secret/data/{*path}",
            get(kv::read)
                .post(kv::write)
                .put(kv::write)
                .patch(kv::patch)
                .delete(kv::delete_latest),
        )
        .route("/v1/secret/metadata", get(kv::list_root))
        .route("/v1/secret/metadata/", get(kv::list_root))
        .route(
            "/v1/secret/metadata/{*path}",
            get(kv::metadata)
                .post(kv::set_metadata)
                .put(kv::set_metadata)
                .delete(kv::delete_all),
        )
        .route(
            "/v1/secret/delete/{*path}",
            post(kv::delete_versions).put(kv::delete_versions),
        )
        .route(
            "/v1/secret/undelete/{*path}",
            post(kv::undelete_versions).put(kv::undelete_versions),
        )
        .route(
            "/v1/secret/destroy/{*path}",
            post(kv::destroy_versions).put(kv::destroy_versions),
        )
        .route("/v1/transit/keys", get(transit::list_keys))
        .route("/v1/transit/keys/", get(transit::list_keys))
        .route(
            "/v1/transit/keys/{name}",
            get(transit::read_key)
                .post(transit::create_key)
                .put(transit::create_key)
                .delete(transit::delete_key),
        )
        .route(
            "/v1/transit/keys/{name}/rotate",
            post(transit::rotate).put(transit::rotate),
        )
        .route(
            "/v1/transit/keys/{name}/config",
            post(transit::configure).put(transit::configure),
        )
        .route(
            "/v1/transit/encrypt/{name}",
            post(transit::encrypt).put(transit::encrypt),
        )
        .route(
            "/v1/transit/decrypt/{name}",
            post(transit::decrypt).put(transit::decrypt),
        )
        .route(
            "/v1/transit/rewrap/{name}",
            post(transit::rewrap).put(transit::rewrap),
        )
        .route(
            "/v1/transit/datakey/{kind}/{name}",
            post(transit::datakey).put(transit::datakey),
        )
        .fallback(no_handler)
        .layer(axum::middleware::from_fn_with_state(
            timeout,
            crate::limits::time_limit,
        ))
}

/// The Vault API as a service that takes `LIST` requests (they become `GET` with a
/// [`Listing`] mark before routing).
pub(crate) fn service(state: AppState) -> Router {
    let timeout = Duration::from_millis(state.settings.request_timeout_ms);
    let inner = routes(timeout).with_state(state);
    Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .map_request(mark_list)
            .service(inner),
    )
}

/// A `LIST` request (or `?list=true`): a listing, not a read.
#[derive(Clone, Copy)]
pub(crate) struct Listing;

fn mark_list(mut request: Request) -> Request {
    if request.method().as_str() == "LIST" {
        *request.method_mut() = Method::GET;
        request.extensions_mut().insert(Listing);
    }
    request
}

/// Whether the request lists (`LIST`, `?list=true`, `?list=1`).
pub(crate) struct ListFlag(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for ListFlag {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().is_some_and(|q| {
            q.split('&')
                .any(|p| matches!(p, "list=true" | "list=1" | "list=TRUE" | "list=True"))
        });
        Ok(ListFlag(
            parts.extensions.get::<Listing>().is_some() || query,
        ))
    }
}

/// An answer in Vault's shapes.
pub(crate) enum VaultReply {
    /// 200 with the envelope around `data` (already-serialized JSON, so secrets keep their
    /// exact text).
    Data(String),
    /// `status` with the envelope around `data` (a deleted version's 404, a failed batch's 400).
    DataWithStatus(StatusCode, String),
    /// 204 without a body.
    NoContent,
    /// A body that is not wrapped (`sys/health`, `sys/seal-status`, `sys/mounts`).
    Bare(StatusCode, Value),
}

impl VaultReply {
    pub(crate) fn data(value: &impl Serialize) -> Result<Self, VaultError> {
        serde_json::to_string(value)
            .map(VaultReply::Data)
            .map_err(|e| VaultError::from(ApiError::Core(CoreError::Internal(e.to_string()))))
    }
}

fn request_id() -> String {
    let b = strongroom_crypto::random::bytes::<16>().unwrap_or([0; 16]);
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn envelope(data: &str) -> String {
    format!(
        r#"{{"request_id":"{}","lease_id":"","renewable":false,"lease_duration":0,"data":{data},"wrap_info":null,"warnings":null,"auth":null}}"#,
        request_id()
    )
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl IntoResponse for VaultReply {
    fn into_response(self) -> Response {
        match self {
            VaultReply::Data(data) => json_response(StatusCode::OK, envelope(&data)),
            VaultReply::DataWithStatus(status, data) => json_response(status, envelope(&data)),
            VaultReply::NoContent => {
                let mut response = StatusCode::NO_CONTENT.into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            VaultReply::Bare(status, value) => json_response(status, value.to_string()),
        }
    }
}

/// An error as Vault answers it: `{"errors": [...]}`.
#[derive(Debug)]
pub(crate) struct VaultError {
    status: StatusCode,
    errors: Vec<String>,
    retry_after: Option<u64>,
}

impl VaultError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![message.into()],
            retry_after: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 with no message, as Vault answers a path that holds nothing.
    pub(crate) fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub(crate) fn permission_denied() -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission denied")
    }
}

impl From<ApiError> for VaultError {
    fn from(err: ApiError) -> Self {
        match &err {
            ApiError::Core(CoreError::NotFound(_)) => return VaultError::not_found(),
            ApiError::Core(
                CoreError::Unauthenticated(_)
                | CoreError::Forbidden(_)
                | CoreError::TokenSuspended { .. },
            ) => return VaultError::permission_denied(),
            _ => {}
        }
        let (code, message) = err.code_and_message();
        let status = code.status();
        if status.is_server_error() {
            tracing::error!(code = code.as_str(), error = ?err, "vault API request failed");
        }
        let retry_after = match &err {
            ApiError::RateLimited { retry_after_secs }
            | ApiError::Core(CoreError::LockedOut { retry_after_secs }) => Some(*retry_after_secs),
            _ => code.retryable().then_some(1),
        };
        Self {
            status,
            errors: vec![message],
            retry_after,
        }
    }
}

impl From<CoreError> for VaultError {
    fn from(err: CoreError) -> Self {
        ApiError::Core(err).into()
    }
}

impl IntoResponse for VaultError {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status, json!({"errors": self.errors}).to_string());
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

pub(crate) type VaultResult = Result<VaultReply, VaultError>;

/// An unknown path (never echoed: it may hold what a client should not have sent).
async fn no_handler() -> VaultError {
    VaultError::new(
        StatusCode::NOT_FOUND,
        "no handler for this route: Strongroom serves the secret (KV v2) and transit mounts and parts of sys/",
    )
}

/// The authenticated caller and the namespace the call is in.
pub(crate) struct VaultCaller {
    pub who: Principal,
    pub namespace: String,
}

/// The authenticated caller alone (for `sys/` calls that are in no namespace).
pub(crate) struct VaultPrincipal(pub Principal);

impl FromRequestParts<AppState> for VaultPrincipal {
    type Rejection = VaultError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, VaultError> {
        if parts.headers.contains_key("x-vault-wrap-ttl") {
            return Err(VaultError::bad_request(
                "response wrapping (X-Vault-Wrap-TTL) is not supported by Strongroom",
            ));
        }
        let presented = parts
            .headers
            .get("x-vault-token")
            .and_then(|v| v.to_str().ok())
            .or_else(|| {
                parts
                    .headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
            })
            .map(|v| zeroize::Zeroizing::new(v.trim().to_string()));
        let Some(presented) = presented else {
            return Err(VaultError::permission_denied());
        };
        let client = crate::extract::client_ip(parts, &state.settings.trusted_proxies).to_string();
        let who = match state
            .run(move |vault| vault.authenticate(&presented, &client))
            .await
        {
            Ok(who) => who,
            Err(err) => {
                if matches!(
                    err,
                    ApiError::Core(CoreError::Unauthenticated(_) | CoreError::LockedOut { .. })
                ) {
                    state.metrics.auth_failure();
                }
                return Err(err.into());
            }
        };
        state.rate_limits.check(&who).map_err(VaultError::from)?;
        Ok(VaultPrincipal(who))
    }
}

impl FromRequestParts<AppState> for VaultCaller {
    type Rejection = VaultError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, VaultError> {
        let VaultPrincipal(who) = VaultPrincipal::from_request_parts(parts, state).await?;
        let header = parts
            .headers
            .get("x-vault-namespace")
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.trim()
                    .trim_end_matches('/')
                    .trim_start_matches('/')
                    .to_string()
            })
            .filter(|v| !v.is_empty());
        let namespace = match header {
            Some(ns) => ns,
            None => match who.policy.namespaces.as_slice() {
                [only] if only != "*" => only.clone(),
                _ => {
                    return Err(VaultError::bad_request(
                        "no namespace: send the header X-Vault-Namespace (this token may use several namespaces)",
                    ))
                }
            },
        };
        Ok(VaultCaller { who, namespace })
    }
}

/// A request body as Vault reads it: JSON with or without a content type; empty or `null` is
/// `{}`; anything but an object is refused.
pub(crate) fn body_object(body: &Bytes) -> Result<Map<String, Value>, VaultError> {
    let text = std::str::from_utf8(body).map_err(|_| {
        VaultError::bad_request("failed to parse JSON input: the body is not UTF-8")
    })?;
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(VaultError::bad_request(
            "failed to parse JSON input: the body must be a JSON object",
        )),
        Err(e) => Err(VaultError::bad_request(format!(
            "failed to parse JSON input: invalid JSON at line {} column {}",
            e.line(),
            e.column()
        ))),
    }
}

/// A field that must be an unsigned integer when present (Vault takes numbers and numeric
/// strings).
pub(crate) fn uint_field(
    body: &Map<String, Value>,
    field: &str,
) -> Result<Option<u64>, VaultError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| {
                VaultError::bad_request(format!("{field}: must be a non-negative integer"))
            }),
        Some(Value::String(s)) => s.parse::<u64>().map(Some).map_err(|_| {
            VaultError::bad_request(format!("{field}: must be a non-negative integer"))
        }),
        Some(_) => Err(VaultError::bad_request(format!(
            "{field}: must be a non-negative integer"
        ))),
    }
}

/// A field that must be a boolean when present (Vault also takes "true"/"false").
pub(crate) fn bool_field(
    body: &Map<String, Value>,
    field: &str,
) -> Result<Option<bool>, VaultError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
        Some(_) => Err(VaultError::bad_request(format!(
            "{field}: must be a boolean"
        ))),
    }
}
