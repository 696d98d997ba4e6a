//! Secrets never leak; tampering is detected; the wrong root key is refused — all through the
//! real binary and the real SQLite file.

mod support;

use support::{app_token, holds, oauth_body, Db, Server, BIN};

const SECRET: &str = "PLANTED-s3cr3t-7f3a9c";
/// Shaped like an identifier (as many API keys are), which a naive "keep field names" echo
/// would let through.
const KEYLIKE: &str = "sk_live_PLANTED4242";
const USER: &str = "telegram:555000111";

fn all_bytes_of(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            out.extend(std::fs::read(path).unwrap());
        }
    }
    out
}

on_both_databases!(a_planted_secret_appears_in_no_log_error_or_database_byte);

fn a_planted_secret_appears_in_no_log_error_or_database_byte(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = db.start(&data, &["--log-format", "json"]);
    let app = app_token(&server, "app", &["read", "write", "list", "delete"]);
    let reader = app_token(&server, "other", &["read"]);
    let path = format!("/v1/ns/app/users/{USER}/credentials/spotify");
    let mut error_bodies = String::new();

    assert_eq!(
        server
            .request("PUT", &path, Some(&app), Some(&oauth_body(SECRET)))
            .status,
        200
    );
    assert_eq!(
        server.request("GET", &path, Some(&app), None).json()["data"]["access_token"],
        SECRET
    );
    // Error paths that carry the secret in the request.
    let attempts = [
        (
            "PUT",
            path.clone(),
            Some(app.as_str()),
            format!(r#"{{"data":{{"type":"oauth2","access_token":"{SECRET}","bogus":1}}}}"#),
        ),
        (
            "PUT",
            path.clone(),
            Some(app.as_str()),
            format!(
                r#"{{"data":{{"type":"oauth2","access_token":"x"}},"options":{{"cas":"{SECRET}"}}}}"#
            ),
        ),
        (
            "PUT",
            path.clone(),
            Some(app.as_str()),
            format!(r#"{{"data":{{"type":"{SECRET}"}}}}"#),
        ),
        (
            "PUT",
            path.clone(),
            Some(app.as_str()),
            format!(
                r#"{{"data":{{"type":"oauth2","access_token":"{SECRET}","expires_at":"{SECRET}"}}}}"#
            ),
        ),
        (
            "PUT",
            path.clone(),
            Some(reader.as_str()),
            oauth_body(SECRET),
        ),
        (
            "PUT",
            format!("/v1/ns/app/users/{SECRET}%2F/credentials/x"),
            Some(app.as_str()),
            oauth_body(SECRET),
        ),
        ("PUT", path.clone(), Some(SECRET), oauth_body(SECRET)),
        (
            "PUT",
            path.clone(),
            Some(app.as_str()),
            format!(
                r#"{{"data":{{"type":"oauth2","access_token":"{SECRET}"}},"options":{{"cas":0}}}}"#
            ),
        ),
        (
            "GET",
            format!("{path}?version={SECRET}"),
            Some(app.as_str()),
            String::new(),
        ),
        (
            "PUT",
            path.clone(),
            Some(app.as_str()),
            format!(r#"{{"data":{{"type":"{KEYLIKE}"}}}}"#),
        ),
        (
            "PUT",
            path.clone(),
            Some(app.as_str()),
            format!(r#"{{"data":{{"type":"oauth2","access_token":"x","{KEYLIKE}":1}}}}"#),
        ),
        (
            "GET",
            format!("{path}?{KEYLIKE}=1"),
            Some(app.as_str()),
            String::new(),
        ),
    ];
    for (method, p, token, body) in &attempts {
        let body = (!body.is_empty()).then_some(body.as_str());
        let r = server.request(method, p, *token, body);
        assert!(r.status >= 400, "{method} {p} should fail");
        error_bodies.push_str(&r.body);
    }
    // Records and events carry the secret too.
    let notes = r#"{"scope":"user","searchable":["code"]}"#;
    server.request(
        "PUT",
        "/v1/ns/app/collections/notes",
        Some(server.admin()),
        Some(notes),
    );
    let doc = format!(r#"{{"document":{{"code":"{SECRET}","n":1}}}}"#);
    let note_path = format!("/v1/ns/app/users/{USER}/records/notes/n1");
    assert_eq!(
        server
            .request("PUT", &note_path, Some(&app), Some(&doc))
            .status,
        200
    );
    let lookup = format!("/v1/ns/app/collections/notes/lookup?field=code&value={SECRET}");
    assert_eq!(
        server.request("GET", &lookup, Some(&app), None).json()["items"][0]["document"]["code"],
        SECRET
    );
    let events_path = format!("/v1/ns/app/users/{USER}/events");
    let ev = format!(r#"{{"events":[{{"type":"login","details":{{"token":"{SECRET}"}}}}]}}"#);
    assert_eq!(
        server
            .request("POST", &events_path, Some(&app), Some(&ev))
            .status,
        201
    );
    let bad_ev =
        format!(r#"{{"events":[{{"type":"{SECRET} x","details":{{"token":"{SECRET}"}}}}]}}"#);
    error_bodies.push_str(
        &server
            .request("POST", &events_path, Some(&app), Some(&bad_ev))
            .body,
    );
    let bad_doc = format!(r#"{{"document":{{"code":"{SECRET}"}},"if_version":"{SECRET}"}}"#);
    error_bodies.push_str(
        &server
            .request("PUT", &note_path, Some(&app), Some(&bad_doc))
            .body,
    );
    let (_, out, err) = server.cli(
        &app,
        &[
            "cred",
            "put",
            "app",
            USER,
            "spotify",
            "--data",
            &format!(r#"{{"type":"oauth2","access_token":"{SECRET}","zzz":1}}"#),
        ],
    );
    error_bodies.push_str(&out);
    error_bodies.push_str(&err);
    let (_, audit, _) = server.cli(server.admin(), &["audit", "query", "--limit", "1000"]);
    server.stop();

    assert!(
        !error_bodies.contains(SECRET) && !error_bodies.contains(KEYLIKE),
        "an error body echoed the secret: {error_bodies}"
    );
    let logs = server.logs();
    assert!(logs.contains("strongroom serving"), "logs were captured");
    assert!(!logs.contains(SECRET), "the secret reached the logs");
    assert!(!logs.contains(USER), "a raw user id reached the logs");
    assert!(
        !audit.contains(SECRET) && !audit.contains(USER),
        "audit entries hold no secret or raw user id"
    );
    // The database (data and audit log: the SQLite files, or the PostgreSQL rows) and the
    // data directory.
    let mut stored = db.dump(&data);
    stored.extend(all_bytes_of(&data));
    for needle in [SECRET, &format!("{SECRET}-refresh"), USER] {
        assert!(!holds(&stored, needle), "{needle} is stored in plaintext");
    }
}

#[test]
fn tampered_or_moved_ciphertext_is_an_integrity_error_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = Server::start(&data, &[], &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    for user in ["alice", "mallory"] {
        let r = server.request(
            "PUT",
            &format!("/v1/ns/app/users/{user}/credentials/c"),
            Some(&app),
            Some(&oauth_body(&format!("{user}-token"))),
        );
        assert_eq!(r.status, 200);
    }
    server.request(
        "PUT",
        "/v1/ns/app/users/alice/credentials/d",
        Some(&app),
        Some(&oauth_body("alice-d")),
    );
    server.stop();

    let db = data.join("strongroom.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: Vec<(Vec<u8>, String, Vec<u8>)> = conn
        .prepare(
            "SELECT user_hash, name, ciphertext FROM credential_versions ORDER BY name, user_hash",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // Rows are stored under the name's keyed hash: 'c' is the id both users have.
    let c = rows
        .iter()
        .find(|r| rows.iter().filter(|o| o.1 == r.1).count() == 2)
        .unwrap()
        .1
        .clone();
    let alice_d = rows.iter().find(|r| r.1 != c).unwrap();
    let c_rows: Vec<_> = rows.iter().filter(|r| r.1 == c).collect();
    // Move mallory's and alice's 'c' ciphertexts onto each other; put alice's 'd' onto... 'd' flipped.
    conn.execute(
        "UPDATE credential_versions SET ciphertext = ?1 WHERE user_hash = ?2 AND name = ?3",
        rusqlite::params![c_rows[1].2, c_rows[0].0, c],
    )
    .unwrap();
    conn.execute(
        "UPDATE credential_versions SET ciphertext = ?1 WHERE user_hash = ?2 AND name = ?3",
        rusqlite::params![c_rows[0].2, c_rows[1].0, c],
    )
    .unwrap();
    let mut flipped = alice_d.2.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    conn.execute(
        "UPDATE credential_versions SET ciphertext = ?1 WHERE name = ?2",
        rusqlite::params![flipped, alice_d.1],
    )
    .unwrap();
    drop(conn);

    let server = Server::start(&data, &[], &[]);
    for (user, name) in [("alice", "c"), ("mallory", "c"), ("alice", "d")] {
        let r = server.request(
            "GET",
            &format!("/v1/ns/app/users/{user}/credentials/{name}"),
            Some(&app),
            None,
        );
        assert_eq!(r.code(), "integrity_error", "{user}/{name}: {}", r.body);
        assert!(
            !r.body.contains("-token") && !r.body.contains("alice-d"),
            "no plaintext in the error"
        );
    }
    let (_, out, _) = server.cli(&admin, &["audit", "query", "--action", "credential.read"]);
    assert_eq!(out.matches("integrity_error").count(), 3, "{out}");
}

#[test]
fn audit_verify_detects_an_edited_or_removed_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = Server::start(&data, &[], &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    for i in 0..5 {
        server.request(
            "PUT",
            "/v1/ns/app/users/u/credentials/c",
            Some(&app),
            Some(&oauth_body(&format!("t{i}"))),
        );
    }
    assert_eq!(server.cli(&admin, &["audit", "verify"]).0, 0);
    server.stop();
    let conn = rusqlite::Connection::open(data.join("strongroom.audit.db")).unwrap();
    conn.execute("UPDATE audit SET outcome = 'denied' WHERE seq = 4", [])
        .unwrap();
    drop(conn);
    let mut server = Server::start(&data, &[], &[]);
    let (code, out, _) = server.cli(&admin, &["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("\"first_bad_seq\": 4"), "{out}");
    server.stop();
    let conn = rusqlite::Connection::open(data.join("strongroom.audit.db")).unwrap();
    conn.execute("UPDATE audit SET outcome = 'ok' WHERE seq = 4", [])
        .unwrap();
    conn.execute("DELETE FROM audit WHERE seq = 6", []).unwrap();
    drop(conn);
    let server = Server::start(&data, &[], &[]);
    let (code, out, _) = server.cli(&admin, &["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("\"first_bad_seq\": 6") && out.contains("missing"),
        "{out}"
    );
}

#[test]
fn wrong_root_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = Server::start(&data, &[], &[]);
    let app = app_token(&server, "app", &["read", "write"]);
    server.request(
        "PUT",
        "/v1/ns/app/users/u/credentials/c",
        Some(&app),
        Some(&oauth_body("x")),
    );
    server.stop();

    let other = String::from_utf8(
        std::process::Command::new(BIN)
            .arg("keygen")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let err = Server::try_start(&data, &[], &[("STRONGROOM_ROOT_KEY", other.trim())])
        .err()
        .expect("must refuse");
    assert!(err.contains("root key does not match"), "{err}");

    // A key file readable by others is refused too.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        data.join("root.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = Server::try_start(&data, &[], &[])
        .err()
        .expect("must refuse");
    assert!(err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(
        data.join("root.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();

    // A missing key file for an existing store is refused rather than replaced.
    std::fs::rename(data.join("root.key"), dir.path().join("saved.key")).unwrap();
    let err = Server::try_start(&data, &[], &[])
        .err()
        .expect("must refuse");
    assert!(err.contains("is missing"), "{err}");

    // The right key from the environment works.
    let text = std::fs::read_to_string(dir.path().join("saved.key")).unwrap();
    let server = Server::start(&data, &[], &[("STRONGROOM_ROOT_KEY", text.trim())]);
    assert_eq!(
        server
            .request("GET", "/v1/ns/app/users/u/credentials/c", Some(&app), None)
            .json()["data"]["access_token"],
        "x"
    );
}
