//! The route table. Paths use the route templates that also label metrics and logs.

mod credentials;
mod events;
mod files;
mod keys;
mod lifecycle;
mod oauth;
mod records;
mod sys;

use std::collections::HashMap;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;
use serde::Deserialize;
use tower_http::timeout::TimeoutLayer;

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

impl PageQuery {
    /// The cursor, with an empty `?cursor=` meaning the first page.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref().filter(|c| !c.is_empty())
    }
}

const CRED: &str = "/v1/ns/{namespace}/users/{user}/credentials/{name}";

/// Every route: path template and its handlers.
fn table() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/v1/sys/health", get(sys::health)),
        ("/v1/sys/ready", get(sys::ready)),
        ("/v1/sys/metrics", get(sys::metrics)),
        ("/v1/openapi.json", get(crate::openapi::document)),
        (
            "/v1/sys/namespaces",
            get(sys::list_namespaces).post(sys::create_namespace),
        ),
        (
            "/v1/sys/tokens",
            get(sys::list_tokens).post(sys::create_token),
        ),
        ("/v1/sys/tokens/self", get(sys::token_self)),
        ("/v1/sys/tokens/{id}", delete(sys::revoke_token)),
        ("/v1/sys/audit", get(sys::query_audit)),
        ("/v1/sys/audit/verify", post(sys::verify_audit)),
        ("/v1/sys/jobs", get(sys::jobs)),
        ("/v1/ns/{namespace}/keys", get(keys::status)),
        ("/v1/ns/{namespace}/keys/rotate", post(keys::rotate)),
        ("/v1/ns/{namespace}/keys/rewrap", post(keys::rewrap)),
        (
            "/v1/ns/{namespace}/keys/min-version",
            post(keys::set_min_version),
        ),
        ("/v1/ns/{namespace}/users", get(credentials::list_users)),
        ("/v1/ns/{namespace}/users/{user}", delete(lifecycle::erase)),
        (
            "/v1/ns/{namespace}/users/{user}/export",
            get(lifecycle::export),
        ),
        (
            "/v1/ns/{namespace}/users/{user}/erasure",
            get(lifecycle::erasure_status),
        ),
        (
            "/v1/ns/{namespace}/users/{user}/events",
            get(events::query).post(events::append),
        ),
        ("/v1/ns/{namespace}/providers", get(oauth::list_providers)),
        (
            "/v1/ns/{namespace}/providers/{name}",
            axum::routing::put(oauth::put_provider).delete(oauth::delete_provider),
        ),
        (
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/access-token",
            post(oauth::access_token),
        ),
        ("/v1/ns/{namespace}/credential-status", get(oauth::statuses)),
        (
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/revoke",
            post(oauth::revoke),
        ),
        (
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/verify",
            post(oauth::verify),
        ),
        (
            "/v1/ns/{namespace}/collections",
            get(records::list_collections),
        ),
        (
            "/v1/ns/{namespace}/collections/{collection}",
            axum::routing::put(records::put_collection),
        ),
        (
            "/v1/ns/{namespace}/collections/{collection}/lookup",
            get(records::lookup),
        ),
        (
            "/v1/ns/{namespace}/users/{user}/records/{collection}",
            get(records::list_user_records),
        ),
        (
            "/v1/ns/{namespace}/users/{user}/records/{collection}/{key}",
            get(records::get_user_record)
                .put(records::put_user_record)
                .delete(records::delete_user_record),
        ),
        (
            "/v1/ns/{namespace}/records/{collection}",
            get(records::list_ns_records),
        ),
        (
            "/v1/ns/{namespace}/records/{collection}/{key}",
            get(records::get_ns_record)
                .put(records::put_ns_record)
                .delete(records::delete_ns_record),
        ),
        (
            "/v1/ns/{namespace}/events/retention",
            axum::routing::put(events::retention),
        ),
        (
            "/v1/ns/{namespace}/users/{user}/credentials",
            get(credentials::list),
        ),
        (
            CRED,
            get(credentials::get)
                .head(credentials::exists)
                .put(credentials::put)
                .delete(credentials::delete_current),
        ),
        (
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/metadata",
            get(credentials::metadata).delete(credentials::purge),
        ),
        (
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/delete",
            post(credentials::delete_versions),
        ),
        (
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/undelete",
            post(credentials::undelete_versions),
        ),
        (
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/destroy",
            post(credentials::destroy_versions),
        ),
        ("/v1/ns/{namespace}/users/{user}/files", get(files::list)),
        (
            "/v1/ns/{namespace}/users/{user}/files/{file}",
            get(files::info).delete(files::delete),
        ),
        (
            "/v1/ns/{namespace}/users/{user}/files/{file}/content",
            get(files::download),
        ),
        (
            "/v1/ns/{namespace}/users/{user}/files/{file}/links",
            post(files::create_link),
        ),
        ("/v1/links/{token}", get(files::download_link)),
        (
            "/v1/ns/{namespace}/file-policy",
            get(files::get_policy).put(files::put_policy),
        ),
        (
            "/v1/ns/{namespace}/users/{user}/export/archive",
            get(files::export_archive),
        ),
    ]
}

/// Routes whose handler reads a body of any size: exempt from the request timeout (a 2 GiB
/// upload takes longer than any sensible timeout). Downloads need no exemption: their handlers
/// return as soon as the first segment is ready and the body streams afterwards.
fn streaming_table() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/v1/ns/{namespace}/users/{user}/files", post(files::upload))]
}

/// Every route, the ordinary ones bounded by `timeout`.
pub(crate) fn all(timeout: Duration) -> Router<AppState> {
    let mut streaming: HashMap<&str, MethodRouter<AppState>> =
        streaming_table().into_iter().collect();
    let mut router = Router::new();
    for (path, handlers) in table() {
        let mut handlers = handlers.layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ));
        if let Some(untimed) = streaming.remove(path) {
            handlers = handlers.merge(untimed);
        }
        router = router.route(path, handlers);
    }
    for (path, handlers) in streaming {
        router = router.route(path, handlers);
    }
    router
}

/// The path templates served (the OpenAPI test compares them with the document).
pub fn paths() -> Vec<&'static str> {
    let mut paths: Vec<&'static str> = table().into_iter().map(|(path, _)| path).collect();
    for (path, _) in streaming_table() {
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths
}

/// Fallback for unknown paths.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NoRoute
}
