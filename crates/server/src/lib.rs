//! Strongroom's HTTP API: a thin shell over `strongroom-core`.
//!
//! Handlers parse (with extractors that turn every malformed input into the one error shape),
//! authenticate (the [`extract::Authenticated`] extractor, with lock-out after repeated
//! failures and per-token rate limits), call the vault on the blocking pool, and map the result.
//! Authorization and audit happen inside the vault, so no handler can skip them.
//! [`router`] is for in-process tests; [`serve`] runs it on a listener until `shutdown`.

pub mod error;
pub mod extract;
pub mod guard;
pub mod metrics;
mod openapi;
mod routes;
mod state;
mod tar;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::header::AUTHORIZATION;
use axum::Router;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

pub use routes::paths as route_paths;
pub use state::{AppState, ServerSettings};

/// The whole API as an axum router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.max_body_bytes;
    let timeout = Duration::from_millis(state.settings.request_timeout_ms);
    routes::all(timeout)
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION]))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then drains in-flight requests and
/// flushes the audit log.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let vault = state.vault.clone();
    let refresher = tokio::spawn(refresh_lockouts(state.clone()));
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    refresher.abort();
    served?;
    tokio::task::spawn_blocking(move || vault.flush_audit())
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)
}

/// Keeps this node's view of cluster-wide lock-outs current (every second).
async fn refresh_lockouts(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        match state.run(|v| v.active_lockouts()).await {
            Ok(active) => state.guards.replace_locks(active),
            Err(err) => tracing::debug!(error = ?err, "could not read lock-outs"),
        }
    }
}
