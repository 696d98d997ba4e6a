//! The audit writer: group commit, and a gate that closes when entries cannot be stored.
//!
//! An operation queues its entry and, unless its description says the entry may be queued
//! (`Durability::Queued`: background work nobody waits on), waits until the entry is committed
//! before its result is returned. One writer thread appends everything queued in one
//! transaction, then the next batch (group commit: under load one commit carries many
//! entries). Callers never append themselves, so a stuck append cannot hold one: every wait is
//! bounded by [`DURABLE_WAIT`]. (Callers that appended their own entry when alone were tried:
//! one hand-off less for a single-threaded library caller, but under HTTP load the callers'
//! small commits cost a third of the throughput; BENCHMARKS.md has the numbers.) The writer
//! retries after a failure and anchors the chain head in the main database.
//!
//! Failing closed: when an append fails, every waiter whose entry it carried gets an error
//! (its operation's result is withheld), and [`AuditWriter::admit`] refuses new operations
//! until an append succeeds again — disk full is reported as such (HTTP 507), anything else as
//! the log being unavailable (503). An entry that is not stored within [`DURABLE_WAIT`] is
//! likewise refused. Entries of a failed append stay queued and are retried in order, so an
//! operation that did happen is never left out of the log (one whose answer was withheld may
//! appear as done — the log errs on the side of recording).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use strongroom_crypto::{Index, Key};
use strongroom_storage::{AuditEntry, Storage, StorageError};

use super::anchor::{self, Anchor};
use super::chain_hash;
use super::journal::{self, Journal, Journaled, WriteError};
use crate::{CoreError, CoreResult};

/// How long a queued entry may wait before the writer appends it (it is woken at once; this
/// is the bound should a wake-up be missed).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// How long an operation waits for its entry to be stored before it is refused (503).
pub const DURABLE_WAIT: Duration = Duration::from_secs(5);
/// How often the chain head is written to the main database (and at every flush).
pub const ANCHOR_INTERVAL: Duration = Duration::from_secs(1);
/// Pause between retries while appends fail.
const RETRY_INTERVAL: Duration = Duration::from_millis(250);
const MAX_BATCH: usize = 4096;
/// A journal whose every record is in the table is emptied once it holds this many bytes (at
/// once: it then holds only what the table lacks, so entries removed from the table are never
/// quietly put back from it at the next start — the anchor check sees the loss).
const JOURNAL_COMPACT_BYTES: u64 = 1;
/// Queued entries beyond which new operations are refused (the log is not keeping up).
const MAX_BACKLOG: usize = 200_000;

/// Why the log cannot store entries right now.
#[derive(Debug, Clone)]
enum Fault {
    DiskFull,
    /// The database holding the log is unreachable (reported as such: the cause is the
    /// database, not the log).
    DatabaseDown,
    /// The log lost entries while this node ran (it ends below what this node saw); stays
    /// until a restart, where the anchor check asks the operator (`--accept-audit-loss`).
    Damaged,
    Failing,
}

impl Fault {
    fn error(&self) -> CoreError {
        match self {
            Fault::DiskFull => CoreError::InsufficientStorage(
                "the audit log cannot be written: its disk is full; audited operations are refused until space is freed".into(),
            ),
            Fault::DatabaseDown => CoreError::Unavailable(StorageError::Unavailable(
                "the database holding the audit log is unreachable".into(),
            )),
            Fault::Damaged => CoreError::AuditUnavailable(
                "the audit log lost entries while this node was running; audited operations are refused (see the server log)".into(),
            ),
            Fault::Failing => CoreError::AuditUnavailable(
                "the audit log cannot be written right now; audited operations are refused until it can".into(),
            ),
        }
    }
}

struct State {
    /// Entries not stored yet, each with its ticket, in order.
    queue: VecDeque<(u64, AuditEntry)>,
    /// The last ticket handed out.
    issued: u64,
    /// Every ticket up to this one is stored (in the journal, when there is one).
    durable: u64,
    /// Every ticket up to this one is in the database table.
    indexed: u64,
    /// Storing in the table fails.
    fault: Option<Fault>,
    /// With a journal: entries are written here by the caller that queues them.
    journal: Option<Journal>,
    /// Writing the journal fails (its disk is full, …).
    journal_fault: Option<Fault>,
    /// Journaled entries not in the table yet, with their tickets, in order.
    journaled: VecDeque<(u64, Journaled)>,
    /// Entries taken out of `queue` or `journaled` by the writer while it stores them in the
    /// table (the state is unlocked meanwhile); still part of the backlog.
    indexing: usize,
    /// The chain head after the last append this node made: (sequence, hash).
    head: Option<(u64, Vec<u8>)>,
    anchored_seq: u64,
    anchored_at: Option<Instant>,
}

struct Shared {
    storage: Arc<dyn Storage>,
    chain_key: Key<Index>,
    anchor_key: Key<Index>,
    state: Mutex<State>,
    /// Signalled after every append (success or failure): waiters look again.
    changed: Condvar,
    /// Signalled when entries are queued or the writer must stop.
    wake: Condvar,
    stop: AtomicBool,
}

/// The audit writer owned by a vault.
pub(crate) struct AuditWriter {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AuditWriter {
    /// Starts the writer; with `journal`, first copies into the table what the journal holds
    /// beyond it (crash recovery). A journal that does not continue the table refuses the
    /// open — or, with `accept_loss`, is set aside (kept beside, renamed) and replaced.
    pub(crate) fn start(
        storage: Arc<dyn Storage>,
        chain_key: Key<Index>,
        anchor_key: Key<Index>,
        journal: Option<(&std::path::Path, bool)>,
    ) -> CoreResult<Self> {
        let journal = match journal {
            Some((path, accept_loss)) => {
                Some(open_journal(&*storage, &chain_key, path, accept_loss)?)
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            storage,
            chain_key,
            anchor_key,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                issued: 0,
                durable: 0,
                indexed: 0,
                fault: None,
                journal,
                journal_fault: None,
                journaled: VecDeque::new(),
                indexing: 0,
                head: None,
                anchored_seq: 0,
                anchored_at: None,
            }),
            changed: Condvar::new(),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let background = shared.clone();
        let thread = std::thread::Builder::new()
            .name("strongroom-audit".into())
            .spawn(move || writer_loop(&background))
            .ok();
        Ok(Self {
            shared,
            thread: Mutex::new(thread),
        })
    }

    /// Refuses a new operation while entries cannot be stored (or the backlog is too long).
    pub(crate) fn admit(&self) -> CoreResult<()> {
        let st = self.shared.state.lock();
        if let Some(fault) = st.journal_fault.as_ref().or(st.fault.as_ref()) {
            return Err(fault.error());
        }
        if st.queue.len() + st.journaled.len() + st.indexing > MAX_BACKLOG {
            return Err(CoreError::AuditUnavailable(
                "the audit log is not keeping up; audited operations are refused until it does"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Queues an entry and wakes the writer; returns its ticket for
    /// [`AuditWriter::wait_durable`].
    pub(crate) fn record(&self, entry: AuditEntry) -> u64 {
        let mut st = self.shared.state.lock();
        st.issued += 1;
        let ticket = st.issued;
        st.queue.push_back((ticket, entry));
        let hand_off = match st.journal {
            Some(_) => {
                // Durable as soon as the write returns: no hand-off to wait for. The writer
                // copies journaled entries into the table on its next tick (every
                // FLUSH_INTERVAL, in large batches; `flush` wakes it at once), so it is not
                // woken for each entry — unless the journal could not take this one.
                journal_queued(&self.shared, &mut st);
                !st.queue.is_empty()
            }
            None => true,
        };
        drop(st);
        if hand_off {
            self.shared.wake.notify_one();
        }
        ticket
    }

    /// Returns once the entry of `ticket` is stored. Fails when its append fails or it is not
    /// stored within [`DURABLE_WAIT`]. Blocks: never call it on an async worker.
    pub(crate) fn wait_durable(&self, ticket: u64) -> CoreResult<()> {
        self.wait_for(ticket, |st| st.durable)
    }

    fn wait_for(&self, ticket: u64, reached: impl Fn(&State) -> u64) -> CoreResult<()> {
        crate::blocking::check();
        let deadline = Instant::now() + DURABLE_WAIT;
        let mut st = self.shared.state.lock();
        loop {
            if reached(&st) >= ticket {
                return Ok(());
            }
            if let Some(fault) = st.journal_fault.as_ref().or(st.fault.as_ref()) {
                return Err(fault.error());
            }
            if self
                .shared
                .changed
                .wait_until(&mut st, deadline)
                .timed_out()
                && reached(&st) < ticket
            {
                return Err(CoreError::AuditUnavailable(format!(
                    "the audit entry was not stored within {} s; the operation's result was withheld",
                    DURABLE_WAIT.as_secs()
                )));
            }
        }
    }

    /// Stores everything queued so far in the table (queries read it) and anchors the chain
    /// head now.
    pub(crate) fn flush(&self) -> CoreResult<()> {
        let ticket = self.shared.state.lock().issued;
        if ticket > 0 {
            self.shared.wake.notify_one();
            self.wait_for(ticket, |st| st.indexed)?;
        }
        self.check_tail()?;
        anchor_head(&self.shared, true)
    }

    /// Checks that the table still ends at or beyond the head this node last saw: entries
    /// removed from its end are found at the next flush (a verify, a query), not only when the
    /// next batch is copied in. A log found short refuses operations, as a failed append does.
    fn check_tail(&self) -> CoreResult<()> {
        let Some(head) = self.shared.state.lock().head.as_ref().map(|(seq, _)| *seq) else {
            return Ok(());
        };
        // Read after the head: appends in between only move the tail further.
        let tail = self.shared.storage.audit_tail()?.map_or(0, |t| t.seq);
        if tail >= head {
            return Ok(());
        }
        let mut st = self.shared.state.lock();
        if !matches!(st.fault, Some(Fault::Damaged)) {
            tracing::error!(
                ends_at = tail,
                head,
                "the audit log ends below an entry this node wrote or saw: entries were removed; refusing audited operations"
            );
        }
        st.fault = Some(Fault::Damaged);
        self.shared.changed.notify_all();
        Err(Fault::Damaged.error())
    }

    /// Takes the chain head as this node's starting point for anchoring (at open).
    pub(crate) fn set_head(&self, seq: u64, hash: Vec<u8>) {
        let mut st = self.shared.state.lock();
        st.anchored_seq = seq;
        st.head = Some((seq, hash));
    }
}

impl Drop for AuditWriter {
    /// Stores what is still queued (the writer drains the queue before it stops) and anchors
    /// the head.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        if let Some(handle) = self.thread.lock().take() {
            let _ = handle.join();
        }
        let (left, journaled) = {
            let st = self.shared.state.lock();
            (st.queue.len(), st.journaled.len())
        };
        if journaled > 0 {
            tracing::warn!(
                entries = journaled,
                "journaled audit entries are not in the audit log yet; the next start copies them in"
            );
        }
        if left > 0 {
            tracing::error!(
                entries = left,
                "audit entries could not be written at shutdown"
            );
        }
        if crate::blocking::may_block() {
            if let Err(err) = anchor_head(&self.shared, true) {
                tracing::error!(error = %err, "the audit chain head could not be anchored at shutdown");
            }
        }
    }
}

/// Appends up to [`MAX_BATCH`] queued entries in one transaction, with the state unlocked
/// meanwhile; records the outcome and wakes every waiter. Only the writer thread appends.
fn append_queued<'a>(shared: &'a Shared, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
    let take = st.queue.len().min(MAX_BATCH);
    if take == 0 {
        return st;
    }
    let (tickets, entries): (Vec<u64>, Vec<AuditEntry>) = st.queue.drain(..take).unzip();
    // Sequence numbers only grow: the log's tail (whoever appended last, on any node) is never
    // below the head this node last saw. If it is, entries were removed behind our back — and
    // appending on top would hide it.
    let floor = st.head.as_ref().map_or(0, |(seq, _)| *seq);
    st.indexing = take;
    let result = MutexGuard::unlocked(&mut st, || {
        // Checked on every call: a backend may chain a batch more than once (re-reading the
        // tail after losing a race).
        let chain = |prev: &[u8], seq: u64, e: &AuditEntry| {
            if seq <= floor {
                return Err(format!(
                    "the audit log now ends at entry {}, below entry {floor} this node wrote or saw: entries were removed",
                    seq - 1
                ));
            }
            Ok(chain_hash(&shared.chain_key, prev, seq, e))
        };
        shared.storage.append_audit(&entries, &chain)
    });
    st.indexing = 0;
    match result {
        Ok(tail) => {
            if st.fault.take().is_some() {
                tracing::warn!("the audit log is writable again; audited operations resume");
            }
            st.durable = tickets.last().copied().unwrap_or(st.durable);
            st.indexed = st.durable;
            st.head = Some((tail.seq, tail.hash));
        }
        Err(err) => {
            let fault = match err {
                StorageError::Full(_) => Fault::DiskFull,
                StorageError::Unavailable(_) => Fault::DatabaseDown,
                StorageError::Aborted(_) => Fault::Damaged,
                _ => Fault::Failing,
            };
            if st.fault.is_none() {
                tracing::error!(error = %err, "the audit log cannot be written; refusing audited operations until it can");
            }
            st.fault = Some(fault);
            // Back in front, in order, for the retry.
            for item in tickets.into_iter().zip(entries).rev() {
                st.queue.push_front(item);
            }
        }
    }
    shared.changed.notify_all();
    st
}

/// The writer: appends whatever is queued, batch after batch; after a failure, retries every
/// [`RETRY_INTERVAL`]; anchors the head at most every [`ANCHOR_INTERVAL`]. On stop it drains
/// the queue (one attempt while the log fails) and ends. With a journal it copies journaled
/// entries into the table instead (and retries journal writes that failed).
fn writer_loop(shared: &Shared) {
    loop {
        let mut st = shared.state.lock();
        if st.queue.is_empty() && st.journaled.is_empty() && !shared.stop.load(Ordering::SeqCst) {
            shared.wake.wait_for(&mut st, FLUSH_INTERVAL);
        }
        let stopping = shared.stop.load(Ordering::SeqCst);
        if (st.fault.is_some() || st.journal_fault.is_some()) && !stopping {
            MutexGuard::unlocked(&mut st, || std::thread::sleep(RETRY_INTERVAL));
        }
        if st.journal.is_some() {
            journal_queued(shared, &mut st);
            while !st.journaled.is_empty() {
                st = index_journaled(shared, st);
                if st.fault.is_some() {
                    break;
                }
            }
            compact_journal(&mut st);
        } else {
            while !st.queue.is_empty() {
                st = append_queued(shared, st);
                if st.fault.is_some() {
                    break;
                }
            }
        }
        let drained = st.queue.is_empty() && st.journaled.is_empty();
        let done = stopping && (drained || st.fault.is_some() || st.journal_fault.is_some());
        drop(st);
        if let Err(err) = anchor_head(shared, false) {
            tracing::warn!(error = %err, "could not anchor the audit chain head; will retry");
        }
        if done {
            return;
        }
    }
}

fn fault_of(err: &StorageError) -> Fault {
    match err {
        StorageError::Full(_) => Fault::DiskFull,
        StorageError::Unavailable(_) => Fault::DatabaseDown,
        StorageError::Aborted(_) => Fault::Damaged,
        _ => Fault::Failing,
    }
}

/// Writes queued entries to the journal, in order, until one fails (the rest stay queued and
/// are retried by the writer). Called with the state locked: one writer of the file at a time.
fn journal_queued(shared: &Shared, st: &mut State) {
    while let Some((ticket, entry)) = st.queue.front() {
        let ticket = *ticket;
        let Some(journal) = st.journal.as_mut() else {
            return;
        };
        match journal.append(&shared.chain_key, entry) {
            Ok((seq, hash)) => {
                if let Some((_, entry)) = st.queue.pop_front() {
                    st.journaled
                        .push_back((ticket, Journaled { seq, hash, entry }));
                }
                st.durable = ticket;
                if st.journal_fault.take().is_some() {
                    tracing::warn!(
                        "the audit journal is writable again; audited operations resume"
                    );
                    shared.changed.notify_all();
                }
            }
            Err(err) => {
                let fault = match err {
                    WriteError::DiskFull => Fault::DiskFull,
                    WriteError::Other(e) => {
                        if st.journal_fault.is_none() {
                            tracing::error!(error = %e, "the audit journal cannot be written; refusing audited operations until it can");
                        }
                        Fault::Failing
                    }
                };
                if matches!(fault, Fault::DiskFull) && st.journal_fault.is_none() {
                    tracing::error!("the audit journal's disk is full; refusing audited operations until space returns");
                }
                st.journal_fault = Some(fault);
                shared.changed.notify_all();
                return;
            }
        }
    }
}

/// Copies up to [`MAX_BATCH`] journaled entries into the table in one transaction, checking
/// that each lands exactly where the journal put it (same sequence number, same chain hash):
/// a table that lost entries or gained others is refused, as with [`append_queued`].
fn index_journaled<'a>(shared: &'a Shared, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
    let take = st.journaled.len().min(MAX_BATCH);
    if take == 0 {
        return st;
    }
    // Moved out, not copied (one copy of each entry fewer per audited read); back in front,
    // in order, if the table refuses them. Only this thread removes from `journaled`.
    let mut tickets = Vec::with_capacity(take);
    let mut sealed = Vec::with_capacity(take);
    let mut entries = Vec::with_capacity(take);
    for (ticket, record) in st.journaled.drain(..take) {
        tickets.push(ticket);
        sealed.push((record.seq, record.hash));
        entries.push(record.entry);
    }
    st.indexing = take;
    let result = MutexGuard::unlocked(&mut st, || append_records(shared, &sealed, &entries));
    st.indexing = 0;
    match result {
        Ok(tail) => {
            if st.fault.take().is_some() {
                tracing::warn!("the audit log is writable again; audited operations resume");
            }
            st.indexed = tickets.last().copied().unwrap_or(st.indexed);
            st.head = Some((tail.seq, tail.hash));
        }
        Err(err) => {
            if st.fault.is_none() {
                tracing::error!(error = %err, "journaled audit entries cannot be stored in the audit log; refusing audited operations until they can");
            }
            st.fault = Some(fault_of(&err));
            let records = tickets.into_iter().zip(sealed).zip(entries).rev();
            for ((ticket, (seq, hash)), entry) in records {
                st.journaled
                    .push_front((ticket, Journaled { seq, hash, entry }));
            }
        }
    }
    shared.changed.notify_all();
    st
}

/// Appends journaled entries to the table, each exactly as the journal chained it: `sealed`
/// holds each entry's (sequence, hash) from the journal.
fn append_records(
    shared: &Shared,
    sealed: &[(u64, Vec<u8>)],
    entries: &[AuditEntry],
) -> Result<strongroom_storage::AuditTail, StorageError> {
    let Some(first) = sealed.first().map(|(seq, _)| *seq) else {
        return Err(StorageError::Aborted("nothing to append".into()));
    };
    let chain = |prev: &[u8], seq: u64, e: &AuditEntry| {
        let at = seq
            .checked_sub(first)
            .map(|i| i as usize)
            .filter(|i| *i < sealed.len())
            .ok_or_else(|| {
                format!(
                    "the audit log would put a journal entry at entry {seq}: entries were removed or added behind this node's back"
                )
            })?;
        let hash = &sealed[at].1;
        // The journal chained each record onto the one before it: for the entry the journal
        // holds at this place, on top of the record before it, the hash is the journal's by
        // construction. Anything else (the batch's first record, a backend that re-read the
        // tail, an entry out of place) is checked in full.
        let follows_journal = at > 0
            && sealed[at].0 == seq
            && sealed[at - 1].1 == prev
            && std::ptr::eq(e, &entries[at]);
        if !follows_journal && chain_hash(&shared.chain_key, prev, seq, e) != *hash {
            return Err(format!(
                "journal entry {seq} does not chain onto the audit log: entries were removed or replaced"
            ));
        }
        Ok(hash.clone())
    };
    shared.storage.append_audit(entries, &chain)
}

/// Empties the journal once every record is in the table.
fn compact_journal(st: &mut State) {
    if !st.queue.is_empty() || !st.journaled.is_empty() {
        return;
    }
    let Some((seq, hash)) = st.head.clone() else {
        return;
    };
    if let Some(journal) = st.journal.as_mut() {
        if journal.len() >= JOURNAL_COMPACT_BYTES {
            if let Err(err) = journal.restart_after(seq, hash) {
                tracing::warn!(error = %err, "could not empty the audit journal; will retry");
            }
        }
    }
}

/// Opens the journal and copies into the table what it holds beyond the table's tail.
fn open_journal(
    storage: &dyn Storage,
    key: &Key<Index>,
    path: &std::path::Path,
    accept_loss: bool,
) -> CoreResult<Journal> {
    let (mut journal, records) = Journal::open(path).map_err(CoreError::AuditLogDamaged)?;
    let tail = storage.audit_tail()?;
    let (seq, hash) = tail.map_or((0, Vec::new()), |t| (t.seq, t.hash));
    let pending = match journal::beyond(key, records, seq, &hash) {
        Ok(pending) => pending,
        Err(problem) if accept_loss => {
            let aside = journal
                .set_aside(crate::Clock::now_ms(&crate::SystemClock))
                .map_err(|e| {
                    CoreError::Internal(format!("cannot set the audit journal aside: {e}"))
                })?;
            tracing::error!(problem, kept = %aside.display(), "the audit journal does not continue the audit log; set aside, as asked (--accept-audit-loss)");
            Vec::new()
        }
        Err(problem) => return Err(CoreError::AuditLogDamaged(problem)),
    };
    let (mut seq, mut hash) = (seq, hash);
    if !pending.is_empty() {
        let count = pending.len();
        let chain = |prev: &[u8], at: u64, e: &AuditEntry| {
            let r = pending
                .get(at.saturating_sub(seq + 1) as usize)
                .filter(|r| r.seq == at)
                .ok_or_else(|| {
                    "the audit log changed while the journal was copied in".to_string()
                })?;
            if chain_hash(key, prev, at, e) != r.hash {
                return Err("the audit log changed while the journal was copied in".to_string());
            }
            Ok(r.hash.clone())
        };
        let entries: Vec<AuditEntry> = pending.iter().map(|r| r.entry.clone()).collect();
        let tail = storage.append_audit(&entries, &chain)?;
        tracing::info!(entries = count, "audit entries recovered from the journal");
        (seq, hash) = (tail.seq, tail.hash);
    }
    journal
        .restart_after(seq, hash)
        .map_err(|e| CoreError::Internal(format!("cannot empty the audit journal: {e}")))?;
    Ok(journal)
}

/// Writes the chain head to the main database when it moved (at most every
/// [`ANCHOR_INTERVAL`] unless `now`).
fn anchor_head(shared: &Shared, now: bool) -> CoreResult<()> {
    let head = {
        let st = shared.state.lock();
        let due = now
            || st
                .anchored_at
                .is_none_or(|at| at.elapsed() >= ANCHOR_INTERVAL);
        match &st.head {
            Some((seq, hash)) if due && *seq > st.anchored_seq => (*seq, hash.clone()),
            _ => return Ok(()),
        }
    };
    let (seq, hash) = head;
    anchor::store(
        shared.storage.as_ref(),
        &shared.anchor_key,
        &Anchor { seq, hash },
    )?;
    let mut st = shared.state.lock();
    st.anchored_seq = st.anchored_seq.max(seq);
    st.anchored_at = Some(Instant::now());
    Ok(())
}
