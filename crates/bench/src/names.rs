//! What sealed names and authenticated rows cost.
//!
//! - Listing 1,000 credential names of one user, one page: through the vault (authorization,
//!   one audited answer, 1,000 names opened from their sealed copies) beside the same rows
//!   with plain names listed from the same storage.
//! - Validating an API token with the cache off (every call reads the row): through the vault
//!   (the row's MAC checked under the root-derived key, the policy decoded) beside what
//!   validation did before rows were authenticated — the same row read, the secret's digest
//!   compared, the policy decoded.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use strongroom_core::access::{Capability, Policy};
use strongroom_core::credentials::{CredentialData, PutOptions};
use strongroom_core::{Principal, SystemClock, Vault, VaultSettings};
use strongroom_crypto::token::ApiToken;
use strongroom_crypto::{Key, Root};
use strongroom_sqlite::SqliteStore;
use strongroom_storage::{ItemKey, NewVersion, TokenRow, TokenStore};

use crate::report::{Measure, Row};
use crate::setup::{Fixture, NAMESPACE};

const NAMES: usize = 1000;
const LISTS: usize = 200;
const VALIDATIONS: usize = 50_000;
const LISTER: &str = "bench:lister";

fn per_sec(v: f64) -> Measure {
    Measure {
        per_sec: v,
        ..Measure::default()
    }
}

/// Lists of 1,000 names of one user per second, both sides.
pub fn listing(f: &Fixture) -> Result<Vec<Row>> {
    let data: CredentialData = serde_json::from_str(r#"{"type":"secret","data":{"api_key":"k"}}"#)?;
    let plain_hash = LISTER.as_bytes().to_vec();
    crate::setup::plain_user_hash(f.plain.as_ref(), &plain_hash)?;
    for i in 0..NAMES {
        let name = format!("service-{i:04}");
        f.vault.put_credential(
            &f.who,
            NAMESPACE,
            LISTER,
            &name,
            &data,
            PutOptions::default(),
        )?;
        let key = ItemKey {
            namespace: NAMESPACE.into(),
            user_hash: plain_hash.clone(),
            name,
        };
        let new = NewVersion {
            created_at: 1,
            max_versions: None,
            default_max_versions: 10,
            sealed_name: None,
            status: None,
        };
        f.plain
            .put_credential_version(&key, None, &new, &|_| Ok(b"{}".to_vec()), &|_| Vec::new())?;
    }
    let started = Instant::now();
    for _ in 0..LISTS {
        let page = f
            .vault
            .list_credentials(&f.who, NAMESPACE, LISTER, None, NAMES)?;
        anyhow::ensure!(page.items.len() == NAMES, "listed {}", page.items.len());
    }
    let ours = LISTS as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..LISTS {
        let page = f
            .plain
            .list_credentials(NAMESPACE, &plain_hash, None, NAMES)?;
        anyhow::ensure!(page.len() == NAMES, "listed {}", page.len());
    }
    let limit = LISTS as f64 / started.elapsed().as_secs_f64();
    Ok(vec![Row::new(
        format!(
            "{} list {NAMES} credential names of one user (lists/s)",
            f.backend
        ),
        per_sec(ours),
        per_sec(limit),
        "names sealed",
    )])
}

/// Token validations per second with the token cache off, on SQLite.
pub fn token_validation() -> Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("tokens.db"))?);
    let settings = VaultSettings {
        token_cache_ttl_ms: 0,
        ..VaultSettings::default()
    };
    let vault = Vault::open(
        store,
        Key::<Root>::generate()?,
        Arc::new(SystemClock),
        settings,
    )?
    .vault;
    let who = Principal::system("bench");
    vault.create_namespace(&who, NAMESPACE)?;
    let policy = Policy {
        namespaces: vec![NAMESPACE.into()],
        capabilities: [Capability::Read, Capability::Write].into(),
        rate_limit_per_sec: None,
    };
    let (_, token) = vault.create_token(&who, "bench-app", policy.clone(), None)?;
    let presented = token.expose_text().to_string();
    let started = Instant::now();
    for _ in 0..VALIDATIONS {
        vault.authenticate(&presented, "127.0.0.1")?;
    }
    let ours = VALIDATIONS as f64 / started.elapsed().as_secs_f64();

    // Before rows were authenticated: the same row (policy as plain JSON), read and checked.
    let plain = SqliteStore::open(&dir.path().join("plain.db"))?;
    let token = ApiToken::generate()?;
    plain.insert_token(&TokenRow {
        id: token.id().into(),
        secret_hash: token.hash().to_vec(),
        name: "bench-app".into(),
        policy: serde_json::to_vec(&policy)?,
        created_at: 1,
        expires_at: None,
        revoked_at: None,
    })?;
    let presented = token.expose_text().to_string();
    let started = Instant::now();
    for _ in 0..VALIDATIONS {
        let parsed = ApiToken::parse(&presented).ok_or_else(|| anyhow::anyhow!("parse"))?;
        let row = plain
            .get_token(parsed.id())?
            .ok_or_else(|| anyhow::anyhow!("token row"))?;
        anyhow::ensure!(parsed.matches(&row.secret_hash), "digest");
        let decoded: Policy = serde_json::from_slice(&row.policy)?;
        std::hint::black_box(decoded);
    }
    let limit = VALIDATIONS as f64 / started.elapsed().as_secs_f64();
    Ok(vec![Row::new(
        "sqlite token validation, cache off (validations/s)",
        per_sec(ours),
        per_sec(limit),
        "row MAC checked",
    )])
}
