//! Backups and restores through the binary.
//!
//! SQLite (`strongroom backup`): taken while writers keep writing, onto a folder and onto
//! S3 (with files on a folder and on S3); every write acknowledged before the backup began is
//! there after the restore, the audit chain verifies, files come back byte for byte, a user
//! erased after the backup stays erased (the erasure ledger), `backup verify` passes and
//! catches an edited piece, and a restore without a ledger or under another root key is
//! refused with a clear message.
//!
//! Both backends (`restore --replay-erasures`): the store restored with the database's own
//! tools (pg_dump / psql; a copied SQLite file) forgets an erasure until the ledger replays it.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use support::files::{content, data, upload, Backend, Store};
use support::{app_token, outcome, Db, Server};

macro_rules! on_both_object_stores {
    ($($test:ident),* $(,)?) => {
        mod local {
            $(#[test] fn $test() { if let Some(b) = super::Backend::local() { super::$test(b) } })*
        }
        mod s3 {
            $(#[test] fn $test() { if let Some(b) = super::Backend::s3() { super::$test(b) } })*
        }
    };
}

on_both_object_stores!(a_backup_under_load_restores_everything_but_the_erased);

#[test]
fn a_passphrase_store_backs_up_and_restores_with_its_passphrase() {
    let Some(backend) = Backend::local() else {
        return;
    };
    passphrase_store_round_trip(backend);
}
on_both_databases!(a_store_restored_by_its_own_tools_forgets_no_erasure);

const MARKER: &str = "xoxb-BACKUP-MARKER-leaver";

/// A location beside the backend's files: a folder in `dir`, or a prefix in the test bucket.
fn location(backend: &Backend, dir: &Path, name: &str) -> String {
    match &backend.store {
        Store::Local => dir.join(name).display().to_string(),
        Store::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}-{name}"),
    }
}

/// The S3 flags for the commands that work on locations directly.
fn s3_flags(backend: &Backend) -> Vec<String> {
    match &backend.store {
        Store::Local => Vec::new(),
        Store::S3 { endpoint, .. } => vec![
            "--s3-endpoint".into(),
            endpoint.clone(),
            "--s3-region".into(),
            "us-east-1".into(),
            "--s3-allow-http".into(),
        ],
    }
}

/// Runs the binary with `args`, the backend's S3 flags and environment.
fn run(backend: &Backend, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = std::process::Command::new(support::BIN)
        .args(args)
        .args(s3_flags(backend))
        .envs(backend.env())
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    outcome(out)
}

fn put(server: &Server, token: &str, user: &str, name: &str, value: &str) -> u16 {
    server
        .request(
            "PUT",
            &format!("/v1/ns/app/users/{user}/credentials/{name}"),
            Some(token),
            Some(&secret(value)),
        )
        .status
}

fn value(server: &Server, token: &str, user: &str, name: &str) -> Option<String> {
    let r = server.request(
        "GET",
        &format!("/v1/ns/app/users/{user}/credentials/{name}"),
        Some(token),
        None,
    );
    (r.status == 200).then(|| {
        r.json()["data"]["data"]["token"]
            .as_str()
            .unwrap()
            .to_string()
    })
}

fn secret(token: &str) -> String {
    serde_json::json!({ "data": { "type": "secret", "data": { "token": token } } }).to_string()
}

fn erase(server: &Server, token: &str, user: &str) -> Value {
    let r = server.request(
        "DELETE",
        &format!("/v1/ns/app/users/{user}?confirm={user}"),
        Some(token),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn copy_root_key(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    support::owner_only_file(
        &to.join("root.key"),
        &std::fs::read_to_string(from.join("root.key")).unwrap(),
    );
}

fn a_backup_under_load_restores_everything_but_the_erased(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("d");
    let ledger = location(&backend, dir.path(), "ledger");
    let to = location(&backend, dir.path(), "backup");
    let mut server = backend.start(
        &data_dir,
        &["--erasure-ledger", &ledger, "--job-interval-secs", "1"],
    );
    let token = app_token(
        &server,
        "app",
        &["read", "write", "list", "export", "erase"],
    );
    assert_eq!(put(&server, &token, "leaver", "slack", MARKER), 200);
    assert_eq!(put(&server, &token, "stayer", "slack", "xoxb-stays"), 200);
    let kept = data(300_000, 3);
    let file = upload(&server, &token, "stayer", "kept.pdf", &kept);
    upload(&server, &token, "leaver", "gone.pdf", &data(20_000, 4));

    // Writers keep writing while the backup runs.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (base, token) = (server.base.clone(), token.clone());
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let r = ureq::put(&format!("{base}/v1/ns/app/users/load-{i}/credentials/c"))
                    .set("Authorization", &format!("Bearer {token}"))
                    .set("Content-Type", "application/json")
                    .send_string(&secret(&format!("v{i}")));
                if r.is_ok() {
                    acknowledged.lock().unwrap().push(i);
                }
                i += 1;
            }
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while acknowledged.lock().unwrap().len() < 50 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writers write nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let before_backup = acknowledged.lock().unwrap().clone();
    let data_dir_s = data_dir.display().to_string();
    let files_flag = backend_files_flag(&backend);
    let mut args = vec!["backup", "--to", &to, "--data-dir", &data_dir_s];
    args.extend(files_flag.iter().map(String::as_str));
    let (code, out, err) = run(&backend, &args, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let made: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(made["objects"], 2, "{made}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        acknowledged.lock().unwrap().len() > before_backup.len(),
        "the writers kept going during the backup"
    );

    // After the backup: an erasure (recorded outside the store) and a new write.
    let erased = erase(&server, &token, "leaver");
    assert_eq!(erased["ledger"], "recorded", "{erased}");
    assert_eq!(put(&server, &token, "stayer", "after", "later"), 200);
    let admin = server.admin().to_string();
    server.stop();

    let (code, out, err) = run(
        &backend,
        &["backup", "verify", "--from", &to, "--data-dir", &data_dir_s],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let verified: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verified["valid"], true, "{verified}");

    let restored = dir.path().join("restored");
    let restored_s = restored.display().to_string();
    let key_file = data_dir.join("root.key").display().to_string();
    let restored_files = location(&backend, dir.path(), "restored-files");
    let restore_args = |extra: &[&'static str]| {
        let mut a = vec![
            "restore".to_string(),
            "--from".into(),
            to.clone(),
            "--data-dir".into(),
            restored_s.clone(),
            "--root-key-file".into(),
            key_file.clone(),
            "--files".into(),
            restored_files.clone(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    // No ledger: refused, naming the way out.
    let a = restore_args(&[]);
    let (code, _, err) = run(
        &backend,
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("--ledger") && err.contains("--accept-no-ledger"),
        "{err}"
    );
    assert!(!restored.join("strongroom.db").exists());

    // Another root key: refused as such.
    let stranger = support::shared_root_key();
    let mut a = restore_args(&[]);
    a.retain(|s| s != "--root-key-file" && s != &key_file);
    a.extend(["--ledger".into(), ledger.clone()]);
    let (code, _, err) = run(
        &backend,
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &[("STRONGROOM_ROOT_KEY", stranger.as_str())],
    );
    assert_ne!(code, 0);
    assert!(err.contains("different root key"), "{err}");
    assert!(!restored.join("strongroom.db").exists());

    let mut a = restore_args(&[]);
    a.extend(["--ledger".into(), ledger.clone()]);
    let (code, out, err) = run(
        &backend,
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["erasures"]["replayed"], 1, "{report}");
    assert_eq!(report["erasures"]["users_erased"], 1, "{report}");
    assert_eq!(report["audit"]["valid"], true, "{report}");

    copy_root_key(&data_dir, &restored);
    let mut flags = vec!["--erasure-ledger".to_string(), ledger.clone()];
    flags.extend(restored_backend_flags(&backend, &restored_files));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let env = backend.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(&restored, &flags, &env);
    assert_eq!(
        value(&server, &token, "leaver", "slack"),
        None,
        "erased stays erased"
    );
    assert_eq!(
        value(&server, &token, "stayer", "slack").as_deref(),
        Some("xoxb-stays")
    );
    assert_eq!(
        value(&server, &token, "stayer", "after"),
        None,
        "written after the backup"
    );
    for i in &before_backup {
        assert_eq!(
            value(&server, &token, &format!("load-{i}"), "c"),
            Some(format!("v{i}")),
            "acknowledged before the backup began"
        );
    }
    let got = content(
        &server,
        &token,
        "stayer",
        file["id"].as_str().unwrap(),
        None,
    );
    assert_eq!(got.status, 200);
    assert_eq!(got.body.unwrap(), kept, "the file comes back byte for byte");
    let (code, out, _) = server.cli(&admin, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"valid\": true"), "{out}");
    drop(server);

    if let Store::Local = backend.store {
        // An edited piece is caught by verify and refused by restore.
        let piece = Path::new(&to).join("data/00000000");
        let mut bytes = std::fs::read(&piece).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&piece, bytes).unwrap();
        let (code, out, _) = run(
            &backend,
            &["backup", "verify", "--from", &to, "--data-dir", &data_dir_s],
            &[],
        );
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("altered or damaged"), "{out}");
        let again = dir.path().join("again").display().to_string();
        let (code, _, err) = run(
            &backend,
            &[
                "restore",
                "--from",
                &to,
                "--data-dir",
                &again,
                "--root-key-file",
                &key_file,
                "--accept-no-ledger",
            ],
            &[],
        );
        assert_ne!(code, 0);
        assert!(err.contains("altered or damaged"), "{err}");
        assert!(!Path::new(&again).join("strongroom.db").exists());
    }
}

/// `--files` as the server got it (the default folder needs no flag).
fn backend_files_flag(backend: &Backend) -> Vec<String> {
    let flags = backend.flags();
    match flags.iter().position(|f| f == "--files") {
        Some(i) => vec!["--files".into(), flags[i + 1].clone()],
        None => Vec::new(),
    }
}

/// The server flags for the restored store: its files where the restore put them.
fn restored_backend_flags(backend: &Backend, files: &str) -> Vec<String> {
    let mut flags = vec!["--files".to_string(), files.to_string()];
    flags.extend(s3_flags(backend));
    flags
}

fn a_store_restored_by_its_own_tools_forgets_no_erasure(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("d");
    let ledger = dir.path().join("ledger").display().to_string();
    let mut server = db.start(&data_dir, &["--erasure-ledger", &ledger]);
    let token = app_token(&server, "app", &["read", "write", "erase"]);
    assert_eq!(put(&server, &token, "leaver", "slack", MARKER), 200);
    assert_eq!(put(&server, &token, "stayer", "slack", "xoxb-stays"), 200);
    let admin = server.admin().to_string();
    server.stop();

    // The database's own backup, taken while nothing writes.
    let saved = dir.path().join("saved");
    std::fs::create_dir(&saved).unwrap();
    match &db {
        Db::Sqlite => {
            for name in ["strongroom.db", "strongroom.audit.db"] {
                std::fs::copy(data_dir.join(name), saved.join(name)).unwrap();
            }
        }
        Db::Postgres { url, schema, .. } => {
            let out = std::process::Command::new("pg_dump")
                .args(["--schema", schema, url.as_str(), "-f"])
                .arg(saved.join("dump.sql"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    let server = db.start(&data_dir, &["--erasure-ledger", &ledger]);
    let erased = erase(&server, &token, "leaver");
    assert_eq!(erased["ledger"], "recorded", "{erased}");
    drop(server);

    // Restored by the database's tools: the erased user is back in the rows…
    match &db {
        Db::Sqlite => {
            for name in ["strongroom.db", "strongroom.audit.db"] {
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(data_dir.join(format!("{name}{suffix}")));
                }
                std::fs::copy(saved.join(name), data_dir.join(name)).unwrap();
            }
        }
        Db::Postgres { url, schema, .. } => {
            db.psql(&format!("DROP SCHEMA {schema} CASCADE"));
            let out = std::process::Command::new("psql")
                .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-f"])
                .arg(saved.join("dump.sql"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    // …until the ledger is replayed, before the store serves.
    let data_dir_s = data_dir.display().to_string();
    let mut args = vec![
        "restore",
        "--replay-erasures",
        "--ledger",
        &ledger,
        "--data-dir",
        &data_dir_s,
    ];
    let flags = db.flags();
    args.extend(flags.iter().map(String::as_str));
    let env = db.env();
    let out = std::process::Command::new(support::BIN)
        .args(&args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let (code, out, err) = outcome(out);
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["erasures"]["replayed"], 1, "{report}");
    assert_eq!(report["erasures"]["users_erased"], 1, "{report}");
    assert_eq!(report["audit"]["valid"], true, "{report}");
    // A second replay finds everything applied.
    let out = std::process::Command::new(support::BIN)
        .args(&args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let (code, out, err) = outcome(out);
    assert_eq!(code, 0, "{out}{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["erasures"]["replayed"], 0, "{again}");
    assert_eq!(again["erasures"]["already_applied"], 1, "{again}");

    let server = db.start(&data_dir, &["--erasure-ledger", &ledger]);
    assert_eq!(value(&server, &token, "leaver", "slack"), None);
    assert_eq!(
        value(&server, &token, "stayer", "slack").as_deref(),
        Some("xoxb-stays")
    );
    assert!(
        !support::holds(&db.dump(&data_dir), MARKER),
        "nothing of the erased user in plaintext"
    );
    let (code, out, _) = server.cli(&admin, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
}

/// A store whose root key exists only under a passphrase: the backup opens with the same
/// passphrase (the manifest carries the sealed copy), a wrong one is refused, and the restored
/// store starts under the passphrase with everything in it.
fn passphrase_store_round_trip(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("d");
    let pass = support::owner_only_file(
        &dir.path().join("pass"),
        "correct horse battery staple 7c1e",
    );
    let wrong = support::owner_only_file(&dir.path().join("wrong"), "not the passphrase at all 99");
    let pass_s = pass.display().to_string();
    let kdf = ["--passphrase-kdf-mib", "19"];
    let mut flags = vec!["--passphrase-file", pass_s.as_str()];
    flags.extend(kdf);
    let mut server = backend.start(&data_dir, &flags);
    assert!(!data_dir.join("root.key").exists(), "no key file on disk");
    let token = app_token(&server, "app", &["read", "write"]);
    assert_eq!(put(&server, &token, "u1", "slack", MARKER), 200);
    let admin = server.admin().to_string();
    let to = dir.path().join("backup").display().to_string();
    let data_dir_s = data_dir.display().to_string();
    let (code, out, err) = run(
        &backend,
        &[
            "backup",
            "--to",
            &to,
            "--data-dir",
            &data_dir_s,
            "--passphrase-file",
            &pass_s,
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    server.stop();

    let restored = dir.path().join("restored").display().to_string();
    let wrong_s = wrong.display().to_string();
    let args = |passphrase: &str| {
        vec![
            "restore",
            "--from",
            &to,
            "--data-dir",
            &restored,
            "--passphrase-file",
            passphrase,
            "--accept-no-ledger",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let a = args(&wrong_s);
    let (code, _, err) = run(
        &backend,
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert_ne!(code, 0);
    assert!(err.contains("different root key"), "{err}");
    let a = args(&pass_s);
    let (code, out, err) = run(
        &backend,
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let server = Server::start(Path::new(&restored), &["--passphrase-file", &pass_s], &[]);
    assert_eq!(
        value(&server, &token, "u1", "slack").as_deref(),
        Some(MARKER)
    );
    let (code, out, _) = server.cli(&admin, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
}
