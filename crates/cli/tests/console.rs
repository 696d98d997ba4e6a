//! The admin console in a real browser: `tests/console/console_flows.py` (playwright driving
//! Debian's chromium) against the real binary, seeded here, on SQLite with files in a folder and
//! on PostgreSQL with files on S3. Also, without a browser: the console's files come with the
//! headers that keep it safe (strict CSP, no sniffing, no framing, no referrer).

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;
use support::files::Backend;
use support::{app_token, app_token_with, endpoint_answering, failing_token_endpoint, Server};

const FLOWS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/console/console_flows.py"
);
const NS: &str = "app";
const USER: &str = "telegram:4242";
const FILE_TEXT: &str = "console-test file body\n";

/// The browser's Python (with playwright) and chromium; `None` (said loudly) when missing.
fn browser() -> Option<(String, String)> {
    let python = std::env::var("STRONGROOM_TEST_BROWSER_PYTHON")
        .ok()
        .filter(|v| !v.is_empty());
    let chromium =
        std::env::var("STRONGROOM_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    match python {
        Some(python) if std::path::Path::new(&chromium).exists() => Some((python, chromium)),
        _ => {
            eprintln!(
                "\n\n*** CONSOLE BROWSER TEST SKIPPED: no playwright Python \
                 (STRONGROOM_TEST_BROWSER_PYTHON) or no chromium at {chromium}. \
                 scripts/test installs both (scripts/browser). ***\n\n"
            );
            None
        }
    }
}

fn put(server: &Server, token: &str, path: &str, body: serde_json::Value) {
    let r = server.request("PUT", path, Some(token), Some(&body.to_string()));
    assert!(r.status == 200 || r.status == 201, "{path}: {}", r.body);
}

/// A user with something of every kind, a credential whose refresh will fail, and a denial
/// in the audit log.
fn seed(server: &Server) -> (String, String) {
    let admin = server.admin().to_string();
    let app = app_token(
        server,
        NS,
        &["read", "write", "list", "delete", "export", "erase"],
    );
    let reader = app_token_with(server, &admin, NS, &["read", "list"]);
    let user = |rest: &str| format!("/v1/ns/{NS}/users/{USER}{rest}");
    put(
        server,
        &app,
        &user("/credentials/spotify"),
        json!({"data": {"type": "oauth2", "access_token": "at-CONSOLE-SECRET", "refresh_token": "rt-CONSOLE-SECRET",
            "expires_at": "2099-01-01T00:00:00Z"}}),
    );
    put(
        server,
        &admin,
        &format!("/v1/ns/{NS}/providers/calendar-provider"),
        json!({"token_url": failing_token_endpoint(), "client_id": "c", "client_secret": "s"}),
    );
    put(
        server,
        &app,
        &format!("/v1/ns/{NS}/users/telegram:777/credentials/calendar"),
        json!({"data": {"type": "oauth2", "access_token": "at-OLD", "refresh_token": "rt-OLD",
            "expires_at": "2020-01-01T00:00:00Z", "provider": "calendar-provider"}}),
    );
    put(
        server,
        &admin,
        &format!("/v1/ns/{NS}/collections/profile"),
        json!({"scope": "user"}),
    );
    put(
        server,
        &app,
        &user("/records/profile/main"),
        json!({"document": {"theme": "dark"}}),
    );
    let r = server.request(
        "POST",
        &user("/events"),
        Some(&app),
        Some(
            &json!({"events": [{"type": "login", "details": {"via": "console-test"}}]}).to_string(),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = server.request_with(
        "POST",
        &user("/files?name=notes.txt"),
        Some(&app),
        Some(FILE_TEXT),
        "text/plain",
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let denied = server.request("DELETE", &user("/credentials/spotify"), Some(&reader), None);
    assert_eq!(denied.status, 403, "{}", denied.body);
    (admin, reader)
}

fn screenshots(backend: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/console-screenshots")
        .join(backend)
}

fn flows_pass_in_a_real_browser(backend: Backend, label: &str) {
    let Some((python, chromium)) = browser() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = backend.start(
        &dir.path().join("d"),
        &["--job-interval-secs", "1", "--webhook-allow-private"],
    );
    let (admin, reader) = seed(&server);
    let hook = endpoint_answering(
        "/hooks",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    );
    let out = Command::new(python)
        .arg(FLOWS)
        .env("STRONGROOM_URL", &server.base)
        .env("ADMIN_TOKEN", &admin)
        .env("READER_TOKEN", &reader)
        .env("NAMESPACE", NS)
        .env("SEEDED_USER", USER)
        .env("FAILING_CREDENTIAL", "calendar")
        .env("HOOK_URL", &hook)
        .env("FILE_TEXT", FILE_TEXT)
        .env("SCREENSHOTS", screenshots(label))
        .env("CHROMIUM", chromium)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "console flows failed on {label}:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.logs()
    );
    for secret in ["at-CONSOLE-SECRET", "rt-CONSOLE-SECRET", &admin, &reader] {
        assert!(
            !server.logs().contains(secret),
            "a secret reached the server log"
        );
    }
}

#[test]
fn console_flows_on_sqlite_with_files_in_a_folder() {
    flows_pass_in_a_real_browser(Backend::local().unwrap(), "sqlite");
}

#[test]
fn console_flows_on_postgres_with_files_on_s3() {
    let Some(backend) = Backend::s3().and_then(|b| b.on(support::Db::postgres())) else {
        return;
    };
    flows_pass_in_a_real_browser(backend, "postgres");
}

/// Every console page and the reference come with the headers that keep them safe, and an
/// unknown file is the API's ordinary 404.
#[test]
fn console_files_carry_a_strict_policy() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("d"), &[], &[]);
    for path in ["/ui", "/ui/", "/ui/app.js", "/ui/console.css", "/docs"] {
        let r = ureq::get(&format!("{}{path}", server.base)).call().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let header = |name: &str| r.header(name).unwrap_or_default().to_string();
        let csp = header("content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'none'"));
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert!(header("set-cookie").is_empty(), "{path} sets a cookie");
    }
    let r = server.request("GET", "/ui/../../etc/passwd", None, None);
    assert_eq!(r.status, 404);
    let r = server.request("GET", "/ui/nothing.js", None, None);
    assert_eq!((r.status, r.code()), (404, "no_route".into()));
}
