//! Collections and records: per-user (`/users/{user}/records/…`) and namespace-wide
//! (`/records/…`) documents, and equality look-ups on searchable fields.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use strongroom_core::records::{CollectionInfo, CollectionSettings, Record, RecordInput};
use strongroom_core::Page;

use super::{PageQuery, DEFAULT_PAGE};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LookupQuery {
    field: String,
    /// A JSON literal (`42`, `true`, `"x"`); anything that is not JSON is taken as a string.
    value: String,
}

pub(crate) async fn put_collection(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, name)): ApiPath<(String, String)>,
    ApiJson(settings): ApiJson<CollectionSettings>,
) -> Result<Json<CollectionInfo>, ApiError> {
    app.run(move |v| v.put_collection(&who, &ns, &name, settings))
        .await
        .map(Json)
}

pub(crate) async fn list_collections(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let items = app.run(move |v| v.list_collections(&who, &ns)).await?;
    Ok(Json(json!({ "items": items })))
}

pub(crate) async fn lookup(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, collection)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<LookupQuery>,
) -> Result<Json<super::Items<Vec<strongroom_core::records::Record>>>, ApiError> {
    let value = serde_json::from_str::<Value>(&q.value).unwrap_or(Value::String(q.value));
    let items = app
        .run(move |v| v.lookup_records(&who, &ns, &collection, &q.field, &value))
        .await?;
    Ok(Json(super::Items { items }))
}

pub(crate) async fn put_user_record(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, collection, key)): ApiPath<(String, String, String, String)>,
    ApiJson(body): ApiJson<RecordInput>,
) -> Result<Json<Record>, ApiError> {
    app.run(move |v| v.put_record(&who, &ns, &collection, Some(&user), &key, &body))
        .await
        .map(Json)
}

pub(crate) async fn get_user_record(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, collection, key)): ApiPath<(String, String, String, String)>,
) -> Result<Json<Record>, ApiError> {
    app.run(move |v| v.get_record(&who, &ns, &collection, Some(&user), &key))
        .await
        .map(Json)
}

pub(crate) async fn delete_user_record(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, collection, key)): ApiPath<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    app.run(move |v| v.delete_record(&who, &ns, &collection, Some(&user), &key))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list_user_records(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, collection)): ApiPath<(String, String, String)>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Record>>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    app.run(move |v| v.list_records(&who, &ns, &collection, Some(&user), q.cursor(), limit))
        .await
        .map(Json)
}

pub(crate) async fn put_ns_record(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, collection, key)): ApiPath<(String, String, String)>,
    ApiJson(body): ApiJson<RecordInput>,
) -> Result<Json<Record>, ApiError> {
    app.run(move |v| v.put_record(&who, &ns, &collection, None, &key, &body))
        .await
        .map(Json)
}

pub(crate) async fn get_ns_record(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, collection, key)): ApiPath<(String, String, String)>,
) -> Result<Json<Record>, ApiError> {
    app.run(move |v| v.get_record(&who, &ns, &collection, None, &key))
        .await
        .map(Json)
}

pub(crate) async fn delete_ns_record(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, collection, key)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    app.run(move |v| v.delete_record(&who, &ns, &collection, None, &key))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list_ns_records(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, collection)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Record>>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    app.run(move |v| v.list_records(&who, &ns, &collection, None, q.cursor(), limit))
        .await
        .map(Json)
}
