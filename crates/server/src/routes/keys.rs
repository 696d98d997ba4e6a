//! Namespace key endpoints: status, rotate, rewrap, retire old versions, scheduled rotation.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde::Serialize;
use strongroom_core::key_rotation::{RotationPolicy, RotationSchedule};
use strongroom_core::namespaces::{KeyStatus, RewrapReport};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Authenticated};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MinVersionBody {
    #[serde(deserialize_with = "strongroom_core::json::u32")]
    version: u32,
}

pub(crate) async fn status(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
) -> Result<Json<KeyStatus>, ApiError> {
    app.run(move |v| v.key_status(&who, &ns)).await.map(Json)
}

pub(crate) async fn rotate(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
) -> Result<Json<KeyStatus>, ApiError> {
    app.run(move |v| v.rotate_key(&who, &ns)).await.map(Json)
}

pub(crate) async fn rewrap(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
) -> Result<Json<RewrapReport>, ApiError> {
    app.run(move |v| v.rewrap(&who, &ns)).await.map(Json)
}

pub(crate) async fn set_min_version(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
    ApiJson(body): ApiJson<MinVersionBody>,
) -> Result<Json<KeyStatus>, ApiError> {
    app.run(move |v| v.set_min_decrypt_version(&who, &ns, body.version))
        .await
        .map(Json)
}

/// `{"rotation": …}`: the scheduled rotation, or `null` when the namespace has none.
#[derive(Serialize)]
pub(crate) struct Rotation {
    rotation: Option<RotationSchedule>,
}

pub(crate) async fn get_rotation_policy(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
) -> Result<Json<Rotation>, ApiError> {
    let rotation = app.run(move |v| v.get_rotation_policy(&who, &ns)).await?;
    Ok(Json(Rotation { rotation }))
}

pub(crate) async fn put_rotation_policy(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
    ApiJson(policy): ApiJson<RotationPolicy>,
) -> Result<Json<Rotation>, ApiError> {
    let rotation = app
        .run(move |v| v.set_rotation_policy(&who, &ns, Some(policy)))
        .await?;
    Ok(Json(Rotation { rotation }))
}

pub(crate) async fn delete_rotation_policy(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    app.run(move |v| v.set_rotation_policy(&who, &ns, None))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
