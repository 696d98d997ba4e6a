//! Values come back exactly as sent — key order, integers past 64 bits, `1.10` — through PUT,
//! GET, look-ups and export, on SQLite and PostgreSQL.

mod support;

use serde_json::json;
use support::{app_token, Db};

on_both_databases!(secrets_and_documents_round_trip_byte_for_byte);

const SENT: &str = r#"{"b":1,"a":18446744073709551617,"c":1.10}"#;

fn secrets_and_documents_round_trip_byte_for_byte(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let server = db.start(&dir.path().join("d"), &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write", "export"]);

    let cred = "/v1/ns/app/users/alice/credentials/k";
    let body = format!(r#"{{"data": {{"type": "secret", "data": {SENT}}}}}"#);
    let r = server.request("PUT", cred, Some(&app), Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = server.request("GET", cred, Some(&app), None);
    assert!(r.body.contains(SENT), "{}", r.body);

    // A record, and one in a collection with a default: the default comes after what was sent.
    let settings = json!({"scope": "user", "searchable": ["b"],
        "fields": {"dark": {"type": "boolean", "default": false}}});
    let r = server.request(
        "PUT",
        "/v1/ns/app/collections/prefs",
        Some(&admin),
        Some(&settings.to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let doc = "/v1/ns/app/users/alice/records/prefs/me";
    let r = server.request(
        "PUT",
        doc,
        Some(&app),
        Some(&format!(r#"{{"document": {SENT}}}"#)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let with_default = r#"{"b":1,"a":18446744073709551617,"c":1.10,"dark":false}"#;
    assert!(r.body.contains(with_default), "{}", r.body);
    let r = server.request("GET", doc, Some(&app), None);
    assert!(r.body.contains(with_default), "{}", r.body);
    let r = server.request(
        "GET",
        "/v1/ns/app/collections/prefs/lookup?field=b&value=1",
        Some(&app),
        None,
    );
    assert!(r.body.contains(with_default), "{}", r.body);

    let r = server.request("GET", "/v1/ns/app/users/alice/export", Some(&app), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(SENT), "secret in export: {}", r.body);
    assert!(
        r.body.contains(with_default),
        "document in export: {}",
        r.body
    );

    // Still only objects, and a clear error otherwise.
    let r = server.request(
        "PUT",
        cred,
        Some(&app),
        Some(r#"{"data": {"type": "secret", "data": [1]}}"#),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "invalid_json"),
        "{}",
        r.body
    );
    let r = server.request("PUT", doc, Some(&app), Some(r#"{"document": "x"}"#));
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "invalid_json"),
        "{}",
        r.body
    );
}
