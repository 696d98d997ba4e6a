//! Importing in batches (what `strongroom import` and the batch endpoint do): 500 new users'
//! ~1 KiB token sets per call, through `Vault::put_credentials_batch` (authorization, a data
//! key per new user, AES-256-GCM, sealed names, an audit entry per item, one transaction for
//! the batch's credentials) beside the limit — the same plaintext rows into the same store
//! engine, each batch's user rows in one `insert_users` call and its credentials in one
//! `put_credential_versions` call.

use std::time::Instant;

use anyhow::Result;
use strongroom_core::credentials::{BatchItem, PutOptions};
use strongroom_storage::{BatchWrite, ItemKey, NewVersion, UserRow};

use crate::report::{Measure, Row};
use crate::setup::{token_set_json, Fixture, NAME, NAMESPACE};

const BATCH: usize = 500;
const ITEMS: usize = 10_000;

fn rate(items: usize, started: Instant) -> Measure {
    Measure {
        per_sec: items as f64 / started.elapsed().as_secs_f64(),
        p50_ms: None,
        p99_ms: None,
        errors: 0,
    }
}

pub fn run(f: &Fixture) -> Result<Vec<Row>> {
    let started = Instant::now();
    for batch in 0..ITEMS / BATCH {
        let items: Vec<BatchItem> = (0..BATCH)
            .map(|i| -> Result<BatchItem> {
                let n = batch * BATCH + i;
                Ok(BatchItem {
                    user: format!("import:{n}"),
                    name: NAME.into(),
                    data: serde_json::value::RawValue::from_string(token_set_json(n, 9))?,
                    options: PutOptions {
                        cas: Some(0),
                        max_versions: None,
                    },
                })
            })
            .collect::<Result<_>>()?;
        let report = f.vault.put_credentials_batch(&f.who, NAMESPACE, &items)?;
        anyhow::ensure!(report.results.iter().all(Result::is_ok), "an item failed");
    }
    let strongroom = rate(ITEMS, started);

    let started = Instant::now();
    for batch in 0..ITEMS / BATCH {
        let keys: Vec<ItemKey> = (0..BATCH)
            .map(|i| ItemKey {
                namespace: NAMESPACE.into(),
                user_hash: format!("import:{}", batch * BATCH + i).into_bytes(),
                name: NAME.into(),
            })
            .collect();
        let bodies: Vec<Vec<u8>> = (0..BATCH)
            .map(|i| token_set_json(batch * BATCH + i, 9).into_bytes())
            .collect();
        let users: Vec<UserRow> = keys
            .iter()
            .map(|key| UserRow {
                namespace: NAMESPACE.into(),
                user_hash: key.user_hash.clone(),
                encrypted_id: vec![0; 52],
                wrapped_key: vec![0; 66],
                kek_version: 1,
                created_at: 1,
            })
            .collect();
        f.plain.insert_users(&users)?;
        let new = NewVersion {
            created_at: 1,
            max_versions: None,
            default_max_versions: 10,
            sealed_name: None,
            status: None,
        };
        let seals: Vec<_> = bodies
            .iter()
            .map(|b| move |_: u64| Ok::<_, String>(b.clone()))
            .collect();
        let pointer = |_: u64| Vec::new();
        let writes: Vec<BatchWrite<'_>> = keys
            .iter()
            .zip(&seals)
            .map(|(key, seal)| BatchWrite {
                key,
                expected_current: Some(0),
                new: &new,
                seal,
                pointer: &pointer,
            })
            .collect();
        let results = f.plain.put_credential_versions(&writes)?;
        anyhow::ensure!(results.iter().all(Result::is_ok), "a plain write failed");
    }
    let limit = rate(ITEMS, started);
    let ratio = strongroom.per_sec / limit.per_sec;
    Ok(vec![Row {
        scenario: format!("{} import, batches of {BATCH} new users", f.backend),
        strongroom,
        limit,
        ratio,
        target: "-".into(),
        peer: None,
    }])
}
