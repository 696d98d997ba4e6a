//! The storage conformance suite: every backend runs these same checks unchanged.
//!
//! A backend's test file calls [`crate::conformance_tests!`] with an expression that builds a
//! fresh, empty store as `Option<S>` where `S` dereferences to a [`Storage`]; the macro emits
//! one `#[test]` per check. `None` means "skipped on explicit request": a backend that needs a
//! server (PostgreSQL) must panic, not return `None`, when its URL is required and missing.

use crate::*;

mod files;
mod names;
mod transit;
mod webhooks;
pub use files::*;
pub use names::*;
pub use transit::*;
pub use webhooks::*;

/// Emits one `#[test]` per conformance check; `$make` builds a fresh empty store.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            meta_put_if_absent, namespace_lifecycle, kek_rotation_is_check_and_set,
            min_decrypt_version_is_stored, users_insert_get_and_conflict, users_insert_in_one_batch, users_paginate_by_hash,
            rewrap_applies_only_to_unchanged_rows, credential_versions_roundtrip,
            credential_pointer_is_stored_with_each_version,
            credential_check_and_set, credential_batch_writes_commit_together, credential_unconditional_writes_append, credential_aborted_seal_writes_nothing,
            credential_max_versions_keep_setting, credential_max_versions_prunes_oldest,
            credentials_vanish_with_their_user, erasure_lifecycle, erasure_ledger_records_ships_and_replays, events_query_newest_first, events_across_a_namespace_and_counted,
            events_retention, events_are_purged_with_their_user, collections_roundtrip,
            records_versions_and_expiry, records_index_and_unique, records_vanish_with_their_user, providers_roundtrip,
            credential_statuses,
            credential_soft_delete_undelete_destroy, credential_delete_and_list,
            credentials_are_isolated, tokens_lifecycle, audit_chains_and_filters,
            audit_concurrent_appenders_form_one_chain, leases_have_one_holder,
            leases_release_only_your_own, lockouts_count_within_a_window, ping_succeeds,
            files_lifecycle, files_quotas, files_concurrent_admissions_respect_quota,
            files_vanish_with_their_user, file_policies_and_links,
            sealed_names_travel_with_their_rows, plain_credential_names_are_rekeyed_once,
            plain_record_keys_are_rekeyed_once, audit_filters_by_target,
            transit_keys_are_check_and_set, credential_max_versions_can_be_lowered_later,
            namespace_wrapping_is_replaced_whole, credential_pointers_are_listed_and_replaced,
            webhooks_fan_out_claim_in_order_and_redeliver, credential_status_is_written_with_its_version);
    };
    (@each $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let Some(store) = $make else { return };
                $crate::conformance::$check(&*store);
            }
        )*
    };
}

fn ns(s: &dyn Storage, name: &str) {
    let row = NamespaceRow {
        name: name.into(),
        created_at: 1,
        wrapped_index_key: vec![1, 2, 3],
        primary_kek_version: 1,
        min_decrypt_version: 1,
    };
    let kek = KekRow {
        namespace: name.into(),
        version: 1,
        wrapped_key: vec![9; 40],
        created_at: 1,
    };
    s.create_namespace(&row, &kek).expect("create namespace");
}

/// A namespace with users 1 and 2 (credentials are readable only while their user exists).
fn ns_with_users(s: &dyn Storage, name: &str) {
    ns(s, name);
    for hash in [1, 2] {
        s.insert_user(&user(name, hash)).expect("insert user");
    }
}

fn user(namespace: &str, hash: u8) -> UserRow {
    UserRow {
        namespace: namespace.into(),
        user_hash: vec![hash; 32],
        encrypted_id: vec![hash, 0xee],
        wrapped_key: vec![hash, 0xaa],
        kek_version: 1,
        created_at: 5,
    }
}

fn key(namespace: &str, hash: u8, name: &str) -> ItemKey {
    ItemKey {
        namespace: namespace.into(),
        user_hash: vec![hash; 32],
        name: name.into(),
    }
}

fn version(v: u64, max: u32) -> NewVersion {
    NewVersion {
        created_at: 100 + v as i64,
        max_versions: Some(max),
        default_max_versions: 10,
        sealed_name: Some(b"sealed-name".to_vec()),
        status: None,
    }
}

fn seal(v: u64) -> Result<Vec<u8>, String> {
    Ok(format!("ct-{v}").into_bytes())
}

fn pointer(v: u64) -> Vec<u8> {
    format!("pointer-{v}").into_bytes()
}

fn put(s: &dyn Storage, k: &ItemKey, v: u64) -> ItemMeta {
    s.put_credential_version(k, Some(v - 1), &version(v, 10), &seal, &pointer)
        .expect("put version")
}

/// A batch: the items that hold their check-and-set are written, in one transaction; a lost
/// check-and-set or a refused seal writes nothing of that item and spares the others.
pub fn credential_batch_writes_commit_together(s: &dyn Storage) {
    ns_with_users(s, "app");
    put(s, &key("app", 1, "taken"), 1);
    let (a, taken, b, refused) = (
        key("app", 1, "a"),
        key("app", 1, "taken"),
        key("app", 2, "b"),
        key("app", 2, "refused"),
    );
    let v1 = version(1, 10);
    let refuse = |_: u64| -> Result<Vec<u8>, String> { Err("no".into()) };
    let items = [
        BatchWrite {
            key: &a,
            expected_current: Some(0),
            new: &v1,
            seal: &seal,
            pointer: &pointer,
        },
        BatchWrite {
            key: &taken,
            expected_current: Some(0),
            new: &v1,
            seal: &seal,
            pointer: &pointer,
        },
        BatchWrite {
            key: &b,
            expected_current: None,
            new: &v1,
            seal: &seal,
            pointer: &pointer,
        },
        BatchWrite {
            key: &refused,
            expected_current: Some(0),
            new: &v1,
            seal: &refuse,
            pointer: &pointer,
        },
    ];
    let results = s.put_credential_versions(&items).unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].as_ref().unwrap().current_version, 1);
    assert!(matches!(results[1], Err(StorageError::Conflict(_))));
    assert_eq!(results[2].as_ref().unwrap().current_version, 1);
    assert!(matches!(results[3], Err(StorageError::Aborted(_))));
    for (k, expect) in [
        (&a, Some(1)),
        (&taken, Some(1)),
        (&b, Some(1)),
        (&refused, None),
    ] {
        let got = s
            .get_credential_version(k, None)
            .unwrap()
            .map(|(m, _)| m.current_version);
        assert_eq!(got, expect, "{}", k.name);
    }
    assert_eq!(
        s.get_credential_version(&a, None)
            .unwrap()
            .unwrap()
            .1
            .ciphertext,
        Some(b"ct-1".to_vec())
    );
    assert!(s.put_credential_versions(&[]).unwrap().is_empty());
}

/// Several users in one call: new ones inserted, an existing one left exactly as it was.
pub fn users_insert_in_one_batch(s: &dyn Storage) {
    ns(s, "app");
    s.insert_user(&user("app", 1)).unwrap();
    let mut changed = user("app", 1);
    changed.wrapped_key = vec![9, 9];
    let inserted = s
        .insert_users(&[user("app", 2), changed, user("app", 3)])
        .unwrap();
    assert_eq!(inserted, [true, false, true]);
    assert_eq!(
        s.get_user("app", &[1; 32]).unwrap().unwrap().wrapped_key,
        user("app", 1).wrapped_key
    );
    assert!(s.get_user("app", &[3; 32]).unwrap().is_some());
    assert!(s.insert_users(&[]).unwrap().is_empty());
}

pub fn meta_put_if_absent(s: &dyn Storage) {
    assert_eq!(s.get_meta("k").unwrap(), None);
    assert!(s.put_meta_if_absent("k", b"one").unwrap());
    assert!(!s.put_meta_if_absent("k", b"two").unwrap());
    assert_eq!(s.get_meta("k").unwrap().as_deref(), Some(&b"one"[..]));
    s.put_meta("k", b"three").unwrap();
    assert_eq!(s.get_meta("k").unwrap().as_deref(), Some(&b"three"[..]));
    s.put_meta("fresh", b"").unwrap();
    assert_eq!(s.get_meta("fresh").unwrap().as_deref(), Some(&b""[..]));
}

pub fn namespace_lifecycle(s: &dyn Storage) {
    assert!(s.get_namespace("app").unwrap().is_none());
    ns(s, "app");
    ns(s, "bot");
    let got = s.get_namespace("app").unwrap().expect("namespace exists");
    assert_eq!(got.wrapped_index_key, vec![1, 2, 3]);
    assert_eq!(got.primary_kek_version, 1);
    let again = s.create_namespace(
        &got,
        &KekRow {
            namespace: "app".into(),
            version: 1,
            wrapped_key: vec![],
            created_at: 1,
        },
    );
    assert!(
        matches!(again, Err(StorageError::AlreadyExists)),
        "{again:?}"
    );
    let names: Vec<_> = s
        .list_namespaces()
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["app", "bot"]);
}

pub fn kek_rotation_is_check_and_set(s: &dyn Storage) {
    ns(s, "app");
    let v2 = KekRow {
        namespace: "app".into(),
        version: 2,
        wrapped_key: vec![2; 40],
        created_at: 2,
    };
    s.add_primary_kek(&v2, 1, None).unwrap();
    let stale = KekRow {
        namespace: "app".into(),
        version: 2,
        wrapped_key: vec![3; 40],
        created_at: 3,
    };
    assert!(matches!(
        s.add_primary_kek(&stale, 1, None),
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(
        s.get_namespace("app").unwrap().unwrap().primary_kek_version,
        2
    );
    let versions: Vec<_> = s
        .list_keks("app")
        .unwrap()
        .into_iter()
        .map(|k| (k.version, k.wrapped_key[0]))
        .collect();
    assert_eq!(versions, [(1, 9), (2, 2)]);
}

pub fn namespace_wrapping_is_replaced_whole(s: &dyn Storage) {
    ns(s, "app");
    let v2 = KekRow {
        namespace: "app".into(),
        version: 2,
        wrapped_key: vec![2; 40],
        created_at: 2,
    };
    s.add_primary_kek(&v2, 1, None).unwrap();
    s.set_namespace_wrapping("app", &[7, 7], &[(1, vec![5; 40]), (2, vec![6; 40])])
        .unwrap();
    assert_eq!(
        s.get_namespace("app").unwrap().unwrap().wrapped_index_key,
        [7, 7]
    );
    let keys: Vec<_> = s
        .list_keks("app")
        .unwrap()
        .into_iter()
        .map(|k| (k.version, k.wrapped_key[0]))
        .collect();
    assert_eq!(keys, [(1, 5), (2, 6)]);
    // A version that does not exist fails the whole change.
    let missing = s.set_namespace_wrapping("app", &[8], &[(1, vec![1; 40]), (9, vec![1; 40])]);
    assert!(
        matches!(missing, Err(StorageError::Conflict(_))),
        "{missing:?}"
    );
    assert_eq!(
        s.get_namespace("app").unwrap().unwrap().wrapped_index_key,
        [7, 7]
    );
    assert_eq!(s.list_keks("app").unwrap()[0].wrapped_key[0], 5);
    assert!(matches!(
        s.set_namespace_wrapping("nope", &[1], &[]),
        Err(StorageError::Conflict(_))
    ));
}

pub fn min_decrypt_version_is_stored(s: &dyn Storage) {
    ns(s, "app");
    s.set_min_decrypt_version("app", 3).unwrap();
    assert_eq!(
        s.get_namespace("app").unwrap().unwrap().min_decrypt_version,
        3
    );
}

pub fn users_insert_get_and_conflict(s: &dyn Storage) {
    ns(s, "app");
    s.insert_user(&user("app", 7)).unwrap();
    assert_eq!(s.get_user("app", &[7; 32]).unwrap(), Some(user("app", 7)));
    assert!(s.get_user("app", &[8; 32]).unwrap().is_none());
    assert!(matches!(
        s.insert_user(&user("app", 7)),
        Err(StorageError::AlreadyExists)
    ));
}

pub fn users_paginate_by_hash(s: &dyn Storage) {
    ns(s, "app");
    ns(s, "other");
    for h in [5u8, 1, 3, 2, 4] {
        s.insert_user(&user("app", h)).unwrap();
    }
    s.insert_user(&user("other", 9)).unwrap();
    let first = s.list_users("app", None, 2).unwrap();
    assert_eq!(
        first.iter().map(|u| u.user_hash[0]).collect::<Vec<_>>(),
        [1, 2]
    );
    let rest = s.list_users("app", Some(&first[1].user_hash), 10).unwrap();
    assert_eq!(
        rest.iter().map(|u| u.user_hash[0]).collect::<Vec<_>>(),
        [3, 4, 5]
    );
}

pub fn rewrap_applies_only_to_unchanged_rows(s: &dyn Storage) {
    ns(s, "app");
    for h in 1..=3u8 {
        s.insert_user(&user("app", h)).unwrap();
    }
    assert_eq!(s.count_users_below_kek("app", 2).unwrap(), 3);
    let below = s.users_below_kek("app", 2, None, 2).unwrap();
    assert_eq!(below.len(), 2);
    let updates: Vec<Rewrap> = [1u8, 2]
        .iter()
        .map(|h| Rewrap {
            user_hash: vec![*h; 32],
            from_version: 1,
            to_version: 2,
            wrapped_key: vec![*h, 0xbb],
        })
        .collect();
    assert_eq!(s.rewrap_users("app", &updates).unwrap(), 2);
    // Replaying the same batch finds the rows changed and applies nothing.
    assert_eq!(s.rewrap_users("app", &updates).unwrap(), 0);
    assert_eq!(s.count_users_below_kek("app", 2).unwrap(), 1);
    let one = s.get_user("app", &[1; 32]).unwrap().unwrap();
    assert_eq!((one.kek_version, one.wrapped_key), (2, vec![1, 0xbb]));
    let left = s.users_below_kek("app", 2, None, 10).unwrap();
    assert_eq!(left.iter().map(|u| u.user_hash[0]).collect::<Vec<_>>(), [3]);
}

pub fn credential_versions_roundtrip(s: &dyn Storage) {
    ns_with_users(s, "app");
    let k = key("app", 1, "spotify");
    assert!(s.get_credential_version(&k, None).unwrap().is_none());
    put(s, &k, 1);
    let meta = put(s, &k, 2);
    assert_eq!((meta.current_version, meta.oldest_version), (2, 1));
    let (meta, latest) = s.get_credential_version(&k, None).unwrap().unwrap();
    assert_eq!(meta.current_version, 2);
    assert_eq!(latest.ciphertext.as_deref(), Some(&b"ct-2"[..]));
    let (_, old) = s.get_credential_version(&k, Some(1)).unwrap().unwrap();
    assert_eq!(old.ciphertext.as_deref(), Some(&b"ct-1"[..]));
    assert!(s.get_credential_version(&k, Some(3)).unwrap().is_none());
    // The same reads with the user's row alongside.
    let (meta_too, latest_too, user) = s
        .get_credential_version_and_user(&k, None)
        .unwrap()
        .unwrap();
    assert_eq!((meta_too, latest_too), (meta, latest));
    assert_eq!(Some(user), s.get_user("app", &k.user_hash).unwrap());
    let (_, old_too, _) = s
        .get_credential_version_and_user(&k, Some(1))
        .unwrap()
        .unwrap();
    assert_eq!(old_too, old);
    assert!(s
        .get_credential_version_and_user(&k, Some(3))
        .unwrap()
        .is_none());
    assert!(s
        .get_credential_version_and_user(&key("app", 2, "spotify"), None)
        .unwrap()
        .is_none());
    let versions: Vec<_> = s
        .list_credential_versions(&k)
        .unwrap()
        .iter()
        .map(|v| (v.version, v.ciphertext.is_none()))
        .collect();
    assert_eq!(versions, [(1, true), (2, true)]);
    assert_eq!(
        s.get_credential_meta(&k).unwrap().unwrap().current_version,
        2
    );
}

pub fn credential_pointer_is_stored_with_each_version(s: &dyn Storage) {
    ns_with_users(s, "app");
    let k = key("app", 1, "spotify");
    assert_eq!(put(s, &k, 1).pointer, Some(pointer(1)));
    put(s, &k, 2);
    let (meta, _) = s.get_credential_version(&k, None).unwrap().unwrap();
    assert_eq!(meta.pointer, Some(pointer(2)));
    assert_eq!(
        s.get_credential_meta(&k).unwrap().unwrap().pointer,
        Some(pointer(2))
    );
    let listed = s.list_credentials("app", &k.user_hash, None, 10).unwrap();
    assert_eq!(listed[0].1.pointer, Some(pointer(2)));
    // Only rows without one are listed for the upgrade, and a set one is never overwritten.
    assert!(s.credentials_without_pointer(None, 10).unwrap().is_empty());
    assert!(!s.set_credential_pointer(&k, 2, b"other").unwrap());
    assert_eq!(
        s.get_credential_meta(&k).unwrap().unwrap().pointer,
        Some(pointer(2))
    );
}

pub fn credential_pointers_are_listed_and_replaced(s: &dyn Storage) {
    ns_with_users(s, "app");
    let a = key("app", 1, "a");
    let b = key("app", 2, "b");
    put(s, &a, 1);
    put(s, &a, 2);
    put(s, &b, 1);
    let all = s.credential_pointers(None, 10).unwrap();
    let seen: Vec<_> = all
        .iter()
        .map(|p| (p.key.name.as_str(), p.current_version, p.pointer.clone()))
        .collect();
    assert_eq!(
        seen,
        [("a", 2, Some(pointer(2))), ("b", 1, Some(pointer(1)))]
    );
    let page = s.credential_pointers(Some(&all[0].key), 10).unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].key, b);
    // Only while the version is still current.
    assert!(!s.replace_credential_pointer(&a, 1, b"stale").unwrap());
    assert!(s.replace_credential_pointer(&a, 2, b"new").unwrap());
    assert_eq!(
        s.get_credential_meta(&a)
            .unwrap()
            .unwrap()
            .pointer
            .as_deref(),
        Some(&b"new"[..])
    );
}

pub fn credential_check_and_set(s: &dyn Storage) {
    ns_with_users(s, "app");
    let k = key("app", 1, "c");
    put(s, &k, 1);
    assert!(matches!(
        s.put_credential_version(&k, Some(0), &version(1, 10), &seal, &pointer),
        Err(StorageError::Conflict(_))
    ));
    assert!(matches!(
        s.put_credential_version(&k, Some(5), &version(6, 10), &seal, &pointer),
        Err(StorageError::Conflict(_))
    ));
    put(s, &k, 2);
    let (_, v) = s.get_credential_version(&k, None).unwrap().unwrap();
    assert_eq!(v.ciphertext.as_deref(), Some(&b"ct-2"[..]));
}

pub fn credential_unconditional_writes_append(s: &dyn Storage) {
    ns_with_users(s, "app");
    let k = key("app", 1, "c");
    for expected in 1..=3u64 {
        let meta = s
            .put_credential_version(&k, None, &version(expected, 10), &seal, &pointer)
            .unwrap();
        assert_eq!(meta.current_version, expected);
    }
    let (_, v) = s.get_credential_version(&k, None).unwrap().unwrap();
    assert_eq!(
        v.ciphertext.as_deref(),
        Some(&b"ct-3"[..]),
        "seal receives the version it writes"
    );
}

pub fn credential_aborted_seal_writes_nothing(s: &dyn Storage) {
    ns_with_users(s, "app");
    let k = key("app", 1, "c");
    put(s, &k, 1);
    let failing = |_: u64| -> Result<Vec<u8>, String> { Err("no".into()) };
    let result = s.put_credential_version(&k, None, &version(2, 10), &failing, &pointer);
    assert!(
        matches!(result, Err(StorageError::Aborted(_))),
        "{result:?}"
    );
    assert_eq!(
        s.get_credential_meta(&k).unwrap().unwrap().current_version,
        1
    );
    assert_eq!(s.list_credential_versions(&k).unwrap().len(), 1);
}

pub fn credential_max_versions_keep_setting(s: &dyn Storage) {
    ns_with_users(s, "app");
    let k = key("app", 1, "c");
    let keep = |n| NewVersion {
        created_at: 1,
        max_versions: n,
        default_max_versions: 4,
        sealed_name: Some(b"sealed-name".to_vec()),
        status: None,
    };
    s.put_credential_version(&k, None, &keep(None), &seal, &pointer)
        .unwrap();
    assert_eq!(
        s.get_credential_meta(&k).unwrap().unwrap().max_versions,
        4,
        "a new credential takes the default"
    );
    s.put_credential_version(&k, None, &keep(Some(2)), &seal, &pointer)
        .unwrap();
    for _ in 0..3 {
        s.put_credential_version(&k, None, &keep(None), &seal, &pointer)
            .unwrap();
    }
    let meta = s.get_credential_meta(&k).unwrap().unwrap();
    assert_eq!(
        (meta.max_versions, meta.current_version, meta.oldest_version),
        (2, 5, 4),
        "the setting is kept"
    );
}

pub fn credential_max_versions_prunes_oldest(s: &dyn Storage) {
    ns_with_users(s, "app");
    let k = key("app", 1, "c");
    for v in 1..=5 {
        s.put_credential_version(&k, Some(v - 1), &version(v, 3), &seal, &pointer)
            .unwrap();
    }
    let versions: Vec<_> = s
        .list_credential_versions(&k)
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, [3, 4, 5]);
    let meta = s.get_credential_meta(&k).unwrap().unwrap();
    assert_eq!(
        (meta.oldest_version, meta.current_version, meta.max_versions),
        (3, 5, 3)
    );
    assert!(s.get_credential_version(&k, Some(1)).unwrap().is_none());
}

pub fn credential_soft_delete_undelete_destroy(s: &dyn Storage) {
    ns_with_users(s, "app");
    let k = key("app", 1, "c");
    put(s, &k, 1);
    put(s, &k, 2);
    assert_eq!(s.set_credential_deleted(&k, &[2], Some(500)).unwrap(), 1);
    let (_, v2) = s.get_credential_version(&k, None).unwrap().unwrap();
    assert_eq!(v2.deleted_at, Some(500));
    assert_eq!(s.set_credential_deleted(&k, &[2], None).unwrap(), 1);
    assert_eq!(
        s.get_credential_version(&k, None)
            .unwrap()
            .unwrap()
            .1
            .deleted_at,
        None
    );
    assert_eq!(s.destroy_credential_versions(&k, &[1, 99]).unwrap(), 1);
    let (_, v1) = s.get_credential_version(&k, Some(1)).unwrap().unwrap();
    assert!(v1.destroyed && v1.ciphertext.is_none());
    assert_eq!(
        s.set_credential_deleted(&k, &[1], None).unwrap(),
        0,
        "a destroyed version cannot be undeleted"
    );
}

pub fn credential_delete_and_list(s: &dyn Storage) {
    ns_with_users(s, "app");
    for name in ["b", "a", "c"] {
        put(s, &key("app", 1, name), 1);
    }
    let page: Vec<_> = s
        .list_credentials("app", &[1; 32], None, 2)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(page, ["a", "b"]);
    let rest: Vec<_> = s
        .list_credentials("app", &[1; 32], Some("b"), 2)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(rest, ["c"]);
    assert!(s.delete_credential(&key("app", 1, "b")).unwrap());
    assert!(!s.delete_credential(&key("app", 1, "b")).unwrap());
    assert!(s
        .get_credential_version(&key("app", 1, "b"), Some(1))
        .unwrap()
        .is_none());
    // A deleted name starts again at version 1.
    put(s, &key("app", 1, "b"), 1);
}

pub fn credentials_are_isolated(s: &dyn Storage) {
    ns_with_users(s, "app");
    ns_with_users(s, "bot");
    put(s, &key("app", 1, "c"), 1);
    assert!(s
        .get_credential_version(&key("app", 2, "c"), None)
        .unwrap()
        .is_none());
    assert!(s
        .get_credential_version(&key("bot", 1, "c"), None)
        .unwrap()
        .is_none());
    assert!(s
        .list_credentials("app", &[2; 32], None, 10)
        .unwrap()
        .is_empty());
}

pub fn credentials_vanish_with_their_user(s: &dyn Storage) {
    ns_with_users(s, "app");
    put(s, &key("app", 1, "c"), 1);
    put(s, &key("app", 2, "c"), 1);
    assert!(s
        .begin_erasure("app", &[1; 32], 10, "ledger-mance-1", None)
        .unwrap());
    // The user's key is gone: its rows are no longer returned, even before they are purged.
    assert!(s
        .get_credential_version(&key("app", 1, "c"), None)
        .unwrap()
        .is_none());
    assert!(s
        .list_credentials("app", &[1; 32], None, 10)
        .unwrap()
        .is_empty());
    assert!(
        s.get_credential_version(&key("app", 2, "c"), None)
            .unwrap()
            .is_some(),
        "other users untouched"
    );
}

/// The erasure ledger: written with the erasure, shipped once, and replayed idempotently
/// (an entry is applied once, whether or not its user is still there).
pub fn erasure_ledger_records_ships_and_replays(s: &dyn Storage) {
    ns_with_users(s, "app");
    assert_eq!(s.ledger_head().unwrap(), (0, None));
    assert!(!s.begin_erasure("app", &[9; 32], 5, "0005-x", None).unwrap());
    assert_eq!(s.ledger_head().unwrap(), (0, None), "no user, no entry");
    assert!(s.begin_erasure("app", &[1; 32], 7, "0007-a", None).unwrap());
    let unshipped = s.unshipped_ledger(10).unwrap();
    assert_eq!(
        unshipped,
        vec![LedgerRow {
            id: "0007-a".into(),
            namespace: "app".into(),
            user_hash: vec![1; 32],
            erased_at: 7,
        }]
    );
    s.mark_ledger_shipped(&["0007-a".into()]).unwrap();
    assert!(s.unshipped_ledger(10).unwrap().is_empty());
    assert!(s.ledger_contains("0007-a").unwrap());
    assert!(!s.ledger_contains("0008-b").unwrap());

    let replayed = LedgerRow {
        id: "0008-b".into(),
        namespace: "app".into(),
        user_hash: vec![2; 32],
        erased_at: 8,
    };
    assert!(s.replay_erasure(&replayed).unwrap(), "the user row goes");
    assert!(s.get_user("app", &[2; 32]).unwrap().is_none());
    assert!(s.erasure_pending("app", &[2; 32]).unwrap());
    assert!(
        !s.replay_erasure(&replayed).unwrap(),
        "a second replay finds nothing"
    );
    assert!(
        s.unshipped_ledger(10).unwrap().is_empty(),
        "a replayed entry came from the outside ledger"
    );
    assert_eq!(s.ledger_head().unwrap(), (2, Some("0008-b".into())));
    let absent = LedgerRow {
        id: "0009-c".into(),
        namespace: "app".into(),
        user_hash: vec![7; 32],
        erased_at: 9,
    };
    assert!(!s.replay_erasure(&absent).unwrap());
    assert!(
        s.ledger_contains("0009-c").unwrap(),
        "recorded even without a user, so it is not replayed again"
    );
}

pub fn erasure_lifecycle(s: &dyn Storage) {
    ns_with_users(s, "app");
    for name in ["a", "b", "c"] {
        let k = key("app", 1, name);
        put(s, &k, 1);
        put(s, &k, 2);
    }
    put(s, &key("app", 2, "a"), 1);
    assert_eq!(
        s.count_user_items("app", &[1; 32]).unwrap(),
        9,
        "6 versions and 3 metadata rows"
    );
    assert!(
        !s.begin_erasure("app", &[9; 32], 10, "ledger-mance-2", None)
            .unwrap(),
        "no such user"
    );
    assert!(s
        .begin_erasure("app", &[1; 32], 10, "ledger-mance-3", None)
        .unwrap());
    assert!(
        s.get_user("app", &[1; 32]).unwrap().is_none(),
        "the wrapped data key is gone at once"
    );
    assert!(s.erasure_pending("app", &[1; 32]).unwrap());
    assert!(
        !s.begin_erasure("app", &[1; 32], 11, "ledger-mance-4", None)
            .unwrap(),
        "already erased"
    );
    let pending = s.pending_erasures(10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0].namespace.as_str(),
            pending[0].user_hash.clone(),
            pending[0].started_at
        ),
        ("app", vec![1; 32], 10)
    );
    assert_eq!(s.purge_user_items("app", &[1; 32], 4).unwrap(), 4);
    assert_eq!(s.count_user_items("app", &[1; 32]).unwrap(), 5);
    assert_eq!(s.purge_user_items("app", &[1; 32], 100).unwrap(), 5);
    assert_eq!(s.purge_user_items("app", &[1; 32], 100).unwrap(), 0);
    assert!(s.finish_erasure("app", &[1; 32]).unwrap());
    assert!(!s.erasure_pending("app", &[1; 32]).unwrap());
    assert!(s.pending_erasures(10).unwrap().is_empty());
    assert_eq!(
        s.count_user_items("app", &[2; 32]).unwrap(),
        2,
        "other users untouched"
    );
}

fn event(namespace: &str, hash: u8, time: i64, id: u8, kind: u8) -> EventRow {
    EventRow {
        namespace: namespace.into(),
        user_hash: vec![hash; 32],
        time,
        id: vec![id; 16],
        type_hash: vec![kind; 32],
        ciphertext: vec![time as u8, id],
    }
}

fn events_query(hash: u8) -> EventQuery {
    EventQuery {
        namespace: "app".into(),
        user_hash: vec![hash; 32],
        type_hash: None,
        since: None,
        until: None,
        before: None,
        limit: 100,
    }
}

/// Namespace-wide: every user's events newest first with a cursor across users, filtered by
/// type and time; counts per time bucket; an erased user's events are neither listed nor
/// counted.
pub fn events_across_a_namespace_and_counted(s: &dyn Storage) {
    ns_with_users(s, "app");
    ns_with_users(s, "other");
    s.append_events(&[
        event("app", 1, 1_000, 1, 7),
        event("app", 2, 1_000, 2, 7),
        event("app", 1, 2_500, 3, 8),
        event("app", 2, 3_000, 4, 7),
        event("other", 1, 2_000, 5, 7),
    ])
    .unwrap();
    let seen = |rows: Vec<EventRow>| {
        rows.iter()
            .map(|e| (e.time, e.user_hash[0], e.id[0]))
            .collect::<Vec<_>>()
    };
    let all = NamespaceEventQuery {
        namespace: "app".into(),
        type_hash: None,
        since: None,
        until: None,
        before: None,
        limit: 10,
    };
    assert_eq!(
        seen(s.query_namespace_events(&all).unwrap()),
        [(3_000, 2, 4), (2_500, 1, 3), (1_000, 2, 2), (1_000, 1, 1)]
    );
    let first = s
        .query_namespace_events(&NamespaceEventQuery {
            limit: 3,
            ..all.clone()
        })
        .unwrap();
    let last = first.last().unwrap();
    let next = NamespaceEventQuery {
        before: Some((last.time, last.user_hash.clone(), last.id.clone())),
        ..all.clone()
    };
    assert_eq!(
        seen(s.query_namespace_events(&next).unwrap()),
        [(1_000, 1, 1)],
        "the cursor orders ties by user"
    );
    let typed = NamespaceEventQuery {
        type_hash: Some(vec![7; 32]),
        since: Some(1_000),
        until: Some(2_999),
        ..all.clone()
    };
    assert_eq!(
        seen(s.query_namespace_events(&typed).unwrap()),
        [(1_000, 2, 2), (1_000, 1, 1)]
    );
    assert_eq!(
        s.count_events("app", &[7; 32], 0, 10_000, 1_000).unwrap(),
        [(1_000, 2), (3_000, 1)]
    );
    assert_eq!(
        s.count_events("app", &[7; 32], 0, 10_000, 10_000).unwrap(),
        [(0, 3)]
    );
    assert!(s
        .begin_erasure("app", &[2; 32], 5, "ledger-events-1", None)
        .unwrap());
    assert_eq!(
        seen(s.query_namespace_events(&all).unwrap()),
        [(2_500, 1, 3), (1_000, 1, 1)]
    );
    assert_eq!(
        s.count_events("app", &[7; 32], 0, 10_000, 1_000).unwrap(),
        [(1_000, 1)]
    );
}

pub fn events_query_newest_first(s: &dyn Storage) {
    ns_with_users(s, "app");
    s.append_events(&[
        event("app", 1, 10, 1, 7),
        event("app", 1, 20, 2, 8),
        event("app", 1, 20, 3, 7),
        event("app", 1, 30, 4, 7),
        event("app", 2, 15, 5, 7),
    ])
    .unwrap();
    let times = |rows: Vec<EventRow>| rows.iter().map(|e| (e.time, e.id[0])).collect::<Vec<_>>();
    assert_eq!(
        times(s.query_events(&events_query(1)).unwrap()),
        [(30, 4), (20, 3), (20, 2), (10, 1)]
    );
    let by_type = EventQuery {
        type_hash: Some(vec![7; 32]),
        ..events_query(1)
    };
    assert_eq!(
        times(s.query_events(&by_type).unwrap()),
        [(30, 4), (20, 3), (10, 1)]
    );
    let range = EventQuery {
        since: Some(15),
        until: Some(25),
        ..events_query(1)
    };
    assert_eq!(times(s.query_events(&range).unwrap()), [(20, 3), (20, 2)]);
    let page = EventQuery {
        limit: 2,
        ..events_query(1)
    };
    let first = s.query_events(&page).unwrap();
    let last = first.last().unwrap();
    let next = EventQuery {
        before: Some((last.time, last.id.clone())),
        ..page
    };
    assert_eq!(times(s.query_events(&next).unwrap()), [(20, 2), (10, 1)]);
    assert_eq!(
        s.query_events(&events_query(1)).unwrap()[0].ciphertext,
        vec![30, 4],
        "bytes come back as stored"
    );
    assert_eq!(times(s.query_events(&events_query(2)).unwrap()), [(15, 5)]);
}

pub fn events_retention(s: &dyn Storage) {
    ns_with_users(s, "app");
    ns_with_users(s, "bot");
    s.append_events(&[
        event("app", 1, 10, 1, 7),
        event("app", 2, 20, 2, 7),
        event("app", 1, 30, 3, 7),
        event("bot", 1, 5, 4, 7),
    ])
    .unwrap();
    assert!(s.event_retentions().unwrap().is_empty());
    s.set_event_retention("app", Some(30)).unwrap();
    s.set_event_retention("bot", Some(7)).unwrap();
    s.set_event_retention("bot", None).unwrap();
    assert_eq!(s.event_retentions().unwrap(), vec![("app".to_string(), 30)]);
    assert_eq!(
        s.delete_events_before("app", 25, 1).unwrap(),
        1,
        "bounded by the limit"
    );
    assert_eq!(s.delete_events_before("app", 25, 100).unwrap(), 1);
    assert_eq!(s.delete_events_before("app", 25, 100).unwrap(), 0);
    assert_eq!(s.query_events(&events_query(1)).unwrap().len(), 1);
    let bot = EventQuery {
        namespace: "bot".into(),
        ..events_query(1)
    };
    assert_eq!(
        s.query_events(&bot).unwrap().len(),
        1,
        "other namespaces untouched"
    );
}

pub fn events_are_purged_with_their_user(s: &dyn Storage) {
    ns_with_users(s, "app");
    s.append_events(&[
        event("app", 1, 10, 1, 7),
        event("app", 1, 20, 2, 7),
        event("app", 2, 20, 3, 7),
    ])
    .unwrap();
    put(s, &key("app", 1, "c"), 1);
    assert_eq!(s.count_user_items("app", &[1; 32]).unwrap(), 4);
    assert!(s
        .begin_erasure("app", &[1; 32], 1, "ledger-mance-5", None)
        .unwrap());
    assert!(
        s.query_events(&events_query(1)).unwrap().is_empty(),
        "unreadable once the user row is gone"
    );
    assert_eq!(s.purge_user_items("app", &[1; 32], 100).unwrap(), 4);
    assert_eq!(s.count_user_items("app", &[1; 32]).unwrap(), 0);
    assert_eq!(s.query_events(&events_query(2)).unwrap().len(), 1);
}

fn rkey(hash: u8, key: &str) -> RecordKey {
    RecordKey {
        namespace: "app".into(),
        collection: "profiles".into(),
        user_hash: vec![hash; 32],
        key: key.into(),
    }
}

fn rwrite(
    hash: u8,
    key: &str,
    expected: Option<u64>,
    expires_at: Option<i64>,
    index: Vec<IndexEntry>,
) -> RecordWrite {
    RecordWrite {
        key: rkey(hash, key),
        expected_version: expected,
        expires_at,
        now: 100,
        index,
        sealed_key: Some(format!("sealed-{key}").into_bytes()),
    }
}

fn index_entry(field: &str, value: u8, unique: bool) -> IndexEntry {
    IndexEntry {
        field: field.into(),
        value_hash: vec![value; 32],
        unique,
    }
}

pub fn collections_roundtrip(s: &dyn Storage) {
    ns(s, "app");
    assert!(s.get_collection("app", "profiles").unwrap().is_none());
    s.put_collection("app", "profiles", b"v1", 1).unwrap();
    s.put_collection("app", "cache", b"c", 1).unwrap();
    s.put_collection("app", "profiles", b"v2", 2).unwrap();
    assert_eq!(
        s.get_collection("app", "profiles").unwrap().as_deref(),
        Some(&b"v2"[..])
    );
    let names: Vec<_> = s
        .list_collections("app")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["cache", "profiles"]);
}

pub fn records_versions_and_expiry(s: &dyn Storage) {
    ns_with_users(s, "app");
    assert_eq!(
        s.put_record(&rwrite(1, "me", Some(0), None, vec![]), &seal)
            .unwrap(),
        1
    );
    assert!(matches!(
        s.put_record(&rwrite(1, "me", Some(0), None, vec![]), &seal),
        Err(StorageError::Conflict(_))
    ));
    assert_eq!(
        s.put_record(&rwrite(1, "me", None, Some(500), vec![]), &seal)
            .unwrap(),
        2
    );
    let row = s.get_record(&rkey(1, "me"), 499).unwrap().unwrap();
    assert_eq!(
        (row.version, row.expires_at, row.ciphertext.clone()),
        (2, Some(500), b"ct-2".to_vec())
    );
    assert!(
        s.get_record(&rkey(1, "me"), 500).unwrap().is_none(),
        "not returned the moment it expires"
    );
    assert!(s
        .list_records("app", "profiles", &[1; 32], None, 10, 500)
        .unwrap()
        .is_empty());
    // An expired record counts as absent for check-and-set, and versions start again.
    assert_eq!(
        s.put_record(
            &RecordWrite {
                now: 600,
                ..rwrite(1, "me", Some(0), None, vec![])
            },
            &seal
        )
        .unwrap(),
        1
    );
    s.put_record(&rwrite(1, "a", None, Some(150), vec![]), &seal)
        .unwrap();
    s.put_record(&rwrite(1, "b", None, None, vec![]), &seal)
        .unwrap();
    let keys: Vec<_> = s
        .list_records("app", "profiles", &[1; 32], None, 10, 120)
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(keys, ["a", "b", "me"]);
    let keys: Vec<_> = s
        .list_records("app", "profiles", &[1; 32], Some("a"), 1, 120)
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(keys, ["b"]);
    assert_eq!(
        s.purge_expired_records(200, 100).unwrap(),
        1,
        "only 'a' has expired by then"
    );
    assert!(s.delete_record(&rkey(1, "b")).unwrap());
    assert!(!s.delete_record(&rkey(1, "b")).unwrap());
    assert!(
        s.get_record(&rkey(2, "me"), 120).unwrap().is_none(),
        "owners are separate"
    );
}

pub fn records_index_and_unique(s: &dyn Storage) {
    ns_with_users(s, "app");
    s.put_record(
        &rwrite(
            1,
            "me",
            None,
            None,
            vec![index_entry("email", 7, true), index_entry("tier", 1, false)],
        ),
        &seal,
    )
    .unwrap();
    s.put_record(
        &rwrite(
            2,
            "me",
            None,
            None,
            vec![index_entry("email", 8, true), index_entry("tier", 1, false)],
        ),
        &seal,
    )
    .unwrap();
    let found = |field: &str, v: u8| {
        s.lookup_records("app", "profiles", field, &[v; 32], 120, 10)
            .unwrap()
            .found
            .into_iter()
            .map(|(r, _)| r.user_hash[0])
            .collect::<Vec<_>>()
    };
    assert_eq!(found("email", 7), [1]);
    // The settings come with the look-up (none before the collection exists), and each record
    // with its owner's row.
    let lookup = |v: u8| {
        s.lookup_records("app", "profiles", "email", &[v; 32], 120, 10)
            .unwrap()
    };
    assert_eq!(lookup(7).settings, None);
    s.put_collection("app", "profiles", b"settings", 1).unwrap();
    let hit = lookup(7);
    assert_eq!(hit.settings.as_deref(), Some(&b"settings"[..]));
    assert_eq!(hit.found.len(), 1);
    assert_eq!(hit.found[0].1, user("app", 1), "the owner's row");
    assert_eq!(hit.found[0].0.ciphertext, b"ct-1");
    let miss = lookup(99);
    assert_eq!(miss.settings.as_deref(), Some(&b"settings"[..]));
    assert!(miss.found.is_empty());
    let mut tier = found("tier", 1);
    tier.sort();
    assert_eq!(tier, [1, 2]);
    let taken = s.put_record(
        &rwrite(2, "me", None, None, vec![index_entry("email", 7, true)]),
        &seal,
    );
    assert!(
        matches!(&taken, Err(StorageError::UniqueViolation(f)) if f == "email"),
        "{taken:?}"
    );
    assert_eq!(
        s.get_record(&rkey(2, "me"), 120).unwrap().unwrap().version,
        1,
        "the failed write changed nothing"
    );
    assert_eq!(found("email", 8), [2]);
    // Rewriting replaces the entries: user 1 gives up 7, so user 2 may take it.
    s.put_record(
        &rwrite(1, "me", None, None, vec![index_entry("email", 9, true)]),
        &seal,
    )
    .unwrap();
    assert!(found("email", 7).is_empty());
    s.put_record(
        &rwrite(2, "me", None, None, vec![index_entry("email", 7, true)]),
        &seal,
    )
    .unwrap();
    assert_eq!(found("email", 7), [2]);
    // An expired holder of a unique value does not block a new one.
    s.put_record(
        &rwrite(
            1,
            "old",
            None,
            Some(110),
            vec![index_entry("nick", 3, true)],
        ),
        &seal,
    )
    .unwrap();
    let later = RecordWrite {
        now: 200,
        ..rwrite(2, "new", None, None, vec![index_entry("nick", 3, true)])
    };
    s.put_record(&later, &seal).unwrap();
    assert!(s.delete_record(&rkey(2, "me")).unwrap());
    assert!(
        found("email", 7).is_empty(),
        "deleting a record removes its entries"
    );
}

pub fn records_vanish_with_their_user(s: &dyn Storage) {
    ns_with_users(s, "app");
    s.put_record(
        &rwrite(1, "me", None, None, vec![index_entry("email", 7, true)]),
        &seal,
    )
    .unwrap();
    s.put_record(&rwrite(2, "me", None, None, vec![]), &seal)
        .unwrap();
    assert_eq!(s.count_user_items("app", &[1; 32]).unwrap(), 1);
    assert!(s
        .begin_erasure("app", &[1; 32], 1, "ledger-mance-6", None)
        .unwrap());
    assert!(s.get_record(&rkey(1, "me"), 120).unwrap().is_none());
    assert!(s
        .lookup_records("app", "profiles", "email", &[7; 32], 120, 10)
        .unwrap()
        .found
        .is_empty());
    assert_eq!(s.purge_user_items("app", &[1; 32], 100).unwrap(), 1);
    assert_eq!(s.count_user_items("app", &[1; 32]).unwrap(), 0);
    assert!(s.get_record(&rkey(2, "me"), 120).unwrap().is_some());
}

pub fn providers_roundtrip(s: &dyn Storage) {
    ns(s, "app");
    assert!(s.get_provider("app", "spotify").unwrap().is_none());
    s.put_provider("app", "spotify", b"cfg1", b"sealed1")
        .unwrap();
    s.put_provider("app", "reddit", b"cfg2", b"sealed2")
        .unwrap();
    s.put_provider("app", "spotify", b"cfg3", b"sealed3")
        .unwrap();
    assert_eq!(
        s.get_provider("app", "spotify").unwrap(),
        Some((b"cfg3".to_vec(), b"sealed3".to_vec()))
    );
    let names: Vec<_> = s
        .list_providers("app")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["reddit", "spotify"]);
    assert!(s.delete_provider("app", "reddit").unwrap());
    assert!(!s.delete_provider("app", "reddit").unwrap());
}

pub fn credential_statuses(s: &dyn Storage) {
    ns_with_users(s, "app");
    let row = |hash: u8, name: &str, status: &str| CredentialStatusRow {
        key: key("app", hash, name),
        status: status.into(),
        error: (status != "valid").then(|| "invalid_grant".to_string()),
        updated_at: 5,
        refresh_due_at: (status == "valid").then_some(100 + hash as i64),
        failures: 0,
        verified: (status == "valid").then_some(true),
        verified_at: (status == "valid").then_some(7),
        sealed_name: None,
    };
    assert!(s
        .get_credential_status(&key("app", 1, "c"))
        .unwrap()
        .is_none());
    s.set_credential_status(&row(1, "c", "refresh_failed"))
        .unwrap();
    s.set_credential_status(&row(2, "c", "needs_reauthorization"))
        .unwrap();
    s.set_credential_status(&row(1, "c", "valid")).unwrap();
    assert_eq!(
        s.get_credential_status(&key("app", 1, "c")).unwrap(),
        Some(row(1, "c", "valid"))
    );
    let mut refreshing = row(1, "c", "refreshing");
    refreshing.refresh_due_at = Some(101);
    s.set_credential_status(&refreshing).unwrap();
    let kept = s
        .get_credential_status(&key("app", 1, "c"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (kept.status.as_str(), kept.verified, kept.verified_at),
        ("refreshing", Some(true), Some(7)),
        "a status update without a verification keeps the stored one"
    );
    s.set_credential_status(&row(1, "c", "valid")).unwrap();
    assert_eq!(
        s.list_credential_statuses("app", None, 10).unwrap().len(),
        2
    );
    let failing = s
        .list_credential_statuses("app", Some("needs_reauthorization"), 10)
        .unwrap();
    assert_eq!(failing, vec![row(2, "c", "needs_reauthorization")]);
}

pub fn tokens_lifecycle(s: &dyn Storage) {
    let row = |id: &str| TokenRow {
        id: id.into(),
        secret_hash: vec![4; 32],
        name: format!("token {id}"),
        policy: b"{}".to_vec(),
        created_at: 1,
        expires_at: Some(99),
        revoked_at: None,
    };
    s.insert_token(&row("b")).unwrap();
    s.insert_token(&row("a")).unwrap();
    assert!(matches!(
        s.insert_token(&row("a")),
        Err(StorageError::AlreadyExists)
    ));
    assert_eq!(s.get_token("a").unwrap(), Some(row("a")));
    assert!(s.get_token("zz").unwrap().is_none());
    let ids: Vec<_> = s
        .list_tokens(None, 10)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(s.list_tokens(Some("a"), 10).unwrap().len(), 1);
    assert!(s.revoke_token("a", 50, b"revoked").unwrap());
    assert!(!s.revoke_token("a", 60, b"again").unwrap());
    assert!(!s.revoke_token("nope", 60, b"x").unwrap());
    let revoked = s.get_token("a").unwrap().unwrap();
    assert_eq!(
        (revoked.revoked_at, revoked.policy),
        (Some(50), b"revoked".to_vec())
    );
    assert!(s.set_token_policy("b", b"sealed").unwrap());
    assert!(!s.set_token_policy("nope", b"sealed").unwrap());
    assert_eq!(
        s.get_token("b").unwrap().unwrap().policy,
        b"sealed".to_vec()
    );
}

fn entry(time: i64, token: &str, action: &str) -> AuditEntry {
    AuditEntry {
        time,
        token_id: token.into(),
        action: action.into(),
        namespace: "app".into(),
        user_hash: "ab".into(),
        target: "c".into(),
        outcome: "ok".into(),
    }
}

fn test_hash(prev: &[u8], seq: u64, e: &AuditEntry) -> Vec<u8> {
    let mut h = prev.to_vec();
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(e.action.as_bytes());
    h.truncate(64);
    h
}

fn test_chain(prev: &[u8], seq: u64, e: &AuditEntry) -> Result<Vec<u8>, String> {
    Ok(test_hash(prev, seq, e))
}

pub fn audit_chains_and_filters(s: &dyn Storage) {
    let last = s
        .append_audit(
            &[entry(10, "t1", "read"), entry(20, "t2", "write")],
            &test_chain,
        )
        .unwrap();
    assert_eq!(last.seq, 2);
    assert_eq!(s.audit_tail().unwrap(), Some(last.clone()));
    let tail = s
        .append_audit(&[entry(30, "t1", "write")], &test_chain)
        .unwrap();
    let all = s
        .query_audit(&AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(all[0].hash, test_hash(&[], 1, &all[0].entry));
    assert_eq!(all[1].hash, test_hash(&all[0].hash, 2, &all[1].entry));
    assert_eq!(all[2].hash, test_hash(&all[1].hash, 3, &all[2].entry));
    assert_eq!(last.hash, all[1].hash, "an append returns the new tail");
    // A refusing chain function writes nothing.
    let refused = s.append_audit(
        &[entry(40, "t3", "read"), entry(50, "t3", "read")],
        &|prev, seq, e| {
            if seq > 4 {
                Err("no further".into())
            } else {
                Ok(test_hash(prev, seq, e))
            }
        },
    );
    assert!(
        matches!(refused, Err(StorageError::Aborted(_))),
        "{refused:?}"
    );
    assert_eq!(
        s.audit_tail().unwrap().unwrap().seq,
        3,
        "nothing of the refused batch stayed"
    );
    assert_eq!((tail.seq, &tail.hash), (3, &all[2].hash));
    assert_eq!(all[1].entry, entry(20, "t2", "write"));
    let by_token = s
        .query_audit(&AuditFilter {
            token_id: Some("t1".into()),
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_token.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 3]);
    let by_action = s
        .query_audit(&AuditFilter {
            action: Some("write".into()),
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_action.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
    let by_time = s
        .query_audit(&AuditFilter {
            since: Some(15),
            until: Some(25),
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_time.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
    let page = s
        .query_audit(&AuditFilter {
            after_seq: Some(1),
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);

    // Namespace, user, outcome; newest first, paged before a sequence number.
    let other = AuditEntry {
        namespace: "other".into(),
        user_hash: "cd".into(),
        outcome: "denied".into(),
        ..entry(60, "t1", "read")
    };
    s.append_audit(&[other], &test_chain).unwrap();
    let seqs = |f: AuditFilter| {
        s.query_audit(&AuditFilter { limit: 100, ..f })
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect::<Vec<_>>()
    };
    let only = |namespace: &str, user: &str, outcome: &str| AuditFilter {
        namespace: Some(namespace.into()),
        user_hash: Some(user.into()),
        outcome: Some(outcome.into()),
        ..Default::default()
    };
    assert_eq!(seqs(only("other", "cd", "denied")), [4]);
    assert_eq!(seqs(only("app", "ab", "ok")), [1, 2, 3]);
    assert!(seqs(only("app", "cd", "denied")).is_empty());
    let newest = AuditFilter {
        newest_first: true,
        ..Default::default()
    };
    assert_eq!(seqs(newest.clone()), [4, 3, 2, 1]);
    assert_eq!(
        seqs(AuditFilter {
            after_seq: Some(3),
            ..newest.clone()
        }),
        [2, 1],
        "a newest-first page ends before its cursor"
    );
    assert_eq!(
        seqs(AuditFilter {
            token_id: Some("t1".into()),
            ..newest
        }),
        [4, 3, 1]
    );
}

pub fn audit_concurrent_appenders_form_one_chain(s: &dyn Storage) {
    std::thread::scope(|scope| {
        for t in 0..4 {
            scope.spawn(move || {
                for i in 0..25 {
                    let e = entry(i, &format!("t{t}"), "read");
                    loop {
                        match s.append_audit(std::slice::from_ref(&e), &test_chain) {
                            Ok(_) => break,
                            Err(StorageError::Unavailable(_)) | Err(StorageError::Conflict(_)) => {
                                continue
                            }
                            Err(other) => panic!("append failed: {other}"),
                        }
                    }
                }
            });
        }
    });
    let all = s
        .query_audit(&AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 100);
    let mut prev: Vec<u8> = Vec::new();
    for (i, row) in all.iter().enumerate() {
        assert_eq!(row.seq, i as u64 + 1);
        assert_eq!(
            row.hash,
            test_hash(&prev, row.seq, &row.entry),
            "chain broken at {}",
            row.seq
        );
        prev = row.hash.clone();
    }
}

pub fn leases_have_one_holder(s: &dyn Storage) {
    assert!(s.get_lease("job").unwrap().is_none());
    assert!(s.acquire_lease("job", "node-a", 100, 200).unwrap());
    assert!(
        !s.acquire_lease("job", "node-b", 150, 250).unwrap(),
        "held and not expired"
    );
    assert!(
        s.acquire_lease("job", "node-a", 150, 300).unwrap(),
        "the holder renews"
    );
    let lease = s.get_lease("job").unwrap().unwrap();
    assert_eq!((lease.owner.as_str(), lease.expires_at), ("node-a", 300));
    assert!(
        s.acquire_lease("job", "node-b", 300, 400).unwrap(),
        "expired: another node takes over"
    );
    assert!(!s.acquire_lease("job", "node-a", 310, 410).unwrap());
    assert!(
        s.acquire_lease("other", "node-a", 310, 410).unwrap(),
        "leases are independent"
    );
    // Many contenders at once: exactly one wins.
    let winners: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                scope.spawn(move || {
                    s.acquire_lease("race", &format!("n{i}"), 1, 1000)
                        .unwrap_or(false)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum()
    });
    assert_eq!(winners, 1);
}

pub fn leases_release_only_your_own(s: &dyn Storage) {
    assert!(s.acquire_lease("job", "node-a", 100, 200).unwrap());
    assert!(!s.release_lease("job", "node-b").unwrap(), "not yours");
    assert_eq!(s.get_lease("job").unwrap().unwrap().owner, "node-a");
    assert!(s.release_lease("job", "node-a").unwrap());
    assert!(
        s.acquire_lease("job", "node-b", 101, 201).unwrap(),
        "free after release"
    );
}

pub fn lockouts_count_within_a_window(s: &dyn Storage) {
    let fail = |client: &str, now: i64| {
        s.record_auth_failure(client, now, 1000, 3, 5000, &[])
            .unwrap()
    };
    assert_eq!(fail("10.0.0.1", 0), None);
    assert_eq!(fail("10.0.0.1", 100), None);
    assert_eq!(fail("10.0.0.2", 150), None, "clients count separately");
    assert_eq!(
        fail("10.0.0.1", 200),
        Some(5200),
        "third failure within the window locks"
    );
    assert_eq!(
        s.active_lockouts(300).unwrap(),
        vec![("10.0.0.1".to_string(), 5200)]
    );
    assert_eq!(
        fail("10.0.0.1", 400),
        Some(5200),
        "still locked; the lock is not extended"
    );
    assert!(s.active_lockouts(5200).unwrap().is_empty(), "the lock ends");
    assert_eq!(
        fail("10.0.0.1", 6000),
        None,
        "after the lock the count starts again"
    );
    assert_eq!(fail("10.0.0.2", 2000), None, "an old window starts again");
    assert_eq!(fail("10.0.0.2", 2100), None);
    assert_eq!(fail("10.0.0.2", 2200), Some(7200));
    assert!(s.clear_lockout("10.0.0.2").unwrap(), "lifted");
    assert!(s.active_lockouts(2300).unwrap().is_empty());
    assert!(
        !s.clear_lockout("10.0.0.2").unwrap(),
        "nothing left to lift"
    );
    assert_eq!(fail("10.0.0.2", 2400), None, "counting starts again");
}

pub fn ping_succeeds(s: &dyn Storage) {
    s.ping().unwrap();
}
