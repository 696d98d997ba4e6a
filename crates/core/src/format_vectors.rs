//! Pinned formats of core: keyed-hash inputs, the audit chain and anchor, download-link MACs
//! and row MACs, computed outside this code base (`crates/crypto/tests/vectors/make_vectors.py`)
//! from fixed keys. Never regenerated: a failure means a stored format changed, which must
//! instead become a new version with a migration.

use serde_json::json;
use strongroom_crypto::{Index, Key, Root};
use strongroom_storage::{AuditEntry, ItemKey};

use crate::audit::anchor::{encode, Anchor};
use crate::audit::chain_hash;
use crate::row_auth::{seal, RowId};

fn key<P>(first: u8) -> Key<P> {
    let bytes: Vec<u8> = (first..first + 32).collect();
    Key::from_bytes(&bytes).unwrap()
}

#[test]
fn event_type_and_record_index_hashes() {
    let index: Key<Index> = key(64);
    assert_eq!(
        hex::encode(crate::events::type_hash(&index, "login")),
        "beddabe6471285c20f70fa78f76d18f20f1e26d3377891553d925e637e30c3b1"
    );
    let hash = crate::records::value_hash(&index, "profiles", "email", &json!("a@x.org")).unwrap();
    assert_eq!(
        hex::encode(hash),
        "1598d574ae3d552ec02495c77011d00f0e8dace0ff0f3a3aa153e1565284ef2a"
    );
}

#[test]
fn name_ids_and_audit_names() {
    use crate::sealed_names::{audit_name, credential_id, record_key_id};
    let index: Key<Index> = key(64);
    assert_eq!(
        credential_id(&index, "spotify"),
        "~JB7wewXi-Y032CMdbJs4pvB1ZFWM6Qbl55VOv_1nFlI"
    );
    assert_eq!(
        record_key_id(&index, "profiles", "me"),
        "~uIaWyX0u5cWlMCr7YeaAntIhaY7VqU4vnhZ7SFzgu-I"
    );
    let root: Key<Root> = key(0);
    let audit_names: Key<Index> = root.derive("audit-name").unwrap();
    assert_eq!(
        audit_name(&audit_names, "spotify"),
        "~JzgSxvh1ysac-5e1A4ZvWQ"
    );
}

#[test]
fn audit_chain_hash_and_anchor() {
    let root: Key<Root> = key(0);
    let entry = AuditEntry {
        time: 1_700_000_000_000,
        token_id: "0123456789abcdef".into(),
        action: "credential.read".into(),
        namespace: "app".into(),
        user_hash: "ab".repeat(32),
        target: "spotify".into(),
        outcome: "ok".into(),
    };
    let chain: Key<Index> = root.derive("audit-chain").unwrap();
    assert_eq!(
        hex::encode(chain_hash(&chain, &[0; 32], 1, &entry)),
        "9b96aeeeb5511ea0dc2184ad1d7bcf55b675d3c6f32f4019f7295babd857d988"
    );
    let anchor_key: Key<Index> = root.derive("audit-anchor").unwrap();
    let stored = encode(
        &anchor_key,
        &Anchor {
            seq: 5,
            hash: vec![0x11; 32],
        },
    );
    assert_eq!(
        hex::encode(&stored[stored.len() - 32..]),
        "8f68a160596f90fa47036f68d3834cf6b3e06d43fc0660a9ff046ef384b9f3f7"
    );
}

#[test]
fn download_link_mac() {
    let root: Key<Root> = key(0);
    assert_eq!(
        hex::encode(crate::files::links::link_mac(&root, "eyJ4IjoxfQ").unwrap()),
        "12544a76d66b7b8c21346f945e45f63f6caef27c8d2e70d66a996b811a72ce6e"
    );
}

#[test]
fn credential_pointer_mac() {
    let root: Key<Root> = key(0);
    let row_key: Key<Index> = root.derive("row-auth").unwrap();
    let item = ItemKey {
        namespace: "app".into(),
        user_hash: vec![0xaa; 32],
        name: "spotify".into(),
    };
    let sealed = seal(&row_key, &RowId::credential_pointer(&item, 7), b"");
    assert_eq!(sealed[0], 1);
    assert_eq!(
        hex::encode(&sealed[1..]),
        "4ebd0f53505e2037b84f960e9b79bb3b2afcacf8c410c98ee280fec3c599bde6"
    );
}

#[test]
fn every_associated_data_context() {
    use crate::keyring::contexts;
    use strongroom_crypto::keyed_hash::sha256;
    let u = [0xaa; 32];
    for (name, ad, expected) in [
        (
            "kek",
            contexts::kek("app", 2),
            "72a1e8adc6e40b32eaef74fac1dee7e7bbdbc85c739f3acd6a3b458c3e225287",
        ),
        (
            "index_key",
            contexts::index_key("app"),
            "a6d6ca9679f5f86c3d8bb9d79089ef94d21f0ce4dacaef5d17b795c5bae438e2",
        ),
        (
            "user_key",
            contexts::user_key("app", &u),
            "52493245f85f9d5866973a76e3bf0f515fabd2ea62c84cf55a3a322c28686499",
        ),
        (
            "user_id",
            contexts::user_id("app", &u),
            "5bbe2330f74ed431b358554dc7c18218bc6e25e341be5b5887b28dc342eef026",
        ),
        (
            "event",
            contexts::event("app", &u, 1_700_000_000_000, &[1; 16]),
            "b68f86aec24ac8d517ec0630bface2afff7343f6dc7c12cc015953464ebf48bd",
        ),
        (
            "record",
            contexts::record("app", "profiles", &u, "me", 3),
            "3636c6203e01d9133724310834b73c11599c18c982220413bc31da92772efa3d",
        ),
        (
            "file",
            contexts::file("app", &u, "f1"),
            "cb2ddd996e564f9dea1c9dfdb26a0e976c9f5189501ee106bbb9a0e8aa192b8a",
        ),
        (
            "file_metadata",
            contexts::file_metadata("app", &u, "f1"),
            "ff87de0b861ef1bf56d13153e1d9b3a5454c8946d0ab8fedcba4aaca67262498",
        ),
        (
            "provider_secret",
            contexts::provider_secret("app", "spotify"),
            "4c0172539d9116153eb1eb47c250623cff9bd45a4eabdf6e9c00173ce4dddb3c",
        ),
        (
            "credential",
            contexts::credential("app", &u, "spotify", 7),
            "b56aea38b1dcd9f5bce99bd5b1c2b6f3aa7520e829cad537f6204891047a3ff3",
        ),
        (
            "credential_name",
            contexts::credential_name("app", &u, "~id"),
            "79510df1a61f152485ed4abe1d4bc215348066a4381d883bb42c82b8b322488a",
        ),
        (
            "record_key",
            contexts::record_key("app", "profiles", &u, "~id"),
            "a7375d5780316704df19d03355bc99f8c11c398d4caffc03a5069270a98f7635",
        ),
    ] {
        assert_eq!(hex::encode(sha256(&[ad.as_bytes()])), expected, "{name}");
    }
}
