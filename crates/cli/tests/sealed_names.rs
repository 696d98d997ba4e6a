//! Names are sealed, through the real binary on SQLite and on PostgreSQL: credential names,
//! record keys (a cache keyed by what users searched for), event types and file names planted
//! as markers are served back to the app but appear in no file of the data directory, no
//! PostgreSQL dump, no log line and no audit entry; `audit query --name` finds the entries
//! about a name by its keyed hash; a store written before names were sealed is re-keyed in
//! place on start and serves everything as before.

mod support;

use serde_json::{json, Value};
use support::{app_token, holds, Db, Server};

on_both_databases!(
    planted_names_are_served_but_never_stored_logged_or_audited,
    a_store_from_before_sealed_names_is_rekeyed_on_start,
);

const USER: &str = "telegram:42";
const CRED: &str = "PLANTEDcredName7";
const RECORD_KEY: &str = "PLANTEDsearchKey9";
const CACHE_KEY: &str = "PLANTEDcacheQuery3";
const EVENT_TYPE: &str = "PLANTED.eventType5";
const FILE_NAME: &str = "PLANTED-fileName1.txt";

fn put(server: &Server, path: &str, token: &str, body: &Value) -> Value {
    let r = server.request("PUT", path, Some(token), Some(&body.to_string()));
    assert_eq!(r.status, 200, "PUT {path}: {}", r.body);
    r.json()
}

fn get(server: &Server, path: &str, token: &str) -> Value {
    let r = server.request("GET", path, Some(token), None);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

fn secret(value: &str) -> Value {
    json!({"data": {"type": "secret", "data": {"v": value}}})
}

fn planted_names_are_served_but_never_stored_logged_or_audited(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = db.start(&data, &["--log-format", "json"]);
    let admin = server.admin().to_string();
    let app = app_token(
        &server,
        "app",
        &["read", "write", "list", "delete", "export"],
    );
    let creds = format!("/v1/ns/app/users/{USER}/credentials");
    // A provider, so the credential also gets a refresh status (which keeps its own copy of
    // the name: it outlives a revoked credential).
    let provider = json!({"token_url": "https://provider.invalid/token", "client_id": "c",
                          "client_secret": "s"});
    put(&server, "/v1/ns/app/providers/prov", &admin, &provider);
    let token_set = json!({"data": {"type": "oauth2", "access_token": "at", "refresh_token": "rt",
                          "expires_at": "2099-01-01T00:00:00Z", "provider": "prov"}});
    put(&server, &format!("{creds}/{CRED}"), &app, &token_set);
    for i in 0..5 {
        put(&server, &format!("{creds}/other-{i}"), &app, &secret("x"));
    }
    // Pages of two walk every name exactly once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get(&server, &format!("{creds}?limit=2&cursor={cursor}"), &app);
        for item in page["items"].as_array().unwrap() {
            seen.push(item["name"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    seen.sort();
    let mut expected: Vec<String> = (0..5).map(|i| format!("other-{i}")).collect();
    expected.insert(0, CRED.to_string());
    assert_eq!(seen, expected);
    let statuses = get(&server, "/v1/ns/app/credential-status", &app);
    assert_eq!(statuses["items"][0]["name"], CRED, "{statuses}");

    // Records: a per-user collection and an app-wide cache keyed by the search text.
    put(
        &server,
        "/v1/ns/app/collections/notes",
        &admin,
        &json!({"scope": "user", "unique": ["email"]}),
    );
    put(
        &server,
        "/v1/ns/app/collections/cache",
        &admin,
        &json!({"scope": "namespace"}),
    );
    let note = format!("/v1/ns/app/users/{USER}/records/notes/{RECORD_KEY}");
    put(
        &server,
        &note,
        &app,
        &json!({"document": {"email": "a@x.org"}}),
    );
    put(
        &server,
        &format!("/v1/ns/app/records/cache/{CACHE_KEY}"),
        &app,
        &json!({"document": {"hits": 3}}),
    );
    assert_eq!(get(&server, &note, &app)["key"], RECORD_KEY);
    let listed = get(&server, "/v1/ns/app/records/cache", &app);
    assert_eq!(listed["items"][0]["key"], CACHE_KEY);
    let found = get(
        &server,
        "/v1/ns/app/collections/notes/lookup?field=email&value=a@x.org",
        &app,
    );
    assert_eq!(found["items"][0]["key"], RECORD_KEY);

    // An event type and a file name.
    let events = format!("/v1/ns/app/users/{USER}/events");
    let body = json!({"events": [{"type": EVENT_TYPE, "details": {}}]}).to_string();
    assert_eq!(
        server
            .request("POST", &events, Some(&app), Some(&body))
            .status,
        201
    );
    let typed = get(&server, &format!("{events}?type={EVENT_TYPE}"), &app);
    assert_eq!(typed["items"][0]["type"], EVENT_TYPE);
    let upload = format!("/v1/ns/app/users/{USER}/files?name={FILE_NAME}");
    let r = server.request("POST", &upload, Some(&app), Some("file body"));
    assert_eq!(r.status, 201, "{}", r.body);

    // The export gives every name back.
    let export = server
        .request(
            "GET",
            &format!("/v1/ns/app/users/{USER}/export"),
            Some(&app),
            None,
        )
        .body;
    for name in [CRED, RECORD_KEY, EVENT_TYPE, FILE_NAME] {
        assert!(export.contains(name), "the export lists {name}");
    }

    // The audit log finds the entries about a name by its keyed hash, and holds no name.
    let (code, about, err) = server.cli(
        &admin,
        &["audit", "query", "--name", CRED, "--limit", "1000"],
    );
    assert_eq!(code, 0, "{err}");
    let about: Value = serde_json::from_str(&about).unwrap();
    let actions: Vec<&str> = about["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"credential.put"), "{actions:?}");
    let target = about["items"][0]["target"].as_str().unwrap();
    assert!(
        target.starts_with('~') && !target.contains(CRED),
        "{target}"
    );
    let by_type = get(
        &server,
        &format!("/v1/sys/audit?name={EVENT_TYPE}&action=event.query"),
        &admin,
    );
    assert_eq!(by_type["items"].as_array().unwrap().len(), 1, "{by_type}");
    let (_, audit, _) = server.cli(&admin, &["audit", "query", "--limit", "1000"]);
    server.stop();

    let logs = server.logs();
    assert!(logs.contains("strongroom serving"), "logs were captured");
    let mut stored = db.dump(&data);
    for entry in walk(&data) {
        stored.extend(std::fs::read(entry).unwrap());
    }
    for name in [CRED, RECORD_KEY, CACHE_KEY, EVENT_TYPE, FILE_NAME] {
        assert!(!holds(&stored, name), "{name} is stored in the clear");
        assert!(!logs.contains(name), "{name} reached the logs");
        assert!(!audit.contains(name), "{name} is in an audit entry");
    }
}

/// Every file under `dir`, the files folder included.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

const LEGACY_CRED: &str = "LEGACYcredName";
const LEGACY_KEY: &str = "LEGACYrecordKey";

fn a_store_from_before_sealed_names_is_rekeyed_on_start(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = db.start(&data, &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write", "list"]);
    let cred = format!("/v1/ns/app/users/{USER}/credentials/{LEGACY_CRED}");
    put(&server, &cred, &app, &secret("one"));
    put(&server, &cred, &app, &secret("two"));
    put(
        &server,
        "/v1/ns/app/collections/notes",
        &admin,
        &json!({"scope": "user", "unique": ["email"]}),
    );
    let note = format!("/v1/ns/app/users/{USER}/records/notes/{LEGACY_KEY}");
    put(
        &server,
        &note,
        &app,
        &json!({"document": {"email": "b@x.org"}}),
    );
    server.stop();

    // Put the rows back the way a store from before sealed names kept them: plain names, no
    // sealed copies, and (older still) no authenticated version pointer.
    db.tamper(
        &data,
        &format!(
            "UPDATE credentials SET name = '{LEGACY_CRED}', sealed_name = NULL, pointer_mac = NULL; \
             UPDATE credential_versions SET name = '{LEGACY_CRED}'; \
             UPDATE records SET key = '{LEGACY_KEY}', sealed_key = NULL; \
             UPDATE record_index SET key = '{LEGACY_KEY}'; \
             DELETE FROM meta WHERE key IN ('names_sealed', 'credential_pointers_authenticated');"
        ),
    );
    assert!(
        holds(&db.dump(&data), LEGACY_CRED),
        "the legacy form holds plain names"
    );

    let mut server = db.start(&data, &[]);
    server.admin = Some(admin.clone());
    assert!(
        server
            .logs()
            .contains("sealed the names of credentials and records"),
        "{}",
        server.logs()
    );
    let read = get(&server, &cred, &app);
    assert_eq!(read["data"]["data"]["v"], "two", "{read}");
    assert_eq!(read["metadata"]["version"], 2);
    let history = get(&server, &format!("{cred}/metadata"), &app);
    assert_eq!(history["versions"].as_array().unwrap().len(), 2);
    let listed = get(
        &server,
        &format!("/v1/ns/app/users/{USER}/credentials"),
        &app,
    );
    assert_eq!(listed["items"][0]["name"], LEGACY_CRED);
    assert_eq!(get(&server, &note, &app)["document"]["email"], "b@x.org");
    let found = get(
        &server,
        "/v1/ns/app/collections/notes/lookup?field=email&value=b@x.org",
        &app,
    );
    assert_eq!(found["items"][0]["key"], LEGACY_KEY);
    // The unique value still belongs to the migrated record.
    let clash = server.request(
        "PUT",
        &format!("/v1/ns/app/users/{USER}/records/notes/another"),
        Some(&app),
        Some(&json!({"document": {"email": "b@x.org"}}).to_string()),
    );
    assert_eq!(clash.status, 409, "{}", clash.body);
    // Writing after the upgrade continues the history.
    put(&server, &cred, &app, &secret("three"));
    assert_eq!(get(&server, &cred, &app)["metadata"]["version"], 3);
    server.stop();
    let stored = db.dump(&data);
    for name in [LEGACY_CRED, LEGACY_KEY] {
        assert!(!holds(&stored, name), "{name} is still stored in the clear");
    }

    // A second start has nothing left to do.
    let server = db.start(&data, &[]);
    assert_eq!(
        server.logs().matches("sealed the names").count(),
        1,
        "only the first start upgraded (the log file is shared by the starts)"
    );
    assert_eq!(get(&server, &cred, &app)["data"]["data"]["v"], "three");
}
