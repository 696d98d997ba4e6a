//! Event appends: batches of 100 events (a command name and a small JSON payload) for random
//! users, through the vault (validation, one random id and one AES-GCM seal per event, one
//! transaction per batch) beside the same rows in plaintext through the same storage.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;
use strongroom_core::events::NewEvent;
use strongroom_storage::EventRow;

use crate::report::{Measure, Row};
use crate::setup::{user_id, Fixture, Rng, NAMESPACE};

const BATCH: usize = 100;
const BATCHES: usize = 300;

pub fn run(f: &Fixture) -> Result<Vec<Row>> {
    let details = json!({"command": "/play", "query": "lofi hip hop radio", "guild": 123456789});
    let batch: Vec<NewEvent> = (0..BATCH)
        .map(|i| NewEvent {
            event_type: if i % 2 == 0 {
                "command.play".into()
            } else {
                "command.skip".into()
            },
            time: None,
            details: details.as_object().cloned().unwrap_or_default(),
        })
        .collect();
    let mut rng = Rng::new(99);
    let started = Instant::now();
    for _ in 0..BATCHES {
        f.vault
            .append_events(&f.who, NAMESPACE, &user_id(rng.below(f.users)), &batch)?;
    }
    let ours = (BATCH * BATCHES) as f64 / started.elapsed().as_secs_f64();

    let plain_body = serde_json::to_vec(&json!({"type": "command.play", "details": details}))?;
    let mut rng = Rng::new(99);
    let started = Instant::now();
    for b in 0..BATCHES {
        let user = user_id(rng.below(f.users)).into_bytes();
        let rows: Vec<EventRow> = (0..BATCH)
            .map(|i| EventRow {
                namespace: NAMESPACE.into(),
                user_hash: user.clone(),
                time: (b * BATCH + i) as i64,
                id: ((b * BATCH + i) as u128).to_be_bytes().to_vec(),
                type_hash: vec![i as u8 % 2; 32],
                ciphertext: plain_body.clone(),
            })
            .collect();
        f.plain.append_events(&rows)?;
    }
    let limit = (BATCH * BATCHES) as f64 / started.elapsed().as_secs_f64();
    let per_sec = |v: f64| Measure {
        per_sec: v,
        ..Measure::default()
    };
    Ok(vec![Row::new(
        format!("{} event appends, batches of {BATCH} (events/s)", f.backend),
        per_sec(ours),
        per_sec(limit),
        "appends are cheap",
    )])
}
