//! OAuth refresh against a real HTTP token endpoint on loopback that behaves like providers do:
//! rotating refresh tokens, reuse detection (a reused refresh token is `invalid_grant`), slow
//! answers, 5xx and malformed JSON. Exactly one refresh per expiry, on one node and on three.

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::{postgres_url, shared_root_key, start_node, Server};

const CLIENT_SECRET: &str = "client-secret-PLANTED-81ef";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Normal,
    ServerError,
    Malformed,
}

struct Provider {
    valid: HashSet<String>,
    refreshes: usize,
    mode: Mode,
    delay_ms: u64,
    bad_auth: usize,
    revoked: Vec<String>,
    attempts: usize,
}

/// A token endpoint: each refresh token works once and is replaced by a new one.
fn token_endpoint(first_refresh_token: &str) -> (String, Arc<Mutex<Provider>>) {
    let state = Arc::new(Mutex::new(Provider {
        valid: HashSet::from([first_refresh_token.to_string()]),
        refreshes: 0,
        mode: Mode::Normal,
        delay_ms: 0,
        bad_auth: 0,
        revoked: Vec::new(),
        attempts: 0,
    }));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let shared = state.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let state = shared.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                let is_revoke = request_line.contains("/revoke");
                let is_me = request_line.starts_with("GET") && request_line.contains("/me");
                let mut length = 0usize;
                let mut auth = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("authorization:") {
                        auth = line["authorization:".len()..].trim().to_string();
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let body = String::from_utf8_lossy(&body).to_string();
                let refresh = body
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("refresh_token="))
                    .unwrap_or("")
                    .to_string();
                let (mode, delay) = {
                    let s = state.lock().unwrap();
                    (s.mode, s.delay_ms)
                };
                std::thread::sleep(Duration::from_millis(delay));
                use base64::Engine;
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("app-client:{CLIENT_SECRET}"))
                );
                let (status, reply) = {
                    let mut s = state.lock().unwrap();
                    if is_me {
                        // "Who am I": the latest access token is accepted, others are not.
                        let current = format!("Bearer at-{}", s.refreshes);
                        drop(s);
                        let status = if auth == current { 200 } else { 401 };
                        let _ = write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}");
                        return;
                    }
                    if !is_revoke {
                        s.attempts += 1;
                    }
                    if auth != expected {
                        s.bad_auth += 1;
                        (401, json!({"error": "invalid_client"}).to_string())
                    } else {
                        match mode {
                            Mode::ServerError => (503, "upstream down".to_string()),
                            Mode::Normal if is_revoke => {
                                let token = body
                                    .split('&')
                                    .find_map(|kv| kv.strip_prefix("token="))
                                    .unwrap_or("")
                                    .to_string();
                                s.valid.remove(&token);
                                s.revoked.push(token);
                                (200, String::new())
                            }
                            Mode::Malformed => (200, "{not json".to_string()),
                            Mode::Normal if !s.valid.remove(&refresh) => {
                                (400, json!({"error": "invalid_grant"}).to_string())
                            }
                            Mode::Normal => {
                                s.refreshes += 1;
                                let n = s.refreshes;
                                s.valid.insert(format!("rt-{n}"));
                                (200, json!({"access_token": format!("at-{n}"), "token_type": "Bearer", "expires_in": 3600, "refresh_token": format!("rt-{n}")}).to_string())
                            }
                        }
                    }
                };
                let _ = write!(stream, "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}", reply.len());
            });
        }
    });
    (url, state)
}

fn setup(server: &Server, token_url: &str) -> String {
    server.request(
        "POST",
        "/v1/sys/namespaces",
        Some(server.admin()),
        Some(r#"{"name":"bot"}"#),
    );
    let revoke_url = token_url.replace("/token", "/revoke");
    let provider = json!({"token_url": token_url, "revocation_url": revoke_url, "client_id": "app-client", "client_secret": CLIENT_SECRET, "refresh_margin_secs": 60});
    let r = server.request(
        "PUT",
        "/v1/ns/bot/providers/spotify",
        Some(server.admin()),
        Some(&provider.to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !r.body.contains(CLIENT_SECRET),
        "the secret is never returned"
    );
    let body = r#"{"name":"bot","namespaces":["bot"],"capabilities":["read","write","list","delete","erase"]}"#;
    server
        .request("POST", "/v1/sys/tokens", Some(server.admin()), Some(body))
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn expired_token_set(refresh: &str) -> String {
    json!({"data": {"type": "oauth2", "access_token": "at-0", "refresh_token": refresh, "expires_at": "2020-01-01T00:00:00Z", "provider": "spotify"}}).to_string()
}

const CRED: &str = "/v1/ns/bot/users/telegram:1/credentials/spotify";

#[test]
fn refresh_once_rotate_and_report_failures() {
    let (url, provider) = token_endpoint("rt-0");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let server = Server::start(&data, &[], &[]);
    let app = setup(&server, &url);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&expired_token_set("rt-0")))
            .status,
        200
    );
    provider.lock().unwrap().delay_ms = 150;

    // 20 concurrent callers: one refresh, everyone gets its result.
    let tokens: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let (server, app) = (&server, &app);
                s.spawn(move || {
                    let r = server.request(
                        "POST",
                        &format!("{CRED}/access-token"),
                        Some(app),
                        Some(r#"{"min_valid_secs":300}"#),
                    );
                    assert_eq!(r.status, 200, "{}", r.body);
                    r.json()["access_token"].as_str().unwrap().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(tokens.iter().all(|t| t == "at-1"), "{tokens:?}");
    assert_eq!(provider.lock().unwrap().refreshes, 1, "exactly one refresh");
    assert_eq!(
        provider.lock().unwrap().bad_auth,
        0,
        "client_secret_basic sent the right credentials"
    );
    let stored = server.request("GET", CRED, Some(&app), None).json();
    assert_eq!(
        stored["data"]["refresh_token"], "rt-1",
        "the rotated refresh token is stored"
    );
    assert_eq!(stored["metadata"]["version"], 2);
    let again = server
        .request(
            "POST",
            &format!("{CRED}/access-token"),
            Some(&app),
            Some("{}"),
        )
        .json();
    assert_eq!(
        (again["access_token"].clone(), again["refreshed"].clone()),
        (json!("at-1"), json!(false))
    );

    // Provider down, then answering garbage: clear errors, and the refresh token is kept.
    // (Each round stores the token set again: a stored set clears the last failure's back-off.)
    provider.lock().unwrap().delay_ms = 0;
    for (mode, code) in [
        (Mode::ServerError, "http_503"),
        (Mode::Malformed, "malformed_response"),
    ] {
        assert_eq!(
            server
                .request("PUT", CRED, Some(&app), Some(&expired_token_set("rt-1")))
                .status,
            200
        );
        provider.lock().unwrap().mode = mode;
        let r = server.request(
            "POST",
            &format!("{CRED}/access-token"),
            Some(&app),
            Some("{}"),
        );
        assert_eq!(
            (r.status, r.code().as_str()),
            (502, "refresh_failed"),
            "{}",
            r.body
        );
        assert!(r.retry_after.is_some());
        assert!(r.body.contains(code), "{}", r.body);
        assert_eq!(
            server.request("GET", CRED, Some(&app), None).json()["data"]["refresh_token"],
            "rt-1",
            "never lost"
        );
        let statuses = server
            .request(
                "GET",
                "/v1/ns/bot/credential-status?status=refresh_failed",
                Some(&app),
                None,
            )
            .json();
        assert_eq!(statuses["items"][0]["error"], code, "{statuses}");
    }

    // The grant revoked at the provider: the user must log in again, and the app can list them.
    provider.lock().unwrap().mode = Mode::Normal;
    provider.lock().unwrap().valid.clear();
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&expired_token_set("rt-1")))
            .status,
        200
    );
    let r = server.request(
        "POST",
        &format!("{CRED}/access-token"),
        Some(&app),
        Some("{}"),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "needs_reauthorization"),
        "{}",
        r.body
    );
    let statuses = server
        .request(
            "GET",
            "/v1/ns/bot/credential-status?status=needs_reauthorization",
            Some(&app),
            None,
        )
        .json();
    assert_eq!(statuses["items"][0]["user"], "telegram:1");
    assert_eq!(statuses["items"][0]["error"], "invalid_grant");

    let metrics = server.request("GET", "/v1/sys/metrics", None, None).body;
    assert!(
        metrics.contains("strongroom_oauth_refreshes_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("strongroom_oauth_refresh_failures_total 3"),
        "{metrics}"
    );
    // Bad input.
    let r = server.request(
        "POST",
        &format!("{CRED}/access-token"),
        Some(&app),
        Some(r#"{"min_valid_secs":999999}"#),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"));
    let bad = json!({"token_url": "ftp://x", "client_id": "c", "client_secret": "s"});
    let r = server.request(
        "PUT",
        "/v1/ns/bot/providers/x",
        Some(server.admin()),
        Some(&bad.to_string()),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"));
    let bad = json!({"token_url": "https://x", "client_id": "c", "client_secret": "s", "extra_params": {"grant_type": "password"}});
    let r = server.request(
        "PUT",
        "/v1/ns/bot/providers/x",
        Some(server.admin()),
        Some(&bad.to_string()),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"));
    let secret = server.request(
        "PUT",
        "/v1/ns/bot/users/telegram:2/credentials/key",
        Some(&app),
        Some(r#"{"data":{"type":"secret","data":{"k":"v"}}}"#),
    );
    assert_eq!(secret.status, 200);
    let r = server.request(
        "POST",
        "/v1/ns/bot/users/telegram:2/credentials/key/access-token",
        Some(&app),
        Some("{}"),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"));

    // The client secret is nowhere in plaintext.
    let db = [
        std::fs::read(data.join("strongroom.db")).unwrap(),
        std::fs::read(data.join("strongroom.db-wal")).unwrap_or_default(),
    ]
    .concat();
    assert!(!db
        .windows(CLIENT_SECRET.len())
        .any(|w| w == CLIENT_SECRET.as_bytes()));
    assert!(!server.logs().contains(CLIENT_SECRET));
}

#[test]
fn a_hundred_callers_on_three_nodes_cause_one_refresh() {
    let Some(url) = postgres_url() else { return };
    let (token_url, provider) = token_endpoint("rt-0");
    provider.lock().unwrap().delay_ms = 300;
    let dir = tempfile::tempdir().unwrap();
    let key = shared_root_key();
    let schema = format!("oauth_{}", std::process::id());
    let nodes: Vec<Server> = (0..3)
        .map(|i| start_node(&dir.path().join(format!("n{i}")), &url, &schema, &key, &[]))
        .collect();
    let app = setup(&nodes[0], &token_url);
    assert_eq!(
        nodes[0]
            .request("PUT", CRED, Some(&app), Some(&expired_token_set("rt-0")))
            .status,
        200
    );
    let tokens: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let (node, app) = (&nodes[i % 3], &app);
                s.spawn(move || {
                    let r = node.request(
                        "POST",
                        &format!("{CRED}/access-token"),
                        Some(app),
                        Some("{}"),
                    );
                    assert_eq!(r.status, 200, "{}", r.body);
                    r.json()["access_token"].as_str().unwrap().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        provider.lock().unwrap().refreshes,
        1,
        "exactly one refresh across three nodes"
    );
    assert!(tokens.iter().all(|t| t == "at-1"));
    for node in &nodes {
        assert_eq!(
            node.request("GET", CRED, Some(&app), None).json()["data"]["refresh_token"],
            "rt-1"
        );
    }
}

/// 100 callers over three nodes while the token endpoint answers 503: one provider call, every
/// caller gets the recorded failure with the back-off's Retry-After, `force` included; once the
/// app stores a new set, a forced refresh of a valid token happens exactly once across 30
/// concurrent forced callers.
#[test]
fn a_failing_provider_is_asked_once_per_back_off_across_nodes_and_force_refreshes_once() {
    let Some(url) = postgres_url() else { return };
    let (token_url, provider) = token_endpoint("rt-0");
    provider.lock().unwrap().mode = Mode::ServerError;
    provider.lock().unwrap().delay_ms = 100;
    let dir = tempfile::tempdir().unwrap();
    let key = shared_root_key();
    let schema = format!("oauth_stampede_{}", std::process::id());
    let nodes: Vec<Server> = (0..3)
        .map(|i| start_node(&dir.path().join(format!("n{i}")), &url, &schema, &key, &[]))
        .collect();
    let app = setup(&nodes[0], &token_url);
    let put = |set: &str| nodes[0].request("PUT", CRED, Some(&app), Some(set)).status;
    assert_eq!(put(&expired_token_set("rt-0")), 200);
    let call = |node: &Server, body: &str| {
        node.request(
            "POST",
            &format!("{CRED}/access-token"),
            Some(&app),
            Some(body),
        )
    };
    let answers: Vec<(u16, String, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let node = &nodes[i % 3];
                let body = if i % 10 == 0 {
                    r#"{"force": true}"#
                } else {
                    "{}"
                };
                s.spawn(move || {
                    let r = call(node, body);
                    (r.status, r.code(), r.retry_after.clone())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        provider.lock().unwrap().attempts,
        1,
        "one provider call for 100 callers"
    );
    for (status, code, retry_after) in &answers {
        assert_eq!((*status, code.as_str()), (502, "refresh_failed"));
        let secs: u64 = retry_after.as_deref().unwrap_or("0").parse().unwrap();
        assert!((1..=60).contains(&secs), "Retry-After {retry_after:?}");
    }
    let r = call(&nodes[2], r#"{"force": true}"#);
    assert_eq!(
        (r.status, r.code().as_str()),
        (502, "refresh_failed"),
        "force waits out the back-off"
    );
    assert!(
        r.body.contains("http_503") && r.body.contains("next attempt"),
        "{}",
        r.body
    );
    assert_eq!(provider.lock().unwrap().attempts, 1);

    // The app stores a fresh set (status valid again) and the provider is back.
    provider.lock().unwrap().mode = Mode::Normal;
    let valid = json!({"data": {"type": "oauth2", "access_token": "at-app", "refresh_token": "rt-0",
        "expires_at": "2099-01-01T00:00:00Z", "provider": "spotify"}});
    assert_eq!(put(&valid.to_string()), 200);
    let plain = call(&nodes[1], "{}").json();
    assert_eq!(
        (plain["access_token"].clone(), plain["refreshed"].clone()),
        (json!("at-app"), json!(false))
    );
    let forced: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..30)
            .map(|i| {
                let node = &nodes[i % 3];
                s.spawn(move || {
                    let r = call(node, r#"{"force": true}"#);
                    assert_eq!(r.status, 200, "{}", r.body);
                    assert_eq!(r.json()["refreshed"], true, "{}", r.body);
                    r.json()["access_token"].as_str().unwrap().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        provider.lock().unwrap().refreshes,
        1,
        "30 forced callers, one refresh"
    );
    assert!(forced.iter().all(|t| t == "at-1"), "{forced:?}");
}

#[test]
fn revocation_on_request_and_on_erasure() {
    let (url, provider) = token_endpoint("rt-a");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("d"), &[], &[]);
    let app = setup(&server, &url);
    provider.lock().unwrap().valid.insert("rt-b".into());
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&expired_token_set("rt-a")))
            .status,
        200
    );

    // Provider down: the revocation fails clearly and the credential is kept for a retry.
    provider.lock().unwrap().mode = Mode::ServerError;
    let r = server.request("POST", &format!("{CRED}/revoke"), Some(&app), None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (502, "revocation_failed"),
        "{}",
        r.body
    );
    assert_eq!(server.request("GET", CRED, Some(&app), None).status, 200);
    provider.lock().unwrap().mode = Mode::Normal;
    let (code, out, err) = server.cli(&app, &["cred", "revoke", "bot", "telegram:1", "spotify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"revoked_at_provider\": true"), "{out}");
    assert_eq!(provider.lock().unwrap().revoked, ["rt-a"]);
    assert_eq!(server.request("GET", CRED, Some(&app), None).status, 404);
    let statuses = server
        .request(
            "GET",
            "/v1/ns/bot/credential-status?status=revoked",
            Some(&app),
            None,
        )
        .json();
    assert_eq!(statuses["items"][0]["name"], "spotify");

    // Erasure revokes at the provider first; a provider that is down does not block it.
    let other = "/v1/ns/bot/users/telegram:2/credentials/spotify";
    assert_eq!(
        server
            .request("PUT", other, Some(&app), Some(&expired_token_set("rt-b")))
            .status,
        200
    );
    let r = server.request(
        "DELETE",
        "/v1/ns/bot/users/telegram:2?confirm=telegram:2",
        Some(&app),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["provider_revocations"], 1);
    assert_eq!(provider.lock().unwrap().revoked, ["rt-a", "rt-b"]);
    let third = "/v1/ns/bot/users/telegram:3/credentials/spotify";
    assert_eq!(
        server
            .request("PUT", third, Some(&app), Some(&expired_token_set("rt-c")))
            .status,
        200
    );
    provider.lock().unwrap().mode = Mode::ServerError;
    let r = server.request(
        "DELETE",
        "/v1/ns/bot/users/telegram:3?confirm=telegram:3",
        Some(&app),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (
            r.json()["provider_revocations"].clone(),
            r.json()["provider_revocation_failures"].clone()
        ),
        (json!(0), json!(1))
    );
    assert_eq!(
        server.request("GET", third, Some(&app), None).status,
        404,
        "erased anyway"
    );
    let (_, audit, _) = server.cli(
        server.admin(),
        &["audit", "query", "--action", "credential.revoke"],
    );
    assert!(
        audit.contains("upstream_error"),
        "the failure is audited: {audit}"
    );
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "the test needs a real expiry time near now for the running server"
)]
fn the_background_refresher_refreshes_ahead_of_expiry_and_backs_off() {
    let (url, provider) = token_endpoint("rt-0");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("d"),
        &["--job-interval-secs", "1", "--lease-ttl-secs", "3"],
        &[],
    );
    let app = setup(&server, &url);
    // A margin of an hour: a token that expires in 30 minutes is due for refresh now.
    let provider_cfg = json!({"token_url": url, "client_id": "app-client", "client_secret": CLIENT_SECRET, "refresh_margin_secs": 3600});
    assert_eq!(
        server
            .request(
                "PUT",
                "/v1/ns/bot/providers/spotify",
                Some(server.admin()),
                Some(&provider_cfg.to_string())
            )
            .status,
        200
    );
    let soon = json!({"data": {"type": "oauth2", "access_token": "at-0", "refresh_token": "rt-0",
        "expires_at": "2099-01-01T00:00:00Z", "provider": "spotify"}});
    // Far from expiry: nothing to do.
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&soon.to_string()))
            .status,
        200
    );
    let in_30_min = {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1800;
        let days = now / 86400;
        let (y, m, d) = civil_from_days(days as i64);
        let rem = now % 86400;
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    };
    let due = json!({"data": {"type": "oauth2", "access_token": "at-0", "refresh_token": "rt-0",
        "expires_at": in_30_min, "provider": "spotify"}});
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&due.to_string()))
            .status,
        200
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while provider.lock().unwrap().refreshes == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the background refresher never ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stored = server.request("GET", CRED, Some(&app), None).json();
        if stored["data"]["access_token"] == "at-1" {
            assert_eq!(stored["data"]["refresh_token"], "rt-1");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the refreshed token was not stored"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        provider.lock().unwrap().refreshes,
        1,
        "refreshed once, then not due for ~an hour... of margin"
    );

    // A failing provider is not hammered: after a failure the next attempt waits (back-off).
    let other = "/v1/ns/bot/users/telegram:9/credentials/spotify";
    provider.lock().unwrap().valid.insert("rt-9".into());
    provider.lock().unwrap().mode = Mode::ServerError;
    let attempts_before = provider.lock().unwrap().attempts;
    let due9 = json!({"data": {"type": "oauth2", "access_token": "x", "refresh_token": "rt-9", "expires_at": in_30_min, "provider": "spotify"}});
    assert_eq!(
        server
            .request("PUT", other, Some(&app), Some(&due9.to_string()))
            .status,
        200
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let statuses = server
            .request(
                "GET",
                "/v1/ns/bot/credential-status?status=refresh_failed",
                Some(&app),
                None,
            )
            .json();
        if statuses["items"].as_array().is_some_and(|a| !a.is_empty()) {
            assert_eq!(statuses["items"][0]["error"], "http_503");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the failure was never recorded"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    let attempts = provider.lock().unwrap().attempts - attempts_before;
    assert!(
        attempts <= 2,
        "a failing provider was called {attempts} times in a few seconds"
    );
}

/// Days since 1970-01-01 to (year, month, day) — Howard Hinnant's civil calendar algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[test]
fn verification_marks_credentials_verified_or_invalid() {
    let (url, provider) = token_endpoint("rt-0");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("d"), &[], &[]);
    let app = setup(&server, &url);
    let cfg = json!({"token_url": url, "client_id": "app-client", "client_secret": CLIENT_SECRET, "verify_url": url.replace("/token", "/me")});
    assert_eq!(
        server
            .request(
                "PUT",
                "/v1/ns/bot/providers/spotify",
                Some(server.admin()),
                Some(&cfg.to_string())
            )
            .status,
        200
    );
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&expired_token_set("rt-0")))
            .status,
        200
    );
    // Verification first gets a valid token (refreshing to at-1), then asks the provider.
    let (code, out, err) = server.cli(&app, &["cred", "verify", "bot", "telegram:1", "spotify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"verified\": true"), "{out}");
    // The provider stops accepting it (another refresh happened elsewhere, say).
    provider.lock().unwrap().refreshes = 5;
    let r = server.request("POST", &format!("{CRED}/verify"), Some(&app), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (
            r.json()["verified"].clone(),
            r.json()["provider_status"].clone()
        ),
        (json!(false), json!(401))
    );
    let statuses = server
        .request("GET", "/v1/ns/bot/credential-status", Some(&app), None)
        .json();
    assert_eq!(statuses["items"][0]["verified"], false);
    assert!(statuses["items"][0]["last_verified_at"].is_string());
    // A provider without verify_url: a clear 400.
    let plain =
        json!({"token_url": url, "client_id": "app-client", "client_secret": CLIENT_SECRET});
    server.request(
        "PUT",
        "/v1/ns/bot/providers/spotify",
        Some(server.admin()),
        Some(&plain.to_string()),
    );
    let r = server.request("POST", &format!("{CRED}/verify"), Some(&app), None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "invalid_input"),
        "{}",
        r.body
    );
}
