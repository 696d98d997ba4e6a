//! Erasure latency: how long until an erased user's data is unreadable, for a user with 10 and
//! with 10,000 items. Strongroom crypto-shreds (deletes the wrapped data key, then purges);
//! the limit, holding plaintext, is unreadable only once every row is deleted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use strongroom_core::credentials::{CredentialData, PutOptions};
use strongroom_core::CoreError;
use strongroom_storage::{ItemKey, NewVersion, UserRow};

use crate::report::{Measure, Row};
use crate::setup::{token_set_json, Fixture, NAMESPACE};

fn latency(d: Duration) -> Measure {
    let ms = d.as_secs_f64() * 1000.0;
    Measure {
        per_sec: 1000.0 / ms.max(1e-6),
        p50_ms: Some(ms),
        p99_ms: Some(ms),
        errors: 0,
    }
}

/// Polls `readable` on another thread from now on; returns when it first saw the data gone.
fn watch(
    readable: impl Fn() -> bool + Sync,
    erase: impl FnOnce() -> Result<()>,
) -> Result<(Duration, Duration)> {
    let started = Instant::now();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| loop {
            if !readable() {
                return started.elapsed();
            }
            if stop.load(Ordering::SeqCst) && readable() {
                return Duration::MAX;
            }
        });
        let result = erase();
        let call = started.elapsed();
        stop.store(true, Ordering::SeqCst);
        let gone = watcher.join().expect("watcher");
        result.map(|_| (gone, call))
    })
}

pub fn run(f: &Fixture) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for items in [10usize, 10_000] {
        let user = format!("erase-me-{items}");
        let data: CredentialData = serde_json::from_str(&token_set_json(items, 1))?;
        for i in 0..items {
            f.vault.put_credential(
                &f.who,
                NAMESPACE,
                &user,
                &format!("c{i}"),
                &data,
                PutOptions::default(),
            )?;
        }
        let probe = format!("c{}", items - 1);
        let (gone, call) = watch(
            || {
                !matches!(
                    f.vault
                        .get_credential(&f.who, NAMESPACE, &user, &probe, None),
                    Err(CoreError::NotFound(_))
                )
            },
            || {
                f.vault.erase_user(&f.who, NAMESPACE, &user, &user)?;
                Ok(())
            },
        )?;
        anyhow::ensure!(gone != Duration::MAX, "the erased user stayed readable");
        eprintln!(
            "{}: erase of {items} items: unreadable after {gone:?}, call returned after {call:?}",
            f.backend
        );

        // The limit: the same rows in plaintext; unreadable once all are deleted.
        let plain_user = format!("plain-erase-{items}").into_bytes();
        f.plain.insert_user(&UserRow {
            namespace: NAMESPACE.into(),
            user_hash: plain_user.clone(),
            encrypted_id: vec![0; 52],
            wrapped_key: vec![0; 66],
            kek_version: 1,
            created_at: 1,
        })?;
        let body = token_set_json(items, 1).into_bytes();
        let new = NewVersion {
            created_at: 1,
            max_versions: None,
            default_max_versions: 10,
            sealed_name: None,
            status: None,
        };
        for i in 0..items {
            let key = ItemKey {
                namespace: NAMESPACE.into(),
                user_hash: plain_user.clone(),
                name: format!("c{i}"),
            };
            f.plain
                .put_credential_version(&key, None, &new, &|_| Ok(body.clone()), &|_| Vec::new())?;
        }
        let started = Instant::now();
        while f.plain.purge_user_items(NAMESPACE, &plain_user, 100_000)? > 0 {}
        let plain_gone = started.elapsed();
        rows.push(Row::new(
            format!(
                "{} erase a user with {items} items (ms until unreadable)",
                f.backend
            ),
            latency(gone),
            latency(plain_gone),
            "<= 10 ms at 10,000 items",
        ));
    }
    Ok(rows)
}
