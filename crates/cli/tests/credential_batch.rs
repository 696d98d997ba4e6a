//! `POST /v1/ns/{ns}/credentials/batch` through the binary, on SQLite and PostgreSQL: items
//! across users written in one call, each with its own result (a lost check-and-set or bad
//! input in its place, the others written), limits with clear errors, the capability checked,
//! and every item in the audit log under its user.

mod support;

use serde_json::{json, Value};
use support::{app_token, Db};

on_both_databases!(a_batch_writes_each_item_or_says_why_not);

fn secret(token: &str) -> Value {
    json!({ "type": "secret", "data": { "token": token } })
}

fn a_batch_writes_each_item_or_says_why_not(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let server = db.start(dir.path(), &[]);
    let token = app_token(&server, "app", &["read", "write"]);
    let reader = app_token(&server, "app", &["read"]);
    let put = server.request(
        "PUT",
        "/v1/ns/app/users/batch-user-1/credentials/taken",
        Some(&token),
        Some(&json!({ "data": secret("first") }).to_string()),
    );
    assert_eq!(put.status, 200, "{}", put.body);

    let body = json!({ "items": [
        { "user": "batch-user-1", "name": "slack", "data": secret("BATCH-MARKER-1"), "options": { "cas": 0 } },
        { "user": "batch-user-1", "name": "taken", "data": secret("never"), "options": { "cas": 0 } },
        { "user": "batch-user-2", "name": "spotify", "data": {
            "type": "oauth2", "access_token": "at-2", "refresh_token": "rt-2",
            "expires_at": "2030-01-01T00:00:00Z" } },
        { "user": "batch-user-3", "name": "bad name!", "data": secret("x") },
        { "user": "batch-user-3", "name": "ok", "data": { "type": "nonsense" } },
    ]});
    let r = server.request(
        "POST",
        "/v1/ns/app/credentials/batch",
        Some(&token),
        Some(&body.to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    assert_eq!(answer["written"], 2, "{answer}");
    assert_eq!(answer["failed"], 3, "{answer}");
    let items = answer["items"].as_array().unwrap();
    let statuses: Vec<u64> = items
        .iter()
        .map(|i| i["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 409, 200, 400, 400], "{answer}");
    assert_eq!(items[0]["version"]["version"], 1);
    assert_eq!(items[1]["error"]["code"], "version_conflict");
    assert_eq!(items[3]["error"]["code"], "invalid_input");
    assert!(
        items[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("name"),
        "{answer}"
    );
    assert!(
        items[4]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("data"),
        "{answer}"
    );
    assert!(!r.body.contains("nonsense"), "the sent value is not echoed");

    let read = |user: &str, name: &str| {
        server.request(
            "GET",
            &format!("/v1/ns/app/users/{user}/credentials/{name}"),
            Some(&reader),
            None,
        )
    };
    assert_eq!(
        read("batch-user-1", "slack").json()["data"]["data"]["token"],
        "BATCH-MARKER-1"
    );
    assert_eq!(
        read("batch-user-1", "taken").json()["data"]["data"]["token"],
        "first"
    );
    assert_eq!(
        read("batch-user-2", "spotify").json()["data"]["access_token"],
        "at-2"
    );
    assert_eq!(read("batch-user-3", "ok").status, 404);

    // Every item is in the audit log under its own user .
    let admin = server.admin().to_string();
    let (code, out, err) = server.cli(
        &admin,
        &[
            "audit",
            "query",
            "--action",
            "credential.put_batch_item",
            "--limit",
            "10",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let page: Value = serde_json::from_str(&out).unwrap();
    let entries = page["items"].as_array().unwrap();
    assert_eq!(entries.len(), 5, "{page}");
    let outcomes: Vec<&str> = entries
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "ok").count(), 2, "{page}");
    assert!(
        !out.contains("batch-user") && !out.contains("BATCH-MARKER"),
        "no user id or value in the log"
    );

    // Limits and rights, each with its own clear error.
    let r = server.request(
        "POST",
        "/v1/ns/app/credentials/batch",
        Some(&token),
        Some(r#"{"items": []}"#),
    );
    assert_eq!(
        (r.status, r.code()),
        (400, "invalid_input".into()),
        "{}",
        r.body
    );
    assert!(r.body.contains("items"), "{}", r.body);
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({ "user": format!("m{i}"), "name": "c", "data": secret("v") }))
        .collect();
    let r = server.request(
        "POST",
        "/v1/ns/app/credentials/batch",
        Some(&token),
        Some(&json!({ "items": many }).to_string()),
    );
    assert_eq!(
        (r.status, r.code()),
        (400, "invalid_input".into()),
        "{}",
        r.body
    );
    let full: Vec<Value> = (0..1000)
        .map(|i| json!({ "user": format!("m{i}"), "name": "c", "data": secret(&format!("v{i}")) }))
        .collect();
    let r = server.request(
        "POST",
        "/v1/ns/app/credentials/batch",
        Some(&token),
        Some(&json!({ "items": full }).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["written"], 1000);
    assert_eq!(read("m999", "c").json()["data"]["data"]["token"], "v999");
    let r = server.request(
        "POST",
        "/v1/ns/app/credentials/batch",
        Some(&reader),
        Some(&body.to_string()),
    );
    assert_eq!((r.status, r.code()), (403, "forbidden".into()));
}
