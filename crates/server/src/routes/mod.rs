//! The route table. Paths use the route templates that also label metrics and logs.

mod credentials;
mod events;
mod files;
mod keys;
mod lifecycle;
mod oauth;
mod records;
mod seal;
mod sys;
mod webhooks;

use std::time::Duration;

use axum::http::Method;
use axum::routing::{delete, get, head, post, put, MethodRouter};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use strongroom_core::Op;

use crate::error::ApiError;
use crate::state::AppState;

/// Default and maximum page sizes for list endpoints.
pub(crate) const DEFAULT_PAGE: usize = 100;

/// `?cursor=…&limit=…` on list endpoints.
/// `{"items": […]}`, serialized straight from the items (documents and secrets keep their
/// exact text: never through `serde_json::Value`).
#[derive(Serialize)]
pub(crate) struct Items<T> {
    pub items: T,
}

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

/// One route: method, path template, the operation it performs (`None` for the unaudited
/// health, readiness, metrics and API-reference endpoints) and its handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub op: Option<Op>,
    /// Reads a body of any size (exempt from the request timeout).
    pub streaming: bool,
    handler: MethodRouter<AppState>,
}

fn route(method: Method, path: &'static str, op: Op, handler: MethodRouter<AppState>) -> Route {
    Route {
        method,
        path,
        op: Some(op),
        streaming: false,
        handler,
    }
}

fn open(path: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route {
        method: Method::GET,
        path,
        op: None,
        streaming: false,
        handler,
    }
}

/// Every route. The operation of each is attached to its requests, so the authenticating
/// extractor checks exactly what the operation's description requires — before any body or
/// query is read — and a test walks this table to prove it for every route.
pub fn table() -> Vec<Route> {
    use Method as M;
    use Op::*;
    vec![
        open("/v1/sys/health", get(sys::health)),
        open("/v1/sys/ready", get(sys::ready)),
        open("/v1/sys/seal-status", get(seal::seal_status)),
        route(M::POST, "/v1/sys/seal", SysSeal, post(seal::seal)),
        // No token: a sealed node can check none. The key material is the credential.
        Route {
            method: M::POST,
            path: "/v1/sys/unseal",
            op: None,
            streaming: false,
            handler: post(seal::unseal),
        },
        open("/v1/sys/metrics", get(sys::metrics)),
        open("/v1/openapi.json", get(crate::openapi::document)),
        route(
            M::GET,
            "/v1/sys/namespaces",
            NamespaceList,
            get(sys::list_namespaces),
        ),
        route(
            M::POST,
            "/v1/sys/namespaces",
            NamespaceCreate,
            post(sys::create_namespace),
        ),
        route(M::GET, "/v1/sys/tokens", TokenList, get(sys::list_tokens)),
        route(
            M::POST,
            "/v1/sys/tokens",
            TokenCreate,
            post(sys::create_token),
        ),
        route(
            M::GET,
            "/v1/sys/tokens/self",
            TokenSelf,
            get(sys::token_self),
        ),
        route(
            M::GET,
            "/v1/sys/tokens/suspended",
            TokenSuspensions,
            get(sys::suspended_tokens),
        ),
        route(
            M::DELETE,
            "/v1/sys/tokens/{id}",
            TokenRevoke,
            delete(sys::revoke_token),
        ),
        route(
            M::POST,
            "/v1/sys/tokens/{id}/unsuspend",
            TokenUnsuspend,
            post(sys::unsuspend_token),
        ),
        route(M::GET, "/v1/sys/audit", AuditQuery, get(sys::query_audit)),
        route(
            M::POST,
            "/v1/sys/audit/verify",
            AuditVerify,
            post(sys::verify_audit),
        ),
        route(M::GET, "/v1/sys/jobs", JobsStatus, get(sys::jobs)),
        route(
            M::GET,
            "/v1/ns/{namespace}/keys",
            KeysStatus,
            get(keys::status),
        ),
        route(
            M::POST,
            "/v1/ns/{namespace}/keys/rotate",
            KeysRotate,
            post(keys::rotate),
        ),
        route(
            M::POST,
            "/v1/ns/{namespace}/keys/rewrap",
            KeysRewrap,
            post(keys::rewrap),
        ),
        route(
            M::POST,
            "/v1/ns/{namespace}/keys/min-version",
            KeysSetMinVersion,
            post(keys::set_min_version),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/keys/rotation-policy",
            KeysRotationPolicyGet,
            get(keys::get_rotation_policy),
        ),
        route(
            M::PUT,
            "/v1/ns/{namespace}/keys/rotation-policy",
            KeysRotationPolicySet,
            put(keys::put_rotation_policy),
        ),
        route(
            M::DELETE,
            "/v1/ns/{namespace}/keys/rotation-policy",
            KeysRotationPolicySet,
            delete(keys::delete_rotation_policy),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/security-policy",
            SecurityPolicyGet,
            get(sys::get_security_policy),
        ),
        route(
            M::PUT,
            "/v1/ns/{namespace}/security-policy",
            SecurityPolicySet,
            put(sys::put_security_policy),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/users",
            UserList,
            get(credentials::list_users),
        ),
        route(
            M::DELETE,
            "/v1/ns/{namespace}/users/{user}",
            UserErase,
            delete(lifecycle::erase),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/users/{user}/export",
            UserExport,
            get(lifecycle::export),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/users/{user}/export/archive",
            UserExport,
            get(files::export_archive),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/users/{user}/erasure",
            UserErasureStatus,
            get(lifecycle::erasure_status),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/users/{user}/events",
            EventQuery,
            get(events::query),
        ),
        route(
            M::POST,
            "/v1/ns/{namespace}/users/{user}/events",
            EventAppend,
            post(events::append),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/webhooks",
            WebhookList,
            get(webhooks::list),
        ),
        route(
            M::PUT,
            "/v1/ns/{namespace}/webhooks/{name}",
            WebhookPut,
            put(webhooks::put),
        ),
        route(
            M::DELETE,
            "/v1/ns/{namespace}/webhooks/{name}",
            WebhookDelete,
            delete(webhooks::delete),
        ),
        route(
            M::POST,
            "/v1/ns/{namespace}/webhooks/{name}/test",
            WebhookTest,
            post(webhooks::test),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/webhooks/{name}/deliveries",
            WebhookDeliveries,
            get(webhooks::deliveries),
        ),
        route(
            M::POST,
            "/v1/ns/{namespace}/webhooks/{name}/deliveries/{seq}/redeliver",
            WebhookRedeliver,
            post(webhooks::redeliver),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/events",
            EventQueryNamespace,
            get(events::query_namespace),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/events/counts",
            EventCounts,
            get(events::counts),
        ),
        route(
            M::PUT,
            "/v1/ns/{namespace}/events/retention",
            EventRetention,
            put(events::retention),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/providers",
            ProviderList,
            get(oauth::list_providers),
        ),
        route(
            M::PUT,
            "/v1/ns/{namespace}/providers/{name}",
            ProviderPut,
            put(oauth::put_provider),
        ),
        route(
            M::DELETE,
            "/v1/ns/{namespace}/providers/{name}",
            ProviderDelete,
            delete(oauth::delete_provider),
        ),
        route(
            M::POST,
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/access-token",
            CredentialAccessToken,
            post(oauth::access_token),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/credential-status",
            CredentialStatusList,
            get(oauth::statuses),
        ),
        route(
            M::POST,
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/revoke",
            CredentialRevoke,
            post(oauth::revoke),
        ),
        route(
            M::POST,
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/verify",
            CredentialVerify,
            post(oauth::verify),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/collections",
            CollectionList,
            get(records::list_collections),
        ),
        route(
            M::PUT,
            "/v1/ns/{namespace}/collections/{collection}",
            CollectionPut,
            put(records::put_collection),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/collections/{collection}/lookup",
            RecordLookup,
            get(records::lookup),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/users/{user}/records/{collection}",
            RecordList,
            get(records::list_user_records),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/users/{user}/records/{collection}/{key}",
            RecordRead,
            get(records::get_user_record),
        ),
        route(
            M::PUT,
            "/v1/ns/{namespace}/users/{user}/records/{collection}/{key}",
            RecordPut,
            put(records::put_user_record),
        ),
        route(
            M::DELETE,
            "/v1/ns/{namespace}/users/{user}/records/{collection}/{key}",
            RecordDelete,
            delete(records::delete_user_record),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/records/{collection}",
            RecordList,
            get(records::list_ns_records),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/records/{collection}/{key}",
            RecordRead,
            get(records::get_ns_record),
        ),
        route(
            M::PUT,
            "/v1/ns/{namespace}/records/{collection}/{key}",
            RecordPut,
            put(records::put_ns_record),
        ),
        route(
            M::DELETE,
            "/v1/ns/{namespace}/records/{collection}/{key}",
            RecordDelete,
            delete(records::delete_ns_record),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/users/{user}/credentials",
            CredentialList,
            get(credentials::list),
        ),
        route(M::GET, CRED, CredentialRead, get(credentials::get)),
        route(M::HEAD, CRED, CredentialExists, head(credentials::exists)),
        route(M::PUT, CRED, CredentialPut, put(credentials::put)),
        route(
            M::POST,
            "/v1/ns/{namespace}/credentials/batch",
            CredentialPutBatch,
            post(credentials::put_batch).layer(axum::extract::DefaultBodyLimit::max(
                credentials::BATCH_BODY_LIMIT,
            )),
        ),
        route(
            M::DELETE,
            CRED,
            CredentialDelete,
            delete(credentials::delete_current),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/metadata",
            CredentialMetadata,
            get(credentials::metadata),
        ),
        route(
            M::DELETE,
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/metadata",
            CredentialPurge,
            delete(credentials::purge),
        ),
        route(
            M::POST,
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/delete",
            CredentialDelete,
            post(credentials::delete_versions),
        ),
        route(
            M::POST,
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/undelete",
            CredentialUndelete,
            post(credentials::undelete_versions),
        ),
        route(
            M::POST,
            "/v1/ns/{namespace}/users/{user}/credentials/{name}/destroy",
            CredentialDestroy,
            post(credentials::destroy_versions),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/users/{user}/files",
            FileList,
            get(files::list),
        ),
        Route {
            streaming: true,
            ..route(
                M::POST,
                "/v1/ns/{namespace}/users/{user}/files",
                FileUploadStart,
                post(files::upload),
            )
        },
        route(
            M::GET,
            "/v1/ns/{namespace}/users/{user}/files/{file}",
            FileInfo,
            get(files::info),
        ),
        route(
            M::DELETE,
            "/v1/ns/{namespace}/users/{user}/files/{file}",
            FileDelete,
            delete(files::delete),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/users/{user}/files/{file}/content",
            FileRead,
            get(files::download),
        ),
        route(
            M::POST,
            "/v1/ns/{namespace}/users/{user}/files/{file}/links",
            FileLink,
            post(files::create_link),
        ),
        route(
            M::GET,
            "/v1/links/{token}",
            FileReadLink,
            get(files::download_link),
        ),
        route(
            M::GET,
            "/v1/ns/{namespace}/file-policy",
            FilePolicyGet,
            get(files::get_policy),
        ),
        route(
            M::PUT,
            "/v1/ns/{namespace}/file-policy",
            FilePolicySet,
            put(files::put_policy),
        ),
    ]
}

/// Every route: the ordinary ones bounded by `timeout` (408 `request_timeout`), each with its
/// operation attached for the authenticating extractor.
pub(crate) fn all(timeout: Duration) -> Router<AppState> {
    let mut by_path: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for r in table() {
        let mut handler = r.handler;
        if let Some(op) = r.op {
            handler = handler.layer(Extension(op));
        }
        if !r.streaming {
            handler = handler.layer(axum::middleware::from_fn_with_state(
                timeout,
                crate::limits::time_limit,
            ));
        }
        match by_path.iter_mut().find(|(p, _)| *p == r.path) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(handler),
            None => by_path.push((r.path, handler)),
        }
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, handler)| {
            router.route(path, handler)
        })
}

/// The path templates served (the OpenAPI test compares them with the document).
pub fn paths() -> Vec<&'static str> {
    let mut paths: Vec<&'static str> = Vec::new();
    for r in table() {
        if !paths.contains(&r.path) {
            paths.push(r.path);
        }
    }
    paths
}

/// Fallback for unknown paths.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NoRoute
}
