//! The storage conformance suite against a real PostgreSQL server.
//!
//! The server's URL comes from `STRONGROOM_TEST_POSTGRES_URL` (`scripts/test` starts a
//! throwaway cluster and sets it). Without it these tests fail loudly; they are skipped only
//! when `STRONGROOM_SKIP_POSTGRES=1` says so explicitly — never by falling back to SQLite.

use std::sync::atomic::{AtomicU32, Ordering};

use strongroom_postgres::{PgSettings, PgStore};

/// The URL of the test server, or `None` when PostgreSQL tests are explicitly skipped.
pub fn test_url() -> Option<String> {
    match std::env::var("STRONGROOM_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("STRONGROOM_SKIP_POSTGRES").as_deref() == Ok("1") => {
            eprintln!("STRONGROOM_SKIP_POSTGRES=1: PostgreSQL tests skipped on request");
            None
        }
        _ => panic!(
            "STRONGROOM_TEST_POSTGRES_URL is not set: run the tests with scripts/test (which starts PostgreSQL), \
             or set STRONGROOM_SKIP_POSTGRES=1 to skip the PostgreSQL suite on purpose"
        ),
    }
}

/// A store in a fresh schema of its own.
fn fresh() -> Option<Box<PgStore>> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let url = test_url()?;
    let schema = format!(
        "conf_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let settings = PgSettings {
        schema: Some(schema),
        pool_size: 8,
        ..PgSettings::new(&url)
    };
    Some(Box::new(
        PgStore::open(settings).expect("connect to the test PostgreSQL"),
    ))
}

strongroom_storage::conformance_tests!(fresh());

#[test]
fn concurrent_first_opens_migrate_once() {
    let Some(url) = test_url() else { return };
    let schema = format!("conf_{}_migrate", std::process::id());
    let opened: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let settings = PgSettings {
                    schema: Some(schema.clone()),
                    ..PgSettings::new(&url)
                };
                s.spawn(move || PgStore::open(settings).is_ok())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        opened, [true; 4],
        "every node opens; migrations ran once under the advisory lock"
    );
}

#[test]
fn settings_debug_hides_the_password() {
    let settings = PgSettings::new("postgres://app:hunter2@db.example:5432/strongroom");
    assert!(!format!("{settings:?}").contains("hunter2"));
}
