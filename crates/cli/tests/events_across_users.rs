//! Namespace-wide events through the binary, on SQLite and PostgreSQL: every user's events by
//! type and time range with a cursor across users (each with its user's id), counts per type
//! per UTC day, `list` required, bad parameters named, erased users gone from both, and the
//! CLI's `events list-all` / `events counts`.

mod support;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use support::{app_token, Db};

on_both_databases!(every_users_events_by_type_and_day);

fn every_users_events_by_type_and_day(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let server = db.start(dir.path(), &[]);
    let writer = app_token(&server, "bot", &["write", "erase"]);
    let lister = app_token(&server, "bot", &["list"]);
    let reader = app_token(&server, "bot", &["read"]);
    let day = |d: u32, h: u32| format!("2026-11-{d:02}T{h:02}:00:00Z");
    let plays = [
        ("u1", day(1, 9)),
        ("u2", day(1, 10)),
        ("u1", day(2, 8)),
        ("u3", day(2, 23)),
    ];
    for (user, time) in &plays {
        let body = json!({"events": [
            {"type": "command.play", "time": time, "details": {"track": format!("{user}-{time}")}},
            {"type": "command.skip", "time": time},
        ]});
        let r = server.request(
            "POST",
            &format!("/v1/ns/bot/users/{user}/events"),
            Some(&writer),
            Some(&body.to_string()),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }

    // Pages of two across users, newest first.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = server.request(
            "GET",
            &format!("/v1/ns/bot/events?type=command.play&limit=2&cursor={cursor}"),
            Some(&lister),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.json();
        for e in page["items"].as_array().unwrap() {
            assert_eq!(e["type"], "command.play");
            seen.push((
                e["user"].as_str().unwrap().to_string(),
                e["time"].as_str().unwrap().to_string(),
            ));
            assert_eq!(
                e["details"]["track"],
                format!(
                    "{}-{}",
                    e["user"].as_str().unwrap(),
                    e["time"].as_str().unwrap().replace(".000", "")
                )
            );
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let times: Vec<&str> = seen.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(times.len(), 4, "{seen:?}");
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let users: BTreeSet<&str> = seen.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(users, BTreeSet::from(["u1", "u2", "u3"]));

    // A time range.
    let r = server.request(
        "GET",
        &format!("/v1/ns/bot/events?from={}&to={}", day(2, 0), day(2, 23)),
        Some(&lister),
        None,
    );
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 4, "{}", r.body);

    // Counts per type per day, with no decryption needed.
    let r = server.request(
        "GET",
        &format!(
            "/v1/ns/bot/events/counts?type=command.play,command.skip,never.seen&from={}&to={}",
            day(1, 0),
            day(30, 0)
        ),
        Some(&lister),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let counts: Vec<(String, String, u64)> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().into(),
                c["day"].as_str().unwrap().into(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let expect = |t: &str| {
        [
            (t.to_string(), "2026-11-01".to_string(), 2),
            (t.to_string(), "2026-11-02".to_string(), 2),
        ]
    };
    let mut want: Vec<_> = expect("command.play").into_iter().collect();
    want.extend(expect("command.skip"));
    assert_eq!(counts, want);

    // Rights and parameters.
    let r = server.request("GET", "/v1/ns/bot/events", Some(&reader), None);
    assert_eq!((r.status, r.code()), (403, "forbidden".into()));
    for (path, field) in [
        ("/v1/ns/bot/events/counts", "type"),
        (
            "/v1/ns/bot/events/counts?type=a,b&from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z",
            "from",
        ),
        ("/v1/ns/bot/events?from=yesterday", "from"),
        ("/v1/ns/bot/events?cursor=nonsense", "cursor"),
        ("/v1/ns/bot/events?type=bad%20type", "type"),
    ] {
        let r = server.request("GET", path, Some(&lister), None);
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.body.contains(field), "{path}: {}", r.body);
        assert!(
            !r.body.contains("yesterday") && !r.body.contains("nonsense"),
            "{}",
            r.body
        );
    }

    // An erased user's events are neither listed nor counted.
    let r = server.request(
        "DELETE",
        "/v1/ns/bot/users/u3?confirm=u3",
        Some(&writer),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (code, out, err) = server.cli(
        &lister,
        &["events", "list-all", "bot", "--type", "command.play"],
    );
    assert_eq!(code, 0, "{err}");
    let page: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "{page}");
    assert!(!out.contains("u3"));
    let (code, out, err) = server.cli(
        &lister,
        &[
            "events",
            "counts",
            "bot",
            "--type",
            "command.play",
            "--from",
            &day(1, 0),
            "--to",
            &day(30, 0),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let counted: Value = serde_json::from_str(&out).unwrap();
    let total: u64 = counted["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 3, "{counted}");
}
