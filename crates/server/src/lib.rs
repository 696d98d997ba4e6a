//! Strongroom's HTTP API: a thin shell over `strongroom-core`.
//!
//! Handlers parse (with extractors that turn every malformed input into the one error shape),
//! authenticate (the [`extract::Authenticated`] extractor, with lock-out after repeated
//! failures and per-token rate limits), call the vault on the blocking pool, and map the result.
//! Authorization and audit happen inside the vault, so no handler can skip them.
//! [`router`] is for in-process tests; [`serve`] runs it on a listener until `shutdown`.

pub mod connections;
pub mod console;
pub mod error;
mod error_code;
pub mod extract;
mod limits;
pub mod metrics;
mod openapi;
pub mod proxies;
pub mod range;
pub mod rate_limit;
mod routes;
mod state;
#[doc(hidden)]
pub mod tar;
pub mod tls;
mod vault_api;

use std::future::Future;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::header::AUTHORIZATION;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

pub use error_code::ErrorCode;
pub use routes::paths as route_paths;
pub use routes::{table as route_table, Route};
pub use state::{AppState, ServerSettings};

/// The whole API as an axum router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.max_body_bytes;
    let timeout = Duration::from_millis(state.settings.request_timeout_ms);
    routes::all(timeout)
        .merge(console::routes())
        .nest_service("/vault", vault_api::service(state.clone()))
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(limits::panic_response))
        .layer(SetSensitiveRequestHeadersLayer::new([
            AUTHORIZATION,
            axum::http::HeaderName::from_static("x-vault-token"),
        ]))
        .with_state(state)
}

/// The Vault-compatible API alone, at the root (for `--vault-listen`, for clients that drop
/// a path prefix from their address).
pub fn vault_router(state: AppState) -> Router {
    let body_limit = state.settings.max_body_bytes;
    vault_api::service(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(limits::panic_response))
        .layer(SetSensitiveRequestHeadersLayer::new([
            AUTHORIZATION,
            axum::http::HeaderName::from_static("x-vault-token"),
        ]))
}

/// Serves the API on `listener` until `shutdown` completes (with the connection limits of
/// [`connections`]), then drains in-flight requests and flushes the audit log.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let node = state.node.clone();
    let limits = connections::Limits {
        header_read_timeout: Duration::from_millis(state.settings.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(state.settings.idle_timeout_ms),
        max_connections: state.settings.max_connections,
    };
    let refresher = tokio::spawn(refresh_guards(state.clone()));
    let served = connections::serve(
        listener,
        router(state.clone()),
        limits,
        state.settings.tls.clone(),
        shutdown,
    )
    .await;
    refresher.abort();
    served?;
    strongroom_core::blocking::run(move || node.shutdown())
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)
}

/// Serves the Vault-compatible API alone on `listener` until `shutdown` completes (the main
/// listener's [`serve`] flushes the audit log at the end).
pub async fn serve_vault(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = connections::Limits {
        header_read_timeout: Duration::from_millis(state.settings.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(state.settings.idle_timeout_ms),
        max_connections: state.settings.max_connections,
    };
    let tls = state.settings.tls.clone();
    connections::serve(listener, vault_router(state), limits, tls, shutdown).await
}

/// Keeps this node's view of cluster-wide lock-outs, suspensions and the seal mark current
/// (every second): a seal made on another node seals this one within a second.
async fn refresh_guards(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Err(err) = state.run_node(|n| n.follow_cluster()).await {
            tracing::debug!(error = ?err, "could not read the cluster's seal mark");
        }
        if state.node.is_sealed() {
            continue;
        }
        if let Err(err) = state.run(|v| v.refresh_guards()).await {
            tracing::debug!(error = ?err, "could not read lock-outs");
        }
    }
}
