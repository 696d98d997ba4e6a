//! Conformance checks for transit keys (one check-and-set row per key) and for changing how
//! many versions a credential keeps.

use super::{key, ns_with_users, put};
use crate::*;

fn row(name: &str, revision: u64, body: &[u8]) -> TransitKeyRow {
    TransitKeyRow {
        namespace: "app".into(),
        name: name.into(),
        revision,
        body: body.to_vec(),
    }
}

pub fn transit_keys_are_check_and_set(s: &dyn Storage) {
    ns_with_users(s, "app");
    assert!(s.get_transit_key("app", "k").unwrap().is_none());
    assert!(s.put_transit_key(&row("k", 1, b"v1"), None).unwrap());
    assert!(
        !s.put_transit_key(&row("k", 1, b"again"), None).unwrap(),
        "created once"
    );
    assert!(s.put_transit_key(&row("a", 1, b"a1"), None).unwrap());
    assert_eq!(
        s.get_transit_key("app", "k").unwrap(),
        Some(row("k", 1, b"v1"))
    );
    assert!(s.put_transit_key(&row("k", 2, b"v2"), Some(1)).unwrap());
    assert!(
        !s.put_transit_key(&row("k", 3, b"stale"), Some(1)).unwrap(),
        "a writer that read revision 1 lost the race"
    );
    assert_eq!(
        s.get_transit_key("app", "k").unwrap(),
        Some(row("k", 2, b"v2"))
    );
    assert_eq!(s.list_transit_keys("app").unwrap(), ["a", "k"]);
    assert!(s.list_transit_keys("other").unwrap().is_empty());
    assert!(s.delete_transit_key("app", "k").unwrap());
    assert!(!s.delete_transit_key("app", "k").unwrap());
    assert!(s.get_transit_key("app", "k").unwrap().is_none());
}

pub fn credential_max_versions_can_be_lowered_later(s: &dyn Storage) {
    ns_with_users(s, "app");
    let k = key("app", 1, "c");
    for v in 1..=5 {
        put(s, &k, v);
    }
    assert!(s.set_credential_max_versions(&k, 2).unwrap());
    let meta = s.get_credential_meta(&k).unwrap().unwrap();
    assert_eq!(
        (meta.current_version, meta.oldest_version, meta.max_versions),
        (5, 4, 2)
    );
    let kept: Vec<u64> = s
        .list_credential_versions(&k)
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(kept, [4, 5]);
    // Raising it keeps what is left; the next write keeps up to the new number.
    assert!(s.set_credential_max_versions(&k, 10).unwrap());
    put(s, &k, 6);
    assert_eq!(s.list_credential_versions(&k).unwrap().len(), 3);
    assert!(!s
        .set_credential_max_versions(&key("app", 1, "missing"), 3)
        .unwrap());
    assert!(s
        .get_credential_meta(&key("app", 1, "missing"))
        .unwrap()
        .is_none());
}
