//! `strongroom import` through the binary into SQLite and PostgreSQL stores, from fixtures made
//! by Python's `cryptography` (Fernet, MultiFernet with an old key, a key derived with
//! PBKDF2HMAC as the Slack service's design does) in a SQLite source table, and from JSON
//! Lines: every value read back, bad rows reported by id and reason without their values,
//! `--dry-run` writing nothing, a second run skipping what exists.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{app_token, Db, Server};

on_both_databases!(
    an_apps_fernet_table_moves_in_with_counts,
    csv_and_postgres_sources_move_in_too,
    rows_become_records_and_events,
    a_killed_import_is_finished_by_running_it_again
);

const FIXTURES: &str = r#"
import base64, json, sqlite3, sys
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
path, k1, k2, k3 = sys.argv[1:5]
f1, f2, stranger = Fernet(k1), Fernet(k2), Fernet(k3)
kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=b"team-salt", iterations=1000)
slack = Fernet(base64.urlsafe_b64encode(kdf.derive(b"slack-password-1")))
db = sqlite3.connect(path)
db.execute("CREATE TABLE tokens (id INTEGER PRIMARY KEY, user_id TEXT, token TEXT)")
rows = [
    (1, "u1", f1.encrypt(b"xoxb-import-marker-1").decode()),
    (2, "u2", f2.encrypt(json.dumps({"access_token": "at-import-2", "refresh_token": "rt-import-2",
                                     "expires_at": 1900000000}).encode()).decode()),
    (3, "u3", "not-a-fernet-token"),
    (4, "u4", stranger.encrypt(b"under-a-key-we-lack").decode()),
]
db.executemany("INSERT INTO tokens VALUES (?, ?, ?)", rows)
db.execute("CREATE TABLE slack (team_id TEXT, bot_token TEXT)")
db.execute("INSERT INTO slack VALUES (?, ?)", ("T1", slack.encrypt(b"xoxb-derived-marker").decode()))
db.commit()
"#;

const K1: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
const K2: &str = "jtCkP1aC5vV8n2a6qE0b9m3z4yK7uQ1wX2sD5fG8hJk=";
const K3: &str = "Zm9vYmFyYmF6cXV1eGZvb2JhcmJhenF1dXhmb29iYXI=";

fn import(
    server: &Server,
    token: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, Value, String) {
    let out = Command::new(support::BIN)
        .arg("import")
        .args(args)
        .env("STRONGROOM_ADDR", &server.base)
        .env("STRONGROOM_TOKEN", token)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let (code, out, err) = support::outcome(out);
    let summary = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    (code, summary, out + &err)
}

fn counts(summary: &Value) -> [u64; 4] {
    ["read", "imported", "skipped_existing", "failed"].map(|k| summary[k].as_u64().unwrap())
}

fn credential(server: &Server, token: &str, user: &str, name: &str) -> support::Reply {
    server.request(
        "GET",
        &format!("/v1/ns/app/users/{user}/credentials/{name}"),
        Some(token),
        None,
    )
}

fn an_apps_fernet_table_moves_in_with_counts(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("app.db");
    let made = Command::new(support::python_with("cryptography"))
        .args(["-c", FIXTURES, source.to_str().unwrap(), K1, K2, K3])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let server = db.start(&dir.path().join("d"), &[]);
    let token = app_token(&server, "app", &["read", "write"]);
    let from = format!("sqlite:{}", source.display());
    let tokens = [
        "--from",
        from.as_str(),
        "--query",
        "SELECT id, user_id, token FROM tokens ORDER BY id",
        "--namespace",
        "app",
        "--user-column",
        "user_id",
        "--name",
        "slack",
        "--value-column",
        "token",
        "--id-column",
        "id",
        "--decode",
        "fernet",
        "--fernet-key-env",
        "NEW_KEY",
        "--fernet-key-env",
        "OLD_KEY",
    ];
    let keys = [("NEW_KEY", K1), ("OLD_KEY", K2)];

    // A dry run decodes everything and writes nothing.
    let mut dry = tokens.to_vec();
    dry.push("--dry-run");
    let (code, summary, _) = import(&server, &token, &dry, &keys);
    assert_eq!(counts(&summary), [4, 2, 0, 2], "{summary}");
    assert_ne!(code, 0, "failed rows make a non-zero exit");
    assert_eq!(credential(&server, &token, "u1", "slack").status, 404);

    let (_, summary, printed) = import(&server, &token, &tokens, &keys);
    assert_eq!(counts(&summary), [4, 2, 0, 2], "{summary}");
    let failures = summary["failures"].as_array().unwrap();
    assert_eq!(failures[0]["row"], "3");
    assert!(failures[0]["reason"]
        .as_str()
        .unwrap()
        .contains("not a Fernet token"));
    assert_eq!(failures[1]["row"], "4");
    assert!(failures[1]["reason"]
        .as_str()
        .unwrap()
        .contains("any of the given keys"));
    for value in [
        "not-a-fernet-token",
        "under-a-key-we-lack",
        "xoxb-import-marker-1",
    ] {
        assert!(!printed.contains(value), "a value reached the report");
    }
    let r = credential(&server, &token, "u1", "slack");
    assert!(r.body.contains("xoxb-import-marker-1"), "{}", r.body);
    let r = credential(&server, &token, "u2", "slack");
    assert_eq!(r.json()["data"]["type"], "oauth2", "{}", r.body);
    assert!(r.body.contains("at-import-2") && r.body.contains("rt-import-2"));

    // Again: what exists is skipped.
    let (_, summary, _) = import(&server, &token, &tokens, &keys);
    assert_eq!(counts(&summary), [4, 0, 2, 2], "{summary}");

    // A key derived from a password and salt (PBKDF2-HMAC-SHA256).
    let slack = [
        "--from",
        from.as_str(),
        "--query",
        "SELECT team_id, bot_token FROM slack",
        "--namespace",
        "app",
        "--user-column",
        "team_id",
        "--name",
        "slack-bot",
        "--value-column",
        "bot_token",
        "--decode",
        "fernet",
        "--fernet-password-env",
        "SLACK_PASSWORD",
        "--fernet-salt",
        "team-salt",
        "--fernet-iterations",
        "1000",
    ];
    let (code, summary, _) = import(
        &server,
        &token,
        &slack,
        &[("SLACK_PASSWORD", "slack-password-1")],
    );
    assert_eq!((code, counts(&summary)), (0, [1, 1, 0, 0]), "{summary}");
    assert!(credential(&server, &token, "T1", "slack-bot")
        .body
        .contains("xoxb-derived-marker"));

    // JSON Lines, plaintext, the name from a column; a line that is not an object is reported.
    let lines = dir.path().join("reddit.jsonl");
    write(
        &lines,
        "{\"user\":\"r1\",\"svc\":\"reddit\",\"tok\":\"{\\\"access_token\\\":\\\"at-r1\\\"}\"}\n[1]\n",
    );
    let from = format!("jsonl:{}", lines.display());
    let (_, summary, _) = import(
        &server,
        &token,
        &[
            "--from",
            &from,
            "--namespace",
            "app",
            "--user-column",
            "user",
            "--name-column",
            "svc",
            "--value-column",
            "tok",
        ],
        &[],
    );
    assert_eq!(counts(&summary), [2, 1, 0, 1], "{summary}");
    assert!(credential(&server, &token, "r1", "reddit")
        .body
        .contains("at-r1"));

    let logs = server.logs();
    for marker in [
        "xoxb-import-marker-1",
        "xoxb-derived-marker",
        "slack-password-1",
    ] {
        assert!(!logs.contains(marker), "{marker} reached the server log");
    }
    if db.is_postgres() {
        assert!(!support::holds(
            &db.dump(&dir.path().join("d")),
            "xoxb-import-marker-1"
        ));
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

const ONE_TOKEN: &str = r#"
import sys
from cryptography.fernet import Fernet
print(Fernet(sys.argv[1]).encrypt(sys.argv[2].encode()).decode())
"#;

/// CSV, and a PostgreSQL source table (a Fernet column made by `cryptography`, a `jsonb`
/// column holding a whole token set), each written in batches and read back.
fn csv_and_postgres_sources_move_in_too(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let server = db.start(&dir.path().join("d"), &[]);
    let token = app_token(&server, "app", &["read", "write"]);

    let csv = dir.path().join("tokens.csv");
    std::fs::write(
        &csv,
        "user_id,token,team\nc1,\"xoxb-csv,with-comma\",T1\nc2,xoxb-csv-2,T2\nc3,only-two\n",
    )
    .unwrap();
    let from = format!("csv:{}", csv.display());
    let args = [
        "--from",
        &from,
        "--namespace",
        "app",
        "--user-column",
        "user_id",
        "--name",
        "slack",
        "--value-column",
        "token",
    ];
    let (code, summary, printed) = import(&server, &token, &args, &[]);
    assert_eq!(counts(&summary), [3, 2, 0, 1], "{summary}");
    assert_ne!(code, 0);
    assert_eq!(summary["failures"][0]["row"], "3");
    assert!(summary["failures"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("2 fields"));
    assert!(!printed.contains("only-two"));
    let r = credential(&server, &token, "c1", "slack");
    assert_eq!(
        r.json()["data"]["data"]["value"],
        "xoxb-csv,with-comma",
        "{}",
        r.body
    );

    let Some(url) = support::postgres_url() else {
        return;
    };
    let schema = format!(
        "src_{}_{}",
        std::process::id(),
        hex::encode(strongroom_crypto::random::bytes::<4>().unwrap())
    );
    let fernet = Command::new(support::python_with("cryptography"))
        .args(["-c", ONE_TOKEN, K1, "xoxb-from-postgres"])
        .output()
        .unwrap();
    assert!(fernet.status.success());
    let fernet = String::from_utf8(fernet.stdout).unwrap().trim().to_string();
    let sql = format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.tokens (id int, user_id text, token text, creds jsonb); \
         INSERT INTO {schema}.tokens VALUES (1, 'p1', '{fernet}', \
         '{{\"access_token\": \"at-pg\", \"refresh_token\": \"rt-pg\", \"expires_at\": 1900000000}}');"
    );
    let out = Command::new("psql")
        .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-c", &sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let query = format!("SELECT id, user_id, token FROM {schema}.tokens");
    let args = [
        "--from",
        &url,
        "--query",
        &query,
        "--namespace",
        "app",
        "--user-column",
        "user_id",
        "--name",
        "slack",
        "--value-column",
        "token",
        "--id-column",
        "id",
        "--decode",
        "fernet",
        "--fernet-key-env",
        "NEW_KEY",
    ];
    let (code, summary, _) = import(&server, &token, &args, &[("NEW_KEY", K1)]);
    assert_eq!((code, counts(&summary)), (0, [1, 1, 0, 0]), "{summary}");
    let r = credential(&server, &token, "p1", "slack");
    assert_eq!(
        r.json()["data"]["data"]["value"],
        "xoxb-from-postgres",
        "{}",
        r.body
    );

    // A whole JSON column becomes the token set.
    let query = format!("SELECT user_id, creds FROM {schema}.tokens");
    let args = [
        "--from",
        &url,
        "--query",
        &query,
        "--namespace",
        "app",
        "--user-column",
        "user_id",
        "--name",
        "spotify",
        "--value-column",
        "creds",
    ];
    let (code, summary, _) = import(&server, &token, &args, &[]);
    assert_eq!((code, counts(&summary)), (0, [1, 1, 0, 0]), "{summary}");
    let r = credential(&server, &token, "p1", "spotify");
    assert_eq!(r.json()["data"]["type"], "oauth2", "{}", r.body);
    assert_eq!(r.json()["data"]["access_token"], "at-pg");
    let (_, summary, _) = import(&server, &token, &args, &[]);
    assert_eq!(counts(&summary), [1, 0, 1, 0], "again: skipped");
    let _ = Command::new("psql")
        .args([
            url.as_str(),
            "-q",
            "-c",
            &format!("DROP SCHEMA {schema} CASCADE"),
        ])
        .output();
}

/// A usage log into events and a settings table into records (both from JSON Lines): every
/// row read back; records already there are skipped on a second run.
fn rows_become_records_and_events(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let server = db.start(&dir.path().join("d"), &[]);
    let token = app_token(&server, "app", &["read", "write", "admin"]);
    let r = server.request(
        "PUT",
        "/v1/ns/app/collections/settings",
        Some(&token),
        Some(r#"{"scope": "user"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let settings = dir.path().join("settings.jsonl");
    std::fs::write(
        &settings,
        "{\"user\": \"s1\", \"key\": \"prefs\", \"doc\": {\"volume\": 80, \"lang\": \"de\"}}\n\
         {\"user\": \"s2\", \"key\": \"prefs\", \"doc\": {\"volume\": 10}}\n\
         {\"user\": \"s3\", \"key\": \"prefs\", \"doc\": \"not a document\"}\n",
    )
    .unwrap();
    let from = format!("jsonl:{}", settings.display());
    let args = [
        "--from",
        &from,
        "--namespace",
        "app",
        "--to",
        "records:settings",
        "--user-column",
        "user",
        "--key-column",
        "key",
        "--value-column",
        "doc",
    ];
    let (_, summary, _) = import(&server, &token, &args, &[]);
    assert_eq!(counts(&summary), [3, 2, 0, 1], "{summary}");
    assert!(summary["failures"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("JSON object"));
    let r = server.request(
        "GET",
        "/v1/ns/app/users/s1/records/settings/prefs",
        Some(&token),
        None,
    );
    assert_eq!(r.json()["document"]["volume"], 80, "{}", r.body);
    let (_, summary, _) = import(&server, &token, &args, &[]);
    assert_eq!(counts(&summary), [3, 0, 2, 1], "again: skipped");

    let log = dir.path().join("usage.jsonl");
    std::fs::write(
        &log,
        "{\"user\": \"e1\", \"kind\": \"command.play\", \"at\": 1764806400, \"details\": {\"track\": \"t1\"}}\n\
         {\"user\": \"e1\", \"kind\": \"command.skip\", \"at\": \"2025-12-04T00:00:01Z\", \"details\": {}}\n",
    )
    .unwrap();
    let from = format!("jsonl:{}", log.display());
    let args = [
        "--from",
        &from,
        "--namespace",
        "app",
        "--to",
        "events",
        "--user-column",
        "user",
        "--type-column",
        "kind",
        "--time-column",
        "at",
        "--value-column",
        "details",
    ];
    let (code, summary, _) = import(&server, &token, &args, &[]);
    assert_eq!((code, counts(&summary)), (0, [2, 2, 0, 0]), "{summary}");
    let r = server.request("GET", "/v1/ns/app/users/e1/events", Some(&token), None);
    let events = r.json()["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 2, "{}", r.body);
    let play = events.iter().find(|e| e["type"] == "command.play").unwrap();
    assert_eq!(play["details"]["track"], "t1");
    assert!(
        play["time"]
            .as_str()
            .unwrap()
            .starts_with("2025-12-04T00:00:00"),
        "{play}"
    );
}

/// An import killed midway (`kill -9` after its first batches) is finished by running it
/// again: nothing lost, nothing doubled, every row there once.
fn a_killed_import_is_finished_by_running_it_again(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let server = db.start(&dir.path().join("d"), &[]);
    let token = app_token(&server, "app", &["read", "write"]);
    let rows = 4_000;
    let source = dir.path().join("many.jsonl");
    let lines: String = (0..rows)
        .map(|i| format!("{{\"user\": \"k{i}\", \"token\": \"xoxb-kill-{i}\"}}\n"))
        .collect();
    std::fs::write(&source, lines).unwrap();
    let from = format!("jsonl:{}", source.display());
    let args = [
        "import",
        "--from",
        &from,
        "--namespace",
        "app",
        "--user-column",
        "user",
        "--name",
        "slack",
        "--value-column",
        "token",
    ];
    let mut child = Command::new(support::BIN)
        .args(args)
        .env("STRONGROOM_ADDR", &server.base)
        .env("STRONGROOM_TOKEN", &token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while credential(&server, &token, "k0", "slack").status != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the import wrote nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    let (code, summary, _) = import(&server, &token, &args[1..], &[]);
    assert_eq!(code, 0, "{summary}");
    let [read, imported, skipped, failed] = counts(&summary);
    assert_eq!((read, failed), (rows, 0), "{summary}");
    assert_eq!(imported + skipped, rows, "{summary}");
    assert!(skipped > 0, "the first run had written some: {summary}");
    for i in [0, 1, rows / 2, rows - 1] {
        let r = credential(&server, &token, &format!("k{i}"), "slack");
        assert_eq!(
            r.json()["data"]["data"]["value"],
            format!("xoxb-kill-{i}"),
            "{}",
            r.body
        );
        assert_eq!(r.json()["metadata"]["version"], 1, "written once");
    }
}
