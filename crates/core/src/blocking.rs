//! Where storage may be called: never on an async worker thread.
//!
//! Storage calls block (SQLite waits for its writer lock, the synchronous PostgreSQL client
//! runs a runtime of its own, which panics on a Tokio worker). An async caller hands vault work
//! to Tokio's blocking pool with [`run`]; plain threads (jobs, the audit writer, clean-up
//! threads) may call storage directly. Every storage access in this crate goes through
//! `Vault::storage()`, which checks the thread it runs on ([`check`]): a call from an async
//! worker is logged as a bug and, in debug builds (every test), panics — so a path that gets it
//! wrong fails the suites on SQLite too, long before it aborts a PostgreSQL node.

use std::cell::Cell;

thread_local! {
    /// Set while a closure handed to [`run`] executes on a blocking-pool thread.
    static ON_BLOCKING_POOL: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread may block on storage: a thread outside any Tokio runtime, or a
/// blocking-pool thread running work given to [`run`].
pub fn may_block() -> bool {
    ON_BLOCKING_POOL.with(Cell::get) || tokio::runtime::Handle::try_current().is_err()
}

/// Marks this blocking-pool thread for as long as it lives (also when the work panics, so a
/// reused pool thread never keeps the mark).
struct Marked;

impl Marked {
    fn new() -> Self {
        ON_BLOCKING_POOL.with(|flag| flag.set(true));
        Marked
    }
}

impl Drop for Marked {
    fn drop(&mut self) {
        ON_BLOCKING_POOL.with(|flag| flag.set(false));
    }
}

/// Reports a storage call made where it must not be (see the module documentation).
#[track_caller]
pub(crate) fn check() {
    if !may_block() {
        let at = std::panic::Location::caller();
        tracing::error!(
            file = at.file(),
            line = at.line(),
            "BUG: storage called from an async worker thread"
        );
        debug_assert!(false, "storage called from an async worker thread at {at}");
    }
}

/// Runs blocking vault work on Tokio's blocking pool and awaits it. A panic in `work` comes
/// back as `Err` with its message (the caller answers 500; the process keeps serving).
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(move || {
        let _marked = Marked::new();
        work()
    })
    .await
    .map_err(|e| panic_message(e.try_into_panic().ok().as_deref()))
}

/// A panic payload as text (`&str` and `String` payloads; others are named only).
pub fn panic_message(payload: Option<&(dyn std::any::Any + Send)>) -> String {
    match payload {
        Some(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with a non-text payload".into()),
        None => "the task was cancelled".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_threads_may_block() {
        assert!(may_block());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn async_workers_may_not_but_run_may() {
        assert!(!may_block());
        assert!(run(may_block).await.unwrap());
        // The flag does not outlive the work: the pool reuses its threads.
        let reused = tokio::task::spawn_blocking(|| ON_BLOCKING_POOL.with(Cell::get));
        assert!(!reused.await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_panic_in_run_comes_back_as_an_error() {
        let err = run(|| -> u8 { panic!("boom") }).await.unwrap_err();
        assert_eq!(err, "boom");
    }
}
