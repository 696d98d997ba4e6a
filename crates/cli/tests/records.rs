//! Records through the real binary: typed settings with defaults, unique and searchable fields
//! looked up without plaintext in the database, check-and-set, bad input, a namespace-wide
//! cache with TTL, export and erasure — on SQLite and on PostgreSQL.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::Db;

on_both_databases!(profiles_settings_lookups_cache_export_erase);

/// The number a `SELECT COUNT(*)` answers in the server's database.
fn count(db: &Db, data: &std::path::Path, sql: &str) -> i64 {
    match db {
        Db::Sqlite => rusqlite::Connection::open(data.join("strongroom.db"))
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap(),
        Db::Postgres { .. } => db.psql(sql).trim().parse().unwrap(),
    }
}

fn profiles_settings_lookups_cache_export_erase(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let server = db.start(
        &data,
        &["--job-interval-secs", "1", "--lease-ttl-secs", "3"],
    );
    server.request(
        "POST",
        "/v1/sys/namespaces",
        Some(server.admin()),
        Some(r#"{"name":"study"}"#),
    );
    let body = r#"{"name":"study","namespaces":["study"],"capabilities":["read","write","delete","list","export","erase","admin"]}"#;
    let app = server
        .request("POST", "/v1/sys/tokens", Some(server.admin()), Some(body))
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();

    let profiles = json!({
        "scope": "user",
        "searchable": ["tier"],
        "unique": ["email"],
        "additional_fields": false,
        "fields": {
            "email": {"type": "string", "required": true, "pattern": "[^@]+@[^@]+"},
            "tier": {"type": "string"},
            "display_name": {"type": "string", "max_length": 20, "default": "anon"},
            "volume": {"type": "integer", "minimum": 0, "maximum": 100, "default": 50},
            "dark": {"type": "boolean", "default": false}
        }
    });
    let r = server.request(
        "PUT",
        "/v1/ns/study/collections/profiles",
        Some(&app),
        Some(&profiles.to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let cache = json!({"scope": "namespace", "ttl_secs": 1});
    let (code, out, err) = server.cli(
        &app,
        &[
            "records",
            "collection",
            "study",
            "cache",
            "--settings",
            &cache.to_string(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");

    let put = |user: &str, doc: serde_json::Value| {
        server.request(
            "PUT",
            &format!("/v1/ns/study/users/{user}/records/profiles/me"),
            Some(&app),
            Some(&json!({ "document": doc }).to_string()),
        )
    };
    assert_eq!(
        put(
            "alice",
            json!({"email": "alice@uni.example", "tier": "gold", "volume": 80})
        )
        .status,
        200
    );
    let r = server.request(
        "GET",
        "/v1/ns/study/users/alice/records/profiles/me",
        Some(&app),
        None,
    );
    let doc = r.json()["document"].clone();
    assert_eq!(
        (
            doc["display_name"].clone(),
            doc["volume"].clone(),
            doc["dark"].clone()
        ),
        (json!("anon"), json!(80), json!(false)),
        "defaults filled in"
    );

    // Unique and searchable fields.
    let r = put("bob", json!({"email": "alice@uni.example", "tier": "gold"}));
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "unique_violation"),
        "{}",
        r.body
    );
    assert_eq!(
        put("bob", json!({"email": "bob@uni.example", "tier": "gold"})).status,
        200
    );
    let r = server.request(
        "GET",
        "/v1/ns/study/collections/profiles/lookup?field=email&value=alice@uni.example",
        Some(&app),
        None,
    );
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["user"], "alice");
    let (code, out, _) = server.cli(
        &app,
        &[
            "records", "lookup", "study", "profiles", "--field", "tier", "--value", "gold",
        ],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("\"alice\"") && out.contains("\"bob\""),
        "{out}"
    );

    // Bad input, all named.
    let bad = [
        (
            json!({"email": "alice@uni.example", "volume": 101}),
            "volume",
        ),
        (
            json!({"email": "x@y", "display_name": "a name that is far too long"}),
            "display_name",
        ),
        (json!({"email": "no-at-sign"}), "email"),
        (json!({"email": "x@y", "dark": "yes"}), "dark"),
        (json!({"email": "x@y", "colour": "red"}), "colour"),
        (json!({"tier": "gold"}), "email"),
    ];
    for (doc, field) in bad {
        let r = put("carol", doc);
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "invalid_input"),
            "{}",
            r.body
        );
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field),
            "{}",
            r.body
        );
    }
    let r = server.request(
        "GET",
        "/v1/ns/study/collections/profiles/lookup?field=volume&value=80",
        Some(&app),
        None,
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"));
    assert!(r.body.contains("not declared searchable"), "{}", r.body);
    // A look-up in a collection that does not exist is a 404 (its settings come with the rows).
    let r = server.request(
        "GET",
        "/v1/ns/study/collections/nowhere/lookup?field=email&value=alice@uni.example",
        Some(&app),
        None,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let r = server.request(
        "PUT",
        "/v1/ns/study/collections/bad",
        Some(&app),
        Some(r#"{"scope":"user","ttl_secs":0}"#),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"));
    let r = server.request(
        "PUT",
        "/v1/ns/study/collections/profiles",
        Some(&app),
        Some(r#"{"scope":"namespace"}"#),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "immutable_setting"),
        "the scope cannot change"
    );
    let r = server.request(
        "PUT",
        "/v1/ns/study/collections/bad",
        Some(&app),
        Some(r#"{"scope":"user","fields":{"x":{"type":"string","pattern":"("}}}"#),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"));
    for (path, settings) in [
        ("/v1/ns/study/collections/Bad%20Name", r#"{"scope":"user"}"#),
        (
            "/v1/ns/study/collections/ok",
            r#"{"scope":"user","fields":{"1bad":{"type":"string"}}}"#,
        ),
        (
            "/v1/ns/study/collections/ok",
            r#"{"scope":"user","searchable":["has space"]}"#,
        ),
        (
            "/v1/ns/study/collections/ok",
            r#"{"scope":"user","fields":{"n":{"type":"integer","default":"x"}}}"#,
        ),
        (
            "/v1/ns/study/collections/ok",
            r#"{"scope":"user","ttl_secs":999999999999}"#,
        ),
    ] {
        let r = server.request("PUT", path, Some(&app), Some(settings));
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "invalid_input"),
            "{path} {settings}: {}",
            r.body
        );
    }
    for settings in [
        r#"{"scope":"galaxy"}"#,
        r#"{"scope":"user","fields":{"x":{"type":"date"}}}"#,
        r#"{"scope":"user","colour":1}"#,
    ] {
        let r = server.request(
            "PUT",
            "/v1/ns/study/collections/ok",
            Some(&app),
            Some(settings),
        );
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "invalid_json"),
            "{settings}: {}",
            r.body
        );
    }
    let deep = format!(
        r#"{{"document":{{"email":"d@e","x":{}1{}}}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    let r = server.request(
        "PUT",
        "/v1/ns/study/users/dave/records/profiles/me",
        Some(&app),
        Some(&deep),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "invalid_input"),
        "{}",
        r.body
    );
    let r = server.request(
        "PUT",
        "/v1/ns/study/users/dave/records/profiles/bad%20key",
        Some(&app),
        Some(r#"{"document":{"email":"d@e"}}"#),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "invalid_input"),
        "{}",
        r.body
    );
    let r = server.request(
        "PUT",
        "/v1/ns/study/users/alice/records/cache/k",
        Some(&app),
        Some(r#"{"document":{}}"#),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "invalid_input"),
        "namespace-wide collections are not per user"
    );
    let r = server.request(
        "PUT",
        "/v1/ns/study/users/alice/records/profiles/me",
        Some(&app),
        Some(r#"{"document":{"email":"a@b"},"if_version":0}"#),
    );
    assert_eq!((r.status, r.code().as_str()), (409, "version_conflict"));
    assert_eq!(
        server
            .request(
                "GET",
                "/v1/ns/study/users/alice/records/missing/me",
                Some(&app),
                None
            )
            .status,
        404
    );

    // No plaintext field value in the database.
    let dump = db.dump(&data);
    for needle in ["alice@uni.example", "bob@uni.example"] {
        assert!(
            !support::holds(&dump, needle),
            "{needle} is in the database"
        );
    }

    // A namespace-wide cache entry disappears when its TTL ends, and is then swept.
    let r = server.request(
        "PUT",
        "/v1/ns/study/records/cache/q-lofi",
        Some(&app),
        Some(r#"{"document":{"track":"spotify:track:1"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["expires_at"].is_string());
    assert_eq!(
        server
            .request("GET", "/v1/ns/study/records/cache/q-lofi", Some(&app), None)
            .status,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while server
        .request("GET", "/v1/ns/study/records/cache/q-lofi", Some(&app), None)
        .status
        != 404
    {
        assert!(Instant::now() < deadline, "the cache entry never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while count(
        &db,
        &data,
        "SELECT COUNT(*) FROM records WHERE collection = 'cache'",
    ) > 0
    {
        assert!(
            Instant::now() < deadline,
            "the expired entry was never swept"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let users = server
        .request("GET", "/v1/ns/study/users", Some(&app), None)
        .json();
    assert_eq!(
        users["items"].as_array().unwrap().len(),
        2,
        "the namespace's own owner is not a listed user: {users}"
    );

    // Export and erasure include records; erasure frees the unique value.
    let export = server
        .request("GET", "/v1/ns/study/users/alice/export", Some(&app), None)
        .json();
    assert_eq!(
        export["records"]["profiles"][0]["document"]["email"],
        "alice@uni.example"
    );
    let r = server.request(
        "DELETE",
        "/v1/ns/study/users/alice?confirm=alice",
        Some(&app),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        server
            .request(
                "GET",
                "/v1/ns/study/users/alice/records/profiles/me",
                Some(&app),
                None
            )
            .status,
        404
    );
    assert_eq!(
        put("carol", json!({"email": "alice@uni.example"})).status,
        200,
        "the erased user's unique value is free"
    );
}
