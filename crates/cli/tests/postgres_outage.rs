//! PostgreSQL restarted under load: while it is down requests fail with 503 and Retry-After
//! (never another error, never a hang), the node recovers by itself when it is back, and no
//! acknowledged write is lost.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::{app_token, oauth_body, postgres_url, shared_root_key, start_node};

#[test]
fn postgres_restart_gives_503_then_recovers_without_losing_acknowledged_writes() {
    let Some(url) = postgres_url() else { return };
    let bounce = std::env::var("STRONGROOM_TEST_POSTGRES_BOUNCE")
        .expect("STRONGROOM_TEST_POSTGRES_BOUNCE (a command that stops PostgreSQL for N seconds) is set by scripts/test");
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(
        &dir.path().join("n"),
        &url,
        &format!("outage_{}", std::process::id()),
        &shared_root_key(),
        &[],
    );
    let app = app_token(&node, "app", &["read", "write"]);

    let stop = AtomicBool::new(false);
    let acked: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    let outcomes: Mutex<Vec<(u16, String, bool)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..20_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let r = node.request(
                    "PUT",
                    &format!("/v1/ns/app/users/w{i}/credentials/c"),
                    Some(&app),
                    Some(&oauth_body(&format!("v{i}"))),
                );
                if r.status == 200 {
                    acked.lock().unwrap().push(i);
                } else {
                    outcomes
                        .lock()
                        .unwrap()
                        .push((r.status, r.code(), r.retry_after.is_some()));
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        let wait_for_acks = |at_least: usize, within: Duration| {
            let deadline = Instant::now() + within;
            while acked.lock().unwrap().len() < at_least {
                assert!(Instant::now() < deadline, "writes did not succeed in time");
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        wait_for_acks(20, Duration::from_secs(20));
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{bounce} 2"))
            .status()
            .unwrap();
        assert!(status.success(), "bouncing PostgreSQL failed");
        let before = acked.lock().unwrap().len();
        wait_for_acks(before + 20, Duration::from_secs(30));
        stop.store(true, Ordering::SeqCst);
    });

    let outcomes = outcomes.into_inner().unwrap();
    assert!(
        !outcomes.is_empty(),
        "no request failed while PostgreSQL was down for 2 s"
    );
    for (status, code, retry_after) in &outcomes {
        assert_eq!(
            (*status, code.as_str(), *retry_after),
            (503, "unavailable", true),
            "while down: {outcomes:?}"
        );
    }
    for i in acked.into_inner().unwrap() {
        let r = node.request(
            "GET",
            &format!("/v1/ns/app/users/w{i}/credentials/c"),
            Some(&app),
            None,
        );
        assert_eq!(
            r.status, 200,
            "acknowledged write w{i} was lost: {}",
            r.body
        );
        assert_eq!(r.json()["data"]["access_token"], format!("v{i}"));
    }
    assert_eq!(node.request("GET", "/v1/sys/ready", None, None).status, 200);
}
