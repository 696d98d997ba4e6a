//! `strongroom migrate` copies a SQLite store into PostgreSQL: verified, resumable, refusing a
//! non-empty target, and the copy serves the same data under the same root key.

mod support;

use std::process::Command;

use support::{app_token, oauth_body, postgres_url, start_node, Server, BIN};

fn migrate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("migrate")
        .args(args)
        .output()
        .unwrap();
    support::outcome(out)
}

#[test]
fn sqlite_store_moves_to_postgres_and_keeps_working() {
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = Server::start(&data, &[], &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    for i in 0..25 {
        let r = server.request(
            "PUT",
            &format!("/v1/ns/app/users/telegram:{i}/credentials/spotify"),
            Some(&app),
            Some(&oauth_body(&format!("tok-{i}"))),
        );
        assert_eq!(r.status, 200);
    }
    assert_eq!(server.cli(&admin, &["keys", "rotate", "app"]).0, 0);
    server.request(
        "PUT",
        "/v1/ns/app/users/late/credentials/spotify",
        Some(&app),
        Some(&oauth_body("late")),
    );
    server.stop();

    let from = format!("sqlite://{}", data.join("strongroom.db").display());
    let schema = format!("migrate_{}", std::process::id());
    // Interrupted part-way (simulated), then resumed.
    let (code, _, err) = migrate(&[
        "--from",
        &from,
        "--to",
        &url,
        "--to-schema",
        &schema,
        "--batch",
        "7",
        "--stop-after-rows",
        "20",
    ]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = migrate(&["--from", &from, "--to", &url, "--to-schema", &schema]);
    assert_ne!(code, 0);
    assert!(
        err.contains("not empty") && err.contains("--resume"),
        "{err}"
    );
    let (code, out, err) = migrate(&[
        "--from",
        &from,
        "--to",
        &url,
        "--to-schema",
        &schema,
        "--resume",
        "--batch",
        "7",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["verified"], true, "{out}");
    let users = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "users")
        .unwrap();
    assert_eq!(users["target_rows"], 26);

    // The PostgreSQL copy serves the same data under the same root key, with a valid audit chain.
    let root = std::fs::read_to_string(data.join("root.key")).unwrap();
    let node = start_node(&dir.path().join("pg"), &url, &schema, root.trim(), &[]);
    assert!(node.admin.is_none(), "the copy is not a new store");
    for i in [0, 13, 24] {
        let r = node.request(
            "GET",
            &format!("/v1/ns/app/users/telegram:{i}/credentials/spotify"),
            Some(&app),
            None,
        );
        assert_eq!(
            r.json()["data"]["access_token"],
            format!("tok-{i}"),
            "{}",
            r.body
        );
    }
    let (code, out, _) = node.cli(&admin, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");

    // Bad input: an unknown scheme and a missing source are clear errors.
    let (code, _, err) = migrate(&["--from", "mysql://x", "--to", &url]);
    assert_ne!(code, 0);
    assert!(err.contains("sqlite://PATH or postgres://"), "{err}");
    let (code, _, err) = migrate(&["--from", "sqlite:///nonexistent/x.db", "--to", &url]);
    assert_ne!(code, 0);
    assert!(err.contains("does not exist"), "{err}");
}
