//! Prometheus metrics: request counts by route, method and status, a latency histogram per
//! route, and authentication failures. Labels use the matched route template, never the raw
//! path, so no user id or credential name reaches a metric.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use parking_lot::Mutex;

use crate::state::AppState;

const BUCKETS_SECONDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS_SECONDS.len()],
    sum: f64,
    total: u64,
}

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    auth_failures: AtomicU64,
}

impl Metrics {
    pub fn auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
        let mut latency = self.latency.lock();
        let h = latency.entry(route.to_string()).or_default();
        for (i, bound) in BUCKETS_SECONDS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.total += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP strongroom_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE strongroom_http_requests_total counter\n");
        for ((route, method, status), n) in self.requests.lock().iter() {
            let _ = writeln!(out, "strongroom_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP strongroom_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE strongroom_http_request_duration_seconds histogram\n");
        for (route, h) in self.latency.lock().iter() {
            for (i, bound) in BUCKETS_SECONDS.iter().enumerate() {
                let _ = writeln!(out, "strongroom_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(out, "strongroom_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.total);
            let _ = writeln!(
                out,
                "strongroom_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "strongroom_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.total
            );
        }
        out.push_str("# HELP strongroom_auth_failures_total Failed authentications.\n");
        out.push_str("# TYPE strongroom_auth_failures_total counter\n");
        let _ = writeln!(
            out,
            "strongroom_auth_failures_total {}",
            self.auth_failures.load(Ordering::Relaxed)
        );
        out
    }
}

/// Middleware: times each request and counts it under its route template.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics
        .observe(&route, &method, status, elapsed.as_secs_f64());
    tracing::debug!(
        route,
        method,
        status,
        micros = elapsed.as_micros() as u64,
        "request"
    );
    response
}
