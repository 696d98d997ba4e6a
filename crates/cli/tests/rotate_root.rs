//! `strongroom keys rotate-root` through the binary, on SQLite and PostgreSQL: a running node
//! is sealed by the rotation; afterwards the old key opens nothing (neither a start nor an
//! unseal), the new key opens everything (credentials, tokens — re-authenticated rows —, the
//! audit log, which verifies across the change); a rotation killed half-way is finished by
//! running it again with the old key, and until then no node unseals; a passphrase store
//! keeps its passphrase.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::kms::{aws_env, moto, new_kms_key, start_with_aws};
use support::{app_token, app_token_with, oauth_body, Db, Server};

on_both_databases!(
    rotating_the_root_key_retires_the_old_one,
    an_interrupted_rotation_is_finished_by_running_it_again,
    a_passphrase_store_keeps_its_passphrase_across_a_rotation,
    shares_keep_working_across_a_rotation,
    kms_keeps_working_across_a_rotation
);

const CRED: &str = "/v1/ns/app/users/u1/credentials/spotify";
const PASSPHRASE: &str = "rotation passphrase 5e1b";

fn rotate(db: &Db, data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(support::BIN);
    cmd.args(["keys", "rotate-root", "--data-dir", data.to_str().unwrap()])
        .args(db.flags())
        .args(args)
        .env_remove("STRONGROOM_ROOT_KEY")
        .stdin(Stdio::null());
    cmd
}

fn run(mut cmd: Command) -> (i32, String, String) {
    support::outcome(cmd.output().unwrap())
}

/// The current key file of `db`'s store (PostgreSQL tests keep theirs in the environment).
fn current_key(db: &Db, dir: &Path, data: &Path) -> String {
    match db {
        Db::Sqlite => data.join("root.key").to_str().unwrap().to_string(),
        Db::Postgres { root_key, .. } => support::owner_only_file(&dir.join("pg.key"), root_key)
            .to_str()
            .unwrap()
            .to_string(),
    }
}

fn start_with_key(db: &Db, data: &Path, key: &str) -> Result<Server, String> {
    let mut flags = db.flags();
    flags.extend(["--root-key-file".to_string(), key.to_string()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::try_start(data, &flags, &[])
}

fn seal_status(server: &Server) -> Value {
    server
        .request("GET", "/v1/sys/seal-status", None, None)
        .json()
}

fn unseal_with(server: &Server, key_file: &str) -> support::Reply {
    let key = std::fs::read_to_string(key_file).unwrap();
    let body = json!({"key": key.trim()}).to_string();
    server.request("POST", "/v1/sys/unseal", None, Some(&body))
}

/// A store with one credential and an app token; the server is left running.
fn populated(db: &Db, data: &Path) -> (Server, String, String) {
    let server = db.start(data, &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&oauth_body("at-rotate-1")))
            .status,
        200
    );
    (server, admin, app)
}

fn reads_back(server: &Server, app: &str) {
    let r = server.request("GET", CRED, Some(app), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("at-rotate-1"));
}

fn audit_verifies_across_the_rotation(server: &Server, admin: &str) {
    let verify = server
        .request("POST", "/v1/sys/audit/verify", Some(admin), None)
        .json();
    assert_eq!(verify["valid"], true, "{verify}");
    let audit = server
        .request(
            "GET",
            "/v1/sys/audit?action=keys.rotate_root&limit=100",
            Some(admin),
            None,
        )
        .json();
    let steps: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["target"].as_str())
        .collect();
    assert!(
        steps.ends_with(&["started", "rewrapped", "completed"]),
        "{steps:?}"
    );
}

fn rotating_the_root_key_retires_the_old_one(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let (server, admin, app) = populated(&db, &data);
    let old_key = current_key(&db, dir.path(), &data);
    let new_key = dir.path().join("new.key");
    let new_key = new_key.to_str().unwrap();

    // A wrong current key changes nothing (and writes no new key file).
    let wrong = support::owner_only_file(&dir.path().join("w.key"), &support::shared_root_key());
    let (code, _, err) = run(rotate(
        &db,
        &data,
        &[
            "--root-key-file",
            wrong.to_str().unwrap(),
            "--new-root-key-file",
            dir.path().join("unused.key").to_str().unwrap(),
        ],
    ));
    assert_ne!(code, 0);
    assert!(err.contains("key check failed"), "{err}");
    reads_back(&server, &app);

    let (code, out, err) = run(rotate(
        &db,
        &data,
        &["--root-key-file", &old_key, "--new-root-key-file", new_key],
    ));
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["resumed"], false);
    assert_eq!(report["namespaces_rewrapped"], 1, "{report}");
    assert!(
        report["rows_reauthenticated"].as_u64().unwrap() >= 2,
        "{report}"
    );
    assert_eq!(report["pointers_reauthenticated"], 1, "{report}");
    assert_eq!(report["refused"], 0, "{report}");

    // The running node was sealed; the old key no longer unseals it; the new one does.
    assert_eq!(seal_status(&server)["sealed"], true);
    let r = unseal_with(&server, &old_key);
    assert_eq!(r.code(), "wrong_root_key", "{}", r.body);
    let r = unseal_with(&server, new_key);
    assert_eq!(r.status, 200, "{}", r.body);
    reads_back(&server, &app);
    audit_verifies_across_the_rotation(&server, &admin);
    drop(server);

    // A restart: the old key is refused, the new one serves, new entries chain on.
    let err = start_with_key(&db, &data, &old_key)
        .err()
        .expect("the old key opens nothing");
    assert!(err.contains("key check failed"), "{err}");
    let server = start_with_key(&db, &data, new_key).unwrap();
    reads_back(&server, &app);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&oauth_body("at-rotate-2")))
            .status,
        200
    );
    audit_verifies_across_the_rotation(&server, &admin);
}

fn an_interrupted_rotation_is_finished_by_running_it_again(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let (server, admin, app) = populated(&db, &data);
    drop(server);
    let old_key = current_key(&db, dir.path(), &data);
    let new_key = dir.path().join("new.key");
    let new_key = new_key.to_str().unwrap();

    // Killed while it waits for the cluster to seal: the record exists, nothing else moved.
    let mut child = rotate(
        &db,
        &data,
        &["--root-key-file", &old_key, "--new-root-key-file", new_key],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while db
        .blobs(&data, "SELECT value FROM meta WHERE key = 'root_rotation'")
        .first()
        .is_none_or(|v| v.is_empty())
    {
        assert!(Instant::now() < deadline, "the rotation never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // No node unseals meanwhile, not even with the old key: a start either fails, or (the
    // rotation had sealed the cluster) serves sealed and refuses the unseal.
    match start_with_key(&db, &data, &old_key) {
        Err(err) => assert!(err.contains("rotation is unfinished"), "{err}"),
        Ok(server) => {
            assert_eq!(seal_status(&server)["sealed"], true);
            let r = unseal_with(&server, &old_key);
            assert_eq!(r.status, 409, "{}", r.body);
            assert!(r.body.contains("rotation is unfinished"), "{}", r.body);
        }
    }

    // Run again with the old key: it resumes with the key it had chosen.
    let (code, out, err) = run(rotate(
        &db,
        &data,
        &["--root-key-file", &old_key, "--new-root-key-file", new_key],
    ));
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["resumed"], true, "{report}");
    let server = start_with_key(&db, &data, new_key).unwrap();
    reads_back(&server, &app);
    audit_verifies_across_the_rotation(&server, &admin);
}

fn a_passphrase_store_keeps_its_passphrase_across_a_rotation(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let pass = support::owner_only_file(&dir.path().join("pass"), PASSPHRASE);
    let pass = pass.to_str().unwrap();
    let mut flags = db.flags();
    flags.extend(["--passphrase-file", pass, "--passphrase-kdf-mib", "19"].map(String::from));
    let f: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(&data, &f, &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&oauth_body("at-rotate-1")))
            .status,
        200
    );
    drop(server);
    let (code, out, err) = run(rotate(
        &db,
        &data,
        &["--passphrase-file", pass, "--passphrase-kdf-mib", "19"],
    ));
    assert_eq!(code, 0, "{out}{err}");
    let server = Server::start(&data, &f, &[]);
    assert_eq!(seal_status(&server)["sealed"], false);
    reads_back(&server, &app);
    audit_verifies_across_the_rotation(&server, &admin);
}

fn shares_keep_working_across_a_rotation(db: Db) {
    let dir = tempfile::tempdir().unwrap();

    // The same holders' shares unseal the store after the rotation.
    let data = dir.path().join("shares");
    let out = Command::new(support::BIN)
        .args(["init", "--data-dir", data.to_str().unwrap()])
        .args(db.flags())
        .args(["--shares", "3", "--threshold", "2"])
        .output()
        .unwrap();
    let (code, out, err) = support::outcome(out);
    assert_eq!(code, 0, "{out}{err}");
    let shares: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Unseal share "))
        .map(|l| l.split_once(": ").unwrap().1.trim().to_string())
        .collect();
    let admin = out
        .lines()
        .find_map(|l| l.strip_prefix("Admin token (shown once; store it safely): "))
        .unwrap()
        .trim()
        .to_string();
    let unseal_with_shares = |server: &Server, which: [usize; 2]| {
        for i in which {
            let body = json!({ "share": shares[i] }).to_string();
            let r = server.request("POST", "/v1/sys/unseal", None, Some(&body));
            assert_eq!(r.status, 200, "{}", r.body);
        }
        assert_eq!(seal_status(server)["sealed"], false);
    };
    let flags: Vec<String> = db.flags();
    let f: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(&data, &f, &[]);
    unseal_with_shares(&server, [0, 1]);
    let app = app_token_with(&server, &admin, "app", &["read", "write"]);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&oauth_body("at-rotate-1")))
            .status,
        200
    );
    drop(server);
    let mut cmd = rotate(&db, &data, &[]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    writeln!(child.stdin.take().unwrap(), "{}\n{}", shares[2], shares[0]).unwrap();
    let (code, out, err) = support::outcome(child.wait_with_output().unwrap());
    assert_eq!(code, 0, "{out}{err}");
    let server = Server::start(&data, &f, &[]);
    unseal_with_shares(&server, [1, 2]);
    reads_back(&server, &app);
    audit_verifies_across_the_rotation(&server, &admin);
}

/// KMS: every start still asks KMS, which now unwraps the new key.
fn kms_keeps_working_across_a_rotation(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let Some(endpoint) = moto() else { return };
    let key_id = new_kms_key(&endpoint);
    let data = dir.path().join("kms");
    let at = ["--kms-endpoint", endpoint.as_str()];
    let server = start_with_aws(&db, &data, &["--kms-key-id", &key_id, at[0], at[1]]).unwrap();
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&oauth_body("at-rotate-1")))
            .status,
        200
    );
    drop(server);
    let mut cmd = rotate(&db, &data, &at);
    cmd.envs(aws_env());
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "{out}{err}");
    let server = start_with_aws(&db, &data, &at).unwrap();
    assert_eq!(seal_status(&server)["sealed"], false);
    reads_back(&server, &app);
    audit_verifies_across_the_rotation(&server, &admin);
}
