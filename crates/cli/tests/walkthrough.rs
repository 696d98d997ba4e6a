//! The README walkthrough, end to end through the real binary: start, create a token with the
//! CLI, store and read an OAuth token set over HTTP, rotate the namespace key and still read it,
//! rewrap, retire the old version, verify the audit log, stop gracefully.

mod support;

use support::{oauth_body, Server};

#[test]
fn readme_walkthrough() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &[], &[]);
    let admin = server.admin().to_string();

    let (code, out, err) = server.cli(&admin, &["namespace", "create", "musicbot"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = server.cli(
        &admin,
        &[
            "token",
            "create",
            "--name",
            "musicbot-app",
            "--namespace",
            "musicbot",
            "--cap",
            "read,write,list",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let app = serde_json::from_str::<serde_json::Value>(&out).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    let path = "/v1/ns/musicbot/users/telegram:123456789/credentials/spotify";
    let r = server.request("PUT", path, Some(&app), Some(&oauth_body("BQD-access-1")));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["version"], 1);
    let r = server.request("GET", path, Some(&app), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["access_token"], "BQD-access-1");
    assert_eq!(r.json()["data"]["refresh_token"], "BQD-access-1-refresh");

    let (code, out, _) = server.cli(&admin, &["keys", "rotate", "musicbot"]);
    assert_eq!(code, 0);
    assert!(out.contains("\"primary_version\": 2"), "{out}");
    let r = server.request("GET", path, Some(&app), None);
    assert_eq!(
        r.json()["data"]["access_token"],
        "BQD-access-1",
        "still readable after rotation"
    );

    let (code, out, _) = server.cli(&admin, &["keys", "rewrap", "musicbot"]);
    assert_eq!(code, 0);
    assert!(out.contains("\"remaining\": 0"), "{out}");
    let (code, out, err) = server.cli(&admin, &["keys", "retire", "musicbot", "--below", "2"]);
    assert_eq!(code, 0, "{out}{err}");
    let r = server.request("GET", path, Some(&app), None);
    assert_eq!(
        r.json()["data"]["access_token"],
        "BQD-access-1",
        "readable under the new key only"
    );

    // The app token cannot do operator things.
    let (code, _, err) = server.cli(&app, &["keys", "rotate", "musicbot"]);
    assert_eq!(code, 1);
    assert!(err.contains("forbidden"), "{err}");

    // CLI credential commands.
    let (code, out, err) = server.cli(
        &app,
        &[
            "cred",
            "put",
            "musicbot",
            "discord:42",
            "apikey",
            "--data",
            r#"{"type":"secret","data":{"key":"k-1"}}"#,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = server.cli(&app, &["cred", "get", "musicbot", "discord:42", "apikey"]);
    assert_eq!(code, 0);
    assert!(out.contains("k-1"));
    assert_eq!(
        server
            .cli(
                &app,
                &["cred", "exists", "musicbot", "discord:42", "apikey"]
            )
            .0,
        0
    );
    assert_eq!(
        server
            .cli(
                &app,
                &["cred", "exists", "musicbot", "discord:42", "nothing"]
            )
            .0,
        1
    );
    let (code, out, _) = server.cli(&app, &["users", "list", "musicbot"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("telegram:123456789") && out.contains("discord:42"),
        "{out}"
    );

    let (code, out, _) = server.cli(&admin, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"valid\": true"));
    let (code, out, _) = server.cli(&admin, &["audit", "query", "--action", "keys.rotate"]);
    assert_eq!(code, 0);
    assert!(out.contains("keys.rotate"));

    assert_eq!(server.stop(), Some(0), "graceful shutdown exits 0");

    // Restart: same data, no new admin token, everything still readable, reads were audited.
    let server = Server::start(&data, &[], &[]);
    assert!(
        server.admin.is_none(),
        "the admin token is printed only once"
    );
    let r = server.request("GET", path, Some(&app), None);
    assert_eq!(r.json()["data"]["access_token"], "BQD-access-1");
    let (code, out, _) = server.cli(
        &admin,
        &[
            "audit",
            "query",
            "--action",
            "credential.read",
            "--limit",
            "1000",
        ],
    );
    assert_eq!(code, 0);
    assert!(out.matches("\"credential.read\"").count() >= 4, "{out}");
}
