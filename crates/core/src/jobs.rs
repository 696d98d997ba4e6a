//! Background jobs that run on one node of a cluster at a time.
//!
//! Each job has a thread that, every `interval`, takes (or renews) the job's lease in the
//! database — `acquire_lease(name, node_id, now, now + lease_ttl)` — and runs one unit of work
//! only while it holds it. A node that dies stops renewing; once the lease expires another
//! node's next tick takes it over. On a clean stop a node releases only its own leases. Work
//! that reports more waiting runs again at once (renewing the lease first).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use strongroom_storage::LeaseRow;

use crate::clock::rfc3339;
use crate::operation::Op;
use crate::vault::At;
use crate::{CoreResult, Principal, Vault};

/// One kind of background work.
pub trait Job: Send + Sync + 'static {
    /// The job's name, which is also its lease's name.
    fn name(&self) -> &'static str;
    /// Does one unit of work; `Ok(true)` when more may be waiting.
    fn run_once(&self, vault: &Vault) -> CoreResult<bool>;
}

/// Rotates namespace keys whose rotation policy says they are due, and retires older versions
/// nothing depends on any more (`core::key_rotation`).
pub struct KeyRotationJob;

impl Job for KeyRotationJob {
    fn name(&self) -> &'static str {
        "key-rotation"
    }

    fn run_once(&self, vault: &Vault) -> CoreResult<bool> {
        vault.rotate_due_keys()
    }
}

/// Moves user data keys to the primary key version after a rotation, batch by batch.
pub struct RewrapJob;

impl Job for RewrapJob {
    fn name(&self) -> &'static str {
        "key-rewrap"
    }

    fn run_once(&self, vault: &Vault) -> CoreResult<bool> {
        vault.rewrap_some()
    }
}

/// Finishes purging erased users (large users, or erasures interrupted by a crash).
pub struct ErasurePurgeJob;

impl Job for ErasurePurgeJob {
    fn name(&self) -> &'static str {
        "erasure-purge"
    }

    fn run_once(&self, vault: &Vault) -> CoreResult<bool> {
        vault.purge_some()
    }
}

/// Copies erasure ledger entries to the ledger outside the store (`core::erasure_ledger`).
pub struct ErasureLedgerJob;

impl Job for ErasureLedgerJob {
    fn name(&self) -> &'static str {
        "erasure-ledger"
    }

    fn run_once(&self, vault: &Vault) -> CoreResult<bool> {
        vault.ship_ledger()
    }
}

/// Deletes events older than their namespace's retention.
pub struct EventRetentionJob;

impl Job for EventRetentionJob {
    fn name(&self) -> &'static str {
        "event-retention"
    }

    fn run_once(&self, vault: &Vault) -> CoreResult<bool> {
        vault.enforce_event_retention()
    }
}

/// Deletes records past their collection's TTL (they are already invisible).
pub struct RecordExpiryJob;

impl Job for RecordExpiryJob {
    fn name(&self) -> &'static str {
        "record-expiry"
    }

    fn run_once(&self, vault: &Vault) -> CoreResult<bool> {
        vault.purge_expired_records()
    }
}

/// Refreshes OAuth tokens ahead of expiry (exactly once, through the same lease as callers).
pub struct OAuthRefreshJob;

impl Job for OAuthRefreshJob {
    fn name(&self) -> &'static str {
        "oauth-refresh"
    }

    fn run_once(&self, vault: &Vault) -> CoreResult<bool> {
        vault.refresh_due()
    }
}

/// Removes deleted files' pieces and abandoned uploads; forgets expired one-time link uses.
pub struct FileSweepJob;

impl Job for FileSweepJob {
    fn name(&self) -> &'static str {
        "file-sweep"
    }

    fn run_once(&self, vault: &Vault) -> CoreResult<bool> {
        vault.sweep_files()
    }
}

/// The jobs every node runs.
pub fn standard_jobs() -> Vec<Arc<dyn Job>> {
    vec![
        Arc::new(RewrapJob),
        Arc::new(ErasurePurgeJob),
        Arc::new(ErasureLedgerJob),
        Arc::new(crate::webhooks::WebhookDeliveryJob),
        Arc::new(EventRetentionJob),
        Arc::new(RecordExpiryJob),
        Arc::new(OAuthRefreshJob),
        Arc::new(FileSweepJob),
        Arc::new(KeyRotationJob),
    ]
}

/// How jobs are scheduled on this node.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// This node's name in leases.
    pub node_id: String,
    pub interval: Duration,
    pub lease_ttl: Duration,
}

#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Waits up to `timeout`; returns true once stopped.
    fn wait(&self, timeout: Duration) -> bool {
        let mut stopped = self.stopped.lock();
        if !*stopped && !timeout.is_zero() {
            self.wake.wait_for(&mut stopped, timeout);
        }
        *stopped
    }
}

/// The running job threads of this node.
pub struct JobRunner {
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
}

impl JobRunner {
    pub fn start(vault: Vault, jobs: Vec<Arc<dyn Job>>, settings: JobSettings) -> Self {
        let stop = Arc::new(Stop::default());
        let threads = jobs
            .into_iter()
            .filter_map(|job| {
                let (vault, stop, settings) = (vault.clone(), stop.clone(), settings.clone());
                std::thread::Builder::new()
                    .name(format!("job-{}", job.name()))
                    .spawn(move || job_loop(&vault, job.as_ref(), &settings, &stop))
                    .ok()
            })
            .collect();
        Self { stop, threads }
    }

    /// Stops every job thread, releasing the leases this node holds.
    pub fn stop(self) {
        *self.stop.stopped.lock() = true;
        self.stop.wake.notify_all();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn job_loop(vault: &Vault, job: &dyn Job, settings: &JobSettings, stop: &Stop) {
    let ttl = settings.lease_ttl.as_millis() as i64;
    let board = vault.job_board();
    let mut failures = 0u32;
    loop {
        // One tick, supervised: an error or a panic anywhere in it (lease, work) is recorded,
        // backs the job off, and the loop goes on — a job never ends silently.
        let tick = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // No work while the audit log cannot record it.
            vault.audit_admits()?;
            let now = vault.now_ms();
            let held =
                vault
                    .storage()
                    .acquire_lease(job.name(), &settings.node_id, now, now + ttl)?;
            if !held {
                return Ok((false, false));
            }
            board.started(job.name());
            job.run_once(vault).map(|more| (true, more))
        }));
        let now = vault.now_ms();
        let (held, pause) = match tick {
            Ok(Ok((held, more))) => {
                if held {
                    board.succeeded(job.name(), now);
                }
                failures = 0;
                (
                    held,
                    if more {
                        Duration::ZERO
                    } else {
                        settings.interval
                    },
                )
            }
            Ok(Err(err)) => {
                failures = (failures + 1).min(6);
                tracing::warn!(job = job.name(), error = %err, "background job failed; backing off");
                board.failed(job.name(), now, err.to_string(), false);
                (true, backoff(settings.interval, failures))
            }
            Err(panic) => {
                failures = (failures + 1).min(6);
                let message = crate::blocking::panic_message(Some(panic.as_ref()));
                tracing::error!(job = job.name(), panic = %message, "background job panicked; restarting it after a back-off");
                board.failed(job.name(), now, format!("panicked: {message}"), true);
                (true, backoff(settings.interval, failures))
            }
        };
        if stop.wait(pause) {
            if held {
                let _ = vault.storage().release_lease(job.name(), &settings.node_id);
            }
            board.stopped(job.name());
            return;
        }
    }
}

/// The pause after `failures` failures in a row: interval × 2^failures, at most 64 intervals.
fn backoff(interval: Duration, failures: u32) -> Duration {
    interval * (1 << failures.min(6))
}

/// What this node's job threads are doing, as operators see it in `GET /v1/sys/jobs`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobHealth {
    /// `idle`, `running`, `backing_off` (after a failure) or `stopped`.
    pub state: &'static str,
    /// Units of work run by this node.
    pub runs: u64,
    pub failures: u64,
    /// Panics caught; the job was restarted after each.
    pub restarts: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub last_success_at: Option<String>,
}

/// The health of every job on this node.
#[derive(Default)]
pub(crate) struct JobBoard {
    jobs: Mutex<std::collections::BTreeMap<&'static str, JobHealth>>,
}

impl JobBoard {
    fn update(&self, name: &'static str, change: impl FnOnce(&mut JobHealth)) {
        change(self.jobs.lock().entry(name).or_insert_with(|| JobHealth {
            state: "idle",
            ..JobHealth::default()
        }));
    }

    fn started(&self, name: &'static str) {
        self.update(name, |h| {
            h.state = "running";
            h.runs += 1;
        });
    }

    fn succeeded(&self, name: &'static str, now: i64) {
        self.update(name, |h| {
            h.state = "idle";
            h.last_success_at = Some(rfc3339(now));
        });
    }

    fn failed(&self, name: &'static str, now: i64, error: String, panicked: bool) {
        self.update(name, |h| {
            h.state = "backing_off";
            h.failures += 1;
            h.restarts += u64::from(panicked);
            h.last_error = Some(error);
            h.last_error_at = Some(rfc3339(now));
        });
    }

    fn stopped(&self, name: &'static str) {
        self.update(name, |h| h.state = "stopped");
    }

    fn get(&self, name: &str) -> Option<JobHealth> {
        self.jobs.lock().get(name).cloned()
    }

    fn names(&self) -> Vec<&'static str> {
        self.jobs.lock().keys().copied().collect()
    }
}

/// A job's lease as shown to operators, and how it fares on this node.
#[derive(Debug, Clone, Serialize)]
pub struct JobLease {
    pub name: String,
    pub holder: Option<String>,
    pub expires_at: Option<String>,
    /// This node's view: runs, failures, restarts after panics, the last error.
    pub this_node: Option<JobHealth>,
}

impl Vault {
    /// Who holds each job's lease, and how each fares on this node (operators only): the
    /// standard jobs, and any other job this node runs.
    pub fn job_leases(&self, who: &Principal) -> CoreResult<Vec<JobLease>> {
        self.execute(
            who,
            Op::JobsStatus,
            At::new("", ""),
            || Ok(()),
            |()| {
                let mut names: Vec<&str> = standard_jobs().iter().map(|j| j.name()).collect();
                for name in self.job_board().names() {
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                names
                    .into_iter()
                    .map(|name| {
                        let lease: Option<LeaseRow> = self.storage().get_lease(name)?;
                        let live = lease.filter(|l| l.expires_at > self.now_ms());
                        Ok(JobLease {
                            name: name.to_string(),
                            holder: live.as_ref().map(|l| l.owner.clone()),
                            expires_at: live.map(|l| rfc3339(l.expires_at)),
                            this_node: self.job_board().get(name),
                        })
                    })
                    .collect()
            },
        )
    }
}
