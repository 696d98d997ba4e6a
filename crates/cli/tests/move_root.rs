//! `strongroom keys move-root` through the binary, on SQLite and PostgreSQL: one store's root
//! key travels file → Shamir shares → passphrase → AWS KMS (moto) → file, every hop opened by
//! the material of the source before it and served by the source after it, the data intact;
//! wrong material changes nothing; each move is audited and the log still verifies.

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use support::kms::{aws_env, moto, new_kms_key, start_with_aws};
use support::{app_token, oauth_body, Db, Server};

on_both_databases!(the_root_key_moves_between_every_source);

const CRED: &str = "/v1/ns/app/users/u1/credentials/spotify";
const PASSPHRASE: &str = "a passphrase for moving 41d0";
const CHEAP_KDF: [&str; 2] = ["--passphrase-kdf-mib", "19"];

/// `strongroom keys move-root ARGS` on `db` with `stdin`; (exit code, stdout, stderr).
fn move_root(db: &Db, data: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(support::BIN)
        .args(["keys", "move-root", "--data-dir", data.to_str().unwrap()])
        .args(db.flags())
        .args(args)
        .env_remove("STRONGROOM_ROOT_KEY")
        .envs(aws_env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    support::outcome(child.wait_with_output().unwrap())
}

fn start(db: &Db, data: &Path, extra: &[&str]) -> Server {
    start_with_aws(db, data, extra).expect("server should start")
}

fn seal_status(server: &Server) -> Value {
    server
        .request("GET", "/v1/sys/seal-status", None, None)
        .json()
}

fn the_root_key_moves_between_every_source(db: Db) {
    let Some(endpoint) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let server = db.start(&data, &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&oauth_body("at-move-1")))
            .status,
        200
    );
    drop(server);
    let key_file = match &db {
        Db::Sqlite => data.join("root.key"),
        Db::Postgres { root_key, .. } => {
            support::owner_only_file(&dir.path().join("pg.key"), root_key)
        }
    };
    let key_arg = ["--root-key-file", key_file.to_str().unwrap()];
    let reads = |server: &Server| {
        let r = server.request("GET", CRED, Some(&app), None);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("at-move-1"));
    };

    // A wrong key changes nothing.
    let wrong =
        support::owner_only_file(&dir.path().join("wrong.key"), &support::shared_root_key());
    let (code, _, err) = move_root(
        &db,
        &data,
        &[
            "--to",
            "shamir",
            "--shares",
            "3",
            "--threshold",
            "2",
            "--root-key-file",
            wrong.to_str().unwrap(),
        ],
        "",
    );
    assert_ne!(code, 0);
    assert!(err.contains("key check failed"), "{err}");

    // file → Shamir: the shares are printed once; the node starts sealed; two unseal it.
    let mut args = vec!["--to", "shamir", "--shares", "3", "--threshold", "2"];
    args.extend(key_arg);
    let (code, out, err) = move_root(&db, &data, &args, "");
    assert_eq!(code, 0, "{out}{err}");
    let shares: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(_, s)| s.trim().to_string()))
        .collect();
    assert_eq!(shares.len(), 3, "{out}");
    let server = start(&db, &data, &[]);
    assert_eq!(seal_status(&server)["key_source"], "shamir");
    for share in &shares[1..] {
        let body = json!({ "share": share }).to_string();
        let r = server.request("POST", "/v1/sys/unseal", None, Some(&body));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    reads(&server);
    drop(server);

    // Shamir → passphrase: two shares on standard input open it; a wrong share does not.
    let pass = support::owner_only_file(&dir.path().join("pass"), PASSPHRASE);
    let to_pass = [
        "--to",
        "passphrase",
        "--new-passphrase-file",
        pass.to_str().unwrap(),
        CHEAP_KDF[0],
        CHEAP_KDF[1],
    ];
    let (code, _, err) = move_root(
        &db,
        &data,
        &to_pass,
        &format!("{}\n{}\n", shares[0], &shares[0]),
    );
    assert_ne!(code, 0, "the same share twice is not two shares");
    assert!(!err.contains(&shares[0]), "{err}");
    let (code, out, err) = move_root(
        &db,
        &data,
        &to_pass,
        &format!("{}\n{}\n", shares[0], shares[2]),
    );
    assert_eq!(code, 0, "{out}{err}");
    let server = start(&db, &data, &["--passphrase-file", pass.to_str().unwrap()]);
    let status = seal_status(&server);
    assert_eq!(
        (status["key_source"].clone(), status["shamir"].clone()),
        (json!("passphrase"), Value::Null),
        "the shares no longer open anything"
    );
    reads(&server);
    drop(server);

    // passphrase → KMS: every start then asks KMS.
    let key_id = new_kms_key(&endpoint);
    let (code, out, err) = move_root(
        &db,
        &data,
        &[
            "--to",
            "kms",
            "--kms-key-id",
            &key_id,
            "--kms-endpoint",
            &endpoint,
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    let server = start(&db, &data, &["--kms-endpoint", &endpoint]);
    let status = seal_status(&server);
    assert_eq!(
        (
            status["sealed"].clone(),
            status["passphrase_sealed"].clone()
        ),
        (json!(false), json!(false))
    );
    reads(&server);
    drop(server);

    // KMS → a key file again.
    let back = dir.path().join("back.key");
    let (code, out, err) = move_root(
        &db,
        &data,
        &[
            "--to",
            "file",
            "--new-root-key-file",
            back.to_str().unwrap(),
            "--kms-endpoint",
            &endpoint,
        ],
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::metadata(&back).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let server = start(&db, &data, &["--root-key-file", back.to_str().unwrap()]);
    assert_eq!(seal_status(&server)["sealed"], false);
    reads(&server);
    let audit = server
        .request(
            "GET",
            "/v1/sys/audit?action=keys.move_root&limit=100",
            Some(&admin),
            None,
        )
        .json();
    let targets: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["target"].as_str())
        .collect();
    assert_eq!(targets, ["shamir", "passphrase", "kms", "file"], "{audit}");
    let verify = server
        .request("POST", "/v1/sys/audit/verify", Some(&admin), None)
        .json();
    assert_eq!(verify["valid"], true, "{verify}");
    let logs = server.logs();
    for share in &shares {
        assert!(!logs.contains(share.as_str()));
    }
    assert!(!logs.contains(PASSPHRASE));
}
