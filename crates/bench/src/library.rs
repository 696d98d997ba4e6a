//! Library scenarios: point reads and writes of a 1 KiB token set for random users, through the
//! vault (validation, authorization, encryption, audit) and through the plain store.

use std::time::Instant;

use anyhow::Result;

use crate::report::{Measure, Row};
use crate::setup::{plain_key, plain_put, user_id, vault_put, Fixture, Rng, NAME, NAMESPACE};
use crate::Params;

/// Runs `work(thread, ops)` on `threads` threads and returns operations per second.
fn timed(
    threads: usize,
    ops: usize,
    work: impl Fn(usize, usize) -> Result<()> + Sync,
) -> Result<f64> {
    let per_thread = ops / threads;
    // Warm-up, not measured: caches, connections, and whatever the previous run left behind
    // (a PostgreSQL checkpoint, a WAL checkpoint) settle before the clock starts.
    std::thread::scope(|scope| {
        for t in 0..threads {
            let work = &work;
            scope.spawn(move || work(t, per_thread / 10));
        }
    });
    let started = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let work = &work;
                scope.spawn(move || work(t, per_thread))
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("bench thread panicked"))
    })?;
    Ok((per_thread * threads) as f64 / started.elapsed().as_secs_f64())
}

fn per_sec(value: f64) -> Measure {
    Measure {
        per_sec: value,
        ..Measure::default()
    }
}

pub fn run(f: &Fixture, params: &Params) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let (thread_counts, get_ops, put_ops): (&[usize], _, _) = if f.backend == "postgres" {
        (&[1, 16], params.pg_get_ops, params.pg_put_ops)
    } else {
        (&[1, 2], params.get_ops, params.put_ops)
    };
    for &threads in thread_counts {
        let plain = timed(threads, get_ops, |t, n| {
            let mut rng = Rng::new(t as u64 + 1);
            for _ in 0..n {
                let got = f
                    .plain
                    .get_credential_version(&plain_key(rng.below(f.users)), None)?;
                assert!(got.is_some());
            }
            Ok(())
        })?;
        let vault = timed(threads, get_ops, |t, n| {
            let mut rng = Rng::new(t as u64 + 1);
            for _ in 0..n {
                let cred = f.vault.get_credential(
                    &f.who,
                    NAMESPACE,
                    &user_id(rng.below(f.users)),
                    NAME,
                    None,
                )?;
                std::hint::black_box(cred);
            }
            Ok(())
        })?;
        rows.push(Row::new(
            format!(
                "{} library get, {} users, {threads} thread(s)",
                f.backend, f.users
            ),
            per_sec(vault),
            per_sec(plain),
            get_target(f.backend, threads),
        ));
    }
    for &threads in thread_counts {
        let plain = timed(threads, put_ops, |t, n| {
            let mut rng = Rng::new(t as u64 + 7);
            for round in 0..n {
                plain_put(f.plain.as_ref(), rng.below(f.users), round + 1, 2)?;
            }
            Ok(())
        })?;
        let vault = timed(threads, put_ops, |t, n| {
            let mut rng = Rng::new(t as u64 + 7);
            for round in 0..n {
                vault_put(&f.vault, &f.who, rng.below(f.users), round + 1)?;
            }
            Ok(())
        })?;
        rows.push(Row::new(
            format!(
                "{} library put, {} users, {threads} thread(s)",
                f.backend, f.users
            ),
            per_sec(vault),
            per_sec(plain),
            put_target(f.backend, threads),
        ));
    }
    f.vault.flush_audit()?;
    Ok(rows)
}

/// Issue #19's target for a library read row.
fn get_target(backend: &str, threads: usize) -> &'static str {
    match (backend, threads) {
        ("postgres", 16) => ">= 0.9x (#19)",
        ("postgres", _) => "-",
        _ => ">= 0.85x (#19)",
    }
}

/// Issue #19's target for a library write row.
fn put_target(backend: &str, threads: usize) -> &'static str {
    match (backend, threads) {
        ("postgres", 1) => ">= 0.7x (#19)",
        ("postgres", _) => "-",
        _ => ">= 0.8x (#19)",
    }
}
