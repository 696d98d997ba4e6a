//! The Vault-compatible API through the real binary on SQLite and on PostgreSQL, driven by
//! real, unmodified clients: `hvac` (Python), OpenBao's `bao` CLI, `node-vault` (Node). The
//! same hvac scenario runs against `bao server -dev` and against Strongroom, and every step's
//! outcome (status / hvac exception class), answer keys and checked values must agree. Then
//! the protocol details that break naive servers, namespaces and capabilities, and what
//! Strongroom adds underneath (per-user keys, export, crypto-shredding, audit).
//!
//! The clients come from `scripts/vault-clients` (run by `scripts/test`); without them these
//! tests fail loudly unless `STRONGROOM_SKIP_VAULT_CLIENTS=1`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{app_token, Db, Server};

on_both_databases!(
    hvac_answers_as_openbao_does,
    the_bao_cli_works_unmodified,
    node_vault_works_unmodified,
    vault_protocol_details,
    namespaces_and_capabilities_decide,
    kv_paths_are_users_credentials,
    transit_is_audited_and_joins_key_rotation,
);

const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vault/hvac_scenario.py");
const NODE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vault/node_vault.js");

struct Clients {
    python: String,
    bao: String,
    node_vault: String,
}

/// The installed clients; `None` only when skipped on purpose.
fn clients() -> Option<Clients> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        var("STRONGROOM_TEST_VAULT_PYTHON"),
        var("STRONGROOM_TEST_BAO"),
        var("STRONGROOM_TEST_NODE_VAULT"),
    ) {
        (Some(python), Some(bao), Some(node_vault)) => Some(Clients {
            python,
            bao,
            node_vault,
        }),
        _ if var("STRONGROOM_SKIP_VAULT_CLIENTS").as_deref() == Some("1") => {
            eprintln!("STRONGROOM_SKIP_VAULT_CLIENTS=1: Vault client test skipped on request");
            None
        }
        _ => panic!(
            "the Vault clients are not installed: run scripts/test (it runs scripts/vault-clients), or set STRONGROOM_SKIP_VAULT_CLIENTS=1 to skip on purpose"
        ),
    }
}

/// A server and an app token with every capability a Vault client needs in namespace `app`.
fn start(db: &Db, dir: &std::path::Path, flags: &[&str]) -> (Server, String) {
    let server = db.start(&dir.join("d"), flags);
    let token = app_token(
        &server,
        "app",
        &["read", "write", "list", "delete", "admin", "export"],
    );
    (server, token)
}

fn vault_addr(server: &Server) -> String {
    format!("{}/vault", server.base)
}

/// Runs the hvac scenario against `url`; one JSON object per step.
fn scenario(c: &Clients, url: &str, token: &str, extra: &[&str]) -> Vec<Value> {
    let out = Command::new(&c.python)
        .arg(SCENARIO)
        .args([url, token])
        .args(extra)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the hvac scenario failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per step"))
        .collect()
}

/// OpenBao's dev server on a free loopback port, with a home directory of its own.
struct Bao {
    child: Child,
    url: String,
    _home: tempfile::TempDir,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_bao(c: &Clients) -> Bao {
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&c.bao)
        .args(["server", "-dev", "-dev-root-token-id=root"])
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
        .env("HOME", home.path())
        .env_remove("VAULT_ADDR")
        .env_remove("BAO_ADDR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bao starts");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = ureq::get(&format!("{url}/v1/sys/health")).call() {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "bao server -dev did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Bao {
        child,
        url,
        _home: home,
    }
}

fn hvac_answers_as_openbao_does(db: Db) {
    let Some(c) = clients() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = start(&db, dir.path(), &[]);
    let ours = scenario(&c, &vault_addr(&server), &token, &[]);
    let bao = start_bao(&c);
    let theirs = scenario(&c, &bao.url, "root", &["--bao"]);
    assert_eq!(ours.len(), theirs.len(), "both ran every step");
    let mut differences = Vec::new();
    for (a, b) in ours.iter().zip(&theirs) {
        let compared = |v: &Value| {
            (
                v["step"].clone(),
                v["outcome"].clone(),
                v["keys"].clone(),
                v["value"].clone(),
            )
        };
        if compared(a) != compared(b) {
            differences.push(format!("strongroom {a}\n   openbao {b}"));
        }
    }
    assert!(
        differences.is_empty(),
        "hvac saw differences:\n{}",
        differences.join("\n")
    );
    // And the scenario did what it says (not two servers failing alike).
    let step = |name: &str| ours.iter().find(|s| s["step"] == name).unwrap().clone();
    assert_eq!(step("read patched")["value"], json!({"a": "2", "b": "x"}));
    assert_eq!(
        step("write cas 0 on an existing key")["outcome"],
        "InvalidRequest"
    );
    assert_eq!(step("read deleted")["outcome"], "InvalidPath");
    assert_eq!(step("decrypt")["value"], "hello");
    assert_eq!(step("decrypt tampered")["outcome"], "InvalidRequest");
    assert_eq!(step("batch with a bad item")["outcome"], "InvalidRequest");
    assert_eq!(step("derived, same context")["value"], "per-user");
    assert_eq!(step("bad token authenticated")["value"], false);
    assert_eq!(step("bad token read")["outcome"], "Forbidden");
}

/// Runs the bao CLI against the server; (exit code, stdout, stderr).
fn bao_cli(c: &Clients, server: &Server, token: &str, args: &[&str]) -> (i32, String, String) {
    let home = server.data_dir.with_extension("bao-home");
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new(&c.bao)
        .args(args)
        .env("VAULT_ADDR", vault_addr(server))
        .env("BAO_ADDR", vault_addr(server))
        .env("VAULT_TOKEN", token)
        .env("BAO_TOKEN", token)
        .env("HOME", &home)
        .output()
        .expect("bao runs");
    support::outcome(out)
}

fn the_bao_cli_works_unmodified(db: Db) {
    let Some(c) = clients() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = start(&db, dir.path(), &[]);
    let ok = |args: &[&str]| {
        let (code, out, err) = bao_cli(&c, &server, &token, args);
        assert_eq!(code, 0, "bao {args:?}: {out}{err}");
        out
    };
    let json_of = |args: &[&str]| -> Value { serde_json::from_str(&ok(args)).unwrap() };
    ok(&[
        "kv",
        "put",
        "secret/telegram:42/spotify",
        "access_token=at-1",
        "scope=read",
    ]);
    let got = json_of(&["kv", "get", "-format=json", "secret/telegram:42/spotify"]);
    assert_eq!(
        got["data"]["data"],
        json!({"access_token": "at-1", "scope": "read"})
    );
    ok(&["kv", "put", "secret/telegram:42/github", "token=gh"]);
    let listed = json_of(&["kv", "list", "-format=json", "secret/telegram:42"]);
    assert_eq!(listed, json!(["github", "spotify"]));
    ok(&["kv", "patch", "secret/telegram:42/spotify", "scope=write"]);
    let got = json_of(&["kv", "get", "-format=json", "secret/telegram:42/spotify"]);
    assert_eq!(got["data"]["data"]["scope"], "write");
    assert_eq!(got["data"]["metadata"]["version"], 2);
    let old = json_of(&[
        "kv",
        "get",
        "-format=json",
        "-version=1",
        "secret/telegram:42/spotify",
    ]);
    assert_eq!(old["data"]["data"]["scope"], "read");
    ok(&["kv", "delete", "secret/telegram:42/spotify"]);
    // As with Vault, the CLI shows a deleted version's metadata and no data.
    let (_, out, err) = bao_cli(
        &c,
        &server,
        &token,
        &["kv", "get", "secret/telegram:42/spotify"],
    );
    assert!(
        out.contains("deletion_time") && !out.contains("at-1"),
        "{out}{err}"
    );
    ok(&[
        "kv",
        "undelete",
        "-versions=2",
        "secret/telegram:42/spotify",
    ]);
    ok(&["kv", "destroy", "-versions=1", "secret/telegram:42/spotify"]);
    let meta = json_of(&[
        "kv",
        "metadata",
        "get",
        "-format=json",
        "secret/telegram:42/spotify",
    ]);
    assert_eq!(meta["data"]["versions"]["1"]["destroyed"], true);
    assert_eq!(meta["data"]["current_version"], 2);
    ok(&[
        "kv",
        "metadata",
        "put",
        "-max-versions=3",
        "secret/telegram:42/spotify",
    ]);
    ok(&["kv", "metadata", "delete", "secret/telegram:42/github"]);
    let (code, _, _) = bao_cli(
        &c,
        &server,
        &token,
        &["kv", "get", "secret/telegram:42/github"],
    );
    assert_ne!(code, 0);

    ok(&["write", "-f", "transit/keys/app-key"]);
    let plaintext = "c3Ryb25ncm9vbQ=="; // "strongroom"
    let enc = json_of(&[
        "write",
        "-format=json",
        "transit/encrypt/app-key",
        &format!("plaintext={plaintext}"),
    ]);
    let ciphertext = enc["data"]["ciphertext"].as_str().unwrap().to_string();
    assert!(ciphertext.starts_with("vault:v1:"), "{ciphertext}");
    let dec = json_of(&[
        "write",
        "-format=json",
        "transit/decrypt/app-key",
        &format!("ciphertext={ciphertext}"),
    ]);
    assert_eq!(dec["data"]["plaintext"], plaintext);
    let (code, out, err) = bao_cli(
        &c,
        &server,
        &token,
        &[
            "write",
            "transit/decrypt/app-key",
            "ciphertext=vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ],
    );
    assert_ne!(code, 0, "a forged ciphertext is refused: {out}");
    assert!(err.contains("integrity check failed"), "{err}");
}

fn node_vault_works_unmodified(db: Db) {
    let Some(c) = clients() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = start(&db, dir.path(), &[]);
    let r = server.request("POST", "/vault/v1/transit/keys/k1", None, None);
    assert_eq!(r.status, 403, "no token: {}", r.body);
    let out = Command::new("node")
        .arg(NODE_SCRIPT)
        .env("NODE_VAULT_DIR", &c.node_vault)
        .env("VAULT_ADDR", vault_addr(&server))
        .env("VAULT_TOKEN", &token)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "node-vault failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        seen,
        json!({"read": {"bot_token": "xoxb-1"}, "list": ["slack"], "decrypted": "node", "missing": 404})
    );
}

/// One HTTP/1.1 exchange over a raw socket, to see exactly what the server sends.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

fn raw(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Raw {
    let host = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    stream.write_all(req.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Raw {
        status,
        headers,
        body: body.to_string(),
    }
}

fn vault_protocol_details(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = start(&db, dir.path(), &["--vault-listen", "127.0.0.1:0"]);
    let base = &server.base;
    let auth = [("X-Vault-Token", token.as_str())];
    // No Content-Type, an empty body, `null`: all `{}` or JSON as Vault reads them.
    let r = raw(
        base,
        "POST",
        "/vault/v1/secret/data/u1/a",
        &auth,
        Some(r#"{"data":{"k":"v"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.json()["data"]["version"], 1);
    assert_eq!(
        raw(base, "POST", "/vault/v1/transit/keys/e", &auth, Some("")).status,
        200
    );
    assert_eq!(
        raw(
            base,
            "POST",
            "/vault/v1/transit/keys/n",
            &auth,
            Some("null")
        )
        .status,
        200
    );
    // LIST, and ?list=true / ?list=1 on GET.
    for (method, path) in [
        ("LIST", "/vault/v1/secret/metadata/u1"),
        ("LIST", "/vault/v1/secret/metadata/u1/"),
        ("GET", "/vault/v1/secret/metadata/u1?list=true"),
        ("GET", "/vault/v1/secret/metadata/u1?list=1"),
    ] {
        let r = raw(base, method, path, &auth, None);
        assert_eq!(
            (r.status, r.json()["data"]["keys"].clone()),
            (200, json!(["a"])),
            "{method} {path}: {}",
            r.body
        );
    }
    let r = raw(base, "LIST", "/vault/v1/transit/keys", &auth, None);
    assert_eq!(r.json()["data"]["keys"], json!(["e", "n"]));
    assert_eq!(
        raw(
            base,
            "LIST",
            "/vault/v1/secret/metadata/nobody",
            &auth,
            None
        )
        .body,
        r#"{"errors":[]}"#
    );
    // 204: no body, still JSON's content type.
    let r = raw(base, "DELETE", "/vault/v1/secret/data/u1/a", &auth, None);
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    // A deleted version: 404 with the envelope and its metadata.
    let r = raw(base, "GET", "/vault/v1/secret/data/u1/a", &auth, None);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["data"]["data"], Value::Null);
    assert!(
        r.json()["data"]["metadata"]["deletion_time"]
            .as_str()
            .unwrap()
            .len()
            > 10
    );
    // A missing or bad token is 403, never 401.
    for headers in [vec![], vec![("X-Vault-Token", "sr_0000000000000000_bad")]] {
        let r = raw(base, "GET", "/vault/v1/secret/data/u1/a", &headers, None);
        assert_eq!(
            (r.status, r.body.as_str()),
            (403, r#"{"errors":["permission denied"]}"#)
        );
    }
    // Authorization: Bearer works too; a soft-deleted secret is still listed (as in Vault).
    let bearer = format!("Bearer {token}");
    let r = raw(
        base,
        "LIST",
        "/vault/v1/secret/metadata/u1",
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(r.json()["data"]["keys"], json!(["a"]), "{}", r.body);
    // Unsupported options are refused with a clear message.
    let wrap = [
        ("X-Vault-Token", token.as_str()),
        ("X-Vault-Wrap-TTL", "60"),
    ];
    let r = raw(base, "GET", "/vault/v1/secret/data/u1/a", &wrap, None);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("X-Vault-Wrap-TTL"), "{}", r.body);
    let r = raw(
        base,
        "POST",
        "/vault/v1/transit/keys/c",
        &auth,
        Some(r#"{"derived":true,"convergent_encryption":true}"#),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("convergent encryption is not supported"),
        "{}",
        r.body
    );
    let r = raw(
        base,
        "PATCH",
        "/vault/v1/secret/data/u1/a",
        &auth,
        Some(r#"{"data":{}}"#),
    );
    assert_eq!(r.status, 415, "{}", r.body);
    // Bad input: clear 4xx in Vault's shape, never an echo of what was sent.
    for (method, path, body) in [
        ("POST", "/vault/v1/secret/data/u1/a", "{not json PLANTED-x9"),
        (
            "POST",
            "/vault/v1/secret/data/u1/a",
            r#"{"data":"PLANTED-x9"}"#,
        ),
        (
            "POST",
            "/vault/v1/secret/data/only-one-segment",
            r#"{"data":{"k":"v"}}"#,
        ),
        (
            "POST",
            "/vault/v1/secret/data/u1/a",
            r#"{"data":{"k":"v"},"options":{"cas":"PLANTED-x9"}}"#,
        ),
        (
            "POST",
            "/vault/v1/transit/encrypt/e",
            r#"{"plaintext":"PLANTED-x9!"}"#,
        ),
        (
            "POST",
            "/vault/v1/transit/decrypt/e",
            r#"{"ciphertext":"PLANTED-x9"}"#,
        ),
        ("POST", "/vault/v1/transit/keys/bad%20name", "{}"),
        ("GET", "/vault/v1/PLANTED-x9/data", ""),
    ] {
        let r = raw(
            base,
            method,
            path,
            &auth,
            (!body.is_empty()).then_some(body),
        );
        assert!(
            (400..500).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
        assert!(r.json()["errors"].is_array(), "{method} {path}: {}", r.body);
        assert!(
            !r.body.contains("PLANTED"),
            "{method} {path} echoed the input: {}",
            r.body
        );
    }
    // Health: unauthenticated, not wrapped, also HEAD.
    let r = raw(base, "GET", "/vault/v1/sys/health", &[], None);
    assert_eq!((r.status, r.json()["sealed"].clone()), (200, json!(false)));
    let r = raw(base, "HEAD", "/vault/v1/sys/health", &[], None);
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let r = raw(
        base,
        "GET",
        "/vault/v1/sys/internal/ui/mounts/secret/u1/a",
        &auth,
        None,
    );
    assert_eq!(r.json()["data"]["options"]["version"], "2");
    // The same API at the root of --vault-listen.
    let vault_base = server
        .vault_base
        .clone()
        .expect("--vault-listen address printed");
    let r = raw(&vault_base, "LIST", "/v1/transit/keys", &auth, None);
    assert_eq!(r.json()["data"]["keys"], json!(["e", "n"]), "{}", r.body);
    assert!(!server.logs().contains("panicked"));
}

fn namespaces_and_capabilities_decide(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = start(&db, dir.path(), &[]);
    let base = &server.base;
    let admin = server.admin().to_string();
    let put = |t: &str, ns: Option<&str>| {
        let mut h = vec![("X-Vault-Token", t)];
        if let Some(ns) = ns {
            h.push(("X-Vault-Namespace", ns));
        }
        raw(
            base,
            "POST",
            "/vault/v1/secret/data/u1/a",
            &h,
            Some(r#"{"data":{"k":"v"}}"#),
        )
    };
    assert_eq!(put(&token, None).status, 200, "the token's only namespace");
    // An operator token may use every namespace: it must say which.
    let r = put(&admin, None);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("X-Vault-Namespace"), "{}", r.body);
    assert_eq!(
        put(&admin, Some("app/")).status,
        200,
        "a trailing / is stripped"
    );
    // Another namespace's token reaches nothing here.
    let other = app_token(&server, "other", &["read", "write", "list"]);
    assert_eq!(put(&other, Some("app")).status, 403);
    // Capabilities map to what each call needs.
    let reader = app_token(&server, "app", &["read"]);
    assert_eq!(put(&reader, None).status, 403);
    let r = raw(
        base,
        "GET",
        "/vault/v1/secret/data/u1/a",
        &[("X-Vault-Token", &reader)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Listing the users names every user of the app: list alone is not enough.
    let lister = app_token(&server, "app", &["list"]);
    let r = raw(
        base,
        "LIST",
        "/vault/v1/secret/metadata/",
        &[("X-Vault-Token", &lister)],
        None,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let exporter = app_token(&server, "app", &["list", "export"]);
    let r = raw(
        base,
        "LIST",
        "/vault/v1/secret/metadata/",
        &[("X-Vault-Token", &exporter)],
        None,
    );
    assert_eq!(r.json()["data"]["keys"], json!(["u1/"]), "{}", r.body);
    // Transit key management needs admin; encrypting needs write.
    let writer = app_token(&server, "app", &["write", "read"]);
    let r = raw(
        base,
        "POST",
        "/vault/v1/transit/keys/k",
        &[("X-Vault-Token", &writer)],
        Some("{}"),
    );
    assert_eq!(r.status, 403);
    let r = raw(
        base,
        "POST",
        "/vault/v1/transit/encrypt/k",
        &[("X-Vault-Token", &writer)],
        Some(r#"{"plaintext":"aGk="}"#),
    );
    assert_eq!(
        r.status, 404,
        "a missing key is created only for admin: {}",
        r.body
    );
    let r = raw(
        base,
        "POST",
        "/vault/v1/transit/encrypt/k",
        &[("X-Vault-Token", &token)],
        Some(r#"{"plaintext":"aGk="}"#),
    );
    assert_eq!(
        r.status, 200,
        "admin's encrypt creates the key (Vault's upsert): {}",
        r.body
    );
    let r = raw(
        base,
        "POST",
        "/vault/v1/transit/encrypt/k",
        &[("X-Vault-Token", &writer)],
        Some(r#"{"plaintext":"aGk="}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // lookup-self: policies named after the capabilities.
    let r = raw(
        base,
        "GET",
        "/vault/v1/auth/token/lookup-self",
        &[("X-Vault-Token", &writer)],
        None,
    );
    assert_eq!(
        r.json()["data"]["policies"],
        json!(["read", "write"]),
        "{}",
        r.body
    );
    // Every denial above is in the audit log.
    let denied = server
        .request("GET", "/v1/sys/audit?limit=1000", Some(&admin), None)
        .json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .count();
    assert!(denied >= 4, "{denied} denials audited");
}

fn kv_paths_are_users_credentials(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = start(&db, dir.path(), &[]);
    let base = &server.base;
    let auth = [("X-Vault-Token", token.as_str())];
    let secret = r#"{"data":{"b":1,"a":18446744073709551617,"c":1.10}}"#;
    assert_eq!(
        raw(
            base,
            "POST",
            "/vault/v1/secret/data/telegram:7/spotify",
            &auth,
            Some(secret)
        )
        .status,
        200
    );
    // The same credential through Strongroom's own API, byte for byte.
    let r = server.request(
        "GET",
        "/v1/ns/app/users/telegram:7/credentials/spotify",
        Some(&token),
        None,
    );
    assert!(
        r.body
            .contains(r#""data":{"b":1,"a":18446744073709551617,"c":1.10}"#),
        "{}",
        r.body
    );
    let r = raw(
        base,
        "GET",
        "/vault/v1/secret/data/telegram:7/spotify",
        &auth,
        None,
    );
    assert!(
        r.body
            .contains(r#""data":{"b":1,"a":18446744073709551617,"c":1.10}"#),
        "{}",
        r.body
    );
    // An OAuth token set stored natively reads back through KV as its fields.
    let set = json!({"data": {"type": "oauth2", "access_token": "at-9", "refresh_token": "rt-9", "provider": "spotify"}});
    server.request(
        "PUT",
        "/v1/ns/app/users/telegram:7/credentials/oauth",
        Some(&token),
        Some(&set.to_string()),
    );
    let r = raw(
        base,
        "GET",
        "/vault/v1/secret/data/telegram:7/oauth",
        &auth,
        None,
    );
    assert_eq!(
        r.json()["data"]["data"]["access_token"],
        "at-9",
        "{}",
        r.body
    );
    // Export has it; erasure shreds it, and KV answers 404 at once.
    let export = server.request(
        "GET",
        "/v1/ns/app/users/telegram:7/export",
        Some(&token),
        None,
    );
    assert!(
        export.body.contains("18446744073709551617"),
        "{}",
        export.body
    );
    let r = server.request(
        "DELETE",
        "/v1/ns/app/users/telegram:7?confirm=telegram:7",
        Some(server.admin()),
        None,
    );
    assert!(r.status < 300, "{}", r.body);
    let r = raw(
        base,
        "GET",
        "/vault/v1/secret/data/telegram:7/spotify",
        &auth,
        None,
    );
    assert_eq!(r.status, 404, "{}", r.body);
}

fn transit_is_audited_and_joins_key_rotation(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = start(&db, dir.path(), &[]);
    let base = &server.base;
    let admin = server.admin().to_string();
    let auth = [("X-Vault-Token", token.as_str())];
    assert_eq!(
        raw(base, "POST", "/vault/v1/transit/keys/k", &auth, Some("{}")).status,
        200
    );
    let batch = json!({"batch_input": [{"plaintext": "YQ=="}, {"plaintext": "Yg=="}, {"plaintext": "Yw=="}]});
    let r = raw(
        base,
        "POST",
        "/vault/v1/transit/encrypt/k",
        &auth,
        Some(&batch.to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let ciphertexts: Vec<String> = r.json()["data"]["batch_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ciphertext"].as_str().unwrap().to_string())
        .collect();
    // One audit entry for the call, with its batch size.
    let audit = server
        .request(
            "GET",
            "/v1/sys/audit?action=transit.encrypt",
            Some(&admin),
            None,
        )
        .json();
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["target"], "k/3");
    // Rotating the namespace key and rewrapping moves the transit key too; retiring the old
    // namespace key waits for it, and old ciphertexts keep decrypting.
    let (code, out, err) = server.cli(&admin, &["keys", "rotate", "app"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = server.cli(&admin, &["keys", "retire", "app", "--below", "2"]);
    assert_ne!(code, 0, "still in use by the transit key: {out}{err}");
    let (code, out, err) = server.cli(&admin, &["keys", "rewrap", "app"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = server.cli(&admin, &["keys", "retire", "app", "--below", "2"]);
    assert_eq!(code, 0, "{out}{err}");
    let decrypt = json!({"batch_input": ciphertexts.iter().map(|c| json!({"ciphertext": c})).collect::<Vec<_>>()});
    let r = raw(
        base,
        "POST",
        "/vault/v1/transit/decrypt/k",
        &auth,
        Some(&decrypt.to_string()),
    );
    let plain: Vec<Value> = r.json()["data"]["batch_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["plaintext"].clone())
        .collect();
    assert_eq!(
        plain,
        [json!("YQ=="), json!("Yg=="), json!("Yw==")],
        "{}",
        r.body
    );
    // A database writer cannot lower the key's minimum decryption version or plant a key.
    let mut server = server;
    server.stop();
    db.tamper(
        &dir.path().join("d"),
        "UPDATE transit_keys SET revision = revision + 1;",
    );
    let server = db.start(&dir.path().join("d"), &[]);
    let r = raw(
        &server.base,
        "POST",
        "/vault/v1/transit/encrypt/k",
        &auth,
        Some(r#"{"plaintext":"YQ=="}"#),
    );
    assert_eq!(r.status, 500, "an edited key row is refused: {}", r.body);
    assert!(r.body.contains("integrity"), "{}", r.body);
}
