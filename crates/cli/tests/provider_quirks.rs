//! Providers that answer 200 with an error body, through the binary on SQLite and PostgreSQL:
//! a success predicate (`verify_success`: JSON pointer `/ok` equals `true`, as Slack's
//! `auth.test` needs) decides verification; `secret` credentials are verified by the field the
//! provider names (a Slack bot token), against a provider named by the call or by the secret;
//! bad configurations and answers get clear errors.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use serde_json::{json, Value};
use support::{app_token, Db, Server};

on_both_databases!(verification_understands_200_with_an_error_body);

/// A Slack-like API: `auth.test` answers 200 `{"ok": true}` for the good token and 200
/// `{"ok": false}` for any other; `/html` answers 200 with a page.
fn slack_like() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut auth = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if line.to_ascii_lowercase().starts_with("authorization:") {
                    auth = line["authorization:".len()..].trim().to_string();
                }
            }
            let body = if request_line.contains("/html") {
                "<html>hello</html>".to_string()
            } else if auth == "Bearer xoxb-good" {
                json!({"ok": true, "team": "T1"}).to_string()
            } else {
                json!({"ok": false, "error": "invalid_auth"}).to_string()
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

fn put(server: &Server, token: &str, path: &str, body: &Value) -> u16 {
    server
        .request("PUT", path, Some(token), Some(&body.to_string()))
        .status
}

fn verification_understands_200_with_an_error_body(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let server = db.start(dir.path(), &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write", "list"]);
    let base = slack_like();
    let slack = json!({
        "token_url": format!("{base}/oauth.v2.access"), "client_id": "c", "client_secret": "s",
        "verify_url": format!("{base}/auth.test"),
        "verify_success": {"pointer": "/ok", "equals": true},
        "verify_secret_field": "bot_token",
    });
    assert_eq!(
        put(&server, &admin, "/v1/ns/app/providers/slack", &slack),
        200
    );
    let listed = server
        .request("GET", "/v1/ns/app/providers", Some(&app), None)
        .json();
    assert_eq!(
        listed["items"][0]["verify_success"]["pointer"], "/ok",
        "{listed}"
    );
    assert_eq!(listed["items"][0]["verify_secret_field"], "bot_token");

    let cred = |user: &str, name: &str| format!("/v1/ns/app/users/{user}/credentials/{name}");
    let secret = |fields: Value| json!({"data": {"type": "secret", "data": fields}});
    assert_eq!(
        put(
            &server,
            &app,
            &cred("t1", "bot"),
            &secret(json!({"bot_token": "xoxb-good", "provider": "slack"}))
        ),
        200
    );
    assert_eq!(
        put(
            &server,
            &app,
            &cred("t2", "bot"),
            &secret(json!({"bot_token": "xoxb-dead"}))
        ),
        200
    );
    assert_eq!(
        put(
            &server,
            &app,
            &cred("t3", "bot"),
            &secret(json!({"other": "x"}))
        ),
        200
    );
    let verify = |user: &str, query: &str| {
        server.request(
            "POST",
            &format!("{}/verify{query}", cred(user, "bot")),
            Some(&app),
            None,
        )
    };

    let r = verify("t1", "");
    assert_eq!(
        (r.status, r.json()["verified"].clone()),
        (200, json!(true)),
        "{}",
        r.body
    );
    let r = verify("t2", "?provider=slack");
    assert_eq!(
        (
            r.status,
            r.json()["verified"].clone(),
            r.json()["provider_status"].clone()
        ),
        (200, json!(false), json!(200)),
        "a 200 with ok:false is a dead token: {}",
        r.body
    );
    let r = verify("t2", "");
    assert_eq!((r.status, r.code()), (400, "invalid_input".into()));
    assert!(r.body.contains("provider"), "{}", r.body);
    let r = verify("t3", "?provider=slack");
    assert_eq!((r.status, r.code()), (400, "invalid_input".into()));
    assert!(r.body.contains("verify_secret_field"), "{}", r.body);
    assert!(!r.body.contains("xoxb"), "{}", r.body);

    // An OAuth token set is judged by the same rule.
    let oauth = json!({"data": {"type": "oauth2", "access_token": "xoxb-good", "refresh_token": "r",
        "expires_at": "2099-01-01T00:00:00Z", "provider": "slack"}});
    assert_eq!(put(&server, &app, &cred("t4", "bot"), &oauth), 200);
    let r = verify("t4", "");
    assert_eq!(r.json()["verified"], true, "{}", r.body);

    let statuses = server
        .request("GET", "/v1/ns/app/credential-status", Some(&app), None)
        .json();
    let verified: Vec<(String, Value)> = statuses["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["user"].as_str().unwrap_or("").to_string(),
                s["verified"].clone(),
            )
        })
        .collect();
    assert!(
        verified.contains(&("t2".into(), json!(false))),
        "{statuses}"
    );
    assert!(verified.contains(&("t1".into(), json!(true))), "{statuses}");

    // A provider whose verify answer is not JSON, and configurations that cannot work.
    let html = json!({
        "token_url": format!("{base}/token"), "client_id": "c", "client_secret": "s",
        "verify_url": format!("{base}/html"), "verify_success": {"pointer": "/ok", "equals": true},
        "verify_secret_field": "bot_token",
    });
    assert_eq!(
        put(&server, &admin, "/v1/ns/app/providers/html", &html),
        200
    );
    let r = verify("t1", "?provider=html");
    assert_eq!(
        (r.status, r.code()),
        (502, "verification_failed".into()),
        "{}",
        r.body
    );
    assert!(r.body.contains("malformed_response"), "{}", r.body);
    for (bad, field) in [
        (
            json!({"token_url": format!("{base}/t"), "client_id": "c", "client_secret": "s",
                "verify_success": {"pointer": "/ok", "equals": true}}),
            "verify_url",
        ),
        (
            json!({"token_url": format!("{base}/t"), "client_id": "c", "client_secret": "s",
                "verify_url": format!("{base}/auth.test"), "verify_success": {"pointer": "ok", "equals": true}}),
            "pointer",
        ),
    ] {
        let r = server.request(
            "PUT",
            "/v1/ns/app/providers/bad",
            Some(&admin),
            Some(&bad.to_string()),
        );
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_input".into()),
            "{}",
            r.body
        );
        assert!(r.body.contains(field), "{}", r.body);
    }
    let (code, out, err) = server.cli(
        &app,
        &["cred", "verify", "app", "t2", "bot", "--provider", "slack"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"verified\": false"), "{out}");
}
