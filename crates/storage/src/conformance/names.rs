//! Conformance checks for sealed names: a credential's sealed name and a record's sealed key
//! travel with every read of their rows; rows written before names were sealed are found and
//! re-keyed by their name id exactly once, with everything that hangs off them; the audit log
//! filters by target.

use super::{ns_with_users, pointer, rkey, rwrite, seal, test_chain};
use crate::*;

fn key(hash: u8, name: &str) -> ItemKey {
    ItemKey {
        namespace: "app".into(),
        user_hash: vec![hash; 32],
        name: name.into(),
    }
}

fn write(s: &dyn Storage, k: &ItemKey, sealed_name: Option<&[u8]>) -> ItemMeta {
    let new = NewVersion {
        created_at: 100,
        max_versions: None,
        default_max_versions: 10,
        sealed_name: sealed_name.map(<[u8]>::to_vec),
        status: None,
    };
    s.put_credential_version(k, None, &new, &seal, &pointer)
        .expect("put version")
}

fn status(k: &ItemKey) -> CredentialStatusRow {
    CredentialStatusRow {
        key: k.clone(),
        status: "valid".into(),
        error: None,
        updated_at: 5,
        refresh_due_at: Some(50),
        failures: 0,
        verified: None,
        verified_at: None,
        sealed_name: None,
    }
}

pub fn sealed_names_travel_with_their_rows(s: &dyn Storage) {
    ns_with_users(s, "app");
    let k = key(1, "~id-b");
    let meta = write(s, &k, Some(b"sealed b"));
    assert_eq!(meta.sealed_name.as_deref(), Some(&b"sealed b"[..]));
    write(s, &key(1, "~id-a"), Some(b"sealed a"));
    let got = s.get_credential_meta(&k).unwrap().unwrap();
    assert_eq!(got.sealed_name.as_deref(), Some(&b"sealed b"[..]));
    let (meta, _) = s.get_credential_version(&k, None).unwrap().unwrap();
    assert_eq!(meta.sealed_name.as_deref(), Some(&b"sealed b"[..]));
    let listed: Vec<_> = s
        .list_credentials("app", &[1; 32], None, 10)
        .unwrap()
        .into_iter()
        .map(|(id, m)| (id, m.sealed_name.unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            ("~id-a".to_string(), b"sealed a".to_vec()),
            ("~id-b".to_string(), b"sealed b".to_vec())
        ]
    );
    // Statuses keep their own sealed name (they outlive a revoked credential); a write without
    // one keeps the stored one.
    s.set_credential_status(&CredentialStatusRow {
        sealed_name: Some(b"sealed b".to_vec()),
        ..status(&k)
    })
    .unwrap();
    s.set_credential_status(&status(&k)).unwrap();
    let expect = Some(b"sealed b".to_vec());
    assert_eq!(
        s.get_credential_status(&k).unwrap().unwrap().sealed_name,
        expect
    );
    assert_eq!(s.due_refreshes(60, 10).unwrap()[0].sealed_name, expect);
    assert_eq!(
        s.list_credential_statuses("app", None, 10).unwrap()[0].sealed_name,
        expect
    );
    // A record's sealed key comes back from reads, listings and look-ups.
    let entry = IndexEntry {
        field: "email".into(),
        value_hash: vec![3; 32],
        unique: true,
    };
    s.put_record(&rwrite(1, "~rk", None, None, vec![entry]), &seal)
        .unwrap();
    let sealed = Some(b"sealed-~rk".to_vec());
    assert_eq!(
        s.get_record(&rkey(1, "~rk"), 0)
            .unwrap()
            .unwrap()
            .sealed_key,
        sealed
    );
    let listed = s
        .list_records("app", "profiles", &[1; 32], None, 10, 0)
        .unwrap();
    assert_eq!(listed[0].sealed_key, sealed);
    let found = s
        .lookup_records("app", "profiles", "email", &[3; 32], 0, 10)
        .unwrap()
        .found;
    assert_eq!(found[0].0.sealed_key, sealed);
}

pub fn plain_credential_names_are_rekeyed_once(s: &dyn Storage) {
    ns_with_users(s, "app");
    let plain = key(1, "spotify");
    write(s, &plain, None);
    let new = NewVersion {
        created_at: 101,
        max_versions: None,
        default_max_versions: 10,
        sealed_name: None,
        status: None,
    };
    s.put_credential_version(&plain, Some(1), &new, &seal, &pointer)
        .unwrap();
    s.set_credential_status(&status(&plain)).unwrap();
    write(s, &key(2, "github"), None);
    write(s, &key(1, "~already"), Some(b"sealed"));

    let legacy = s.credentials_with_plain_names(None, 10).unwrap();
    let names: Vec<_> = legacy.iter().map(|(k, _)| k.name.as_str()).collect();
    assert_eq!(
        names,
        ["spotify", "github"],
        "only rows without a sealed name, in key order"
    );
    assert_eq!(legacy[0].1.current_version, 2);
    let after = s
        .credentials_with_plain_names(Some(&legacy[0].0), 10)
        .unwrap();
    assert_eq!(after.len(), 1, "pages continue after the given key");

    // Nothing may be re-keyed onto an id that is taken.
    assert!(!s
        .seal_credential_name(&plain, "~already", b"x", b"p")
        .unwrap());
    assert!(s
        .seal_credential_name(&plain, "~spotify", b"sealed spotify", b"pointer-new")
        .unwrap());
    assert!(
        !s.seal_credential_name(&plain, "~spotify", b"again", b"again")
            .unwrap(),
        "once"
    );
    assert!(s.get_credential_meta(&plain).unwrap().is_none());
    assert!(s.list_credential_versions(&plain).unwrap().is_empty());
    assert!(s.get_credential_status(&plain).unwrap().is_none());
    let id = key(1, "~spotify");
    let (meta, v) = s.get_credential_version(&id, None).unwrap().unwrap();
    assert_eq!(
        (meta.current_version, v.ciphertext.as_deref()),
        (2, Some(&b"ct-2"[..]))
    );
    assert_eq!(meta.sealed_name.as_deref(), Some(&b"sealed spotify"[..]));
    assert_eq!(meta.pointer.as_deref(), Some(&b"pointer-new"[..]));
    assert_eq!(s.list_credential_versions(&id).unwrap().len(), 2);
    let moved = s.get_credential_status(&id).unwrap().unwrap();
    assert_eq!(
        (moved.status.as_str(), moved.sealed_name.as_deref()),
        ("valid", Some(&b"sealed spotify"[..]))
    );
    let names: Vec<_> = s
        .credentials_with_plain_names(None, 10)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k.name)
        .collect();
    assert_eq!(names, ["github"]);
}

pub fn plain_record_keys_are_rekeyed_once(s: &dyn Storage) {
    ns_with_users(s, "app");
    let entry = IndexEntry {
        field: "email".into(),
        value_hash: vec![3; 32],
        unique: true,
    };
    let legacy = |hash, key: &str, index| RecordWrite {
        sealed_key: None,
        ..rwrite(hash, key, None, None, index)
    };
    s.put_record(&legacy(1, "me", vec![entry]), &seal).unwrap();
    s.put_record(&legacy(2, "me", vec![]), &seal).unwrap();
    s.put_record(&rwrite(1, "~new", None, None, vec![]), &seal)
        .unwrap();
    let found = s.records_with_plain_keys(None, 10).unwrap();
    assert_eq!(found, [rkey(1, "me"), rkey(2, "me")]);
    assert_eq!(
        s.records_with_plain_keys(Some(&found[0]), 10).unwrap(),
        [rkey(2, "me")]
    );
    assert!(!s.seal_record_key(&rkey(1, "me"), "~new", b"x").unwrap());
    assert!(s
        .seal_record_key(&rkey(1, "me"), "~me", b"sealed me")
        .unwrap());
    assert!(!s.seal_record_key(&rkey(1, "me"), "~me", b"again").unwrap());
    assert!(s.get_record(&rkey(1, "me"), 0).unwrap().is_none());
    let row = s.get_record(&rkey(1, "~me"), 0).unwrap().unwrap();
    assert_eq!(
        (
            row.key.as_str(),
            row.ciphertext.as_slice(),
            row.sealed_key.as_deref()
        ),
        ("~me", &b"ct-1"[..], Some(&b"sealed me"[..]))
    );
    // The index entry follows the record, and still holds its value uniquely.
    let found = s
        .lookup_records("app", "profiles", "email", &[3; 32], 0, 10)
        .unwrap()
        .found;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0.key, "~me");
    let clash = IndexEntry {
        field: "email".into(),
        value_hash: vec![3; 32],
        unique: true,
    };
    assert!(matches!(
        s.put_record(&rwrite(2, "~other", None, None, vec![clash]), &seal),
        Err(StorageError::UniqueViolation(_))
    ));
    assert_eq!(
        s.records_with_plain_keys(None, 10).unwrap(),
        [rkey(2, "me")]
    );
}

pub fn audit_filters_by_target(s: &dyn Storage) {
    let entry = |target: &str| AuditEntry {
        time: 10,
        token_id: "t".into(),
        action: "credential.read".into(),
        namespace: "app".into(),
        user_hash: String::new(),
        target: target.into(),
        outcome: "ok".into(),
    };
    s.append_audit(&[entry("~a"), entry("~b"), entry("~a")], &test_chain)
        .unwrap();
    let seqs: Vec<u64> = s
        .query_audit(&AuditFilter {
            target: Some("~a".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [1, 3]);
}
