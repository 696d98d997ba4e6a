//! Several `strongroom serve` processes on one PostgreSQL database: writes on one node are read
//! on the others, check-and-set conflicts are detected across nodes, a key rotation made on one
//! node is picked up by the others, revocation reaches every node, and the audit hash chain
//! stays one valid chain under concurrent writers on all nodes.

mod support;

use std::time::{Duration, Instant};

use support::{app_token, oauth_body, postgres_url, shared_root_key, start_node, Server};

fn schema(tag: &str) -> String {
    format!("e2e_{tag}_{}", std::process::id())
}

fn read_token(server: &Server, token: &str, user: &str) -> serde_json::Value {
    let r = server.request(
        "GET",
        &format!("/v1/ns/app/users/{user}/credentials/c"),
        Some(token),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"]["access_token"].clone()
}

#[test]
fn three_nodes_share_one_database() {
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = shared_root_key();
    let schema = schema("three");
    let a = start_node(&dir.path().join("a"), &url, &schema, &key, &[]);
    let b = start_node(&dir.path().join("b"), &url, &schema, &key, &[]);
    let c = start_node(&dir.path().join("c"), &url, &schema, &key, &[]);
    let admin = a.admin().to_string();
    assert!(
        b.admin.is_none() && c.admin.is_none(),
        "only the first node bootstraps an admin token"
    );
    let app = app_token(&a, "app", &["read", "write", "list"]);

    // Written on A, read on B and C.
    assert_eq!(
        a.request(
            "PUT",
            "/v1/ns/app/users/u1/credentials/c",
            Some(&app),
            Some(&oauth_body("from-a"))
        )
        .status,
        200
    );
    assert_eq!(read_token(&b, &app, "u1"), "from-a");
    assert_eq!(read_token(&c, &app, "u1"), "from-a");

    // Check-and-set across nodes: B wins version 2, C's write based on version 1 conflicts.
    let cas = |access: &str| {
        format!(r#"{{"data":{{"type":"oauth2","access_token":"{access}"}},"options":{{"cas":1}}}}"#)
    };
    assert_eq!(
        b.request(
            "PUT",
            "/v1/ns/app/users/u1/credentials/c",
            Some(&app),
            Some(&cas("from-b"))
        )
        .status,
        200
    );
    let r = c.request(
        "PUT",
        "/v1/ns/app/users/u1/credentials/c",
        Some(&app),
        Some(&cas("from-c")),
    );
    assert_eq!((r.status, r.code().as_str()), (409, "version_conflict"));
    assert_eq!(read_token(&a, &app, "u1"), "from-b");

    // Rotation on A; a user created on A under the new version is readable on C at once.
    assert_eq!(a.cli(&admin, &["keys", "rotate", "app"]).0, 0);
    assert_eq!(
        a.request(
            "PUT",
            "/v1/ns/app/users/u2/credentials/c",
            Some(&app),
            Some(&oauth_body("after-rotation"))
        )
        .status,
        200
    );
    assert_eq!(read_token(&c, &app, "u2"), "after-rotation");
    // Rewrap on B, retire on C; everything still reads on every node.
    let (code, out, _) = b.cli(&admin, &["keys", "rewrap", "app"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"remaining\": 0"), "{out}");
    let (code, out, err) = c.cli(&admin, &["keys", "retire", "app", "--below", "2"]);
    assert_eq!(code, 0, "{out}{err}");
    for node in [&a, &b, &c] {
        assert_eq!(read_token(node, &app, "u1"), "from-b");
        assert_eq!(read_token(node, &app, "u2"), "after-rotation");
    }

    // Concurrent writers on all nodes keep one valid audit chain.
    std::thread::scope(|s| {
        for (n, node) in [&a, &b, &c].into_iter().enumerate() {
            let app = app.clone();
            s.spawn(move || {
                for i in 0..20 {
                    let r = node.request(
                        "PUT",
                        &format!("/v1/ns/app/users/w{n}-{i}/credentials/c"),
                        Some(&app),
                        Some(&oauth_body("x")),
                    );
                    assert_eq!(r.status, 200, "{}", r.body);
                }
            });
        }
    });
    let (code, out, _) = b.cli(&admin, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    let checked: u64 = serde_json::from_str::<serde_json::Value>(&out).unwrap()["entries_checked"]
        .as_u64()
        .unwrap();
    assert!(checked >= 60, "{out}");

    // Revocation on A takes effect on B and C (within the token cache lifetime).
    let id = app.split('_').nth(1).unwrap().to_string();
    assert_eq!(a.cli(&admin, &["token", "revoke", &id]).0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    for node in [&b, &c] {
        loop {
            if node
                .request("GET", "/v1/sys/tokens/self", Some(&app), None)
                .status
                == 401
            {
                break;
            }
            assert!(Instant::now() < deadline, "revocation never reached a node");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_dead_job_holder_is_replaced_after_its_lease_expires() {
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = shared_root_key();
    let schema = schema("lease");
    let flags = |id: &'static str| {
        vec![
            "--node-id",
            id,
            "--job-interval-secs",
            "1",
            "--lease-ttl-secs",
            "3",
        ]
    };
    let mut nodes: Vec<Server> = ["n0", "n1", "n2"]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            start_node(
                &dir.path().join(format!("n{i}")),
                &url,
                &schema,
                &key,
                &flags(id),
            )
        })
        .collect();
    let admin = nodes[0].admin().to_string();
    let holder = |node: &Server| -> Option<String> {
        let r = node.request("GET", "/v1/sys/jobs", Some(&admin), None);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["jobs"][0]["holder"].as_str().map(str::to_string)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let first = loop {
        if let Some(h) = holder(&nodes[0]) {
            break h;
        }
        assert!(Instant::now() < deadline, "no node took the job lease");
        std::thread::sleep(Duration::from_millis(100));
    };
    let dead = ["n0", "n1", "n2"]
        .iter()
        .position(|id| *id == first)
        .expect("holder is one of the nodes");
    nodes[dead].child.take().unwrap().kill().unwrap();
    let killed_at = Instant::now();
    let survivor = &nodes[(dead + 1) % 3];
    let deadline = Instant::now() + Duration::from_secs(20);
    let next = loop {
        match holder(survivor) {
            Some(h) if h != first => break h,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "no node took over the lease of the dead holder"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(next != first && ["n0", "n1", "n2"].contains(&next.as_str()));
    eprintln!(
        "lease moved from {first} to {next} {:?} after the kill",
        killed_at.elapsed()
    );
}

#[test]
fn a_lockout_on_one_node_holds_on_every_node() {
    let Some(url) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = shared_root_key();
    let schema = schema("lockout");
    let flags = ["--lockout-threshold", "3", "--lockout-secs", "30"];
    let a = start_node(&dir.path().join("a"), &url, &schema, &key, &flags);
    let b = start_node(&dir.path().join("b"), &url, &schema, &key, &flags);
    let admin = a.admin().to_string();
    let bad = "sr_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    // Failures spread over both nodes count together: 2 on A, 1 on B locks the client.
    assert_eq!(
        a.request("GET", "/v1/sys/tokens/self", Some(bad), None)
            .status,
        401
    );
    assert_eq!(
        a.request("GET", "/v1/sys/tokens/self", Some(bad), None)
            .status,
        401
    );
    assert_eq!(
        b.request("GET", "/v1/sys/tokens/self", Some(bad), None)
            .status,
        401
    );
    let r = b.request("GET", "/v1/sys/tokens/self", Some(bad), None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (429, "locked_out"),
        "B locked the client at once"
    );
    // The client's valid token is not refused for its failures, on either node.
    for node in [&a, &b] {
        let r = node.request("GET", "/v1/sys/tokens/self", Some(&admin), None);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = a.request("GET", "/v1/sys/tokens/self", Some(bad), None);
        if r.status == 429 {
            assert_eq!(r.code(), "locked_out");
            assert!(r.retry_after.is_some());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lock-out never reached node A"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
