//! The route table. Paths use the route templates that also label metrics and logs.

mod credentials;
mod keys;
mod sys;

use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

/// Default and maximum page sizes for list endpoints.
pub(crate) const DEFAULT_PAGE: usize = 100;

/// `?cursor=…&limit=…` on list endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

pub(crate) fn all() -> Router<AppState> {
    let cred = "/v1/ns/{namespace}/users/{user}/credentials/{name}";
    Router::new()
        .route("/v1/sys/health", get(sys::health))
        .route("/v1/sys/ready", get(sys::ready))
        .route("/v1/sys/metrics", get(sys::metrics))
        .route("/v1/openapi.json", get(crate::openapi::document))
        .route(
            "/v1/sys/namespaces",
            get(sys::list_namespaces).post(sys::create_namespace),
        )
        .route(
            "/v1/sys/tokens",
            get(sys::list_tokens).post(sys::create_token),
        )
        .route("/v1/sys/tokens/self", get(sys::token_self))
        .route(
            "/v1/sys/tokens/{id}",
            axum::routing::delete(sys::revoke_token),
        )
        .route("/v1/sys/audit", get(sys::query_audit))
        .route("/v1/sys/audit/verify", post(sys::verify_audit))
        .route("/v1/ns/{namespace}/keys", get(keys::status))
        .route("/v1/ns/{namespace}/keys/rotate", post(keys::rotate))
        .route("/v1/ns/{namespace}/keys/rewrap", post(keys::rewrap))
        .route(
            "/v1/ns/{namespace}/keys/min-version",
            post(keys::set_min_version),
        )
        .route("/v1/ns/{namespace}/users", get(credentials::list_users))
        .route(
            "/v1/ns/{namespace}/users/{user}/credentials",
            get(credentials::list),
        )
        .route(
            cred,
            get(credentials::get)
                .head(credentials::exists)
                .put(credentials::put)
                .delete(credentials::delete_current),
        )
        .route(
            &format!("{cred}/metadata"),
            get(credentials::metadata).delete(credentials::purge),
        )
        .route(
            &format!("{cred}/delete"),
            post(credentials::delete_versions),
        )
        .route(
            &format!("{cred}/undelete"),
            post(credentials::undelete_versions),
        )
        .route(
            &format!("{cred}/destroy"),
            post(credentials::destroy_versions),
        )
}

/// Fallback for unknown paths.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NoRoute
}
