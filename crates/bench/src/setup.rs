//! The two stores every scenario runs against: a Strongroom vault on SQLite, and a plain
//! SQLite store with the same schema holding the same token sets as plaintext.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use strongroom_core::credentials::{CredentialData, PutOptions};
use strongroom_core::{Principal, SystemClock, Vault, VaultSettings};
use strongroom_crypto::{Key, Root};
use strongroom_postgres::{PgSettings, PgStore};
use strongroom_sqlite::SqliteStore;
use strongroom_storage::{ItemKey, NewVersion, Storage, UserRow};

use crate::Params;

pub const NAMESPACE: &str = "bench";
pub const NAME: &str = "spotify";

pub struct Fixture {
    /// "sqlite" or "postgres": prefixes the scenario names.
    pub backend: &'static str,
    pub vault: Vault,
    pub plain: Arc<dyn Storage>,
    pub who: Principal,
    pub users: usize,
    /// PostgreSQL's URL, for [`Fixture::refresh_statistics`].
    postgres_url: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

/// The JSON of a ~1 KiB OAuth token set for user `i`.
pub fn token_set_json(i: usize, round: usize) -> String {
    let access = format!("{:0>700}", format!("BQD{i}x{round}"));
    serde_json::json!({
        "type": "oauth2",
        "access_token": access,
        "refresh_token": format!("{:0>180}", format!("AQC{i}")),
        "expires_at": "2030-01-01T00:00:00Z",
        "scope": "user-read-private user-read-email playlist-modify-public",
        "token_type": "Bearer",
        "provider": "spotify"
    })
    .to_string()
}

pub fn user_id(i: usize) -> String {
    format!("telegram:{}", 100_000_000 + i)
}

pub fn plain_key(i: usize) -> ItemKey {
    ItemKey {
        namespace: NAMESPACE.into(),
        user_hash: user_id(i).into_bytes(),
        name: NAME.into(),
    }
}

/// The plain store's user row: same schema, placeholder bytes of the same sizes.
pub fn plain_user(store: &dyn Storage, i: usize) -> Result<()> {
    plain_user_hash(store, user_id(i).as_bytes())
}

/// A plain user row keyed by `user_hash`.
pub fn plain_user_hash(store: &dyn Storage, user_hash: &[u8]) -> Result<()> {
    store.insert_user(&UserRow {
        namespace: NAMESPACE.into(),
        user_hash: user_hash.to_vec(),
        encrypted_id: vec![0; 52],
        wrapped_key: vec![0; 66],
        kek_version: 1,
        created_at: 1,
    })?;
    Ok(())
}

pub fn plain_put(store: &dyn Storage, i: usize, round: usize, now: i64) -> Result<()> {
    let body = token_set_json(i, round).into_bytes();
    let new = NewVersion {
        created_at: now,
        max_versions: None,
        default_max_versions: 10,
        sealed_name: None,
        status: None,
    };
    store.put_credential_version(&plain_key(i), None, &new, &|_| Ok(body.clone()), &|_| {
        Vec::new()
    })?;
    Ok(())
}

pub fn vault_put(vault: &Vault, who: &Principal, i: usize, round: usize) -> Result<()> {
    let data: CredentialData = serde_json::from_str(&token_set_json(i, round))?;
    vault.put_credential(
        who,
        NAMESPACE,
        &user_id(i),
        NAME,
        &data,
        PutOptions::default(),
    )?;
    Ok(())
}

impl Fixture {
    /// Both stores on SQLite files in a temporary directory.
    pub fn sqlite(params: &Params) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(SqliteStore::open(&dir.path().join("strongroom.db"))?);
        let plain = Arc::new(SqliteStore::open(&dir.path().join("plain.db"))?);
        let journal = SqliteStore::audit_journal_path(&dir.path().join("strongroom.db"));
        Self::build(
            "sqlite",
            store,
            plain,
            params.users,
            params,
            Some(dir),
            Some(journal),
        )
    }

    /// Both stores on PostgreSQL at `url`, each in a fresh schema.
    pub fn postgres(url: &str, params: &Params) -> Result<Self> {
        let schema = |name: &str| PgSettings {
            schema: Some(format!("bench_{name}_{}", std::process::id())),
            pool_size: 16,
            ..PgSettings::new(url)
        };
        let store = Arc::new(PgStore::open(schema("vault"))?);
        let plain = Arc::new(PgStore::open(schema("plain"))?);
        let mut fixture = Self::build(
            "postgres",
            store,
            plain,
            params.pg_users,
            params,
            None,
            None,
        )?;
        fixture.postgres_url = Some(url.to_string());
        Ok(fixture)
    }

    /// On PostgreSQL, gathers planner statistics for both stores (`ANALYZE`), as autovacuum
    /// has them in steady state: rows written moments ago have none, and without them the
    /// planner may pick a namespace-wide index for a one-user query (for both sides alike).
    pub fn refresh_statistics(&self) -> Result<()> {
        if let Some(url) = &self.postgres_url {
            let mut client = postgres::Client::connect(url, postgres::NoTls)
                .context("connect to PostgreSQL for ANALYZE")?;
            client.batch_execute("ANALYZE").context("ANALYZE")?;
        }
        Ok(())
    }

    fn build(
        backend: &'static str,
        store: Arc<dyn Storage>,
        plain: Arc<dyn Storage>,
        users: usize,
        params: &Params,
        dir: Option<tempfile::TempDir>,
        audit_journal: Option<std::path::PathBuf>,
    ) -> Result<Self> {
        let settings = VaultSettings {
            data_key_cache: params.data_key_cache,
            audit_journal,
            ..VaultSettings::default()
        };
        let opened = Vault::open(
            store,
            Key::<Root>::generate()?,
            Arc::new(SystemClock),
            settings,
        )
        .context("open vault")?;
        let vault = opened.vault;
        let who = Principal::system("bench");
        vault.create_namespace(&who, NAMESPACE)?;
        let started = Instant::now();
        for i in 0..users {
            vault_put(&vault, &who, i, 0)?;
            plain_user(plain.as_ref(), i)?;
            plain_put(plain.as_ref(), i, 0, 1)?;
        }
        vault.flush_audit()?;
        eprintln!(
            "{backend}: populated {users} users in both stores in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        Ok(Self {
            backend,
            vault,
            plain,
            who,
            users,
            postgres_url: None,
            _dir: dir,
        })
    }
}

/// A small xorshift generator: deterministic, allocation-free, good enough to pick users.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}
