//! Webhooks through the binary, on SQLite and PostgreSQL, against a real receiver that checks
//! every signature with an independent implementation (the `standardwebhooks` package from
//! PyPI): a test event arrives signed; an erasure's `user.erased` (written with the erasure)
//! waits while the receiver answers 503, is retried, and arrives once it is back, with the
//! same `webhook-id`, the keyed user hash and no user id; deliveries are listed by state;
//! a redelivery arrives again with the same id; the secret is shown once.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{
    app_token, failing_token_endpoint, postgres_url, shared_root_key, start_node, Db, Server,
};

on_both_databases!(
    signed_events_arrive_at_least_once_through_an_outage,
    a_failing_refresh_and_its_recovery_reach_the_app_in_order,
    a_token_that_cannot_be_renewed_is_announced_before_it_expires,
    stored_data_that_fails_authentication_is_announced,
    a_locked_out_token_is_announced_to_its_namespace
);

const RECEIVER: &str = r#"
import json, sys, os
from http.server import BaseHTTPRequestHandler, HTTPServer
from standardwebhooks.webhooks import Webhook
secret_file, mode_file, log_file = sys.argv[1:4]
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        mode = open(mode_file).read().strip() if os.path.exists(mode_file) else ""
        if mode == "down":
            self.send_response(503); self.end_headers(); return
        headers = {k: self.headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        try:
            Webhook(open(secret_file).read().strip()).verify(body, headers)
            ok = True
        except Exception:
            ok = False
        with open(log_file, "a") as f:
            f.write(json.dumps({"id": headers["webhook-id"], "verified": ok, "body": json.loads(body)}) + "\n")
        if mode == "slow":
            import time; time.sleep(2)
        self.send_response(204 if ok else 400); self.end_headers()
    def log_message(self, *a): pass
from http.server import ThreadingHTTPServer
server = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

struct Receiver {
    child: Child,
    url: String,
    secret: PathBuf,
    mode: PathBuf,
    log: PathBuf,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn receiver(dir: &Path) -> Receiver {
    let (secret, mode, log) = (
        dir.join("secret"),
        dir.join("mode"),
        dir.join("received.jsonl"),
    );
    let mut child = Command::new(support::python_with("standardwebhooks"))
        .args(["-c", RECEIVER])
        .args([&secret, &mode, &log])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    Receiver {
        child,
        url: format!("http://127.0.0.1:{}/hooks", port.trim()),
        secret,
        mode,
        log,
    }
}

impl Receiver {
    /// Subscribes to `hook` as `app`'s webhook `name` and keeps the secret for verifying.
    fn subscribe(&self, server: &Server, admin: &str, name: &str, hook: &Value) {
        let r = server.request(
            "PUT",
            &format!("/v1/ns/app/webhooks/{name}"),
            Some(admin),
            Some(&hook.to_string()),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        std::fs::write(&self.secret, r.json()["secret"].as_str().unwrap()).unwrap();
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[track_caller]
    fn wait_for(&self, what: &str, count: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got: Vec<Value> = self.received().into_iter().filter(|e| pred(e)).collect();
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{what} never arrived: {:?}",
                self.received()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn deliveries(server: &Server, admin: &str, query: &str) -> Vec<Value> {
    let r = server.request(
        "GET",
        &format!("/v1/ns/app/webhooks/ops/deliveries{query}"),
        Some(admin),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["items"].as_array().unwrap().clone()
}

fn signed_events_arrive_at_least_once_through_an_outage(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let rx = receiver(dir.path());
    let server = db.start(
        &dir.path().join("d"),
        &[
            "--webhook-allow-private",
            "--job-interval-secs",
            "1",
            "--webhook-retry-base-ms",
            "300",
        ],
    );
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write", "erase"]);

    let hook = json!({"url": rx.url, "events": ["user.erased", "webhook.test", "keys.rotated"]});
    let r = server.request(
        "PUT",
        "/v1/ns/app/webhooks/ops",
        Some(&admin),
        Some(&hook.to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    std::fs::write(&rx.secret, &secret).unwrap();
    let again = server.request(
        "PUT",
        "/v1/ns/app/webhooks/ops",
        Some(&admin),
        Some(&hook.to_string()),
    );
    assert!(
        again.json().get("secret").is_none(),
        "the secret is shown once: {}",
        again.body
    );
    let listed = server.request("GET", "/v1/ns/app/webhooks", Some(&admin), None);
    assert!(!listed.body.contains(&secret[6..]), "{}", listed.body);
    let r = server.request(
        "PUT",
        "/v1/ns/app/webhooks/bad",
        Some(&admin),
        Some(r#"{"url": "ftp://x", "events": ["user.erased"]}"#),
    );
    assert_eq!((r.status, r.code()), (400, "invalid_input".into()));
    let r = server.request(
        "PUT",
        "/v1/ns/app/webhooks/bad",
        Some(&app),
        Some(&hook.to_string()),
    );
    assert_eq!(r.status, 403, "admin only");

    // A test event, signed.
    let r = server.request("POST", "/v1/ns/app/webhooks/ops/test", Some(&admin), None);
    assert_eq!(r.status, 202, "{}", r.body);
    let test_id = r.json()["event_id"].as_str().unwrap().to_string();
    let got = rx.wait_for("the test event", 1, |e| e["id"] == test_id.as_str());
    assert_eq!(got[0]["verified"], true, "{got:?}");
    assert_eq!(got[0]["body"]["type"], "webhook.test");

    // A key rotation, emitted with the new key version.
    let r = server.request("POST", "/v1/ns/app/keys/rotate", Some(&admin), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let got = rx.wait_for("keys.rotated", 1, |e| e["body"]["type"] == "keys.rotated");
    assert_eq!(
        (
            got[0]["verified"].clone(),
            got[0]["body"]["data"]["version"].clone()
        ),
        (json!(true), json!(2))
    );

    // The receiver goes down; an erasure's event waits, retried, then arrives.
    std::fs::write(&rx.mode, "down").unwrap();
    let r = server.request(
        "PUT",
        "/v1/ns/app/users/leaver/credentials/slack",
        Some(&app),
        Some(r#"{"data": {"type": "secret", "data": {"token": "xoxb-WEBHOOK-MARKER"}}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = server.request(
        "DELETE",
        "/v1/ns/app/users/leaver?confirm=leaver",
        Some(&app),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let user_hash = r.json()["user_hash"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let erased = loop {
        let pending = deliveries(&server, &admin, "?state=pending");
        if let Some(d) = pending
            .iter()
            .find(|d| d["type"] == "user.erased" && d["attempts"].as_u64() >= Some(2))
        {
            assert_eq!(d["last_status"], 503, "{d}");
            break d.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no retried delivery: {pending:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::fs::write(&rx.mode, "up").unwrap();
    let erased_id = erased["event_id"].as_str().unwrap().to_string();
    let got = rx.wait_for("user.erased", 1, |e| e["id"] == erased_id.as_str());
    assert_eq!(got[0]["verified"], true);
    let body = &got[0]["body"];
    assert_eq!(body["type"], "user.erased");
    assert_eq!(body["data"]["user_hash"], user_hash.as_str());
    assert!(
        body["data"].get("user").is_none(),
        "no user id unless opted in: {body}"
    );
    let text = std::fs::read_to_string(&rx.log).unwrap();
    assert!(
        !text.contains("leaver") && !text.contains("WEBHOOK-MARKER"),
        "{text}"
    );

    // Listed as delivered; redelivered on request with the same id.
    let delivered = deliveries(&server, &admin, "?state=delivered");
    assert_eq!(delivered.len(), 3, "{delivered:?}");
    let seq = delivered
        .iter()
        .find(|d| d["event_id"] == test_id.as_str())
        .unwrap()["seq"]
        .clone();
    let r = server.request(
        "POST",
        &format!("/v1/ns/app/webhooks/ops/deliveries/{seq}/redeliver"),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    rx.wait_for("the redelivered test event", 2, |e| {
        e["id"] == test_id.as_str()
    });
    let r = server.request(
        "GET",
        "/v1/ns/app/webhooks/ops/deliveries?state=nonsense",
        Some(&admin),
        None,
    );
    assert_eq!((r.status, r.code()), (400, "invalid_input".into()));
    let metrics = server.request("GET", "/v1/sys/metrics", None, None).body;
    assert!(
        metrics.contains("strongroom_webhook_delivery_failures_total"),
        "{metrics}"
    );

    let (code, out, err) = server.cli(
        &admin,
        &[
            "webhook",
            "deliveries",
            "app",
            "ops",
            "--state",
            "delivered",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&erased_id), "{out}");
    let (code, out, err) = server.cli(&admin, &["webhook", "list", "app"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("user.erased") && !out.contains("whsec_"),
        "{out}"
    );

    let r = server.request("DELETE", "/v1/ns/app/webhooks/ops", Some(&admin), None);
    assert_eq!(r.status, 204);
    let r = server.request(
        "GET",
        "/v1/ns/app/webhooks/ops/deliveries",
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 404);
}

/// A refresh that fails, then the app storing a new token set: `credential.refresh_failed`
/// (with the provider's error, the credential's name, and — opted in — the app's user id)
/// then `credential.recovered`, in that order, both signed; no token in either.
fn a_failing_refresh_and_its_recovery_reach_the_app_in_order(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let rx = receiver(dir.path());
    let server = db.start(
        &dir.path().join("d"),
        &["--webhook-allow-private", "--job-interval-secs", "1"],
    );
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    let provider =
        json!({"token_url": failing_token_endpoint(), "client_id": "c", "client_secret": "s"});
    let r = server.request(
        "PUT",
        "/v1/ns/app/providers/spotify",
        Some(&admin),
        Some(&provider.to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let hook = json!({"url": rx.url, "events": ["credential.refresh_failed", "credential.recovered", "security.token_suspended"], "include_user_id": true});
    rx.subscribe(&server, &admin, "tokens", &hook);
    let cred = "/v1/ns/app/users/telegram:42/credentials/spotify";
    let set = |access: &str, expires: &str| {
        json!({"data": {"type": "oauth2", "access_token": access, "refresh_token": "rt-SECRET-1",
            "expires_at": expires, "provider": "spotify"}})
        .to_string()
    };
    assert_eq!(
        server
            .request(
                "PUT",
                cred,
                Some(&app),
                Some(&set("at-OLD-SECRET", "2020-01-01T00:00:00Z"))
            )
            .status,
        200
    );
    let r = server.request(
        "POST",
        &format!("{cred}/access-token"),
        Some(&app),
        Some("{}"),
    );
    assert_eq!(
        (r.status, r.code()),
        (502, "refresh_failed".into()),
        "{}",
        r.body
    );
    // The user signs in again: the app stores a fresh set.
    assert_eq!(
        server
            .request(
                "PUT",
                cred,
                Some(&app),
                Some(&set("at-NEW-SECRET", "2099-01-01T00:00:00Z"))
            )
            .status,
        200
    );

    let got = rx.wait_for("both credential events", 2, |e| e["verified"] == true);
    let types: Vec<&str> = got
        .iter()
        .map(|e| e["body"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["credential.refresh_failed", "credential.recovered"],
        "in order: {got:?}"
    );
    let failed = &got[0]["body"]["data"];
    assert_eq!(failed["credential"], "spotify");
    assert_eq!(failed["error"], "http_503");
    assert_eq!(failed["user"], "telegram:42", "opted in: {failed}");
    assert_eq!(failed["failures"], 1);
    let text = std::fs::read_to_string(&rx.log).unwrap();
    assert!(!text.contains("SECRET"), "no token in any payload: {text}");

    // A token denied again and again is suspended, and the app hears of it once.
    let reader = app_token(&server, "app", &["read"]);
    let token_id = server
        .request("GET", "/v1/sys/tokens/self", Some(&reader), None)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..25 {
        server.request(
            "PUT",
            cred,
            Some(&reader),
            Some(&set("x", "2099-01-01T00:00:00Z")),
        );
    }
    let got = rx.wait_for("security.token_suspended", 1, |e| {
        e["body"]["type"] == "security.token_suspended"
    });
    assert_eq!(got[0]["body"]["data"]["token_id"], token_id.as_str());
    std::thread::sleep(Duration::from_millis(1500));
    let suspended = rx
        .received()
        .into_iter()
        .filter(|e| e["body"]["type"] == "security.token_suspended")
        .count();
    assert_eq!(suspended, 1, "one event per suspension");
}

/// Three nodes on one PostgreSQL database: the node sending is killed (`kill -9`) in the middle
/// of a slow delivery; another node delivers everything — every event arrives, signed, and a
/// duplicate only ever repeats an event's `webhook-id`.
#[test]
fn three_nodes_deliver_every_event_when_the_sender_dies() {
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let rx = receiver(dir.path());
    let key = shared_root_key();
    let schema = format!("hooks_{}", std::process::id());
    let ids = ["n0", "n1", "n2"];
    let mut nodes: Vec<Server> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            start_node(
                &dir.path().join(format!("n{i}")),
                &url,
                &schema,
                &key,
                &[
                    "--node-id",
                    id,
                    "--job-interval-secs",
                    "1",
                    "--lease-ttl-secs",
                    "3",
                    "--webhook-allow-private",
                    "--webhook-claim-secs",
                    "3",
                ],
            )
        })
        .collect();
    let admin = nodes[0].admin().to_string();
    nodes[0].request(
        "POST",
        "/v1/sys/namespaces",
        Some(&admin),
        Some(r#"{"name":"app"}"#),
    );
    let hook = json!({"url": rx.url, "events": ["webhook.test"]});
    rx.subscribe(&nodes[0], &admin, "ops", &hook);
    std::fs::write(&rx.mode, "slow").unwrap();
    let sent: Vec<String> = (0..6)
        .map(|i| {
            let r =
                nodes[i % 3].request("POST", "/v1/ns/app/webhooks/ops/test", Some(&admin), None);
            assert_eq!(r.status, 202, "{}", r.body);
            r.json()["event_id"].as_str().unwrap().to_string()
        })
        .collect();
    // The first delivery is in flight (the receiver is slow): kill the node sending it.
    rx.wait_for("a first delivery", 1, |_| true);
    let holder = |node: &Server| -> Option<String> {
        let r = node.request("GET", "/v1/sys/jobs", Some(&admin), None);
        r.json()["jobs"]
            .as_array()?
            .iter()
            .find(|j| j["name"] == "webhook-delivery")?["holder"]
            .as_str()
            .map(str::to_string)
    };
    let sender = holder(&nodes[0]).expect("a node holds the delivery job");
    let dead = ids.iter().position(|id| *id == sender).unwrap();
    nodes[dead].child.take().unwrap().kill().unwrap();
    std::fs::write(&rx.mode, "").unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = rx.received();
        let arrived: std::collections::BTreeSet<&str> =
            got.iter().map(|e| e["id"].as_str().unwrap()).collect();
        if sent.iter().all(|id| arrived.contains(id.as_str())) {
            assert!(got.iter().all(|e| e["verified"] == true), "{got:?}");
            assert!(
                arrived.iter().all(|id| sent.iter().any(|s| s == id)),
                "only the events sent, duplicates with their own id: {got:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every event arrived: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let survivor = &nodes[(dead + 1) % 3];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = survivor.request(
            "GET",
            "/v1/ns/app/webhooks/ops/deliveries?state=delivered",
            Some(&admin),
            None,
        );
        if r.json()["items"].as_array().map_or(0, Vec::len) == sent.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries not all recorded: {}",
            r.body
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A token set without a refresh token, close to expiry: the refresher (ahead of expiry by the
/// provider's margin) announces `credential.expiring` before it expires.
fn a_token_that_cannot_be_renewed_is_announced_before_it_expires(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let rx = receiver(dir.path());
    let server = db.start(
        &dir.path().join("d"),
        &["--webhook-allow-private", "--job-interval-secs", "1"],
    );
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    let provider = json!({"token_url": failing_token_endpoint(), "client_id": "c", "client_secret": "s", "refresh_margin_secs": 3600});
    let r = server.request(
        "PUT",
        "/v1/ns/app/providers/spotify",
        Some(&admin),
        Some(&provider.to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let hook = json!({"url": rx.url, "events": ["credential.expiring"]});
    rx.subscribe(&server, &admin, "expiry", &hook);
    let in_30_min = strongroom_core::clock::rfc3339(
        strongroom_core::Clock::now_ms(&strongroom_core::SystemClock) + 30 * 60 * 1000,
    );
    let set = json!({"data": {"type": "oauth2", "access_token": "at-EXPIRING-SECRET",
        "expires_at": in_30_min, "provider": "spotify"}});
    let r = server.request(
        "PUT",
        "/v1/ns/app/users/u7/credentials/spotify",
        Some(&app),
        Some(&set.to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let got = rx.wait_for("credential.expiring", 1, |e| {
        e["body"]["type"] == "credential.expiring"
    });
    assert_eq!(got[0]["verified"], true);
    let data = &got[0]["body"]["data"];
    assert_eq!(
        (data["credential"].clone(), data["error"].clone()),
        (json!("spotify"), json!("no_refresh_token"))
    );
    assert!(!std::fs::read_to_string(&rx.log).unwrap().contains("SECRET"));
}

/// A ciphertext edited in the database: the read answers `integrity_error`, and the app hears
/// of it (the operation and what failed, the user's keyed hash; nothing of the data).
fn stored_data_that_fails_authentication_is_announced(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let rx = receiver(dir.path());
    let data_dir = dir.path().join("d");
    let flags = ["--webhook-allow-private", "--job-interval-secs", "1"];
    let mut server = db.start(&data_dir, &flags);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    let hook = json!({"url": rx.url, "events": ["integrity_error"]});
    rx.subscribe(&server, &admin, "integrity", &hook);
    let cred = "/v1/ns/app/users/u9/credentials/bot";
    let r = server.request(
        "PUT",
        cred,
        Some(&app),
        Some(r#"{"data": {"type": "secret", "data": {"token": "xoxb-INTEGRITY-SECRET"}}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    server.stop();
    db.tamper(
        &data_dir,
        &format!(
            "UPDATE credential_versions SET ciphertext = {}",
            db.blob(&[1u8; 80])
        ),
    );
    let server = db.start(&data_dir, &flags);
    let r = server.request("GET", cred, Some(&app), None);
    assert_eq!(
        (r.status, r.code()),
        (500, "integrity_error".into()),
        "{}",
        r.body
    );
    let got = rx.wait_for("integrity_error", 1, |e| {
        e["body"]["type"] == "integrity_error"
    });
    assert_eq!(got[0]["verified"], true);
    assert_eq!(got[0]["body"]["data"]["operation"], "credential.read");
    assert!(got[0]["body"]["data"]["user_hash"]
        .as_str()
        .is_some_and(|h| h.len() == 64));
    assert!(!std::fs::read_to_string(&rx.log).unwrap().contains("SECRET"));
}

/// Wrong secrets for a known token id until it is locked out: its namespace hears
/// `security.lockout` once, naming the token id (never a secret).
fn a_locked_out_token_is_announced_to_its_namespace(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let rx = receiver(dir.path());
    let server = db.start(
        &dir.path().join("d"),
        &[
            "--webhook-allow-private",
            "--job-interval-secs",
            "1",
            "--lockout-threshold",
            "3",
        ],
    );
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read"]);
    let hook = json!({"url": rx.url, "events": ["security.lockout"]});
    rx.subscribe(&server, &admin, "security", &hook);
    let id = server
        .request("GET", "/v1/sys/tokens/self", Some(&app), None)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let forged = format!("sr_{id}_{}", "A".repeat(43));
    for _ in 0..5 {
        server.request("GET", "/v1/ns/app/users", Some(&forged), None);
    }
    let got = rx.wait_for("security.lockout", 1, |e| {
        e["body"]["type"] == "security.lockout"
    });
    assert_eq!(got[0]["verified"], true);
    assert_eq!(got[0]["body"]["data"]["token_id"], id.as_str());
    std::thread::sleep(Duration::from_millis(1500));
    let count = rx
        .received()
        .iter()
        .filter(|e| e["body"]["type"] == "security.lockout")
        .count();
    assert_eq!(count, 1, "one event per lock-out");
    assert!(!std::fs::read_to_string(&rx.log)
        .unwrap()
        .contains(&"A".repeat(43)));
}
