//! Events through the real binary: batched appends, newest-first queries by type and time with
//! pagination, bad input, no plaintext type or details in the database, export and erasure,
//! and retention enforced by the background job.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Db, Server};

on_both_databases!(
    append_query_paginate_export_erase,
    retention_deletes_old_events
);

const USER: &str = "discord:9001";

fn token(server: &Server) -> String {
    server.request(
        "POST",
        "/v1/sys/namespaces",
        Some(server.admin()),
        Some(r#"{"name":"bot"}"#),
    );
    let body = r#"{"name":"bot","namespaces":["bot"],"capabilities":["read","write","export","erase","admin"]}"#;
    server
        .request("POST", "/v1/sys/tokens", Some(server.admin()), Some(body))
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn events_path(user: &str) -> String {
    format!("/v1/ns/bot/users/{user}/events")
}

fn append_query_paginate_export_erase(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let server = db.start(&data, &[]);
    let app = token(&server);
    let batch: Vec<_> = (0..30)
        .map(|i| {
            json!({
                "type": if i % 3 == 0 { "command.play" } else { "command.skip" },
                "time": format!("2026-11-01T10:{:02}:00Z", i),
                "details": {"track": format!("SECRET-TRACK-{i}"), "guild": 42}
            })
        })
        .collect();
    let r = server.request(
        "POST",
        &events_path(USER),
        Some(&app),
        Some(&json!({ "events": batch }).to_string()),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["appended"], 30);

    // Newest first, by type, paginated.
    let r = server.request(
        "GET",
        &format!("{}?type=command.play&limit=4", events_path(USER)),
        Some(&app),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let page = r.json();
    let times: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["time"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        times,
        [
            "2026-11-01T10:27:00Z",
            "2026-11-01T10:24:00Z",
            "2026-11-01T10:21:00Z",
            "2026-11-01T10:18:00Z"
        ]
    );
    assert_eq!(page["items"][0]["details"]["track"], "SECRET-TRACK-27");
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let r = server.request(
        "GET",
        &format!(
            "{}?type=command.play&limit=4&cursor={cursor}",
            events_path(USER)
        ),
        Some(&app),
        None,
    );
    let rest: Vec<_> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["details"]["track"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        rest,
        [
            "SECRET-TRACK-15",
            "SECRET-TRACK-12",
            "SECRET-TRACK-9",
            "SECRET-TRACK-6"
        ]
    );
    let r = server.request(
        "GET",
        &format!(
            "{}?since=2026-11-01T10:05:00Z&until=2026-11-01T10:07:00Z",
            events_path(USER)
        ),
        Some(&app),
        None,
    );
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 3);
    let (code, out, _) = server.cli(
        &app,
        &[
            "events",
            "list",
            "bot",
            USER,
            "--type",
            "command.skip",
            "--limit",
            "2",
        ],
    );
    assert_eq!(code, 0);
    assert!(out.contains("SECRET-TRACK-29"), "{out}");
    let (code, _, err) = server.cli(
        &app,
        &[
            "events",
            "append",
            "bot",
            USER,
            "--type",
            "login",
            "--details",
            r#"{"ip":"x"}"#,
        ],
    );
    assert_eq!(code, 0, "{err}");

    // Bad input.
    let bad = [
        (json!({"events": []}).to_string(), "invalid_input"),
        (
            json!({"events": [{"type": "has space"}]}).to_string(),
            "invalid_input",
        ),
        (
            json!({"events": [{"type": "x", "time": "yesterday"}]}).to_string(),
            "invalid_input",
        ),
        (
            json!({"events": [{"type": "x", "time": "2099-01-01T00:00:00Z"}]}).to_string(),
            "invalid_input",
        ),
        (
            json!({"events": [{"type": "x", "colour": "red"}]}).to_string(),
            "invalid_json",
        ),
        (
            json!({"events": (0..1001).map(|_| json!({"type": "x"})).collect::<Vec<_>>()})
                .to_string(),
            "invalid_input",
        ),
        (
            format!(
                r#"{{"events":[{{"type":"x","details":{{"a":{}1{}}}}}]}}"#,
                "[".repeat(20),
                "]".repeat(20)
            ),
            "invalid_input",
        ),
        (
            json!({"events": [{"type": "x", "details": [1, 2]}]}).to_string(),
            "invalid_json",
        ),
    ];
    for (body, code) in bad {
        let r = server.request("POST", &events_path(USER), Some(&app), Some(&body));
        assert_eq!((r.status, r.code().as_str()), (400, code), "{}", r.body);
    }
    let r = server.request(
        "GET",
        &format!("{}?cursor=nonsense", events_path(USER)),
        Some(&app),
        None,
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"));

    // Neither type names nor details are stored in plaintext (the SQLite files with their
    // WAL, or a dump of the PostgreSQL schema).
    let dump = db.dump(&data);
    for needle in ["SECRET-TRACK-1", "command.play"] {
        assert!(
            !support::holds(&dump, needle),
            "{needle} found in the database"
        );
    }

    // Export carries the events; erasure removes them.
    let export = server
        .request(
            "GET",
            &format!("/v1/ns/bot/users/{USER}/export"),
            Some(&app),
            None,
        )
        .json();
    assert_eq!(export["events"].as_array().unwrap().len(), 31);
    let r = server.request(
        "DELETE",
        &format!("/v1/ns/bot/users/{USER}?confirm={USER}"),
        Some(&app),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["items_purged"], 31);
    assert_eq!(
        server
            .request("GET", &events_path(USER), Some(&app), None)
            .json()["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

fn retention_deletes_old_events(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let server = db.start(
        &dir.path().join("d"),
        &["--job-interval-secs", "1", "--lease-ttl-secs", "3"],
    );
    let app = token(&server);
    let old = json!({"events": [
        {"type": "cmd", "time": "2020-01-01T00:00:00Z"},
        {"type": "cmd", "time": "2020-06-01T00:00:00Z"},
        {"type": "cmd"}
    ]});
    assert_eq!(
        server
            .request(
                "POST",
                &events_path(USER),
                Some(&app),
                Some(&old.to_string())
            )
            .status,
        201
    );
    let r = server.request(
        "PUT",
        "/v1/ns/bot/events/retention",
        Some(&app),
        Some(r#"{"days": 0}"#),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"));
    let (code, out, _) = server.cli(&app, &["events", "retention", "bot", "--days", "30"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"retention_days\": 30"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = server
            .request("GET", &events_path(USER), Some(&app), None)
            .json()["items"]
            .as_array()
            .unwrap()
            .len();
        if left == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention never removed the old events ({left} left)"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
