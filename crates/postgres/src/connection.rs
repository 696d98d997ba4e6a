//! Settings, the bounded connection pool, per-connection statement caches, transactions,
//! migrations and error mapping.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use postgres::error::SqlState;
use postgres::types::{FromSql, ToSql};
use postgres::{Client, Config, GenericClient, NoTls, Row, Statement};
use strongroom_storage::{Health, MetaStore, StorageError, StorageResult};

use crate::schema::{MIGRATIONS, MIGRATION_LOCK};

/// Milliseconds a statement may wait for a lock (PostgreSQL `lock_timeout`).
const LOCK_TIMEOUT_MS: u64 = 4_000;
/// Milliseconds a statement may run (PostgreSQL `statement_timeout`).
const STATEMENT_TIMEOUT_MS: u64 = 30_000;

/// How to reach PostgreSQL.
#[derive(Clone)]
pub struct PgSettings {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Connections kept at most.
    pub pool_size: usize,
    pub connect_timeout: Duration,
    /// How long a request waits for a free connection before failing with 503.
    pub checkout_timeout: Duration,
    /// A schema to use instead of `public` (created if missing; tests use one each).
    pub schema: Option<String>,
}

impl PgSettings {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            checkout_timeout: Duration::from_secs(5),
            schema: None,
        }
    }
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("PgSettings")
            .field("url", &"[redacted]")
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("checkout_timeout", &self.checkout_timeout)
            .field("schema", &self.schema)
            .finish()
    }
}

/// A column that does not decode as the type the schema promises: the row is corrupt (an
/// `integrity_error` to the caller), never a panic.
#[derive(Debug)]
pub(crate) struct BadColumn(pub(crate) String);

impl From<BadColumn> for StorageError {
    fn from(e: BadColumn) -> Self {
        StorageError::Corrupt(e.0)
    }
}

/// Why a read failed: the database, or a row that does not decode.
pub(crate) enum ReadError {
    Db(postgres::Error),
    Corrupt(BadColumn),
}

impl From<postgres::Error> for ReadError {
    fn from(e: postgres::Error) -> Self {
        ReadError::Db(e)
    }
}

impl From<BadColumn> for ReadError {
    fn from(e: BadColumn) -> Self {
        ReadError::Corrupt(e)
    }
}

/// Decoding columns without panicking (`Row::get` panics on a type mismatch or a NULL).
pub(crate) trait Columns {
    /// Column `i` as `T`.
    fn col<'a, T: FromSql<'a>>(&'a self, i: usize) -> Result<T, BadColumn>;
    /// A non-negative BIGINT column (counts, versions, sizes).
    fn count(&self, i: usize) -> Result<u64, BadColumn> {
        let v: i64 = self.col(i)?;
        u64::try_from(v).map_err(|_| BadColumn(format!("column {i} is negative")))
    }
    /// A BIGINT column that must fit 32 bits unsigned (key versions, limits).
    fn small(&self, i: usize) -> Result<u32, BadColumn> {
        let v: i64 = self.col(i)?;
        u32::try_from(v).map_err(|_| BadColumn(format!("column {i} is out of range")))
    }
}

impl Columns for Row {
    fn col<'a, T: FromSql<'a>>(&'a self, i: usize) -> Result<T, BadColumn> {
        self.try_get(i)
            .map_err(|e| BadColumn(format!("column {i}: {}", describe(&e))))
    }
}

/// One pooled connection and its prepared statements.
pub(crate) struct Conn {
    client: Client,
    cache: HashMap<&'static str, Statement>,
}

fn prepared(
    client: &mut impl GenericClient,
    cache: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> Result<Statement, postgres::Error> {
    if let Some(st) = cache.get(sql) {
        return Ok(st.clone());
    }
    let st = client.prepare(sql)?;
    cache.insert(sql, st.clone());
    Ok(st)
}

impl Conn {
    /// A statement built at run time (not cached).
    pub(crate) fn query_dynamic(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        self.client.query(sql, params)
    }

    pub(crate) fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let st = prepared(&mut self.client, &mut self.cache, sql)?;
        self.client.query(&st, params)
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let st = prepared(&mut self.client, &mut self.cache, sql)?;
        self.client.query_opt(&st, params)
    }
}

/// A transaction on a pooled connection, with the connection's statement cache.
pub(crate) struct Tx<'a> {
    tx: postgres::Transaction<'a>,
    cache: &'a mut HashMap<&'static str, Statement>,
}

impl Tx<'_> {
    /// A statement built at run time (not cached).
    pub(crate) fn execute_dynamic(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StorageResult<u64> {
        self.tx.execute(sql, params).map_err(map_err)
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StorageResult<Option<Row>> {
        let st = prepared(&mut self.tx, self.cache, sql).map_err(map_err)?;
        self.tx.query_opt(&st, params).map_err(map_err)
    }

    pub(crate) fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StorageResult<Vec<Row>> {
        let st = prepared(&mut self.tx, self.cache, sql).map_err(map_err)?;
        self.tx.query(&st, params).map_err(map_err)
    }

    pub(crate) fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StorageResult<u64> {
        let st = prepared(&mut self.tx, self.cache, sql).map_err(map_err)?;
        self.tx.execute(&st, params).map_err(map_err)
    }
}

struct Pool {
    idle: Vec<Conn>,
    open: usize,
}

/// A Strongroom store in PostgreSQL.
pub struct PgStore {
    config: Config,
    settings: PgSettings,
    pool: Mutex<Pool>,
    freed: Condvar,
    /// The audit chain's tail as this process last appended or read it (a hint: an append
    /// that finds its sequence number taken re-reads the tail and tries again).
    pub(crate) audit_tail_hint: Mutex<Option<strongroom_storage::AuditTail>>,
}

impl PgStore {
    /// Connects, creates the schema if asked, and applies pending migrations.
    pub fn open(settings: PgSettings) -> StorageResult<Self> {
        let mut config = Config::from_str(&settings.url).map_err(|e| {
            StorageError::Backend(format!("invalid PostgreSQL URL: {}", describe(&e)))
        })?;
        config.connect_timeout(settings.connect_timeout);
        config.application_name("strongroom");
        let store = Self {
            config,
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            audit_tail_hint: Mutex::new(None),
            settings,
        };
        if let Some(schema) = &store.settings.schema {
            check_identifier(schema)?;
            let mut client = store.config.connect(NoTls).map_err(map_err)?;
            // Under the migration lock: concurrent CREATE SCHEMA IF NOT EXISTS can still collide.
            client
                .batch_execute(&format!(
                    "BEGIN; SELECT pg_advisory_xact_lock({MIGRATION_LOCK}); \
                     CREATE SCHEMA IF NOT EXISTS \"{schema}\"; COMMIT;"
                ))
                .map_err(map_err)?;
        }
        store.migrate()?;
        Ok(store)
    }

    fn connect(&self) -> StorageResult<Conn> {
        let mut client = self.config.connect(NoTls).map_err(map_err)?;
        // Bounded waits: a statement that waits on a lock or runs longer than these fails
        // (retryable) rather than holding a caller — and with it an audited answer — forever.
        client
            .batch_execute(&format!(
                "SET lock_timeout = {LOCK_TIMEOUT_MS}; SET statement_timeout = {STATEMENT_TIMEOUT_MS}"
            ))
            .map_err(map_err)?;
        if let Some(schema) = &self.settings.schema {
            client
                .batch_execute(&format!("SET search_path TO \"{schema}\""))
                .map_err(map_err)?;
        }
        Ok(Conn {
            client,
            cache: HashMap::new(),
        })
    }

    fn checkout(&self) -> StorageResult<Conn> {
        let deadline = Instant::now() + self.settings.checkout_timeout;
        let mut pool = self.pool.lock();
        loop {
            while let Some(conn) = pool.idle.pop() {
                if !conn.client.is_closed() {
                    return Ok(conn);
                }
                pool.open -= 1;
            }
            if pool.open < self.settings.pool_size.max(1) {
                pool.open += 1;
                drop(pool);
                return self.connect().inspect_err(|_| self.pool.lock().open -= 1);
            }
            if self.freed.wait_until(&mut pool, deadline).timed_out() {
                return Err(StorageError::Unavailable(
                    "no database connection became free in time".into(),
                ));
            }
        }
    }

    fn checkin(&self, conn: Conn, healthy: bool) {
        let mut pool = self.pool.lock();
        if healthy && !conn.client.is_closed() {
            pool.idle.push(conn);
        } else {
            pool.open -= 1;
        }
        drop(pool);
        self.freed.notify_one();
    }

    /// Runs a read. A connection that turns out to be dead is replaced and the read retried once.
    pub(crate) fn read<T>(
        &self,
        work: impl Fn(&mut Conn) -> Result<T, ReadError>,
    ) -> StorageResult<T> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut conn = self.checkout()?;
            match work(&mut conn) {
                Ok(value) => {
                    self.checkin(conn, true);
                    return Ok(value);
                }
                Err(ReadError::Corrupt(bad)) => {
                    self.checkin(conn, true);
                    return Err(bad.into());
                }
                Err(ReadError::Db(err)) => {
                    let closed = conn.client.is_closed() || err.is_closed();
                    self.checkin(conn, !closed);
                    if closed && attempts < 2 {
                        continue;
                    }
                    return Err(map_err(err));
                }
            }
        }
    }

    /// Runs one statement on its own (PostgreSQL makes it its own transaction: one round trip).
    /// Not retried, like [`PgStore::write`].
    pub(crate) fn write_statement(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StorageResult<u64> {
        let mut conn = self.checkout()?;
        let result = (|| {
            let Conn { client, cache } = &mut conn;
            let st = prepared(client, cache, sql)?;
            client.execute(&st, params)
        })()
        .map_err(map_err);
        let healthy = !conn.client.is_closed();
        self.checkin(conn, healthy);
        result
    }

    /// Runs `work` in a transaction and commits. Not retried: a write whose outcome is unknown
    /// is reported as unavailable and left to the caller.
    pub(crate) fn write<T>(
        &self,
        work: impl FnOnce(&mut Tx<'_>) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let mut conn = self.checkout()?;
        let result = (|| {
            let Conn { client, cache } = &mut conn;
            let tx = client.transaction().map_err(map_err)?;
            let mut tx = Tx { tx, cache };
            let value = work(&mut tx)?;
            tx.tx.commit().map_err(map_err)?;
            Ok(value)
        })();
        let healthy = !conn.client.is_closed();
        // A failed transaction may leave prepared statements invalid after schema changes; keep
        // the connection only if it is still open.
        self.checkin(conn, healthy);
        result
    }

    fn migrate(&self) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute("SELECT pg_advisory_xact_lock($1)::text", &[&MIGRATION_LOCK])?;
            tx.execute(
                "CREATE TABLE IF NOT EXISTS strongroom_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                &[],
            )?;
            let applied: i32 = tx
                .query_opt("SELECT COALESCE(MAX(version), 0) FROM strongroom_migrations", &[])?
                .map(|r| r.col(0))
                .transpose()?
                .unwrap_or(0);
            if applied as usize > MIGRATIONS.len() {
                return Err(StorageError::Backend(format!(
                    "database schema version {applied} is newer than this build knows ({}); upgrade strongroom",
                    MIGRATIONS.len()
                )));
            }
            for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
                tx.tx.batch_execute(sql).map_err(map_err)?;
                let version = index as i32 + 1;
                tx.execute("INSERT INTO strongroom_migrations (version) VALUES ($1)", &[&version])?;
            }
            Ok(())
        })
    }
}

fn check_identifier(name: &str) -> StorageResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StorageError::Backend(format!(
            "invalid schema name {name:?}: use 1-63 of a-z 0-9 _"
        )))
    }
}

/// An error's text without connection details (the URL's password never appears in it).
fn describe(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => err.to_string(),
    }
}

/// Maps PostgreSQL errors: connection loss and shutdown → retryable, unique violation →
/// already exists, serialization failure → conflict.
pub(crate) fn map_err(err: postgres::Error) -> StorageError {
    if err.is_closed() {
        return StorageError::Unavailable("the database connection was lost".into());
    }
    match err.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => StorageError::AlreadyExists,
        Some(code) if *code == SqlState::DISK_FULL => StorageError::Full(describe(&err)),
        Some(code)
            if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            StorageError::Conflict(describe(&err))
        }
        Some(code)
            if *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::LOCK_NOT_AVAILABLE
                || *code == SqlState::QUERY_CANCELED
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || code.code().starts_with("08") =>
        {
            StorageError::Unavailable(describe(&err))
        }
        Some(_) => StorageError::Backend(describe(&err)),
        // No SQLSTATE: an I/O or protocol failure talking to the server.
        None => StorageError::Unavailable(describe(&err)),
    }
}

impl MetaStore for PgStore {
    fn get_meta(&self, key: &str) -> StorageResult<Option<Vec<u8>>> {
        self.read(|c| {
            Ok(
                c.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?
                    .map(|r| r.col(0))
                    .transpose()?,
            )
        })
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .map(|_| ())
        })
    }

    fn put_meta_if_absent(&self, key: &str, value: &[u8]) -> StorageResult<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )? == 1)
        })
    }
}

impl Health for PgStore {
    fn ping(&self) -> StorageResult<()> {
        self.read(|c| Ok(c.query("SELECT 1", &[]).map(|_| ())?))
    }
}
