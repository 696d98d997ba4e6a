//! Running the real `strongroom` binary for end-to-end tests: start `serve` on port 0, read the
//! admin token and address it prints, wait on readiness (never a fixed sleep), stop it with
//! SIGTERM on drop.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the support module"
)]

pub mod files;
pub mod kms;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_strongroom");

pub struct Server {
    pub child: Option<Child>,
    pub base: String,
    pub admin: Option<String>,
    /// The `--vault-listen` address, when given.
    pub vault_base: Option<String>,
    /// For an https server: the TLS configuration the test client trusts it with.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
}

/// A response reduced to what tests look at.
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

impl Server {
    /// Starts `strongroom serve` on `data_dir` with extra flags and environment.
    pub fn start(data_dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> Server {
        Self::try_start(data_dir, flags, env).expect("server should start")
    }

    /// Starts the server; `Err(stderr)` if it exits before listening.
    pub fn try_start(
        data_dir: &Path,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        Self::try_start_via(&[], data_dir, flags, env)
    }

    /// Starts the server through a launcher (e.g. `prlimit --nofile=1024:1024 --`).
    pub fn try_start_via(
        launcher: &[&str],
        data_dir: &Path,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        Self::try_start_tls(launcher, data_dir, flags, env, None)
    }

    /// Starts a server that answers over TLS, trusted by the test client through `tls`.
    pub fn try_start_tls(
        launcher: &[&str],
        data_dir: &Path,
        flags: &[&str],
        env: &[(&str, &str)],
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> Result<Server, String> {
        let log_path = data_dir.with_extension(format!("log-{}", std::process::id()));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut cmd = match launcher.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(flags);
        cmd.env_remove("STRONGROOM_ROOT_KEY")
            .env("RUST_LOG", "debug");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut admin = None;
        let mut vault_base = None;
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(t) =
                        line.strip_prefix("Admin token (shown once; store it safely): ")
                    {
                        admin = Some(t.trim().to_string());
                    }
                    if let Some(addr) = line.strip_prefix("Vault-compatible API on ") {
                        vault_base = Some(addr.trim().to_string());
                    }
                    if let Some(addr) = line.strip_prefix("Listening on ") {
                        break addr.trim().to_string();
                    }
                }
                _ => {
                    let _ = child.wait();
                    return Err(std::fs::read_to_string(&log_path).unwrap_or_default());
                }
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let server = Server {
            child: Some(child),
            base,
            admin,
            vault_base,
            tls,
            data_dir: data_dir.to_path_buf(),
            log_path,
        };
        server.wait_ready();
        Ok(server)
    }

    /// Waits until the server is ready — or up and sealed (it then waits for an unseal).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let health = self.request("GET", "/v1/sys/health", None, None);
            if health.status == 200
                && (health.json()["sealed"] == Value::Bool(true)
                    || self.request("GET", "/v1/sys/ready", None, None).status == 200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server never became ready");
    }

    pub fn admin(&self) -> &str {
        self.admin
            .as_deref()
            .expect("admin token printed on first start")
    }

    /// Sends a request with an optional bearer token and raw body (sent as JSON).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        self.request_with(method, path, token, body, "application/json")
    }

    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        content_type: &str,
    ) -> Reply {
        self.request_headers(method, path, token, body, content_type, &[])
    }

    /// A request with extra headers (e.g. `X-Forwarded-For`).
    pub fn request_headers(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30));
        if let Some(tls) = &self.tls {
            agent = agent.tls_config(tls.clone());
        }
        let agent = agent.build();
        let mut req = agent.request(method, &format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        for (name, value) in headers {
            req = req.set(name, value);
        }
        let result = match body {
            Some(b) => req.set("Content-Type", content_type).send_string(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error on {method} {path}: {e}"),
        };
        let status = resp.status();
        let retry_after = resp.header("Retry-After").map(str::to_string);
        Reply {
            status,
            body: resp.into_string().unwrap_or_default(),
            retry_after,
        }
    }

    /// Runs a CLI command against this server with `token`; returns (exit code, stdout, stderr).
    pub fn cli(&self, token: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .env("STRONGROOM_ADDR", &self.base)
            .env("STRONGROOM_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        outcome(out)
    }

    /// Stops the server with SIGTERM and returns its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// Writes `text` to `path`, readable by its owner only (key and passphrase files).
pub fn owner_only_file(path: &Path, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_path_buf()
}

/// A finished command's (exit code, stdout, stderr).
pub fn outcome(out: std::process::Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Creates a namespace and a token for it with the given capabilities; returns the token.
pub fn app_token(server: &Server, ns: &str, caps: &[&str]) -> String {
    app_token_with(server, server.admin(), ns, caps)
}

/// [`app_token`] made with a given operator token (a store initialised by `strongroom init`).
pub fn app_token_with(server: &Server, admin: &str, ns: &str, caps: &[&str]) -> String {
    let r = server.request(
        "POST",
        "/v1/sys/namespaces",
        Some(admin),
        Some(&format!(r#"{{"name":"{ns}"}}"#)),
    );
    assert!(
        r.status == 201 || r.code() == "already_exists",
        "{}",
        r.body
    );
    let body =
        serde_json::json!({"name": format!("{ns}-app"), "namespaces": [ns], "capabilities": caps})
            .to_string();
    let r = server.request("POST", "/v1/sys/tokens", Some(admin), Some(&body));
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["token"].as_str().unwrap().to_string()
}

/// A token endpoint that answers 503 to every refresh.
pub fn failing_token_endpoint() -> String {
    endpoint_answering(
        "/token",
        "HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown",
    )
}

/// A loopback HTTP endpoint at `path` that reads each request whole and answers `response`
/// (a whole HTTP/1.1 response) to every one.
pub fn endpoint_answering(path: &str, response: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}

pub fn oauth_body(access: &str) -> String {
    serde_json::json!({"data": {
        "type": "oauth2", "access_token": access, "refresh_token": format!("{access}-refresh"),
        "expires_at": "2030-01-01T00:00:00Z", "scope": "user-read-email", "token_type": "Bearer", "provider": "spotify"
    }})
    .to_string()
}

/// The test PostgreSQL server's URL; panics when it is required and missing, `None` only when
/// `STRONGROOM_SKIP_POSTGRES=1` asks to skip PostgreSQL tests.
pub fn postgres_url() -> Option<String> {
    match std::env::var("STRONGROOM_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("STRONGROOM_SKIP_POSTGRES").as_deref() == Ok("1") => {
            eprintln!("STRONGROOM_SKIP_POSTGRES=1: PostgreSQL test skipped on request");
            None
        }
        _ => panic!("STRONGROOM_TEST_POSTGRES_URL is not set: run scripts/test, or set STRONGROOM_SKIP_POSTGRES=1 to skip on purpose"),
    }
}

/// A Python that can import `module`: the moto virtualenv `scripts/s3` makes (it holds
/// `cryptography` and `standardwebhooks`), else python3.
pub fn python_with(module: &str) -> String {
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
    let venv = cache.join("strongroom/moto-venv/bin/python");
    for candidate in [venv.to_str().unwrap(), "python3"] {
        let ok = Command::new(candidate)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return candidate.to_string();
        }
    }
    panic!("no Python with `{module}`: run scripts/test (scripts/s3 makes a virtualenv with it)");
}

/// A root key shared by several nodes.
pub fn shared_root_key() -> String {
    let out = Command::new(BIN).arg("keygen").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Starts a node on PostgreSQL `url`, schema `schema`, with `root_key`.
pub fn start_node(dir: &Path, url: &str, schema: &str, root_key: &str, flags: &[&str]) -> Server {
    let mut all = vec!["--database", url, "--db-schema", schema];
    all.extend_from_slice(flags);
    Server::start(dir, &all, &[("STRONGROOM_ROOT_KEY", root_key)])
}

/// Which database a test server keeps its metadata in: the SQLite file in its data directory,
/// or a schema of its own on the test PostgreSQL server (same root key on every start).
#[derive(Clone)]
pub enum Db {
    Sqlite,
    Postgres {
        url: String,
        schema: String,
        root_key: String,
    },
}

impl Db {
    pub fn sqlite() -> Option<Db> {
        Some(Db::Sqlite)
    }

    /// A fresh schema on the test PostgreSQL server; `None` only when PostgreSQL tests are
    /// skipped on purpose (see [`postgres_url`]).
    pub fn postgres() -> Option<Db> {
        let url = postgres_url()?;
        let schema = format!(
            "t_{}_{}",
            std::process::id(),
            strongroom_crypto::random::bytes::<6>()
                .unwrap()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Some(Db::Postgres {
            url,
            schema,
            root_key: shared_root_key(),
        })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres { .. })
    }

    /// The `serve` flags that select this database.
    pub fn flags(&self) -> Vec<String> {
        match self {
            Db::Sqlite => Vec::new(),
            Db::Postgres { url, schema, .. } => vec![
                "--database".into(),
                url.clone(),
                "--db-schema".into(),
                schema.clone(),
            ],
        }
    }

    /// The environment `serve` needs for this database.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Db::Sqlite => Vec::new(),
            Db::Postgres { root_key, .. } => vec![("STRONGROOM_ROOT_KEY", root_key.clone())],
        }
    }

    /// Starts a server on `dir` with this database and extra flags.
    pub fn start(&self, dir: &Path, extra: &[&str]) -> Server {
        self.try_start(dir, extra).expect("server should start")
    }

    pub fn try_start(&self, dir: &Path, extra: &[&str]) -> Result<Server, String> {
        self.try_start_via(&[], dir, extra)
    }

    /// Starts a server through a launcher (see [`Server::try_start_via`]).
    pub fn try_start_via(
        &self,
        launcher: &[&str],
        dir: &Path,
        extra: &[&str],
    ) -> Result<Server, String> {
        let mut flags = self.flags();
        flags.extend(extra.iter().map(|s| s.to_string()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::try_start_via(launcher, dir, &flags, &env)
    }

    /// Runs SQL on this test's PostgreSQL schema (tests that tamper with or lock tables).
    pub fn psql(&self, sql: &str) -> String {
        let Db::Postgres { url, schema, .. } = self else {
            panic!("psql needs a PostgreSQL database")
        };
        // The schema through PGOPTIONS, not a `SET` in the command: psql 15 prints every
        // statement's result, so a `SET` would come before the answer ("SET\n0").
        let out = Command::new("psql")
            .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .env("PGOPTIONS", format!("-c search_path={schema}"))
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs SQL as someone with write access to the database would (the server stopped):
    /// the SQLite file in `data_dir`, or this test's PostgreSQL schema.
    pub fn tamper(&self, data_dir: &Path, sql: &str) {
        match self {
            Db::Sqlite => rusqlite::Connection::open(data_dir.join("strongroom.db"))
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            Db::Postgres { .. } => {
                self.psql(sql);
            }
        }
    }

    /// A byte-string literal in this database's SQL.
    pub fn blob(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        match self {
            Db::Sqlite => format!("X'{hex}'"),
            Db::Postgres { .. } => format!("'\\x{hex}'::bytea"),
        }
    }

    /// The values of one byte-string column a query selects.
    pub fn blobs(&self, data_dir: &Path, sql: &str) -> Vec<Vec<u8>> {
        match self {
            Db::Sqlite => {
                let conn = rusqlite::Connection::open(data_dir.join("strongroom.db")).unwrap();
                let mut stmt = conn.prepare(sql).unwrap();
                let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap();
                rows.map(Result::unwrap).collect()
            }
            Db::Postgres { .. } => self
                .psql(&format!("SELECT encode(v, 'hex') FROM ({sql}) AS t(v)"))
                .lines()
                .filter(|l| *l != "SET")
                .map(|l| hex::decode(l.trim()).unwrap())
                .collect(),
        }
    }

    /// Every byte the database holds for this server, as a dump an attacker with the database
    /// would have: the SQLite files (data and audit log) or the PostgreSQL schema's rows.
    pub fn dump(&self, data_dir: &Path) -> Vec<u8> {
        match self {
            Db::Sqlite => {
                let mut out = Vec::new();
                for entry in std::fs::read_dir(data_dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_file() {
                        out.extend(std::fs::read(path).unwrap());
                    }
                }
                out
            }
            Db::Postgres { url, schema, .. } => {
                let out = Command::new("pg_dump")
                    .args(["--data-only", "--schema", schema, url.as_str()])
                    .output()
                    .expect("pg_dump runs");
                assert!(
                    out.status.success(),
                    "pg_dump failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                out.stdout
            }
        }
    }
}

/// Whether `dump` holds `needle` as it is, or hex-encoded (how a PostgreSQL dump shows bytea).
pub fn holds(dump: &[u8], needle: &str) -> bool {
    let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
    [needle.as_bytes(), hex.as_bytes()]
        .iter()
        .any(|n| dump.windows(n.len()).any(|w| w == *n))
}

/// Runs each named test on SQLite and on PostgreSQL: `fn name(db: Db)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $test() { if let Some(db) = $crate::support::Db::sqlite() { super::$test(db) } })*
        }
        mod postgres {
            $(#[test] fn $test() { if let Some(db) = $crate::support::Db::postgres() { super::$test(db) } })*
        }
    };
}
