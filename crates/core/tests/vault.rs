//! The domain end to end on a real SQLite file: credentials, versions, tampering, keys, tokens
//! and the audit chain.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use strongroom_core::credentials::{CredentialData, PutOptions};
use strongroom_core::{
    Capability, CoreError, Policy, Principal, SystemClock, Vault, VaultSettings,
};
use strongroom_crypto::{Key, Root};
use strongroom_sqlite::SqliteStore;

struct Fixture {
    vault: Vault,
    db: PathBuf,
    root: [u8; 32],
    _dir: tempfile::TempDir,
}

fn open(db: &std::path::Path, root: &[u8; 32]) -> Result<Vault, CoreError> {
    let store = Arc::new(SqliteStore::open(db).unwrap());
    Vault::open(
        store,
        Key::<Root>::from_bytes(root).unwrap(),
        Arc::new(SystemClock),
        VaultSettings::default(),
    )
    .map(|o| o.vault)
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vault.db");
    let root = *Key::<Root>::generate().unwrap().expose_bytes();
    let vault = open(&db, &root).unwrap();
    vault.create_namespace(&admin(), "app").unwrap();
    Fixture {
        vault,
        db,
        root,
        _dir: dir,
    }
}

fn admin() -> Principal {
    Principal::system("test")
}

fn oauth(access: &str) -> CredentialData {
    serde_json::from_value(json!({
        "type": "oauth2",
        "access_token": access,
        "refresh_token": "refresh-xyz",
        "expires_at": "2030-01-01T00:00:00Z",
        "scope": "user-read-private",
        "token_type": "Bearer",
        "provider": "spotify",
        "extra": {"team": "t1"}
    }))
    .unwrap()
}

fn access_token(data: &CredentialData) -> String {
    match data {
        CredentialData::Oauth2(t) => t.access_token.expose().to_string(),
        CredentialData::Secret(_) => panic!("expected oauth2"),
    }
}

fn sql(db: &std::path::Path, statement: &str) -> usize {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute(statement, [])
        .unwrap()
}

#[test]
fn put_get_versions_and_history() {
    let f = fixture();
    let v = &f.vault;
    let who = admin();
    assert_eq!(
        v.put_credential(
            &who,
            "app",
            "telegram:1",
            "spotify",
            &oauth("a1"),
            PutOptions::default()
        )
        .unwrap()
        .version,
        1
    );
    assert_eq!(
        v.put_credential(
            &who,
            "app",
            "telegram:1",
            "spotify",
            &oauth("a2"),
            PutOptions::default()
        )
        .unwrap()
        .version,
        2
    );
    assert_eq!(
        access_token(
            &v.get_credential(&who, "app", "telegram:1", "spotify", None)
                .unwrap()
                .data
        ),
        "a2"
    );
    assert_eq!(
        access_token(
            &v.get_credential(&who, "app", "telegram:1", "spotify", Some(1))
                .unwrap()
                .data
        ),
        "a1"
    );
    let meta = v
        .credential_metadata(&who, "app", "telegram:1", "spotify")
        .unwrap();
    assert_eq!((meta.current_version, meta.versions.len()), (2, 2));
    assert!(v
        .credential_exists(&who, "app", "telegram:1", "spotify")
        .unwrap());
    assert!(!v
        .credential_exists(&who, "app", "telegram:2", "spotify")
        .unwrap());
    assert!(matches!(
        v.get_credential(&who, "app", "telegram:2", "spotify", None),
        Err(CoreError::NotFound(_))
    ));
}

#[test]
fn check_and_set_soft_delete_destroy() {
    let f = fixture();
    let v = &f.vault;
    let who = admin();
    let cas = |n| PutOptions {
        cas: Some(n),
        max_versions: None,
    };
    v.put_credential(&who, "app", "u", "c", &oauth("a1"), cas(0))
        .unwrap();
    assert!(matches!(
        v.put_credential(&who, "app", "u", "c", &oauth("x"), cas(0)),
        Err(CoreError::Conflict(_))
    ));
    v.put_credential(&who, "app", "u", "c", &oauth("a2"), cas(1))
        .unwrap();
    assert_eq!(
        v.delete_credential_versions(&who, "app", "u", "c", &[])
            .unwrap(),
        1
    );
    assert!(matches!(
        v.get_credential(&who, "app", "u", "c", None),
        Err(CoreError::Deleted(2))
    ));
    assert!(!v.credential_exists(&who, "app", "u", "c").unwrap());
    v.undelete_credential_versions(&who, "app", "u", "c", &[2])
        .unwrap();
    assert_eq!(
        access_token(&v.get_credential(&who, "app", "u", "c", None).unwrap().data),
        "a2"
    );
    v.destroy_credential_versions(&who, "app", "u", "c", &[1])
        .unwrap();
    assert!(matches!(
        v.get_credential(&who, "app", "u", "c", Some(1)),
        Err(CoreError::Destroyed(1))
    ));
    v.delete_credential(&who, "app", "u", "c").unwrap();
    assert!(matches!(
        v.get_credential(&who, "app", "u", "c", None),
        Err(CoreError::NotFound(_))
    ));
}

#[test]
fn tampered_ciphertext_is_an_integrity_error() {
    let f = fixture();
    let who = admin();
    f.vault
        .put_credential(
            &who,
            "app",
            "u1",
            "c",
            &oauth("secret-one"),
            PutOptions::default(),
        )
        .unwrap();
    // Flip one byte inside the ciphertext, directly in the SQLite file.
    let conn = rusqlite::Connection::open(&f.db).unwrap();
    let mut ct: Vec<u8> = conn
        .query_row("SELECT ciphertext FROM credential_versions", [], |r| {
            r.get(0)
        })
        .unwrap();
    ct[30] ^= 1;
    conn.execute("UPDATE credential_versions SET ciphertext = ?1", [&ct])
        .unwrap();
    let err = f
        .vault
        .get_credential(&who, "app", "u1", "c", None)
        .unwrap_err();
    assert!(matches!(err, CoreError::Integrity(_)), "{err:?}");
}

#[test]
fn ciphertext_moved_between_users_or_names_is_refused() {
    let f = fixture();
    let who = admin();
    let v = &f.vault;
    v.put_credential(
        &who,
        "app",
        "victim",
        "c",
        &oauth("victim-token"),
        PutOptions::default(),
    )
    .unwrap();
    v.put_credential(
        &who,
        "app",
        "victim",
        "d",
        &oauth("other"),
        PutOptions::default(),
    )
    .unwrap();
    v.put_credential(
        &who,
        "app",
        "attacker",
        "c",
        &oauth("attacker-token"),
        PutOptions::default(),
    )
    .unwrap();
    // Swap the two users' ciphertexts of name 'c', directly in the SQLite file. Rows are
    // stored under the name's keyed hash: 'c' is the id both users have.
    let c = "(SELECT name FROM credential_versions GROUP BY name HAVING COUNT(*) = 2)";
    let conn = rusqlite::Connection::open(&f.db).unwrap();
    let rows: Vec<(Vec<u8>, Vec<u8>)> = conn
        .prepare(&format!(
            "SELECT user_hash, ciphertext FROM credential_versions WHERE name = {c}"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 2);
    for (i, (hash, _)) in rows.iter().enumerate() {
        let other = &rows[1 - i].1;
        conn.execute(
            &format!("UPDATE credential_versions SET ciphertext = ?1 WHERE user_hash = ?2 AND name = {c}"),
            rusqlite::params![other, hash],
        )
        .unwrap();
    }
    assert!(matches!(
        v.get_credential(&who, "app", "attacker", "c", None),
        Err(CoreError::Integrity(_))
    ));
    assert!(matches!(
        v.get_credential(&who, "app", "victim", "c", None),
        Err(CoreError::Integrity(_))
    ));
    sql(&f.db, &format!("UPDATE credential_versions SET ciphertext = (SELECT ciphertext FROM credential_versions WHERE name = {c} LIMIT 1) WHERE name <> {c}"));
    assert!(matches!(
        v.get_credential(&who, "app", "victim", "d", None),
        Err(CoreError::Integrity(_))
    ));
    // Integrity failures are audited.
    v.flush_audit().unwrap();
    let count: i64 = rusqlite::Connection::open(SqliteStore::audit_path(&f.db))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM audit WHERE outcome = 'integrity_error'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, 3);
}

#[test]
fn no_plaintext_user_id_or_secret_in_the_database_file() {
    let f = fixture();
    let who = admin();
    f.vault
        .put_credential(
            &who,
            "app",
            "telegram:987654321",
            "spotify",
            &oauth("PLANTED-SECRET-4242"),
            PutOptions::default(),
        )
        .unwrap();
    f.vault.flush_audit().unwrap();
    drop(f.vault);
    let mut bytes = std::fs::read(&f.db).unwrap();
    for extra in ["-wal", "-shm"] {
        if let Ok(more) = std::fs::read(format!("{}{extra}", f.db.display())) {
            bytes.extend(more);
        }
    }
    for needle in ["PLANTED-SECRET-4242", "telegram:987654321", "refresh-xyz"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} found in the database"
        );
    }
}

#[test]
fn rotation_rewrap_and_retiring_old_versions() {
    let f = fixture();
    let who = admin();
    let v = &f.vault;
    for u in 0..30 {
        v.put_credential(
            &who,
            "app",
            &format!("user{u}"),
            "c",
            &oauth(&format!("t{u}")),
            PutOptions::default(),
        )
        .unwrap();
    }
    let status = v.rotate_key(&who, "app").unwrap();
    assert_eq!(
        (status.primary_version, status.users_on_old_versions),
        (2, 30)
    );
    assert!(matches!(
        v.set_min_decrypt_version(&who, "app", 2),
        Err(CoreError::KeysStillInUse { users: 30, .. })
    ));
    // Still readable under the old version; new users go to version 2.
    assert_eq!(
        access_token(
            &v.get_credential(&who, "app", "user3", "c", None)
                .unwrap()
                .data
        ),
        "t3"
    );
    v.put_credential(
        &who,
        "app",
        "newcomer",
        "c",
        &oauth("n"),
        PutOptions::default(),
    )
    .unwrap();
    let report = v.rewrap(&who, "app").unwrap();
    assert_eq!((report.rewrapped, report.remaining), (30, 0));
    v.set_min_decrypt_version(&who, "app", 2).unwrap();
    // A fresh process (empty caches) reads everything under version 2.
    drop(f.vault);
    let reopened = open(&f.db, &f.root).unwrap();
    for u in 0..30 {
        assert_eq!(
            access_token(
                &reopened
                    .get_credential(&who, "app", &format!("user{u}"), "c", None)
                    .unwrap()
                    .data
            ),
            format!("t{u}")
        );
    }
}

#[test]
fn wrong_root_key_is_refused() {
    let f = fixture();
    drop(f.vault);
    let other = *Key::<Root>::generate().unwrap().expose_bytes();
    assert!(matches!(open(&f.db, &other), Err(CoreError::WrongRootKey)));
    open(&f.db, &f.root).unwrap();
}

#[test]
fn tokens_authenticate_authorize_and_revoke() {
    let f = fixture();
    let v = &f.vault;
    let policy = Policy {
        namespaces: vec!["app".into()],
        capabilities: BTreeSet::from([Capability::Read]),
        rate_limit_per_sec: None,
    };
    let (info, token) = v.create_token(&admin(), "reader", policy, None).unwrap();
    let who = v.authenticate(token.expose_text(), "127.0.0.1").unwrap();
    assert_eq!(who.token_id, info.id);
    // From memory once cached, never for a wrong secret.
    let cached = v.authenticate_cached(token.expose_text()).unwrap();
    assert_eq!(
        (cached.token_id, cached.policy),
        (who.token_id.clone(), who.policy.clone())
    );
    let mut wrong = token.expose_text().to_string();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    assert!(v.authenticate_cached(&wrong).is_none());
    assert!(v.authenticate_cached("sr_garbage").is_none());
    assert!(matches!(
        v.put_credential(&who, "app", "u", "c", &oauth("x"), PutOptions::default()),
        Err(CoreError::Forbidden(_))
    ));
    assert!(matches!(
        v.create_namespace(&who, "mine"),
        Err(CoreError::Forbidden(_))
    ));
    assert!(matches!(
        v.authenticate(
            "sr_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "127.0.0.1"
        ),
        Err(CoreError::Unauthenticated(_))
    ));
    v.revoke_token(&admin(), &info.id).unwrap();
    assert!(
        v.authenticate_cached(token.expose_text()).is_none(),
        "a revoked token is dropped from the cache"
    );
    assert!(matches!(
        v.authenticate(token.expose_text(), "127.0.0.1"),
        Err(CoreError::Unauthenticated(_))
    ));
}

#[test]
fn audit_chain_verifies_and_detects_edits_and_removals() {
    let f = fixture();
    let who = admin();
    for i in 0..10 {
        f.vault
            .put_credential(
                &who,
                "app",
                "u",
                "c",
                &oauth(&format!("t{i}")),
                PutOptions::default(),
            )
            .unwrap();
    }
    let report = f.vault.verify_audit(&who).unwrap();
    assert!(report.valid, "{report:?}");
    assert!(report.entries_checked >= 11);
    sql(
        &SqliteStore::audit_path(&f.db),
        "UPDATE audit SET outcome = 'denied' WHERE seq = 5",
    );
    let report = f.vault.verify_audit(&who).unwrap();
    assert_eq!((report.valid, report.first_bad_seq), (false, Some(5)));
    sql(
        &SqliteStore::audit_path(&f.db),
        "UPDATE audit SET outcome = 'ok' WHERE seq = 5",
    );
    assert!(f.vault.verify_audit(&who).unwrap().valid);
    sql(
        &SqliteStore::audit_path(&f.db),
        "DELETE FROM audit WHERE seq = 7",
    );
    let report = f.vault.verify_audit(&who).unwrap();
    assert_eq!((report.valid, report.first_bad_seq), (false, Some(7)));
}

#[test]
fn bad_input_is_named() {
    let f = fixture();
    let who = admin();
    let v = &f.vault;
    let err = v
        .put_credential(&who, "app", "a/b", "c", &oauth("x"), PutOptions::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "user: may only contain printable ASCII except space / \\ ? # %"
    );
    let err = v
        .put_credential(&who, "app", "u", "..", &oauth("x"), PutOptions::default())
        .unwrap_err();
    assert!(err.to_string().starts_with("name:"), "{err}");
    let empty: CredentialData =
        serde_json::from_value(json!({"type": "oauth2", "access_token": ""})).unwrap();
    assert!(v
        .put_credential(&who, "app", "u", "c", &empty, PutOptions::default())
        .unwrap_err()
        .to_string()
        .starts_with("access_token"));
    let bad_time: CredentialData = serde_json::from_value(
        json!({"type": "oauth2", "access_token": "x", "expires_at": "tomorrow"}),
    )
    .unwrap();
    assert!(v
        .put_credential(&who, "app", "u", "c", &bad_time, PutOptions::default())
        .unwrap_err()
        .to_string()
        .starts_with("expires_at"));
    // Integer Unix seconds, as many apps store them, are kept as RFC 3339.
    let unix: CredentialData = serde_json::from_value(
        json!({"type": "oauth2", "access_token": "x", "expires_at": 1767225600}),
    )
    .unwrap();
    let CredentialData::Oauth2(set) = &unix else {
        panic!("an oauth2 token set")
    };
    assert_eq!(set.expires_at.as_deref(), Some("2026-01-01T00:00:00Z"));
    for bad in [
        json!(-1),
        json!(1.5),
        json!(true),
        json!(253_402_300_800_i64),
    ] {
        let err = serde_json::from_value::<CredentialData>(
            json!({"type": "oauth2", "access_token": "x", "expires_at": bad}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("expires_at:"), "{err}");
    }
    assert!(serde_json::from_value::<CredentialData>(
        json!({"type": "oauth2", "access_token": "x", "bogus": 1})
    )
    .is_err());
    assert!(matches!(
        v.get_credential(&who, "nope", "u", "c", None),
        Err(CoreError::NotFound("namespace"))
    ));
}

/// A job that panics once, then fails once, then works.
struct Flaky(std::sync::atomic::AtomicU32);

impl strongroom_core::jobs::Job for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    fn run_once(&self, _vault: &Vault) -> Result<bool, CoreError> {
        match self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => panic!("the first run panics"),
            1 => Err(CoreError::Internal("the second run fails".into())),
            _ => Ok(false),
        }
    }
}

#[test]
fn a_panicking_job_is_restarted_and_its_failures_are_visible() {
    use strongroom_core::jobs::{JobRunner, JobSettings};
    let f = fixture();
    let runner = JobRunner::start(
        f.vault.clone(),
        vec![Arc::new(Flaky(Default::default()))],
        JobSettings {
            node_id: "n1".into(),
            interval: std::time::Duration::from_millis(5),
            lease_ttl: std::time::Duration::from_secs(30),
        },
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let health = loop {
        let leases = f.vault.job_leases(&admin()).unwrap();
        let flaky = leases.into_iter().find(|l| l.name == "flaky");
        if let Some(h) = flaky.and_then(|l| l.this_node) {
            if h.runs >= 3 && h.last_success_at.is_some() {
                break h;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job never recovered"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    runner.stop();
    assert_eq!((health.restarts, health.failures), (1, 2), "{health:?}");
    assert_eq!(health.state, "idle");
    assert_eq!(
        health.last_error.as_deref(),
        Some("internal error: the second run fails")
    );
}
