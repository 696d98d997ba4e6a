//! Results: one row per scenario, Strongroom beside the limit, printed as a table and written
//! as JSON.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::Params;

/// One side of a scenario.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measure {
    /// Operations (or items) per second.
    pub per_sec: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    pub errors: u64,
}

/// A scenario run through Strongroom and through the limit.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub strongroom: Measure,
    pub limit: Measure,
    /// strongroom.per_sec / limit.per_sec (for latency rows, per_sec is 1000 / ms)
    pub ratio: f64,
    pub target: String,
    /// A system a user would pick instead, on the same requests and load (e.g. OpenBao).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<Peer>,
}

/// A peer's side of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Peer {
    pub name: String,
    pub measure: Measure,
    /// strongroom.per_sec / peer.per_sec
    pub ratio: f64,
}

impl Row {
    pub fn new(
        scenario: impl Into<String>,
        strongroom: Measure,
        limit: Measure,
        target: &str,
    ) -> Self {
        let ratio = if limit.per_sec > 0.0 {
            strongroom.per_sec / limit.per_sec
        } else {
            0.0
        };
        Self {
            scenario: scenario.into(),
            strongroom,
            limit,
            ratio,
            target: target.into(),
            peer: None,
        }
    }

    /// This row with a peer measured on the same requests.
    pub fn with_peer(mut self, name: &str, measure: Measure) -> Self {
        let ratio = if measure.per_sec > 0.0 {
            self.strongroom.per_sec / measure.per_sec
        } else {
            0.0
        };
        self.peer = Some(Peer {
            name: name.into(),
            measure,
            ratio,
        });
        self
    }
}

fn latency(m: &Measure) -> String {
    match (m.p50_ms, m.p99_ms) {
        (Some(p50), Some(p99)) => format!("{p50:.2}/{p99:.2}"),
        _ => "-".into(),
    }
}

pub fn print_table(rows: &[Row]) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "| scenario | strongroom /s | p50/p99 ms | errors | limit /s | p50/p99 ms | ratio | peer /s | p50/p99 ms | × peer | target |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for r in rows {
        let (limit, limit_latency, ratio) = if r.limit.per_sec > 0.0 {
            (
                format!("{:.0}", r.limit.per_sec),
                latency(&r.limit),
                format!("{:.2}", r.ratio),
            )
        } else {
            ("-".into(), "-".into(), "-".into())
        };
        let (peer, peer_latency, peer_ratio) = match &r.peer {
            Some(p) => (
                format!("{} {:.0}", p.name, p.measure.per_sec),
                latency(&p.measure),
                format!("{:.2}", p.ratio),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {limit} | {limit_latency} | {ratio} | {peer} | {peer_latency} | {peer_ratio} | {} |",
            r.scenario,
            r.strongroom.per_sec,
            latency(&r.strongroom),
            r.strongroom.errors,
            r.target
        );
    }
}

pub fn write_json(params: &Params, rows: &[Row]) -> Result<()> {
    let doc = serde_json::json!({
        "machine": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
        },
        "params": params,
        "rows": rows,
    });
    std::fs::write(&params.out, serde_json::to_string_pretty(&doc)? + "\n")?;
    Ok(())
}
