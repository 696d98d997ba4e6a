//! Webhook subscriptions, test events, deliveries and redelivery (all `admin`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use strongroom_core::webhooks::{DeliveryInfo, WebhookInfo, WebhookInput};
use strongroom_core::Page;

use super::DEFAULT_PAGE;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveriesQuery {
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

pub(crate) async fn put(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, name)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<Json<WebhookInfo>, ApiError> {
    app.run(move |v| v.put_webhook(&who, &ns, &name, input))
        .await
        .map(Json)
}

pub(crate) async fn list(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
) -> Result<Json<super::Items<Vec<WebhookInfo>>>, ApiError> {
    let items = app.run(move |v| v.list_webhooks(&who, &ns)).await?;
    Ok(Json(super::Items { items }))
}

pub(crate) async fn delete(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app.run(move |v| v.delete_webhook(&who, &ns, &name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn test(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, name)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = app.run(move |v| v.test_webhook(&who, &ns, &name)).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "event_id": id }))))
}

pub(crate) async fn deliveries(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, name)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Page<DeliveryInfo>>, ApiError> {
    let state = q.state.filter(|s| !s.is_empty());
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    app.run(move |v| {
        v.webhook_deliveries(
            &who,
            &ns,
            &name,
            state.as_deref(),
            q.cursor.as_deref(),
            limit,
        )
    })
    .await
    .map(Json)
}

pub(crate) async fn redeliver(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, name, seq)): ApiPath<(String, String, u64)>,
) -> Result<StatusCode, ApiError> {
    app.run(move |v| v.redeliver_webhook(&who, &ns, &name, seq))
        .await?;
    Ok(StatusCode::ACCEPTED)
}
