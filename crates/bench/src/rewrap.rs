//! Key rotation: how many user data keys per second `keys rewrap` moves to the new version,
//! beside the same batched conditional updates with no cryptography.

use std::time::Instant;

use anyhow::Result;
use strongroom_storage::{Rewrap, UserRow};

use crate::report::{Measure, Row};
use crate::setup::{Fixture, NAMESPACE};

const BATCH: usize = 1000;

pub fn run(f: &Fixture) -> Result<Vec<Row>> {
    // The limit: the same rows, read in the same batches and rewritten with the same byte
    // lengths under the same conditions, with no unwrap or wrap.
    let plain_ns = "plain-rewrap";
    for i in 0..f.users {
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&(i as u64).to_be_bytes());
        f.plain.insert_user(&UserRow {
            namespace: plain_ns.into(),
            user_hash: hash.to_vec(),
            encrypted_id: vec![0; 55],
            wrapped_key: vec![1; 66],
            kek_version: 1,
            created_at: 1,
        })?;
    }
    let started = Instant::now();
    let mut after: Option<Vec<u8>> = None;
    let mut plain_done = 0u64;
    loop {
        let batch = f
            .plain
            .users_below_kek(plain_ns, 2, after.as_deref(), BATCH)?;
        let Some(last) = batch.last() else { break };
        after = Some(last.user_hash.clone());
        let updates: Vec<Rewrap> = batch
            .iter()
            .map(|u| Rewrap {
                user_hash: u.user_hash.clone(),
                from_version: 1,
                to_version: 2,
                wrapped_key: vec![2; 66],
            })
            .collect();
        plain_done += f.plain.rewrap_users(plain_ns, &updates)?;
    }
    let plain_rate = plain_done as f64 / started.elapsed().as_secs_f64();

    f.vault.rotate_key(&f.who, NAMESPACE)?;
    let started = Instant::now();
    let report = f.vault.rewrap(&f.who, NAMESPACE)?;
    let rate = report.rewrapped as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.remaining == 0 && report.rewrapped as usize >= f.users,
        "rewrap incomplete: {report:?}"
    );
    Ok(vec![Row::new(
        format!("{} rewrap user keys, {} users", f.backend, f.users),
        Measure {
            per_sec: rate,
            ..Measure::default()
        },
        Measure {
            per_sec: plain_rate,
            ..Measure::default()
        },
        ">= 50,000 keys/s",
    )])
}
