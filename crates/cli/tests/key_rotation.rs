//! Scheduled key rotation through the binary on SQLite and PostgreSQL: a namespace's policy
//! makes the key-rotation job rotate its key when due, the rewrap job move every user key, and
//! the old version retire once nothing uses it — data readable throughout, every step audited,
//! visible in `keys status`; bad policies are refused.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{app_token, oauth_body, Db, Server};

on_both_databases!(a_due_key_is_rotated_rewrapped_and_retired_by_the_jobs);

fn status(server: &Server) -> Value {
    let r = server.request("GET", "/v1/ns/app/keys", Some(server.admin()), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn a_due_key_is_rotated_rewrapped_and_retired_by_the_jobs(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let server = db.start(&dir.path().join("d"), &["--job-interval-secs", "1"]);
    let app = app_token(&server, "app", &["read", "write"]);
    let cred = "/v1/ns/app/users/u1/credentials/spotify";
    assert_eq!(
        server
            .request("PUT", cred, Some(&app), Some(&oauth_body("at-1")))
            .status,
        200
    );
    let path = "/v1/ns/app/keys/rotation-policy";
    let admin = server.admin().to_string();
    for bad in [
        json!({"rotate_every_secs": 0}),
        json!({"rotate_every_secs": 60, "extra": 1}),
        json!({}),
    ] {
        let r = server.request("PUT", path, Some(&admin), Some(&bad.to_string()));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    assert_eq!(
        server.request("GET", path, Some(&admin), None).json()["rotation"],
        Value::Null
    );
    let r = server.request(
        "PUT",
        path,
        Some(&admin),
        Some(r#"{"rotate_every_secs": 2}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["rotation"]["retire_old_versions"], true);
    assert!(status(&server)["rotation"]["next_rotation_at"].is_string());
    // Within a few job ticks: version 2 primary, the user key moved, version 1 retired.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(&server);
        if s["primary_version"].as_u64() >= Some(2)
            && s["min_decrypt_version"] == s["primary_version"]
            && s["users_on_old_versions"] == 0
        {
            break;
        }
        assert!(Instant::now() < deadline, "not rotated and retired: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Removing the policy stops further rotations.
    assert_eq!(
        server.request("DELETE", path, Some(&admin), None).status,
        204
    );
    let settled = status(&server)["primary_version"].clone();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(status(&server)["primary_version"], settled);
    assert!(status(&server).get("rotation").is_none());
    let r = server.request("GET", cred, Some(&app), None);
    assert!(r.body.contains("at-1"), "still readable: {}", r.body);
    let audit = server
        .request(
            "GET",
            "/v1/sys/audit?action=keys.rotate_scheduled&limit=1000",
            Some(&admin),
            None,
        )
        .json();
    assert!(!audit["items"].as_array().unwrap().is_empty(), "{audit}");
    let retired = server
        .request(
            "GET",
            "/v1/sys/audit?action=keys.retire_scheduled&limit=1000",
            Some(&admin),
            None,
        )
        .json();
    assert!(
        !retired["items"].as_array().unwrap().is_empty(),
        "{retired}"
    );
    // The CLI shows and sets it.
    let (code, out, err) = server.cli(
        &admin,
        &["keys", "rotation-policy", "app", "--every", "90d"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("7776000"), "{out}");
}
