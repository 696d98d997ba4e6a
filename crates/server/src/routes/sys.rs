//! Operator endpoints: health, readiness, metrics, namespaces, tokens (and suspensions),
//! audit, jobs, and a namespace's security policy.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use strongroom_core::audit::{AuditQuery, AuditRecord, VerifyReport};
use strongroom_core::clock::parse_rfc3339;
use strongroom_core::guard::SuspensionPolicy;
use strongroom_core::namespaces::NamespaceInfo;
use strongroom_core::tokens::TokenInfo;
use strongroom_core::{Capability, Page, Policy};

use super::{PageQuery, DEFAULT_PAGE};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::state::AppState;

/// Liveness: answers while the process runs, sealed or not (readiness says whether it serves).
pub(crate) async fn health(State(app): State<AppState>) -> Json<Value> {
    Json(json!({"status": "ok", "sealed": app.node.is_sealed()}))
}

pub(crate) async fn ready(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    app.run(|v| v.ping()).await?;
    Ok(Json(json!({"status": "ready"})))
}

pub(crate) async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let mut text = app.metrics.render();
    let sealed = app.node.is_sealed();
    text.push_str(&format!(
        "# HELP strongroom_sealed 1 while this node is sealed (holds no key).\n# TYPE strongroom_sealed gauge\nstrongroom_sealed {}\n",
        u8::from(sealed)
    ));
    // The vault's counters start again at each unseal; a sealed node has none.
    let Ok(vault) = app.node.vault() else {
        return ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text);
    };
    let counters = vault.counters();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    for (name, help, counter) in [
        (
            "strongroom_oauth_refreshes_total",
            "OAuth token refreshes that succeeded.",
            &counters.oauth_refreshes,
        ),
        (
            "strongroom_oauth_refresh_failures_total",
            "OAuth token refreshes that failed.",
            &counters.oauth_refresh_failures,
        ),
        (
            "strongroom_file_bytes_uploaded_total",
            "Plaintext bytes of files stored.",
            &counters.file_bytes_uploaded,
        ),
        (
            "strongroom_file_bytes_downloaded_total",
            "Plaintext bytes of files returned (downloads, links, archives).",
            &counters.file_bytes_downloaded,
        ),
        (
            "strongroom_file_integrity_failures_total",
            "File reads stopped because stored data failed authentication or was missing.",
            &counters.file_integrity_failures,
        ),
        (
            "strongroom_webhook_deliveries_total",
            "Webhook events delivered (the receiver answered 2xx).",
            &counters.webhook_deliveries,
        ),
        (
            "strongroom_webhook_delivery_failures_total",
            "Webhook delivery attempts that failed (retried later, or given up as dead).",
            &counters.webhook_delivery_failures,
        ),
    ] {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
            load(counter)
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateNamespaceBody {
    name: String,
}

pub(crate) async fn create_namespace(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiJson(body): ApiJson<CreateNamespaceBody>,
) -> Result<(StatusCode, Json<NamespaceInfo>), ApiError> {
    let info = app
        .run(move |v| v.create_namespace(&who, &body.name))
        .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

pub(crate) async fn list_namespaces(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let items = app.run(move |v| v.list_namespaces(&who)).await?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTokenBody {
    name: String,
    namespaces: Vec<String>,
    capabilities: BTreeSet<Capability>,
    #[serde(default, deserialize_with = "strongroom_core::json::opt_u64")]
    expires_in_secs: Option<u64>,
    #[serde(default, deserialize_with = "strongroom_core::json::opt_u32")]
    rate_limit_per_sec: Option<u32>,
}

#[derive(Serialize)]
pub(crate) struct CreatedToken {
    /// The token itself: shown this once, stored only as a hash.
    token: String,
    #[serde(flatten)]
    info: TokenInfo,
}

pub(crate) async fn create_token(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiJson(body): ApiJson<CreateTokenBody>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let policy = Policy {
        namespaces: body.namespaces,
        capabilities: body.capabilities,
        rate_limit_per_sec: body.rate_limit_per_sec,
    };
    let (info, token) = app
        .run(move |v| v.create_token(&who, &body.name, policy, body.expires_in_secs))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: token.expose_text().to_string(),
            info,
        }),
    ))
}

pub(crate) async fn list_tokens(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<TokenInfo>>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    app.run(move |v| v.list_tokens(&who, q.cursor(), limit))
        .await
        .map(Json)
}

pub(crate) async fn token_self(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let me = app.run(move |v| v.token_self(&who)).await?;
    Ok(Json(json!({"id": me.token_id, "policy": me.policy})))
}

pub(crate) async fn suspended_tokens(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let items = app.run(move |v| v.suspended_tokens(&who)).await?;
    Ok(Json(json!({ "items": items })))
}

pub(crate) async fn unsuspend_token(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    app.run(move |v| v.unsuspend_token(&who, &id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn get_security_policy(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
) -> Result<Json<SuspensionPolicy>, ApiError> {
    app.run(move |v| v.get_suspension_policy(&who, &ns))
        .await
        .map(Json)
}

pub(crate) async fn put_security_policy(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
    ApiJson(policy): ApiJson<SuspensionPolicy>,
) -> Result<Json<SuspensionPolicy>, ApiError> {
    app.run(move |v| v.set_suspension_policy(&who, &ns, policy))
        .await
        .map(Json)
}

pub(crate) async fn revoke_token(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    app.run(move |v| v.revoke_token(&who, &id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    since: Option<String>,
    until: Option<String>,
    token_id: Option<String>,
    action: Option<String>,
    /// A credential name or event type (the server hashes it: entries never hold names).
    name: Option<String>,
    namespace: Option<String>,
    /// A user id of `namespace` (the server hashes it, as entries hold it).
    user: Option<String>,
    outcome: Option<String>,
    /// `oldest` (default) or `newest` first.
    order: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

fn time_param(name: &str, value: Option<String>) -> Result<Option<i64>, ApiError> {
    value
        .map(|t| {
            parse_rfc3339(&t).ok_or_else(|| {
                ApiError::BadParameter(format!(
                    "{name}: must be an RFC 3339 time such as 2026-01-31T12:00:00Z"
                ))
            })
        })
        .transpose()
}

pub(crate) async fn query_audit(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> Result<Json<Page<AuditRecord>>, ApiError> {
    let q = AuditQuery {
        since: time_param("since", p.since)?,
        until: time_param("until", p.until)?,
        token_id: p.token_id,
        action: p.action,
        name: p.name,
        namespace: p.namespace.filter(|n| !n.is_empty()),
        user: p.user.filter(|u| !u.is_empty()),
        outcome: p.outcome.filter(|o| !o.is_empty()),
        newest_first: match p.order.as_deref() {
            None | Some("") | Some("oldest") => false,
            Some("newest") => true,
            Some(_) => {
                return Err(ApiError::BadParameter(
                    "order: must be `oldest` or `newest`".into(),
                ))
            }
        },
        cursor: p.cursor.filter(|c| !c.is_empty()),
        limit: p.limit.unwrap_or(DEFAULT_PAGE),
    };
    app.run(move |v| v.query_audit(&who, &q)).await.map(Json)
}

pub(crate) async fn verify_audit(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
) -> Result<Json<VerifyReport>, ApiError> {
    app.run(move |v| v.verify_audit(&who)).await.map(Json)
}

pub(crate) async fn jobs(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let node_id = app.node_id.to_string();
    let leases = app.run(move |v| v.job_leases(&who)).await?;
    Ok(Json(json!({ "node_id": node_id, "jobs": leases })))
}
