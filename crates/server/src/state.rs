//! Shared server state: the vault, the abuse guards, metrics and settings.

use std::sync::Arc;

use strongroom_core::{CoreError, Vault};

use crate::error::ApiError;
use crate::guard::Guards;
use crate::metrics::Metrics;

/// Server tunables.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Requests taking longer are answered 408.
    pub request_timeout_ms: u64,
    /// Failed authentications from one client address within `lockout_window_secs` that lock it out.
    pub lockout_threshold: u32,
    pub lockout_window_secs: u64,
    /// How long a locked-out client waits.
    pub lockout_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout_ms: 30_000,
            lockout_threshold: 10,
            lockout_window_secs: 60,
            lockout_secs: 60,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub vault: Vault,
    pub guards: Arc<Guards>,
    pub metrics: Arc<Metrics>,
    pub settings: Arc<ServerSettings>,
    /// This node's name in job leases.
    pub node_id: Arc<str>,
}

impl AppState {
    pub fn new(vault: Vault, settings: ServerSettings) -> Self {
        Self::with_node_id(vault, settings, "standalone")
    }

    pub fn with_node_id(vault: Vault, settings: ServerSettings, node_id: &str) -> Self {
        Self {
            node_id: node_id.into(),
            guards: Arc::new(Guards::new(&settings)),
            metrics: Arc::new(Metrics::default()),
            settings: Arc::new(settings),
            vault,
        }
    }

    /// Runs a (blocking) vault operation on the blocking pool.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Vault) -> Result<T, CoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let vault = self.vault.clone();
        tokio::task::spawn_blocking(move || work(&vault))
            .await
            .map_err(|e| ApiError::Core(CoreError::Internal(format!("worker failed: {e}"))))?
            .map_err(ApiError::Core)
    }
}
