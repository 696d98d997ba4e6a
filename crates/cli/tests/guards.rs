//! No client can hold a node hostage, and lock-outs spare valid clients — through the real
//! binary on SQLite and on PostgreSQL:
//! - 1,100 idle connections under a 1,024 file-descriptor limit do not keep readiness probes
//!   or authenticated reads out; headers must arrive in time; idle connections are closed;
//! - failed authentications lock out the failing address or token id, never a valid token,
//!   and behind trusted proxies the forwarded address is the client;
//! - a valid token that keeps being denied is suspended on every node until an operator lifts
//!   the suspension.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{app_token, oauth_body, Db, Reply, Server};

on_both_databases!(
    a_flood_of_idle_connections_does_not_keep_clients_out,
    lock_outs_spare_valid_tokens_and_see_through_trusted_proxies,
    a_token_that_keeps_being_denied_is_suspended_until_lifted,
);

const BAD: &str = "sr_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const CRED: &str = "/v1/ns/app/users/u1/credentials/c";

fn a_flood_of_idle_connections_does_not_keep_clients_out(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let server = db
        .try_start_via(
            &["prlimit", "--nofile=1024:1024", "--"],
            &dir.path().join("d"),
            &["--header-read-timeout-secs", "60"],
        )
        .expect("server starts under a 1,024 descriptor limit");
    let app = app_token(&server, "app", &["read", "write"]);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&oauth_body("x")))
            .status,
        200
    );
    let addr = server.base.trim_start_matches("http://").to_string();

    // 1,100 connections that send nothing.
    let flood: Vec<TcpStream> = (0..1100)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    assert!(
        flood.len() > 1000,
        "only {} connections opened",
        flood.len()
    );
    for _ in 0..3 {
        let started = Instant::now();
        let r = server.request("GET", "/v1/sys/ready", None, None);
        assert_eq!(r.status, 200, "{}", r.body);
        let r = server.request("GET", CRED, Some(&app), None);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "clients waited {:?} behind the flood",
            started.elapsed()
        );
    }
    let logs = server.logs();
    assert!(
        !logs.contains('\x1b'),
        "no colour codes when standard error is a file"
    );
    assert!(
        logs.contains("connection limit reached"),
        "reaching the cap is logged: {}",
        &logs[logs.len().saturating_sub(3000)..]
    );
    drop(flood);
    drop(server);

    // Headers that never finish are cut after the header-read timeout; a keep-alive
    // connection that goes quiet, after the idle timeout.
    let server = db.start(
        &dir.path().join("d2"),
        &[
            "--header-read-timeout-secs",
            "2",
            "--idle-timeout-secs",
            "2",
        ],
    );
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x")
        .unwrap();
    assert_closed_within(&mut slow, Duration::from_secs(8));
    let mut quiet = TcpStream::connect(&addr).unwrap();
    quiet
        .write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 512];
    let n = quiet.read(&mut answer).unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    assert_closed_within(&mut quiet, Duration::from_secs(8));
    assert_eq!(
        server.request("GET", "/v1/sys/ready", None, None).status,
        200
    );
}

/// Reads until the server closes the connection; fails if it stays open past `limit`.
fn assert_closed_within(stream: &mut TcpStream, limit: Duration) {
    stream.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("the connection stayed open for {:?}", started.elapsed())
            }
            Err(_) => return, // reset: closed too
        }
    }
}

fn from(server: &Server, token: &str, client: &str) -> Reply {
    server.request_headers(
        "GET",
        "/v1/sys/tokens/self",
        Some(token),
        None,
        "application/json",
        &[("X-Forwarded-For", client)],
    )
}

fn lock_outs_spare_valid_tokens_and_see_through_trusted_proxies(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let server = db.start(
        &dir.path().join("d"),
        &[
            "--lockout-threshold",
            "3",
            "--lockout-secs",
            "60",
            "--trusted-proxies",
            "127.0.0.0/8",
        ],
    );
    let app = app_token(&server, "app", &["read"]);

    // Unknown tokens count against the client address the trusted proxy reports.
    for _ in 0..3 {
        assert_eq!(from(&server, BAD, "203.0.113.5").status, 401);
    }
    let r = from(&server, BAD, "203.0.113.5");
    assert_eq!((r.status, r.code().as_str()), (429, "locked_out"));
    assert!(r.retry_after.is_some());
    assert_eq!(
        from(&server, BAD, "203.0.113.6").status,
        401,
        "another client behind the same proxy is not locked"
    );
    // A valid token from the locked address is served.
    let r = from(&server, &app, "203.0.113.5");
    assert_eq!(r.status, 200, "{}", r.body);
    // A client cannot pick its address by writing the header itself: the proxy's own entry
    // (rightmost) is the one read.
    let r = from(&server, BAD, "203.0.113.6, 203.0.113.5");
    assert_eq!((r.status, r.code().as_str()), (429, "locked_out"));

    // A real token id with a wrong secret counts against that id, not the address.
    let id = app.split('_').nth(1).unwrap();
    let wrong = format!("sr_{id}_{}", "B".repeat(43));
    for client in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        assert_eq!(from(&server, &wrong, client).status, 401);
    }
    let r = from(&server, &wrong, "198.51.100.4");
    assert_eq!((r.status, r.code().as_str()), (429, "locked_out"));
    let r = from(&server, &app, "198.51.100.4");
    assert_eq!(r.status, 200, "the token itself still works: {}", r.body);

    // Everything refused is audited.
    let r = server.request(
        "GET",
        "/v1/sys/audit?action=auth&limit=1000",
        Some(server.admin()),
        None,
    );
    let entries = r.json()["items"].as_array().unwrap().len();
    assert!(entries >= 9, "{entries} refused authentications audited");
}

fn a_token_that_keeps_being_denied_is_suspended_until_lifted(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    // On PostgreSQL a second node shares the database: the suspension holds there too.
    let a = db.start(&dir.path().join("a"), &[]);
    let admin = a.admin().to_string();
    let reader = app_token(&a, "app", &["read"]);
    let reader_id = reader.split('_').nth(1).unwrap().to_string();
    let r = a.request(
        "PUT",
        "/v1/ns/app/security-policy",
        Some(&admin),
        Some(r#"{"denials": 3, "window_secs": 60, "suspend_secs": 600}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = a.request(
        "PUT",
        "/v1/ns/app/security-policy",
        Some(&admin),
        Some("{}"),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "invalid_json"),
        "fields are required"
    );
    let b = db
        .is_postgres()
        .then(|| db.start(&dir.path().join("b"), &[]));

    for _ in 0..3 {
        let r = a.request("PUT", CRED, Some(&reader), Some(&oauth_body("x")));
        assert_eq!((r.status, r.code().as_str()), (403, "forbidden"));
    }
    // Suspended: even what it may do is refused, with a way to know when to retry.
    let r = a.request("GET", CRED, Some(&reader), None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "token_suspended"),
        "{}",
        r.body
    );
    assert!(r.retry_after.is_some());
    if let Some(b) = &b {
        wait_for(|| b.request("GET", CRED, Some(&reader), None).code() == "token_suspended");
    }
    let r = a.request("GET", "/v1/sys/tokens/suspended", Some(&admin), None);
    let listed = r.json()["items"].as_array().unwrap().clone();
    assert!(
        listed.iter().any(|s| s["token_id"] == reader_id.as_str()),
        "{listed:?}"
    );
    let r = a.request(
        "GET",
        "/v1/sys/audit?action=token.suspend",
        Some(&admin),
        None,
    );
    assert_eq!(
        r.json()["items"][0]["target"],
        reader_id.as_str(),
        "{}",
        r.body
    );

    // Lifted with the CLI: the token works again on every node.
    let (code, _, err) = a.cli(&admin, &["token", "unsuspend", &reader_id]);
    assert_eq!(code, 0, "{err}");
    assert_ne!(
        a.request("GET", CRED, Some(&reader), None).code(),
        "token_suspended"
    );
    if let Some(b) = &b {
        wait_for(|| b.request("GET", CRED, Some(&reader), None).code() != "token_suspended");
    }
    let (code, _, err) = a.cli(&admin, &["token", "unsuspend", &reader_id]);
    assert_ne!(code, 0);
    assert!(err.contains("not_found"), "{err}");
}

fn wait_for(mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "never happened");
        std::thread::sleep(Duration::from_millis(100));
    }
}
