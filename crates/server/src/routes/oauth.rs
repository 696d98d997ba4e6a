//! OAuth endpoints: providers, "give me a valid access token", credential statuses.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use strongroom_core::oauth::{AccessToken, ProviderInfo, ProviderInput, Verification};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessTokenBody {
    /// The token must stay valid at least this long (seconds, default 60).
    #[serde(default, deserialize_with = "strongroom_core::json::opt_u64")]
    min_valid_secs: Option<u64>,
    /// Refresh now even if the token looks valid (the provider revoked it early); still once
    /// across callers, and never during a failed refresh's back-off.
    #[serde(default)]
    force: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusQuery {
    status: Option<String>,
}

pub(crate) async fn put_provider(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, name)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<ProviderInput>,
) -> Result<Json<ProviderInfo>, ApiError> {
    app.run(move |v| v.put_provider(&who, &ns, &name, input))
        .await
        .map(Json)
}

pub(crate) async fn list_providers(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let items = app.run(move |v| v.list_providers(&who, &ns)).await?;
    Ok(Json(json!({ "items": items })))
}

pub(crate) async fn delete_provider(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app.run(move |v| v.delete_provider(&who, &ns, &name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn access_token(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, name)): ApiPath<(String, String, String)>,
    ApiJson(body): ApiJson<AccessTokenBody>,
) -> Result<Json<AccessToken>, ApiError> {
    let min = body.min_valid_secs.unwrap_or(60);
    let force = body.force;
    app.run(move |v| v.valid_access_token(&who, &ns, &user, &name, min, force))
        .await
        .map(Json)
}

pub(crate) async fn statuses(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = q.status.filter(|s| !s.is_empty());
    let items = app
        .run(move |v| v.credential_statuses(&who, &ns, status.as_deref()))
        .await?;
    Ok(Json(json!({ "items": items })))
}

pub(crate) async fn revoke(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, name)): ApiPath<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let at_provider = app
        .run(move |v| v.revoke_credential(&who, &ns, &user, &name))
        .await?;
    Ok(Json(
        json!({ "revoked_at_provider": at_provider, "deleted": true }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyQuery {
    /// For a `secret` credential: the provider to verify it against.
    provider: Option<String>,
}

pub(crate) async fn verify(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, name)): ApiPath<(String, String, String)>,
    ApiQuery(q): ApiQuery<VerifyQuery>,
) -> Result<Json<Verification>, ApiError> {
    let provider = q.provider.filter(|p| !p.is_empty());
    app.run(move |v| v.verify_credential(&who, &ns, &user, &name, provider.as_deref()))
        .await
        .map(Json)
}
