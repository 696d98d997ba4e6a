//! Authorization by construction, proved from the route table itself: for every route, a
//! token lacking the capability its operation needs is refused with 403 and exactly one
//! `denied` audit entry (before any body is read), and a token holding exactly that capability
//! is not refused. Composite operations need only their own capability: an export-only token
//! exports everything, an erase-only token erases. On SQLite and on PostgreSQL.

mod support;

use serde_json::{json, Value};
use strongroom_core::{Access, Capability, Op};
use support::{oauth_body, Db, Server};

const NS: &str = "app";
const ALL_DATA_CAPS: [Capability; 6] = [
    Capability::Read,
    Capability::Write,
    Capability::Delete,
    Capability::List,
    Capability::Export,
    Capability::Erase,
];

on_both_databases!(
    every_route_refuses_a_token_without_its_capability_and_admits_one_with_exactly_it,
    export_only_and_erase_only_tokens_do_their_whole_job,
);

fn token(server: &Server, namespaces: &[&str], caps: &[&str]) -> (String, String) {
    let body = json!({"name": "probe", "namespaces": namespaces, "capabilities": caps}).to_string();
    let r = server.request("POST", "/v1/sys/tokens", Some(server.admin()), Some(&body));
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    (
        v["token"].as_str().unwrap().to_string(),
        v["id"].as_str().unwrap().to_string(),
    )
}

/// A concrete path for a route template (valid shapes, so only authorization can refuse).
fn concrete(template: &str) -> String {
    template
        .replace("{namespace}", NS)
        .replace("{user}", "u1")
        .replace("{name}", "c1")
        .replace("{collection}", "col")
        .replace("{key}", "k1")
        .replace("{file}", "0123456789abcdef0123456789abcdef")
        .replace("{id}", "0123456789abcdef")
}

fn denied_entries(server: &Server, action: &str, token_id: &str) -> Vec<Value> {
    let r = server.request(
        "GET",
        &format!("/v1/sys/audit?action={action}&token_id={token_id}&limit=1000"),
        Some(server.admin()),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["items"].as_array().unwrap().clone()
}

fn every_route_refuses_a_token_without_its_capability_and_admits_one_with_exactly_it(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let server = db.start(&dir.path().join("d"), &[]);
    let r = server.request(
        "POST",
        "/v1/sys/namespaces",
        Some(server.admin()),
        Some(r#"{"name":"app"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let mut checked = 0;
    for route in strongroom_server::route_table() {
        let Some(op) = route.op else { continue };
        let (lacking, exact): (Vec<&str>, (Vec<&str>, Vec<&str>)) = match op.access() {
            Access::In(cap) => (
                ALL_DATA_CAPS
                    .iter()
                    .filter(|c| **c != cap)
                    .map(|c| c.as_str())
                    .collect(),
                (vec![NS], vec![cap.as_str()]),
            ),
            // Admin on the namespace alone is not an operator.
            Access::Operator => (vec!["admin"], (vec!["*"], vec!["admin"])),
            Access::AnyToken => {
                let (t, _) = token(&server, &[NS], &["read"]);
                let method = route.method.as_str();
                let r = server.request(method, &concrete(route.path), Some(&t), None);
                assert_ne!(r.status, 403, "{method} {} refused any token", route.path);
                continue;
            }
            Access::Link => continue,
            Access::Internal => panic!("{} routes to an internal operation", route.path),
        };
        let method = route.method.as_str();
        let path = concrete(route.path);
        let body = matches!(method, "POST" | "PUT").then_some("{}");

        let (denied_token, denied_id) = token(&server, &[NS], &lacking);
        let r = server.request(method, &path, Some(&denied_token), body);
        assert_eq!(
            r.status, 403,
            "{method} {} with {lacking:?}: {}",
            route.path, r.body
        );
        if method != "HEAD" {
            assert_eq!(r.code(), "forbidden", "{method} {}", route.path);
        }
        let entries = denied_entries(&server, op.action(), &denied_id);
        assert_eq!(
            entries.len(),
            1,
            "{method} {}: one audit entry for the denial, got {entries:?}",
            route.path
        );
        assert_eq!(entries[0]["outcome"], "denied", "{method} {}", route.path);

        let (namespaces, caps) = &exact;
        let (allowed, _) = token(&server, namespaces, caps);
        let r = server.request(method, &path, Some(&allowed), body);
        assert!(
            r.status != 403 && r.status != 401,
            "{method} {} refused a token with exactly {caps:?}: {}",
            route.path,
            r.body
        );
        if op == Op::SysSeal {
            // It did seal the node: unseal it with its root key to go on.
            let key = match &db {
                Db::Sqlite => std::fs::read_to_string(dir.path().join("d/root.key")).unwrap(),
                Db::Postgres { root_key, .. } => root_key.clone(),
            };
            let body = json!({ "key": key.trim() }).to_string();
            let r = server.request("POST", "/v1/sys/unseal", None, Some(&body));
            assert_eq!(r.status, 200, "{}", r.body);
        }
        checked += 1;
    }
    assert!(checked > 50, "only {checked} routes were checked");
}

fn export_only_and_erase_only_tokens_do_their_whole_job(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let server = db.start(&dir.path().join("d"), &[]);
    let admin = server.admin().to_string();
    let r = server.request(
        "POST",
        "/v1/sys/namespaces",
        Some(&admin),
        Some(r#"{"name":"app"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = server.request(
        "PUT",
        "/v1/ns/app/collections/profiles",
        Some(&admin),
        Some(r#"{"scope":"user"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (writer, _) = token(&server, &[NS], &["write"]);
    let user = "/v1/ns/app/users/u1";
    for (path, body) in [
        (
            format!("{user}/credentials/spotify"),
            oauth_body("EXPORTED-token"),
        ),
        (
            format!("{user}/records/profiles/me"),
            r#"{"document":{"name":"Ada"}}"#.to_string(),
        ),
    ] {
        let r = server.request("PUT", &path, Some(&writer), Some(&body));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let r = server.request(
        "POST",
        &format!("{user}/events"),
        Some(&writer),
        Some(r#"{"events":[{"type":"login","details":{}}]}"#),
    );
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    let r = support::files::send(
        &server,
        "POST",
        &format!("{user}/files?name=a.txt"),
        Some(&writer),
        &[("Content-Type", "text/plain")],
        Some(b"file bytes"),
    );
    assert_eq!(r.status, 201);

    let (exporter, exporter_id) = token(&server, &[NS], &["export"]);
    let r = server.request("GET", &format!("{user}/export"), Some(&exporter), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let export = r.json();
    assert!(r.body.contains("EXPORTED-token"), "{}", r.body);
    assert_eq!(export["records"]["profiles"][0]["document"]["name"], "Ada");
    assert_eq!(export["events"].as_array().unwrap().len(), 1);
    assert_eq!(export["files"].as_array().unwrap().len(), 1);
    let r = server.request(
        "GET",
        &format!("{user}/export/archive"),
        Some(&exporter),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // The export is audited as itself (and each archived file), never as the reads inside it.
    let r = server.request(
        "GET",
        &format!("/v1/sys/audit?token_id={exporter_id}&limit=1000"),
        Some(&admin),
        None,
    );
    let actions: Vec<String> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        ["user.export ok", "user.export ok", "file.export ok"],
        "{actions:?}"
    );

    let (eraser, _) = token(&server, &[NS], &["erase"]);
    let r = server.request("DELETE", &format!("{user}?confirm=u1"), Some(&eraser), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = server.request("GET", &format!("{user}/erasure"), Some(&eraser), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = server.request("GET", &format!("{user}/export"), Some(&exporter), None);
    assert_eq!(r.status, 404, "erased: {}", r.body);
}
