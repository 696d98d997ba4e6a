//! Namespace key endpoints: status, rotate, rewrap, retire old versions.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
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
