//! Events: appends in batches of 100 (a command name and a small JSON payload) for random
//! users, through the vault (validation, one random id and one AES-GCM seal per event, one
//! transaction per batch) beside the same rows in plaintext through the same storage; then
//! queries of a user's newest 100 events (the vault decrypts and decodes each row and audits the
//! query; the limit reads the same rows and parses each payload as JSON).

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use strongroom_core::events::{EventFilter, NewEvent};
use strongroom_storage::{EventQuery, EventRow};

use crate::report::{Measure, Row};
use crate::setup::{user_id, Fixture, Rng, NAMESPACE};

const BATCH: usize = 100;
const BATCHES: usize = 300;
/// Users whose newest events are queried (each gets one more batch first, on both sides).
const QUERIED_USERS: usize = 50;
/// How long each side queries (time-bounded: on PostgreSQL a query is a round trip).
const QUERY_FOR: Duration = Duration::from_secs(2);

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
    let (ours_rows, limit_rows) = queries(f, &batch, &plain_body)?;
    Ok(vec![
        Row::new(
            format!("{} event appends, batches of {BATCH} (events/s)", f.backend),
            per_sec(ours),
            per_sec(limit),
            "appends are cheap",
        ),
        Row::new(
            format!(
                "{} event query, a user's newest {BATCH} (rows/s)",
                f.backend
            ),
            per_sec(ours_rows),
            per_sec(limit_rows),
            ">= 0.8x (#19)",
        ),
    ])
}

/// Rows per second read by queries of random users' newest [`BATCH`] events: (vault, limit).
fn queries(f: &Fixture, batch: &[NewEvent], plain_body: &[u8]) -> Result<(f64, f64)> {
    let users = QUERIED_USERS.min(f.users);
    for u in 0..users {
        f.vault
            .append_events(&f.who, NAMESPACE, &user_id(u), batch)?;
        let rows: Vec<EventRow> = (0..BATCH)
            .map(|i| EventRow {
                namespace: NAMESPACE.into(),
                user_hash: user_id(u).into_bytes(),
                time: (1 << 40) + i as i64,
                id: (((u * BATCH + i) as u128) | (1 << 100))
                    .to_be_bytes()
                    .to_vec(),
                type_hash: vec![i as u8 % 2; 32],
                ciphertext: plain_body.to_vec(),
            })
            .collect();
        f.plain.append_events(&rows)?;
    }
    f.refresh_statistics()?;
    let filter = EventFilter {
        event_type: None,
        since: None,
        until: None,
        cursor: None,
        limit: BATCH,
    };
    let mut rng = Rng::new(3);
    let started = Instant::now();
    let mut read = 0usize;
    while started.elapsed() < QUERY_FOR {
        let page = f
            .vault
            .query_events(&f.who, NAMESPACE, &user_id(rng.below(users)), &filter)?;
        anyhow::ensure!(page.items.len() == BATCH, "a full page of events");
        read += page.items.len();
    }
    let ours = read as f64 / started.elapsed().as_secs_f64();

    let mut rng = Rng::new(3);
    let started = Instant::now();
    let mut read = 0usize;
    while started.elapsed() < QUERY_FOR {
        let rows = f.plain.query_events(&EventQuery {
            namespace: NAMESPACE.into(),
            user_hash: user_id(rng.below(users)).into_bytes(),
            type_hash: None,
            since: None,
            until: None,
            before: None,
            limit: BATCH,
        })?;
        anyhow::ensure!(rows.len() == BATCH, "a full page of events");
        for row in &rows {
            let body: serde_json::Value = serde_json::from_slice(&row.ciphertext)?;
            std::hint::black_box(body);
        }
        read += rows.len();
    }
    let limit = read as f64 / started.elapsed().as_secs_f64();
    Ok((ours, limit))
}
