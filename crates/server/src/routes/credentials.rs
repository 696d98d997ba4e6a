//! Credential and user endpoints.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use strongroom_core::credentials::{
    Credential, CredentialData, CredentialMetadata, CredentialSummary, PutOptions, VersionInfo,
};
use strongroom_core::users::UserSummary;
use strongroom_core::Page;

use super::{PageQuery, DEFAULT_PAGE};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authenticated};
use crate::state::AppState;

type CredPath = ApiPath<(String, String, String)>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutBody {
    data: CredentialData,
    #[serde(default)]
    options: PutOptions,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VersionQuery {
    version: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VersionsBody {
    #[serde(deserialize_with = "strongroom_core::json::vec_u64")]
    versions: Vec<u64>,
}

#[derive(serde::Serialize)]
pub(crate) struct Changed {
    changed: u64,
}

pub(crate) async fn put(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, name)): CredPath,
    ApiJson(body): ApiJson<PutBody>,
) -> Result<Json<VersionInfo>, ApiError> {
    app.run(move |v| v.put_credential(&who, &ns, &user, &name, &body.data, body.options))
        .await
        .map(Json)
}

pub(crate) async fn get(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, name)): CredPath,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> Result<Json<Credential>, ApiError> {
    app.run(move |v| v.get_credential(&who, &ns, &user, &name, q.version))
        .await
        .map(Json)
}

pub(crate) async fn exists(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, name)): CredPath,
) -> Result<StatusCode, ApiError> {
    let found = app
        .run(move |v| v.credential_exists(&who, &ns, &user, &name))
        .await?;
    Ok(if found {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

pub(crate) async fn delete_current(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, name)): CredPath,
) -> Result<StatusCode, ApiError> {
    app.run(move |v| v.delete_credential_versions(&who, &ns, &user, &name, &[]))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn metadata(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, name)): CredPath,
) -> Result<Json<CredentialMetadata>, ApiError> {
    app.run(move |v| v.credential_metadata(&who, &ns, &user, &name))
        .await
        .map(Json)
}

pub(crate) async fn purge(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, name)): CredPath,
) -> Result<StatusCode, ApiError> {
    app.run(move |v| v.delete_credential(&who, &ns, &user, &name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete_versions(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, name)): CredPath,
    ApiJson(body): ApiJson<VersionsBody>,
) -> Result<Json<Changed>, ApiError> {
    if body.versions.is_empty() {
        return Err(ApiError::BadJson("versions: list at least one version (DELETE the credential to soft-delete the current one)".into()));
    }
    let changed = app
        .run(move |v| v.delete_credential_versions(&who, &ns, &user, &name, &body.versions))
        .await?;
    Ok(Json(Changed { changed }))
}

pub(crate) async fn undelete_versions(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, name)): CredPath,
    ApiJson(body): ApiJson<VersionsBody>,
) -> Result<Json<Changed>, ApiError> {
    let changed = app
        .run(move |v| v.undelete_credential_versions(&who, &ns, &user, &name, &body.versions))
        .await?;
    Ok(Json(Changed { changed }))
}

pub(crate) async fn destroy_versions(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user, name)): CredPath,
    ApiJson(body): ApiJson<VersionsBody>,
) -> Result<Json<Changed>, ApiError> {
    let changed = app
        .run(move |v| v.destroy_credential_versions(&who, &ns, &user, &name, &body.versions))
        .await?;
    Ok(Json(Changed { changed }))
}

pub(crate) async fn list(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<CredentialSummary>>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    app.run(move |v| v.list_credentials(&who, &ns, &user, q.cursor(), limit))
        .await
        .map(Json)
}

pub(crate) async fn list_users(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<UserSummary>>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    app.run(move |v| v.list_users(&who, &ns, q.cursor(), limit))
        .await
        .map(Json)
}
