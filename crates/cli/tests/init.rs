//! `strongroom init` choosing where the root key is kept, through the binary on SQLite and
//! PostgreSQL: a key file (default), a passphrase, AWS KMS (moto); `serve` then opens the store
//! with that source alone, and a second `init` is refused. (Shares: `tests/seal.rs`.)

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::kms::{aws_env, moto, new_kms_key, start_with_aws};
use support::{app_token_with, oauth_body, Db, Server};

on_both_databases!(init_chooses_where_the_root_key_is_kept);

const CRED: &str = "/v1/ns/app/users/u1/credentials/spotify";

fn init(db: &Db, data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(support::BIN)
        .args(["init", "--data-dir", data.to_str().unwrap()])
        .args(db.flags())
        .args(args)
        .env_remove("STRONGROOM_ROOT_KEY")
        .envs(aws_env())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    support::outcome(out)
}

fn admin_of(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Admin token (shown once; store it safely): "))
        .expect("init prints the admin token")
        .trim()
        .to_string()
}

/// The store serves: an app token made with `admin` writes and reads a credential.
fn serves(server: &Server, admin: &str) {
    let seal: Value = server
        .request("GET", "/v1/sys/seal-status", None, None)
        .json();
    assert_eq!(seal["sealed"], false, "{seal}");
    let app = app_token_with(server, admin, "app", &["read", "write"]);
    let r = server.request("PUT", CRED, Some(&app), Some(&oauth_body("at-init-1")));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(server
        .request("GET", CRED, Some(&app), None)
        .body
        .contains("at-init-1"));
}

fn init_chooses_where_the_root_key_is_kept(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    // One PostgreSQL schema per store.
    let fresh = || match &db {
        Db::Sqlite => Db::Sqlite,
        Db::Postgres { .. } => Db::postgres().unwrap(),
    };

    // A key file (the default place, DATA_DIR/root.key).
    let data = dir.path().join("file");
    let (code, out, err) = init(&db, &data, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let key = data.join("root.key");
    assert!(key.exists());
    let (code, _, err) = init(&db, &data, &[]);
    assert_ne!(code, 0);
    assert!(err.contains("already initialised"), "{err}");
    let mut flags = db.flags();
    flags.extend(["--root-key-file".into(), key.to_str().unwrap().to_string()]);
    let f: Vec<&str> = flags.iter().map(String::as_str).collect();
    serves(&Server::start(&data, &f, &[]), &admin_of(&out));

    // A passphrase: no key file, the passphrase alone opens it.
    let db = fresh();
    let data = dir.path().join("pass");
    let pass = support::owner_only_file(&dir.path().join("pass.txt"), "init passphrase 2b7c");
    let pass = pass.to_str().unwrap();
    let (code, out, err) = init(
        &db,
        &data,
        &["--passphrase-file", pass, "--passphrase-kdf-mib", "19"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(!data.join("root.key").exists());
    let mut flags = db.flags();
    flags.extend(["--passphrase-file".into(), pass.to_string()]);
    let f: Vec<&str> = flags.iter().map(String::as_str).collect();
    serves(&Server::start(&data, &f, &[]), &admin_of(&out));

    // AWS KMS: every start asks KMS.
    let Some(endpoint) = moto() else { return };
    let db = fresh();
    let data = dir.path().join("kms");
    let key_id = new_kms_key(&endpoint);
    let at = ["--kms-endpoint", endpoint.as_str()];
    let (code, out, err) = init(&db, &data, &["--kms-key-id", &key_id, at[0], at[1]]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!data.join("root.key").exists());
    serves(&start_with_aws(&db, &data, &at).unwrap(), &admin_of(&out));
}
