//! Credential and user endpoints.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use strongroom_core::credentials::{
    BatchItem, Credential, CredentialData, CredentialMetadata, CredentialSummary, PutOptions,
    VersionInfo,
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

/// The largest batch body (1,000 items of several KiB each), whatever `--max-body-bytes` is.
pub(crate) const BATCH_BODY_LIMIT: usize = 8 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchBody {
    items: Vec<BatchItem>,
}

/// One item's outcome in a batch answer.
#[derive(Serialize)]
pub(crate) struct BatchResult {
    index: usize,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<VersionInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<BatchError>,
}

#[derive(Serialize)]
pub(crate) struct BatchError {
    code: &'static str,
    message: String,
}

#[derive(Serialize)]
pub(crate) struct BatchAnswer {
    written: usize,
    failed: usize,
    items: Vec<BatchResult>,
}

/// `POST /v1/ns/{namespace}/credentials/batch`: up to 1,000 writes in one transaction, each
/// with its own result (status and error code as a single write would answer).
pub(crate) async fn put_batch(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath(ns): ApiPath<String>,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Json<BatchAnswer>, ApiError> {
    let report = app
        .run(move |v| v.put_credentials_batch(&who, &ns, &body.items))
        .await?;
    let items: Vec<BatchResult> = report
        .results
        .into_iter()
        .enumerate()
        .map(|(index, outcome)| match outcome {
            Ok(version) => BatchResult {
                index,
                status: 200,
                version: Some(version),
                error: None,
            },
            Err(e) => {
                let (code, message) = ApiError::Core(e).code_and_message();
                BatchResult {
                    index,
                    status: code.status().as_u16(),
                    version: None,
                    error: Some(BatchError {
                        code: code.as_str(),
                        message,
                    }),
                }
            }
        })
        .collect();
    let written = items.iter().filter(|i| i.error.is_none()).count();
    Ok(Json(BatchAnswer {
        written,
        failed: items.len() - written,
        items,
    }))
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
