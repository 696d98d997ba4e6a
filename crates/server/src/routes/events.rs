//! Event endpoints: append a batch, query newest first, set a namespace's retention.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use strongroom_core::clock::parse_rfc3339;
use strongroom_core::events::{Event, EventCount, EventFilter, NamespaceEvent, NewEvent};
use strongroom_core::Page;

use super::DEFAULT_PAGE;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppendBody {
    events: Vec<NewEvent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventParams {
    #[serde(rename = "type")]
    event_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionBody {
    /// Days to keep events; null keeps them forever. Required: `{}` is refused rather than
    /// read as "forever".
    #[serde(deserialize_with = "strongroom_core::json::opt_u32")]
    days: Option<u32>,
}

fn time_param(name: &str, value: Option<String>) -> Result<Option<i64>, ApiError> {
    value
        .filter(|t| !t.is_empty())
        .map(|t| {
            parse_rfc3339(&t).ok_or_else(|| {
                ApiError::BadParameter(format!(
                    "{name}: must be an RFC 3339 time such as 2026-01-31T12:00:00Z"
                ))
            })
        })
        .transpose()
}

pub(crate) async fn append(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<AppendBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ids = app
        .run(move |v| v.append_events(&who, &ns, &user, &body.events))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "appended": ids.len(), "ids": ids })),
    ))
}

pub(crate) async fn query(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user)): ApiPath<(String, String)>,
    ApiQuery(p): ApiQuery<EventParams>,
) -> Result<Json<Page<Event>>, ApiError> {
    let filter = EventFilter {
        event_type: p.event_type.filter(|t| !t.is_empty()),
        since: time_param("since", p.since)?,
        until: time_param("until", p.until)?,
        cursor: p.cursor,
        limit: p.limit.unwrap_or(DEFAULT_PAGE),
    };
    app.run(move |v| v.query_events(&who, &ns, &user, &filter))
        .await
        .map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NamespaceEventParams {
    #[serde(rename = "type")]
    event_type: Option<String>,
    #[serde(alias = "since")]
    from: Option<String>,
    #[serde(alias = "until")]
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CountParams {
    /// Comma-separated event types (types cannot hold commas).
    #[serde(rename = "type")]
    types: Option<String>,
    #[serde(alias = "since")]
    from: Option<String>,
    #[serde(alias = "until")]
    to: Option<String>,
}

/// `GET /v1/ns/{namespace}/events`: every user's events, newest first (needs `list`).
pub(crate) async fn query_namespace(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
    ApiQuery(p): ApiQuery<NamespaceEventParams>,
) -> Result<Json<Page<NamespaceEvent>>, ApiError> {
    let filter = EventFilter {
        event_type: p.event_type.filter(|t| !t.is_empty()),
        since: time_param("from", p.from)?,
        until: time_param("to", p.to)?,
        cursor: p.cursor,
        limit: p.limit.unwrap_or(DEFAULT_PAGE),
    };
    app.run(move |v| v.query_namespace_events(&who, &ns, &filter))
        .await
        .map(Json)
}

/// `GET /v1/ns/{namespace}/events/counts`: events per type per UTC day (needs `list`).
pub(crate) async fn counts(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
    ApiQuery(p): ApiQuery<CountParams>,
) -> Result<Json<super::Items<Vec<EventCount>>>, ApiError> {
    let types: Vec<String> = p
        .types
        .unwrap_or_default()
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    let (since, until) = (time_param("from", p.from)?, time_param("to", p.to)?);
    let items = app
        .run(move |v| v.count_namespace_events(&who, &ns, &types, since, until))
        .await?;
    Ok(Json(super::Items { items }))
}

pub(crate) async fn retention(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
    ApiJson(body): ApiJson<RetentionBody>,
) -> Result<Json<Value>, ApiError> {
    let namespace = ns.clone();
    let days = app
        .run(move |v| v.set_event_retention(&who, &ns, body.days))
        .await?;
    Ok(Json(
        json!({ "namespace": namespace, "retention_days": days }),
    ))
}
