//! AWS KMS auto-unseal through the binary, on SQLite and PostgreSQL, against moto's KMS (a
//! real KMS API on loopback that enforces the encryption context but not key state): a new
//! store's root key is wrapped by a KMS key and never written to disk; every later start asks
//! KMS; a seal holds until `strongroom unseal --kms`; a KMS that is down at start leaves the
//! node sealed until it answers; a ciphertext made under another encryption context is refused
//! as tampering; an existing store moves its key under KMS; the AWS secret never leaks.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::files::Cable;
use support::kms::{kms_call, moto, new_kms_key, start_with_aws, SECRET};
use support::{app_token, holds, oauth_body, Db, Server};

on_both_databases!(
    kms_unseals_a_store_whose_root_key_is_on_no_disk,
    an_existing_store_moves_its_root_key_under_kms
);

const CRED: &str = "/v1/ns/app/users/u1/credentials/spotify";
fn seal_status(server: &Server) -> Value {
    server
        .request("GET", "/v1/sys/seal-status", None, None)
        .json()
}

fn wait_unsealed(server: &Server, within: Duration) {
    let deadline = Instant::now() + within;
    while seal_status(server)["sealed"] != false {
        assert!(Instant::now() < deadline, "the node never auto-unsealed");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn kms_unseals_a_store_whose_root_key_is_on_no_disk(db: Db) {
    let Some(endpoint) = moto() else { return };
    let key_id = new_kms_key(&endpoint);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let at = ["--kms-endpoint", endpoint.as_str()];

    // Credentials are required, and checked before anything is made.
    let mut flags = db.flags();
    flags.extend(["--kms-key-id", &key_id, at[0], at[1]].map(String::from));
    let f: Vec<&str> = flags.iter().map(String::as_str).collect();
    let err = Server::try_start(&data, &f, &[("AWS_REGION", "us-east-1")])
        .err()
        .expect("no credentials, no start");
    assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");

    let mut server = start_with_aws(&db, &data, &["--kms-key-id", &key_id, at[0], at[1]])
        .expect("a new store starts with its root key wrapped by KMS");
    assert!(!data.join("root.key").exists(), "no key file is written");
    let status = seal_status(&server);
    assert_eq!(
        (status["sealed"].clone(), status["key_source"].clone()),
        (json!(false), json!("kms"))
    );
    let vault = server.request("GET", "/vault/v1/sys/seal-status", None, None);
    assert_eq!(vault.json()["type"], "awskms");
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&oauth_body("at-kms-1")))
            .status,
        200
    );
    server.stop();

    // Every later start asks KMS: no key id needed (the wrapped key names its own).
    let mut server = start_with_aws(&db, &data, &at).expect("auto-unseal");
    assert_eq!(seal_status(&server)["sealed"], false);
    let r = server.request("GET", CRED, Some(&app), None);
    assert!(r.body.contains("at-kms-1"), "{}", r.body);

    // An operator's seal holds across a restart until `unseal --kms`.
    assert_eq!(server.cli(&admin, &["seal"]).0, 0);
    server.stop();
    let mut server = start_with_aws(&db, &data, &at).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(seal_status(&server)["sealed"], true, "the seal stands");
    let (code, out, err) = server.cli("", &["unseal", "--kms"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(server.request("GET", CRED, Some(&app), None).status, 200);
    server.stop();

    // KMS down at start: the node serves sealed, then unseals by itself once KMS answers.
    let cable = Cable::to(&endpoint);
    cable.cut();
    let mut server = start_with_aws(&db, &data, &["--kms-endpoint", &cable.addr]).unwrap();
    assert_eq!(seal_status(&server)["sealed"], true);
    let r = server.request("GET", CRED, Some(&app), None);
    assert_eq!(r.code(), "sealed", "{}", r.body);
    let r = server.request("POST", "/v1/sys/unseal", None, Some(r#"{"kms": true}"#));
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "kms_unavailable"),
        "{}",
        r.body
    );
    cable.mend();
    wait_unsealed(&server, Duration::from_secs(20));
    assert_eq!(server.request("GET", CRED, Some(&app), None).status, 200);
    let logs = server.logs();
    assert!(logs.contains("KMS did not answer"), "{logs}");
    server.stop();

    // A ciphertext of the same KMS key made under another encryption context cannot be
    // passed off as the wrapped root key: refused as tampering, never opened.
    let foreign = kms_call(
        &endpoint,
        "Encrypt",
        &json!({"KeyId": key_id, "Plaintext": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                "EncryptionContext": {"app": "other"}}),
    )["CiphertextBlob"]
        .as_str()
        .unwrap()
        .to_string();
    let stored = db.blobs(&data, "SELECT value FROM meta WHERE key = 'root_key_kms'");
    let mut swapped: Value = serde_json::from_slice(&stored[0]).unwrap();
    swapped["ciphertext"] = json!(foreign);
    let swapped = serde_json::to_vec(&swapped).unwrap();
    db.tamper(
        &data,
        &format!(
            "UPDATE meta SET value = {} WHERE key = 'root_key_kms'",
            db.blob(&swapped)
        ),
    );
    let err = start_with_aws(&db, &data, &at)
        .err()
        .expect("a swapped key is refused");
    assert!(
        err.contains("integrity") || err.contains("altered"),
        "{err}"
    );
    db.tamper(
        &data,
        &format!(
            "UPDATE meta SET value = {} WHERE key = 'root_key_kms'",
            db.blob(&stored[0])
        ),
    );
    let server = start_with_aws(&db, &data, &at).unwrap();
    assert_eq!(server.request("GET", CRED, Some(&app), None).status, 200);

    let dump = db.dump(&data);
    assert!(!holds(&dump, SECRET), "the AWS secret reached the database");
    assert!(
        !server.logs().contains(SECRET),
        "the AWS secret reached the log"
    );
    let audit = server
        .request("GET", "/v1/sys/audit?limit=1000", Some(&admin), None)
        .body;
    assert!(audit.contains("unseal-kms"), "the KMS unseal is audited");
    assert!(!audit.contains(SECRET));
}

fn an_existing_store_moves_its_root_key_under_kms(db: Db) {
    let Some(endpoint) = moto() else { return };
    let key_id = new_kms_key(&endpoint);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let server = db.start(&data, &[]);
    let app = app_token(&server, "app", &["read", "write"]);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&oauth_body("at-moved-kms")))
            .status,
        200
    );
    drop(server);
    let key_path = match &db {
        Db::Sqlite => data.join("root.key"),
        Db::Postgres { root_key, .. } => {
            support::owner_only_file(&dir.path().join("pg-root.key"), root_key)
        }
    };
    let kms = [
        "--kms-key-id",
        key_id.as_str(),
        "--kms-endpoint",
        endpoint.as_str(),
    ];
    // Without the key (PostgreSQL) the move is refused; with it the key goes under KMS.
    if db.is_postgres() {
        let err = start_with_aws(&db, &data, &kms)
            .err()
            .expect("the key is needed");
        assert!(err.contains("give it"), "{err}");
    }
    let mut with_key = kms.to_vec();
    with_key.extend(["--root-key-file", key_path.to_str().unwrap()]);
    drop(start_with_aws(&db, &data, &with_key).expect("the root key is wrapped"));
    std::fs::rename(&key_path, dir.path().join("offline.key")).unwrap();
    let server = start_with_aws(&db, &data, &["--kms-endpoint", &endpoint]).unwrap();
    assert_eq!(seal_status(&server)["key_source"], "kms");
    let r = server.request("GET", CRED, Some(&app), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("at-moved-kms"));
}
