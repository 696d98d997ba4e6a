//! Someone who can write the database but lacks the root key can neither escalate nor redirect
//! — through the real binary on SQLite and on PostgreSQL. Each test stops the server, edits
//! the database as such an attacker would, starts it again and sees the edit refused as
//! `integrity_error` instead of obeyed:
//! - a token row inserted with an admin policy, or a read-only token given an admin policy;
//! - a provider configuration edited or moved (where refresh tokens and client secrets go);
//! - collection settings, file policies and suspension policies edited or moved;
//! - a unique index row pointed at another record, an event's type hash copied from another;
//! - a credential's newest version deleted and its current-version pointer lowered (rollback).
//!
//! Rows written before row authentication are authenticated in place on the next start.

mod support;

use serde_json::json;
use support::{app_token, oauth_body, Db, Server};

on_both_databases!(
    forged_and_edited_token_rows_are_refused_and_audited,
    an_edited_or_moved_provider_is_never_obeyed,
    edited_collection_file_and_suspension_policies_are_refused,
    a_repointed_index_row_or_copied_event_type_is_an_integrity_error,
    a_lowered_or_stripped_version_pointer_is_an_integrity_error,
    rows_written_before_authentication_are_upgraded_in_place,
);

/// A secret an attacker chose, in the token format (43 base64url characters).
const CHOSEN_SECRET: &str = "AttackerChoseThisSecretXXXXXXXXXXXXXXXXXXXX";
const ADMIN_POLICY: &str = r#"{"namespaces":["*"],"capabilities":["admin"]}"#;

fn get(server: &Server, path: &str, token: &str) -> support::Reply {
    server.request("GET", path, Some(token), None)
}

fn put(server: &Server, path: &str, token: &str, body: &serde_json::Value) -> support::Reply {
    let r = server.request("PUT", path, Some(token), Some(&body.to_string()));
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r
}

fn forged_and_edited_token_rows_are_refused_and_audited(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = db.start(&data, &[]);
    let admin = server.admin().to_string();
    let reader = app_token(&server, "app", &["read"]);
    let writer = app_token(&server, "app", &["write"]);
    let cred = "/v1/ns/app/users/alice/credentials/c";
    let r = server.request("PUT", cred, Some(&writer), Some(&oauth_body("alice-token")));
    assert_eq!(r.status, 200, "{}", r.body);
    server.stop();

    // Two inserted tokens with a secret the attacker knows: one with an admin policy in the
    // clear, one with the bootstrap admin's (authentic) policy bytes; and the read-only
    // token given the admin's policy bytes.
    assert_eq!(CHOSEN_SECRET.len(), 43);
    // The stored digest of a secret is public (domain-separated SHA-256, pinned in
    // crypto/tests/format_vectors.rs): the attacker can make a matching row.
    let digest = strongroom_crypto::keyed_hash::sha256(&[
        b"strongroom/v1/api-token",
        CHOSEN_SECRET.as_bytes(),
    ]);
    let admin_policy = "(SELECT policy FROM tokens WHERE name = 'bootstrap-admin')";
    let reader_id = reader.split('_').nth(1).unwrap();
    db.tamper(
        &data,
        &format!(
            "INSERT INTO tokens (id, secret_hash, name, policy, created_at) VALUES \
             ('f0f0f0f0f0f0f0f0', {hash}, 'forged', {plain}, 1); \
             INSERT INTO tokens (id, secret_hash, name, policy, created_at) VALUES \
             ('f1f1f1f1f1f1f1f1', {hash}, 'forged', {admin_policy}, 1); \
             UPDATE tokens SET policy = {admin_policy} WHERE id = '{reader_id}';",
            hash = db.blob(&digest),
            plain = db.blob(ADMIN_POLICY.as_bytes()),
        ),
    );
    let server = db.start(&data, &[]);
    for forged in [
        format!("sr_f0f0f0f0f0f0f0f0_{CHOSEN_SECRET}"),
        format!("sr_f1f1f1f1f1f1f1f1_{CHOSEN_SECRET}"),
        reader.clone(),
    ] {
        for path in [cred, "/v1/sys/tokens", "/v1/ns/app/users/alice/export"] {
            let r = get(&server, path, &forged);
            assert_eq!(r.code(), "integrity_error", "{path}: {}", r.body);
            assert!(!r.body.contains("alice-token"));
        }
    }
    // Untouched tokens still work; listing fails closed until the forged rows are revoked
    // (revoking stores them authentic, revoked and without rights).
    let r = server.request("PUT", cred, Some(&writer), Some(&oauth_body("alice-2")));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        get(&server, "/v1/sys/tokens", &admin).code(),
        "integrity_error"
    );
    for id in ["f0f0f0f0f0f0f0f0", "f1f1f1f1f1f1f1f1", reader_id] {
        let r = server.request(
            "DELETE",
            &format!("/v1/sys/tokens/{id}"),
            Some(&admin),
            None,
        );
        assert!(r.status < 300, "{id}: {}", r.body);
    }
    let r = get(&server, "/v1/sys/tokens", &admin);
    assert_eq!(r.status, 200, "{}", r.body);
    let forged = format!("sr_f0f0f0f0f0f0f0f0_{CHOSEN_SECRET}");
    assert_eq!(get(&server, cred, &forged).code(), "unauthenticated");
    // Every refusal is in the audit log, under the token id that was presented.
    let (_, out, _) = server.cli(&admin, &["audit", "query", "--action", "auth"]);
    let entries: serde_json::Value = serde_json::from_str(&out).unwrap();
    for id in ["f0f0f0f0f0f0f0f0", "f1f1f1f1f1f1f1f1", reader_id] {
        let refused = entries["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["token_id"] == id && e["outcome"] == "integrity_error")
            .count();
        assert_eq!(refused, 3, "{id}: {out}");
    }
}

fn an_edited_or_moved_provider_is_never_obeyed(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = db.start(&data, &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "bot", &["read", "write"]);
    for (name, url) in [
        ("spotify", "http://127.0.0.1:9/spotify/token"),
        ("github", "http://127.0.0.1:9/github/token"),
    ] {
        let body = json!({"token_url": url, "client_id": "c", "client_secret": "PROVIDER-SECRET"});
        put(
            &server,
            &format!("/v1/ns/bot/providers/{name}"),
            &admin,
            &body,
        );
    }
    let cred = "/v1/ns/bot/users/alice/credentials/music";
    let r = server.request("PUT", cred, Some(&app), Some(&oauth_body("alice-token")));
    assert_eq!(r.status, 200, "{}", r.body);
    server.stop();

    // spotify gets github's (authentic) configuration; github is edited in the clear to send
    // refresh tokens elsewhere.
    let evil = json!({"token_url": "http://127.0.0.1:9/evil", "client_id": "c",
        "auth_method": "client_secret_post", "revocation_url": null,
        "refresh_margin_secs": 300, "extra_params": {}});
    db.tamper(
        &data,
        &format!(
            "UPDATE providers SET config = (SELECT config FROM providers WHERE name = 'github') \
             WHERE name = 'spotify'; \
             UPDATE providers SET config = {} WHERE name = 'github';",
            db.blob(evil.to_string().as_bytes())
        ),
    );
    let server = db.start(&data, &[]);
    let r = server.request(
        "POST",
        &format!("{cred}/access-token"),
        Some(&app),
        Some(r#"{"min_valid_secs": 86400}"#),
    );
    assert_eq!(r.code(), "integrity_error", "{}", r.body);
    assert_eq!(
        get(&server, "/v1/ns/bot/providers", &admin).code(),
        "integrity_error"
    );
    // Writing the provider again (an operator with the root key) makes it authentic again.
    let body = json!({"token_url": "http://127.0.0.1:9/spotify/token", "client_id": "c",
        "client_secret": "PROVIDER-SECRET"});
    put(&server, "/v1/ns/bot/providers/spotify", &admin, &body);
    put(&server, "/v1/ns/bot/providers/github", &admin, &body);
    assert_eq!(get(&server, "/v1/ns/bot/providers", &admin).status, 200);
}

fn edited_collection_file_and_suspension_policies_are_refused(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = db.start(&data, &[]);
    let admin = server.admin().to_string();
    app_token(&server, "app", &["read"]);
    app_token(&server, "other", &["read"]);
    for (ns, scope) in [("app", "user"), ("other", "namespace")] {
        let settings = json!({"scope": scope, "unique": ["email"]});
        put(
            &server,
            &format!("/v1/ns/{ns}/collections/profiles"),
            &admin,
            &settings,
        );
        let policy = json!({"max_file_size": 1000});
        put(
            &server,
            &format!("/v1/ns/{ns}/file-policy"),
            &admin,
            &policy,
        );
        let suspension = json!({"denials": 3, "window_secs": 60, "suspend_secs": 600});
        put(
            &server,
            &format!("/v1/ns/{ns}/security-policy"),
            &admin,
            &suspension,
        );
    }
    server.stop();

    // app's rows get other's (authentic) rows; other's are edited in the clear.
    let meta_value =
        |ns: &str| format!("(SELECT value FROM meta WHERE key = 'suspension-policy/{ns}')");
    db.tamper(
        &data,
        &format!(
            "UPDATE collections SET settings = (SELECT settings FROM collections WHERE namespace = 'other') \
             WHERE namespace = 'app'; \
             UPDATE collections SET settings = {collection} WHERE namespace = 'other'; \
             UPDATE file_policies SET policy = (SELECT policy FROM file_policies WHERE namespace = 'other') \
             WHERE namespace = 'app'; \
             UPDATE file_policies SET policy = {file_policy} WHERE namespace = 'other'; \
             UPDATE meta SET value = {other_suspension} WHERE key = 'suspension-policy/app'; \
             UPDATE meta SET value = {suspension} WHERE key = 'suspension-policy/other';",
            collection = db.blob(br#"{"scope":"user"}"#),
            file_policy = db.blob(b"{}"),
            other_suspension = meta_value("other"),
            suspension = db.blob(br#"{"denials":1000000,"window_secs":1,"suspend_secs":1}"#),
        ),
    );
    let server = db.start(&data, &[]);
    for ns in ["app", "other"] {
        for path in [
            format!("/v1/ns/{ns}/collections"),
            format!("/v1/ns/{ns}/collections/profiles/lookup?field=email&value=a"),
            format!("/v1/ns/{ns}/file-policy"),
            format!("/v1/ns/{ns}/security-policy"),
        ] {
            let r = get(&server, &path, &admin);
            assert_eq!(r.code(), "integrity_error", "{path}: {}", r.body);
        }
    }
}

fn a_repointed_index_row_or_copied_event_type_is_an_integrity_error(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = db.start(&data, &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write", "list"]);
    let accounts = json!({"scope": "namespace", "unique": ["email"]});
    put(
        &server,
        "/v1/ns/app/collections/accounts",
        &admin,
        &accounts,
    );
    for who in ["alice", "bob"] {
        let doc = json!({"document": {"email": format!("{who}@x.org")}});
        put(
            &server,
            &format!("/v1/ns/app/records/accounts/{who}"),
            &app,
            &doc,
        );
    }
    let events = json!({"events": [
        {"type": "login", "time": "2026-11-01T10:00:00Z", "details": {}},
        {"type": "play", "time": "2026-11-01T10:01:00Z", "details": {}},
    ]});
    let events_path = "/v1/ns/app/users/alice/events";
    let r = server.request("POST", events_path, Some(&app), Some(&events.to_string()));
    assert_eq!(r.status, 201, "{}", r.body);
    let lookup = "/v1/ns/app/collections/accounts/lookup?field=email&value=alice@x.org";
    assert_eq!(get(&server, lookup, &app).status, 200);
    assert_eq!(
        get(&server, &format!("{events_path}?type=login"), &app).json()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    server.stop();

    db.tamper(
        &data,
        // Records are stored under their keys' keyed hashes: swapping the two index rows'
        // keys points each user's email at the other's record.
        "UPDATE record_index SET key = CASE WHEN key = (SELECT min(key) FROM records) \
           THEN (SELECT max(key) FROM records) ELSE (SELECT min(key) FROM records) END; \
         UPDATE events SET type_hash = (SELECT type_hash FROM events WHERE time = (SELECT min(time) FROM events)) \
         WHERE time = (SELECT max(time) FROM events);",
    );
    let server = db.start(&data, &[]);
    let r = get(&server, lookup, &app);
    assert_eq!(r.code(), "integrity_error", "{}", r.body);
    assert!(!r.body.contains("bob@x.org"), "{}", r.body);
    let r = get(&server, &format!("{events_path}?type=login"), &app);
    assert_eq!(r.code(), "integrity_error", "{}", r.body);
    // Unfiltered reads are unaffected: the documents and events themselves are intact.
    assert_eq!(get(&server, events_path, &app).status, 200);
    assert_eq!(
        get(&server, "/v1/ns/app/records/accounts/bob", &app).status,
        200
    );
}

fn a_lowered_or_stripped_version_pointer_is_an_integrity_error(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = db.start(&data, &[]);
    let app = app_token(&server, "app", &["read", "write"]);
    let cred = |user: &str| format!("/v1/ns/app/users/{user}/credentials/key");
    for user in ["alice", "bob"] {
        for v in 1..=3 {
            let body =
                json!({"data": {"type": "secret", "data": {"api_key": format!("{user}-{v}")}}});
            put(&server, &cred(user), &app, &body);
        }
    }
    server.stop();

    // One user's newest version deleted and the pointer lowered to serve version 2 (a revoked
    // key rolled back); the other's pointer stripped.
    db.tamper(
        &data,
        "DELETE FROM credential_versions WHERE version = 3 AND user_hash = \
           (SELECT user_hash FROM credentials ORDER BY user_hash LIMIT 1); \
         UPDATE credentials SET current_version = 2 WHERE user_hash = \
           (SELECT user_hash FROM credentials ORDER BY user_hash LIMIT 1); \
         UPDATE credentials SET pointer_mac = NULL WHERE user_hash = \
           (SELECT user_hash FROM credentials ORDER BY user_hash DESC LIMIT 1);",
    );
    let server = db.start(&data, &[]);
    for user in ["alice", "bob"] {
        let r = get(&server, &cred(user), &app);
        assert_eq!(r.code(), "integrity_error", "{user}: {}", r.body);
        assert!(!r.body.contains(&format!("{user}-")), "{}", r.body);
        // A version asked for by number does not depend on the pointer.
        let r = get(&server, &format!("{}?version=1", cred(user)), &app);
        assert_eq!(r.status, 200, "{user}: {}", r.body);
        assert_eq!(r.json()["data"]["data"]["api_key"], format!("{user}-1"));
    }
}

fn rows_written_before_authentication_are_upgraded_in_place(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = db.start(&data, &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    let provider =
        json!({"token_url": "http://127.0.0.1:9/token", "client_id": "c", "client_secret": "s"});
    put(&server, "/v1/ns/app/providers/spotify", &admin, &provider);
    put(
        &server,
        "/v1/ns/app/collections/profiles",
        &admin,
        &json!({"scope": "user"}),
    );
    put(
        &server,
        "/v1/ns/app/file-policy",
        &admin,
        &json!({"max_file_size": 1000}),
    );
    let suspension = json!({"denials": 3, "window_secs": 60, "suspend_secs": 600});
    put(&server, "/v1/ns/app/security-policy", &admin, &suspension);
    let old = "/v1/ns/app/users/alice/credentials/old";
    let r = server.request("PUT", old, Some(&app), Some(&oauth_body("old")));
    assert_eq!(r.status, 200, "{}", r.body);
    server.stop();

    // Back to the legacy form (plain JSON, no MAC) and no upgrade mark: as a store written by
    // the previous release.
    const LEGACY: &str = "UPDATE tokens SET policy = substr(policy, 34); \
         UPDATE providers SET config = substr(config, 34); \
         UPDATE collections SET settings = substr(settings, 34); \
         UPDATE file_policies SET policy = substr(policy, 34); \
         UPDATE meta SET value = substr(value, 34) WHERE key LIKE 'suspension-policy/%';";
    db.tamper(
        &data,
        &format!(
            "{LEGACY} UPDATE credentials SET pointer_mac = NULL; \
             DELETE FROM meta WHERE key IN ('rows_authenticated', 'credential_pointers_authenticated');"
        ),
    );
    let mut server = db.start(&data, &[]);
    assert_eq!(get(&server, "/v1/sys/tokens", &admin).status, 200);
    assert_eq!(get(&server, old, &app).status, 200);
    let r = server.request(
        "PUT",
        "/v1/ns/app/users/alice/credentials/c",
        Some(&app),
        Some(&oauth_body("t")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for path in [
        "/v1/ns/app/providers",
        "/v1/ns/app/collections",
        "/v1/ns/app/file-policy",
        "/v1/ns/app/security-policy",
    ] {
        let r = get(&server, path, &admin);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    assert_eq!(
        get(&server, "/v1/ns/app/file-policy", &admin).json()["policy"]["max_file_size"],
        1000
    );
    server.stop();
    for column in [
        "SELECT policy FROM tokens",
        "SELECT config FROM providers",
        "SELECT settings FROM collections",
        "SELECT policy FROM file_policies",
        "SELECT value FROM meta WHERE key LIKE 'suspension-policy/%'",
        "SELECT pointer_mac FROM credentials",
    ] {
        let values = db.blobs(&data, column);
        assert!(!values.is_empty(), "{column}");
        assert!(
            values.iter().all(|v| v.first() == Some(&1)),
            "{column} not authenticated"
        );
    }

    // Once upgraded, a row in the legacy form is refused like any other edit.
    db.tamper(&data, LEGACY);
    let server = db.start(&data, &[]);
    let r = get(&server, "/v1/ns/app/users/alice/credentials/c", &app);
    assert_eq!(r.code(), "integrity_error", "{}", r.body);
}
