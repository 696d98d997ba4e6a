//! Record look-up by a unique field: a per-user `profiles` collection whose `email` is unique,
//! one document per user, then equality look-ups of random users' addresses — through the vault
//! (keyed hash of the value, the index row, the document decrypted and its field re-checked,
//! the owner's id unsealed, an audit entry) beside the same rows in plaintext through the same
//! storage (the value itself as the index entry, the collection's settings and the document
//! parsed as JSON; the same one-statement look-up, which brings each owner's row).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use serde_json::Value;
use strongroom_core::raw_json::RawObject;
use strongroom_core::records::{CollectionSettings, RecordInput, Scope};
use strongroom_storage::{IndexEntry, RecordKey, RecordWrite};

use crate::report::{Measure, Row};
use crate::setup::{user_id, Fixture, Rng, NAMESPACE};

const COLLECTION: &str = "profiles";
const FIELD: &str = "email";
/// Users given a profile (at most the fixture's users).
const PROFILES: usize = 2_000;
/// How long each side looks up (time-bounded: a PostgreSQL look-up is a few round trips).
const RUN_FOR: Duration = Duration::from_secs(2);

fn email(i: usize) -> String {
    format!("user-{i}@example.com")
}

fn document(i: usize) -> String {
    format!(
        r#"{{"{FIELD}":"{}","display_name":"User {i}","plan":"pro","locale":"en-GB","timezone":"Europe/London","settings":{{"digest":"weekly","theme":"dark","notifications":{{"email":true,"push":false}}}}}}"#,
        email(i)
    )
}

pub fn run(f: &Fixture) -> Result<Vec<Row>> {
    let profiles = PROFILES.min(f.users);
    let settings = CollectionSettings {
        scope: Scope::User,
        ttl_secs: None,
        searchable: Vec::new(),
        unique: vec![FIELD.into()],
        fields: BTreeMap::new(),
        additional_fields: true,
    };
    f.vault
        .put_collection(&f.who, NAMESPACE, COLLECTION, settings)?;
    // The limit's collection row: its settings as plain JSON, read with every look-up.
    let plain_settings =
        format!(r#"{{"scope":"user","unique":["{FIELD}"],"additional_fields":true}}"#);
    f.plain
        .put_collection(NAMESPACE, COLLECTION, plain_settings.as_bytes(), 1)?;
    for i in 0..profiles {
        let input = RecordInput {
            document: RawObject::parse(&document(i))?,
            if_version: None,
        };
        f.vault.put_record(
            &f.who,
            NAMESPACE,
            COLLECTION,
            Some(&user_id(i)),
            "profile",
            &input,
        )?;
        let doc = document(i).into_bytes();
        f.plain.put_record(
            &RecordWrite {
                key: RecordKey {
                    namespace: NAMESPACE.into(),
                    collection: COLLECTION.into(),
                    user_hash: user_id(i).into_bytes(),
                    key: "profile".into(),
                },
                expected_version: None,
                expires_at: None,
                now: 1,
                index: vec![IndexEntry {
                    field: FIELD.into(),
                    value_hash: email(i).into_bytes(),
                    unique: true,
                }],
                sealed_key: None,
            },
            &|_| Ok(doc.clone()),
        )?;
    }

    f.refresh_statistics()?;
    let mut rng = Rng::new(5);
    let ours = timed(|| {
        let value = Value::String(email(rng.below(profiles)));
        let found = f
            .vault
            .lookup_records(&f.who, NAMESPACE, COLLECTION, FIELD, &value)?;
        ensure!(found.len() == 1, "one profile per address");
        Ok(())
    })?;
    let mut rng = Rng::new(5);
    let limit = timed(|| {
        let value = email(rng.below(profiles));
        let lookup =
            f.plain
                .lookup_records(NAMESPACE, COLLECTION, FIELD, value.as_bytes(), 2, 100)?;
        let settings: Value = serde_json::from_slice(lookup.settings.as_deref().unwrap_or(b""))?;
        ensure!(lookup.found.len() == 1, "one profile per address");
        let doc: Value = serde_json::from_slice(&lookup.found[0].0.ciphertext)?;
        std::hint::black_box((settings, doc));
        Ok(())
    })?;
    Ok(vec![Row::new(
        format!(
            "{} record look-up by unique field, {profiles} profiles (look-ups/s)",
            f.backend
        ),
        ours,
        limit,
        ">= 0.8x (#19)",
    )])
}

/// Look-ups per second of `lookup` run repeatedly for [`RUN_FOR`].
fn timed(mut lookup: impl FnMut() -> Result<()>) -> Result<Measure> {
    let started = Instant::now();
    let mut done = 0usize;
    while started.elapsed() < RUN_FOR {
        lookup()?;
        done += 1;
    }
    Ok(Measure {
        per_sec: done as f64 / started.elapsed().as_secs_f64(),
        ..Measure::default()
    })
}
