//! Sealing and unsealing through the binary, on SQLite and PostgreSQL: an operator seals,
//! every request is then 503 `sealed` (health and seal status still answer), a restart stays
//! sealed, and only the right key material unseals; a root key kept under a passphrase never
//! needs a key file; a root key split into Shamir shares is rebuilt only from enough of them
//! (through our CLI, the HTTP API, and Vault's `sys/unseal` as `bao operator unseal` sends it);
//! on PostgreSQL a seal on one node seals the others.

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{app_token, holds, oauth_body, Db, Server};

on_both_databases!(
    a_sealed_node_serves_nothing_until_the_root_key_unseals_it,
    a_passphrase_keeps_the_root_key_off_disk,
    an_existing_store_moves_its_root_key_under_a_passphrase,
    shares_unseal_a_store_whose_root_key_nobody_holds,
    a_passphrase_can_be_typed_at_a_prompt
);

const CRED: &str = "/v1/ns/app/users/u1/credentials/spotify";
const PASSPHRASE: &str = "correct horse battery staple 7c1e";
/// Cheap Argon2id for tests (the default is 128 MiB).
const CHEAP_KDF: [&str; 2] = ["--passphrase-kdf-mib", "19"];

/// Starts a server on `db` with `extra` flags and no root key in the environment.
fn start_with(db: &Db, data: &Path, extra: &[&str]) -> Result<Server, String> {
    let mut flags = db.flags();
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::try_start(data, &flags, &[])
}

fn seal_status(server: &Server) -> Value {
    let r = server.request("GET", "/v1/sys/seal-status", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn unseal(server: &Server, body: &Value) -> support::Reply {
    server.request("POST", "/v1/sys/unseal", None, Some(&body.to_string()))
}

/// The root key file this database's server uses (PostgreSQL tests give it in the environment).
fn key_file(db: &Db, dir: &Path) -> PathBuf {
    match db {
        Db::Sqlite => dir.join("d/root.key"),
        Db::Postgres { root_key, .. } => {
            support::owner_only_file(&dir.join("pg-root.key"), root_key)
        }
    }
}

fn a_sealed_node_serves_nothing_until_the_root_key_unseals_it(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = db.start(&data, &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&oauth_body("at-sealed-1")))
            .status,
        200
    );
    let status = seal_status(&server);
    assert_eq!(status["sealed"], false);
    assert_eq!(status["cluster_sealed_at"], Value::Null);
    // Only operators seal; an unsealed node refuses an unseal.
    assert_eq!(
        server.request("POST", "/v1/sys/seal", None, None).status,
        401
    );
    let r = server.request("POST", "/v1/sys/seal", Some(&app), None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "forbidden"),
        "{}",
        r.body
    );
    let key_path = key_file(&db, dir.path());
    let key_text = std::fs::read_to_string(&key_path)
        .unwrap()
        .trim()
        .to_string();
    let r = unseal(&server, &json!({"key": key_text}));
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "not_sealed"),
        "{}",
        r.body
    );

    let (code, out, err) = server.cli(&admin, &["seal"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["sealed"], true);
    for (path, token) in [
        (CRED, Some(app.as_str())),
        ("/v1/sys/namespaces", Some(admin.as_str())),
        ("/v1/sys/ready", None),
    ] {
        let r = server.request("GET", path, token, None);
        assert_eq!(r.status, 503, "{path}: {}", r.body);
    }
    let r = server.request("GET", CRED, Some(&app), None);
    assert_eq!(r.code(), "sealed", "{}", r.body);
    let health = server.request("GET", "/v1/sys/health", None, None);
    assert_eq!(
        (health.status, health.json()["sealed"].clone()),
        (200, json!(true))
    );
    let vault_health = server.request("GET", "/vault/v1/sys/health", None, None);
    assert_eq!(vault_health.status, 503);
    assert_eq!(vault_health.json()["sealed"], true);
    let metrics = server.request("GET", "/v1/sys/metrics", None, None).body;
    assert!(metrics.contains("strongroom_sealed 1"), "{metrics}");
    assert!(seal_status(&server)["cluster_sealed_at"].is_string());

    // Bad unseals: clear errors that never echo what was sent.
    let other_key = support::shared_root_key();
    for (body, status, code) in [
        (json!({}), 400, "invalid_input"),
        (json!({"key": "not-base64!"}), 400, "invalid_input"),
        (
            json!({"key": key_text, "passphrase": PASSPHRASE}),
            400,
            "invalid_input",
        ),
        (json!({"passphrase": PASSPHRASE}), 400, "invalid_input"),
        (json!({"key": other_key}), 400, "wrong_root_key"),
        (json!({"key": key_text, "extra": 1}), 400, "invalid_json"),
    ] {
        let r = unseal(&server, &body);
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{body}: {}",
            r.body
        );
        assert!(
            !r.body.contains(&other_key) && !r.body.contains(&key_text),
            "{}",
            r.body
        );
        assert!(!r.body.contains(PASSPHRASE), "{}", r.body);
    }

    // A restart honours the seal: the node comes up sealed even with its key at hand.
    server.stop();
    let server = db.start(&data, &[]);
    assert_eq!(seal_status(&server)["sealed"], true);
    assert_eq!(
        server.request("GET", CRED, Some(&app), None).code(),
        "sealed"
    );
    let (code, out, err) = server.cli("", &["unseal", "--key-file", key_path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(&key_text) && !err.contains(&key_text));
    let status = seal_status(&server);
    assert_eq!(status["sealed"], false);
    assert_eq!(status["cluster_sealed_at"], Value::Null);
    let r = server.request("GET", CRED, Some(&app), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("at-sealed-1"));
    // Both steps are in the audit log, and the log still verifies.
    let audit = server
        .request("GET", "/v1/sys/audit?limit=1000", Some(&admin), None)
        .json();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"sys.seal") && actions.contains(&"sys.unseal"),
        "{actions:?}"
    );
    let verify = server
        .request("POST", "/v1/sys/audit/verify", Some(&admin), None)
        .json();
    assert_eq!(verify["valid"], true, "{verify}");
    assert!(
        !server.logs().contains(&key_text),
        "the root key reached the log"
    );
    if db.is_postgres() {
        assert!(
            !holds(&db.dump(&data), &key_text),
            "the root key reached the database"
        );
    }
}

fn a_passphrase_keeps_the_root_key_off_disk(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let pass = support::owner_only_file(&dir.path().join("pass"), &format!("{PASSPHRASE}\n"));
    let pass_arg = pass.to_str().unwrap();
    // Too short, or readable by others: refused before anything is made.
    let short = support::owner_only_file(&dir.path().join("short"), "too-short\n");
    let err = start_with(&db, &data, &["--passphrase-file", short.to_str().unwrap()])
        .err()
        .expect("a short passphrase is refused");
    assert!(
        err.contains("at least 12 characters") && !err.contains("too-short"),
        "{err}"
    );
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = start_with(&db, &data, &["--passphrase-file", pass_arg])
        .err()
        .expect("a shared passphrase file is refused");
    assert!(err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();

    let first = start_with(
        &db,
        &data,
        &[CHEAP_KDF[0], CHEAP_KDF[1], "--passphrase-file", pass_arg],
    )
    .expect("a new store starts under a passphrase");
    assert!(!data.join("root.key").exists(), "no key file is written");
    let status = seal_status(&first);
    assert_eq!(
        (
            status["key_source"].clone(),
            status["passphrase_sealed"].clone()
        ),
        (json!("passphrase"), json!(true))
    );
    let admin = first.admin().to_string();
    let app = app_token(&first, "app", &["read", "write"]);
    assert_eq!(
        first
            .request("PUT", CRED, Some(&app), Some(&oauth_body("at-pass-1")))
            .status,
        200
    );
    drop(first);

    // Without the passphrase the node starts sealed and waits.
    let server = start_with(&db, &data, &[]).expect("a passphrase store starts sealed");
    assert_eq!(seal_status(&server)["sealed"], true);
    assert_eq!(
        server.request("GET", CRED, Some(&app), None).code(),
        "sealed"
    );
    let r = unseal(
        &server,
        &json!({"passphrase": "the wrong passphrase entirely"}),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "wrong_root_key"),
        "{}",
        r.body
    );
    let r = unseal(&server, &json!({"key": support::shared_root_key()}));
    assert_eq!(r.code(), "wrong_root_key", "{}", r.body);
    let (code, out, err) = server.cli("", &["unseal", "--passphrase-file", pass_arg]);
    assert_eq!(code, 0, "{out}{err}");
    let r = server.request("GET", CRED, Some(&app), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("at-pass-1"));
    // Sealed again by an operator, then a start with the passphrase stays sealed until an
    // unseal (the seal mark wins over key material at hand).
    assert_eq!(server.cli(&admin, &["seal"]).0, 0);
    drop(server);
    let server = start_with(&db, &data, &["--passphrase-file", pass_arg]).unwrap();
    assert_eq!(seal_status(&server)["sealed"], true);
    assert_eq!(
        unseal(&server, &json!({"passphrase": PASSPHRASE})).status,
        200
    );
    assert_eq!(server.request("GET", CRED, Some(&app), None).status, 200);
    for text in [
        server.logs(),
        String::from_utf8_lossy(&db.dump(&data)).into_owned(),
    ] {
        assert!(!text.contains(PASSPHRASE), "the passphrase leaked");
    }
    assert!(!holds(&db.dump(&data), PASSPHRASE));
}

fn an_existing_store_moves_its_root_key_under_a_passphrase(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let server = db.start(&data, &[]);
    let app = app_token(&server, "app", &["read", "write"]);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&oauth_body("at-moved-1")))
            .status,
        200
    );
    drop(server);
    let key_path = key_file(&db, dir.path());
    let pass = support::owner_only_file(&dir.path().join("pass"), PASSPHRASE);
    let mut flags = db.flags();
    flags.extend(
        [
            "--passphrase-file",
            pass.to_str().unwrap(),
            CHEAP_KDF[0],
            CHEAP_KDF[1],
        ]
        .map(String::from),
    );
    // A wrong key is refused before it is sealed under the passphrase.
    let wrong =
        support::owner_only_file(&dir.path().join("wrong.key"), &support::shared_root_key());
    let mut with_wrong = flags.clone();
    with_wrong.extend([
        "--root-key-file".to_string(),
        wrong.to_str().unwrap().to_string(),
    ]);
    let f: Vec<&str> = with_wrong.iter().map(String::as_str).collect();
    let err = Server::try_start(&data, &f, &[])
        .err()
        .expect("a wrong key is refused");
    assert!(err.contains("key check failed"), "{err}");
    // With the right key once, the root key goes under the passphrase…
    let mut with_key = flags.clone();
    with_key.extend([
        "--root-key-file".to_string(),
        key_path.to_str().unwrap().to_string(),
    ]);
    let f: Vec<&str> = with_key.iter().map(String::as_str).collect();
    drop(Server::start(&data, &f, &[]));
    // …and from then on the passphrase alone opens the store, the key file moved away.
    std::fs::rename(&key_path, dir.path().join("offline.key")).unwrap();
    let f: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(&data, &f, &[]);
    assert_eq!(seal_status(&server)["sealed"], false);
    let r = server.request("GET", CRED, Some(&app), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("at-moved-1"));
}

/// On PostgreSQL: a seal on one node seals every node within seconds; each is unsealed on
/// its own.
#[test]
fn a_seal_on_one_node_seals_the_cluster() {
    let Some(db) = Db::postgres() else { return };
    let Db::Postgres {
        url,
        schema,
        root_key,
    } = &db
    else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let a = support::start_node(&dir.path().join("a"), url, schema, root_key, &[]);
    let b = support::start_node(&dir.path().join("b"), url, schema, root_key, &[]);
    let admin = a.admin().to_string();
    let app = app_token(&a, "app", &["read", "write"]);
    assert_eq!(
        a.request("PUT", CRED, Some(&app), Some(&oauth_body("at-c1")))
            .status,
        200
    );
    assert_eq!(b.request("GET", CRED, Some(&app), None).status, 200);
    assert_eq!(a.cli(&admin, &["seal"]).0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while seal_status(&b)["sealed"] != true {
        assert!(Instant::now() < deadline, "node b never followed the seal");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(b.request("GET", CRED, Some(&app), None).code(), "sealed");
    assert_eq!(unseal(&a, &json!({"key": root_key})).status, 200);
    assert_eq!(a.request("GET", CRED, Some(&app), None).status, 200);
    // Unsealing a clears the mark, but b stays sealed until it is unsealed itself.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(seal_status(&b)["sealed"], true);
    assert_eq!(unseal(&b, &json!({"key": root_key})).status, 200);
    let r = b.request("GET", CRED, Some(&app), None);
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Runs `strongroom init --shares N --threshold T` on `db`; (exit code, stdout, stderr).
fn init_with_shares(db: &Db, data: &Path, shares: u8, threshold: u8) -> (i32, String, String) {
    let out = Command::new(support::BIN)
        .arg("init")
        .arg("--data-dir")
        .arg(data)
        .args(db.flags())
        .args([
            "--shares",
            &shares.to_string(),
            "--threshold",
            &threshold.to_string(),
        ])
        .env_remove("STRONGROOM_ROOT_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    support::outcome(out)
}

/// The shares and the admin token `init` printed.
fn printed_shares(out: &str) -> (Vec<String>, String) {
    let shares = out
        .lines()
        .filter_map(|l| l.split_once("Unseal share ").map(|(_, rest)| rest))
        .map(|rest| rest.split_once(": ").unwrap().1.trim().to_string())
        .collect();
    let admin = out
        .lines()
        .find_map(|l| l.strip_prefix("Admin token (shown once; store it safely): "))
        .expect("init prints the admin token")
        .trim()
        .to_string();
    (shares, admin)
}

/// `strongroom unseal --share-stdin` with `share` on standard input, as a share holder runs it.
fn unseal_with_share(server: &Server, share: &str) -> (i32, String, String) {
    let mut child = Command::new(support::BIN)
        .args(["unseal", "--share-stdin"])
        .env("STRONGROOM_ADDR", &server.base)
        .env_remove("STRONGROOM_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{share}").unwrap();
    let out = child.wait_with_output().unwrap();
    support::outcome(out)
}

/// `bao operator unseal SHARE` when the Vault clients are installed (scripts/test installs
/// them), else the same request it sends.
fn vault_unseal(server: &Server, share: &str) -> Value {
    match std::env::var("STRONGROOM_TEST_BAO")
        .ok()
        .filter(|b| !b.is_empty())
    {
        Some(bao) => {
            let home = server.data_dir.with_extension("bao-home");
            std::fs::create_dir_all(&home).unwrap();
            let out = Command::new(bao)
                .args(["operator", "unseal", "-format=json", share])
                .env("BAO_ADDR", format!("{}/vault", server.base))
                .env("HOME", &home)
                .output()
                .expect("bao runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).unwrap()
        }
        None => {
            let body = json!({"key": share, "reset": false, "migrate": false}).to_string();
            let r = server.request("PUT", "/vault/v1/sys/unseal", None, Some(&body));
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()
        }
    }
}

fn shares_unseal_a_store_whose_root_key_nobody_holds(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    // Schemes that cannot work are refused before anything is made.
    for (n, t) in [(5, 1), (3, 4), (17, 3)] {
        let (code, out, err) = init_with_shares(&db, &data, n, t);
        assert_ne!(code, 0, "{n}/{t}: {out}");
        assert!(err.contains("threshold") && out.is_empty(), "{err}");
    }
    let (code, out, err) = init_with_shares(&db, &data, 5, 3);
    assert_eq!(code, 0, "{out}{err}");
    let (shares, admin) = printed_shares(&out);
    assert_eq!(shares.len(), 5, "{out}");
    assert!(!data.join("root.key").exists(), "no key file is written");
    let (code, _, err) = init_with_shares(&db, &data, 5, 3);
    assert_ne!(code, 0);
    assert!(err.contains("already initialised"), "{err}");
    // Shares of another store (same scheme) to mix in.
    let other = dir.path().join("other");
    let (code, out, err) = init_with_shares(&Db::Sqlite, &other, 5, 3);
    assert_eq!(code, 0, "{out}{err}");
    let (foreign, _) = printed_shares(&out);

    // The server starts sealed and says what it waits for.
    let mut server = start_with(&db, &data, &[]).expect("a share store starts sealed");
    let status = seal_status(&server);
    assert_eq!(status["sealed"], true);
    assert_eq!(status["key_source"], "shamir");
    assert_eq!(
        status["shamir"],
        json!({"threshold": 3, "shares": 5, "progress": 0, "nonce": null})
    );
    let vault = server.request("GET", "/vault/v1/sys/seal-status", None, None);
    assert_eq!(
        (vault.json()["t"].clone(), vault.json()["n"].clone()),
        (json!(3), json!(5))
    );

    // Bad shares: clear errors, never echoed; a share twice is refused; a reset starts over.
    for bad in ["", "not a share", &shares[0][..20]] {
        let r = unseal(&server, &json!({ "share": bad }));
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "invalid_input"),
            "{}",
            r.body
        );
        assert!(r.body.contains("share"), "{}", r.body);
    }
    let r = unseal(&server, &json!({"share": shares[0]}));
    assert_eq!(r.status, 200, "{}", r.body);
    let nonce = r.json()["shamir"]["nonce"].clone();
    assert!(nonce.is_string(), "{}", r.body);
    assert_eq!(r.json()["shamir"]["progress"], 1);
    assert_eq!(r.json()["sealed"], true);
    let r = unseal(&server, &json!({"share": shares[0]}));
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "invalid_input"),
        "{}",
        r.body
    );
    assert!(r.body.contains("already submitted"), "{}", r.body);
    assert_eq!(seal_status(&server)["shamir"]["progress"], 1);
    let r = unseal(&server, &json!({"reset": true}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["shamir"],
        json!({"threshold": 3, "shares": 5, "progress": 0, "nonce": null})
    );
    // A key or passphrase cannot stand in for the shares.
    let r = unseal(&server, &json!({"key": support::shared_root_key()}));
    assert_eq!(r.code(), "wrong_root_key", "{}", r.body);

    // Two right shares and a foreign one: the attempt fails as a wrong key and starts over.
    for share in [&shares[1], &shares[2]] {
        assert_eq!(unseal(&server, &json!({ "share": share })).status, 200);
    }
    let r = unseal(&server, &json!({"share": foreign[3]}));
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "wrong_root_key"),
        "{}",
        r.body
    );
    let status = seal_status(&server);
    assert_eq!(
        (
            status["sealed"].clone(),
            status["shamir"]["progress"].clone()
        ),
        (json!(true), json!(0))
    );

    // Three holders, each with their own share, through the CLI: unsealed.
    for (i, share) in [&shares[4], &shares[1], &shares[3]].into_iter().enumerate() {
        let (code, out, err) = unseal_with_share(&server, share);
        assert_eq!(code, 0, "{out}{err}");
        let answer: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(answer["sealed"], i < 2, "{out}");
        assert!(!out.contains(share.as_str()) && !err.contains(share.as_str()));
    }
    let app = support::app_token_with(&server, &admin, "app", &["read", "write"]);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&oauth_body("at-shares-1")))
            .status,
        200
    );
    let r = unseal(&server, &json!({"share": shares[0]}));
    assert_eq!(r.code(), "not_sealed", "{}", r.body);

    // Sealed and restarted: Vault's unseal call (as `bao operator unseal` sends it) opens it.
    assert_eq!(server.cli(&admin, &["seal"]).0, 0);
    server.stop();
    let server = start_with(&db, &data, &[]).unwrap();
    assert_eq!(seal_status(&server)["sealed"], true);
    for (i, share) in [&shares[2], &shares[0], &shares[4]].into_iter().enumerate() {
        let answer = vault_unseal(&server, share);
        assert_eq!(answer["sealed"], i < 2, "{answer}");
        assert_eq!(
            answer["progress"],
            if i < 2 { i + 1 } else { 0 },
            "{answer}"
        );
        assert_eq!(
            (answer["t"].clone(), answer["n"].clone()),
            (json!(3), json!(5))
        );
    }
    let r = server.request("GET", CRED, Some(&app), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("at-shares-1"));
    let verify = server
        .request("POST", "/v1/sys/audit/verify", Some(&admin), None)
        .json();
    assert_eq!(verify["valid"], true, "{verify}");
    let audit = server
        .request("GET", "/v1/sys/audit?limit=1000", Some(&admin), None)
        .body;
    assert!(
        audit.contains("unseal-shares"),
        "the unseal names the shares"
    );
    let logs = server.logs();
    let dump = db.dump(&data);
    for share in &shares {
        assert!(!logs.contains(share.as_str()), "a share reached the log");
        assert!(
            !audit.contains(share.as_str()),
            "a share reached the audit log"
        );
        assert!(!holds(&dump, share), "a share reached the database");
    }
}

/// Runs `strongroom serve ARGS` on a pseudo-terminal, types `typed` at its prompt, and waits
/// for it to listen; returns what the terminal showed (to check nothing was echoed).
const ON_A_TERMINAL: &str = r#"
import os, pty, subprocess, sys, time, select
typed, argv = sys.argv[1], sys.argv[2:]
main, sub = pty.openpty()
p = subprocess.Popen(argv, stdin=sub, stderr=sub, stdout=subprocess.PIPE, text=True)
os.close(sub)
shown, deadline = b"", time.time() + 20
while b"Passphrase for the root key: " not in shown and time.time() < deadline:
    if select.select([main], [], [], 0.2)[0]:
        shown += os.read(main, 4096)
os.write(main, typed.encode() + b"\n")
listening = False
for line in p.stdout:
    if line.startswith("Listening on"):
        listening = True
        break
time.sleep(0.3)
while select.select([main], [], [], 0.2)[0]:
    try:
        shown += os.read(main, 4096)
    except OSError:
        break
p.terminate(); p.wait()
print("LISTENING" if listening else "NOT LISTENING")
sys.stdout.write(shown.decode(errors="replace"))
"#;

fn a_passphrase_can_be_typed_at_a_prompt(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut argv = vec![
        support::BIN.to_string(),
        "serve".into(),
        "--data-dir".into(),
        data.to_str().unwrap().into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--passphrase-prompt".into(),
        CHEAP_KDF[0].into(),
        CHEAP_KDF[1].into(),
    ];
    argv.extend(db.flags());
    let out = Command::new("python3")
        .args(["-c", ON_A_TERMINAL, PASSPHRASE])
        .args(&argv)
        .env_remove("STRONGROOM_ROOT_KEY")
        .output()
        .expect("python3 runs");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.starts_with("LISTENING"),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shown.contains("Passphrase for the root key: "), "{shown}");
    assert!(
        !shown.contains(PASSPHRASE),
        "the typed passphrase was echoed"
    );
    assert!(!data.join("root.key").exists());

    // Without it the store starts sealed; a passphrase piped to `unseal --passphrase-prompt`
    // opens it, a wrong one does not.
    let server = start_with(&db, &data, &[]).unwrap();
    assert_eq!(seal_status(&server)["sealed"], true);
    let typed = |text: &str| {
        let mut child = Command::new(support::BIN)
            .args(["unseal", "--passphrase-prompt"])
            .env("STRONGROOM_ADDR", &server.base)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{text}").unwrap();
        support::outcome(child.wait_with_output().unwrap())
    };
    let (code, _, err) = typed("a wrong passphrase here");
    assert_ne!(code, 0);
    assert!(err.contains("wrong_root_key"), "{err}");
    let (code, out, err) = typed("short");
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("at least 12") && !err.contains("short\n"),
        "{err}"
    );
    let (code, out, err) = typed(PASSPHRASE);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(seal_status(&server)["sealed"], false);
    assert!(!server.logs().contains(PASSPHRASE));
}
