//! Shared server state: the node (its vault, unless sealed), rate limits, metrics and
//! settings.

use std::sync::Arc;

use strongroom_core::seal::{KeySource, Node};
use strongroom_core::{CoreError, Vault};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimits;

/// Server tunables.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Requests taking longer are answered 408.
    pub request_timeout_ms: u64,
    /// An upload whose body sends nothing for this long is cut off and abandoned.
    pub upload_idle_ms: u64,
    /// Peers whose `Forwarded` / `X-Forwarded-For` headers name the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A connection must send its request headers within this long.
    pub header_read_timeout_ms: u64,
    /// A connection that moves no byte in either direction for this long is closed.
    pub idle_timeout_ms: u64,
    /// Open connections at most; at the cap the longest-idle connection makes room.
    pub max_connections: usize,
    /// TLS for every listener (reloadable); plain HTTP when `None`.
    pub tls: Option<Arc<crate::tls::Tls>>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout_ms: 30_000,
            upload_idle_ms: 60_000,
            trusted_proxies: Vec::new(),
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 120_000,
            max_connections: 4096,
            tls: None,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// This process's vault, sealed or not; every handler reaches it through [`AppState::run`].
    pub node: Arc<Node>,
    pub rate_limits: Arc<RateLimits>,
    pub metrics: Arc<Metrics>,
    pub settings: Arc<ServerSettings>,
    /// This node's name in job leases.
    pub node_id: Arc<str>,
}

impl AppState {
    /// State serving an open vault (no jobs, never sealed by the process itself).
    pub fn new(vault: Vault, settings: ServerSettings) -> Self {
        let node = Arc::new(Node::serving(vault, KeySource::File));
        Self::with_node(node, settings, "standalone")
    }

    pub fn with_node(node: Arc<Node>, settings: ServerSettings, node_id: &str) -> Self {
        Self {
            node_id: node_id.into(),
            rate_limits: Arc::new(RateLimits::default()),
            metrics: Arc::new(Metrics::default()),
            settings: Arc::new(settings),
            node,
        }
    }

    /// Runs blocking work on the node itself (seal, unseal, status) on the blocking pool.
    pub async fn run_node<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Node) -> Result<T, CoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let node = self.node.clone();
        strongroom_core::blocking::run(move || work(&node))
            .await
            .map_err(|panic| {
                ApiError::Core(CoreError::Internal(format!(
                    "request worker panicked: {panic}"
                )))
            })?
            .map_err(ApiError::Core)
    }

    /// Runs a (blocking) vault operation on the blocking pool — the only way handlers reach
    /// storage. A sealed node answers 503 `sealed`. A panic in it is a 500 for this request;
    /// the node keeps serving.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Vault) -> Result<T, CoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.run_node(move |node| work(&node.vault()?)).await
    }
}
