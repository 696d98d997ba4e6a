//! Export and erasure through the real binary: the export holds every live version decrypted;
//! erasure needs the id repeated, makes the user unreadable at once (the wrapped key is gone
//! from the database file), purges the rows, leaves other users alone, is audited without the
//! id, and a large erasure interrupted by `kill -9` is finished after restart.

mod support;

use std::time::{Duration, Instant};

use support::{oauth_body, Server};

const USER: &str = "telegram:424242";

fn setup(server: &Server) -> String {
    server.request(
        "POST",
        "/v1/sys/namespaces",
        Some(server.admin()),
        Some(r#"{"name":"app"}"#),
    );
    let body = r#"{"name":"dpo","namespaces":["app"],"capabilities":["read","write","list","export","erase"]}"#;
    let r = server.request("POST", "/v1/sys/tokens", Some(server.admin()), Some(body));
    r.json()["token"].as_str().unwrap().to_string()
}

fn count(db: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn export_then_erase_a_user() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let server = Server::start(&data, &[], &[]);
    let app = setup(&server);
    let path = |user: &str, name: &str| format!("/v1/ns/app/users/{user}/credentials/{name}");
    server.request(
        "PUT",
        &path(USER, "spotify"),
        Some(&app),
        Some(&oauth_body("v1")),
    );
    server.request(
        "PUT",
        &path(USER, "spotify"),
        Some(&app),
        Some(&oauth_body("v2")),
    );
    server.request(
        "PUT",
        &path(USER, "reddit"),
        Some(&app),
        Some(&oauth_body("r1")),
    );
    server.request(
        "PUT",
        &path("other", "spotify"),
        Some(&app),
        Some(&oauth_body("keep")),
    );

    let r = server.request(
        "GET",
        &format!("/v1/ns/app/users/{USER}/export"),
        Some(&app),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let export = r.json();
    assert_eq!(export["format"], "strongroom-user-export/1");
    assert_eq!(export["user"], USER);
    let spotify = export["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "spotify")
        .unwrap();
    let tokens: Vec<_> = spotify["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["data"]["access_token"].clone())
        .collect();
    assert_eq!(tokens, ["v1", "v2"], "every live version, decrypted");
    let (code, out, _) = server.cli(&app, &["users", "export", "app", USER]);
    assert_eq!(code, 0);
    assert!(out.contains("\"r1\""));

    // Confirmation must repeat the id.
    let r = server.request(
        "DELETE",
        &format!("/v1/ns/app/users/{USER}?confirm=someone-else"),
        Some(&app),
        None,
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"));
    let r = server.request(
        "DELETE",
        &format!("/v1/ns/app/users/{USER}"),
        Some(&app),
        None,
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        server
            .request("GET", &path(USER, "spotify"), Some(&app), None)
            .json()["data"]["access_token"],
        "v2",
        "nothing erased by a refused call"
    );

    let (code, out, err) = server.cli(&app, &["users", "erase", "app", USER, "--confirm", USER]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["purge_pending"], false);
    assert_eq!(report["items_purged"], 5, "3 versions and 2 metadata rows");
    let hash = report["user_hash"].as_str().unwrap().to_string();

    assert_eq!(
        server
            .request("GET", &path(USER, "spotify"), Some(&app), None)
            .status,
        404
    );
    assert_eq!(
        server
            .request(
                "GET",
                &format!("/v1/ns/app/users/{USER}/export"),
                Some(&app),
                None
            )
            .status,
        404
    );
    assert_eq!(
        server
            .request(
                "DELETE",
                &format!("/v1/ns/app/users/{USER}?confirm={USER}"),
                Some(&app),
                None
            )
            .status,
        404
    );
    assert_eq!(
        server
            .request("GET", &path("other", "spotify"), Some(&app), None)
            .json()["data"]["access_token"],
        "keep"
    );
    let status = server
        .request(
            "GET",
            &format!("/v1/ns/app/users/{USER}/erasure"),
            Some(&app),
            None,
        )
        .json();
    assert_eq!(
        (
            status["purge_pending"].clone(),
            status["items_remaining"].clone()
        ),
        (false.into(), 0.into())
    );

    // In the database file: no key, no rows for the erased user; the other user intact.
    let db = data.join("strongroom.db");
    let h = format!("X'{hash}'");
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM users WHERE user_hash = {h}")
        ),
        0
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM credential_versions WHERE user_hash = {h}")
        ),
        0
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM credentials WHERE user_hash = {h}")
        ),
        0
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users"), 1);
    // The audit log records the erasure by keyed hash only.
    let (_, audit, _) = server.cli(
        server.admin(),
        &["audit", "query", "--action", "user.erase"],
    );
    assert!(audit.contains(&hash) && !audit.contains(USER), "{audit}");
}

#[test]
fn an_interrupted_large_erasure_finishes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    // A short lease: the dead node's job leases must expire before the restarted node takes them.
    let mut server = Server::start(
        &data,
        &["--job-interval-secs", "600", "--lease-ttl-secs", "2"],
        &[],
    );
    let admin = server.admin().to_string();
    let app = setup(&server);
    for i in 0..1200 {
        let r = server.request(
            "PUT",
            &format!("/v1/ns/app/users/{USER}/credentials/c{i}"),
            Some(&app),
            Some(&oauth_body("x")),
        );
        assert_eq!(r.status, 200);
    }
    let r = server.request(
        "DELETE",
        &format!("/v1/ns/app/users/{USER}?confirm={USER}"),
        Some(&app),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["purge_pending"],
        true,
        "2400 rows: the rest is left to the background job"
    );
    // Unreadable at once, although rows remain.
    assert_eq!(
        server
            .request(
                "GET",
                &format!("/v1/ns/app/users/{USER}/credentials/c1199"),
                Some(&app),
                None
            )
            .status,
        404
    );
    // A write for the same id is refused until the purge has finished.
    let r = server.request(
        "PUT",
        &format!("/v1/ns/app/users/{USER}/credentials/new"),
        Some(&app),
        Some(&oauth_body("y")),
    );
    assert_eq!((r.status, r.code().as_str()), (409, "erasure_in_progress"));
    assert_eq!(
        r.retry_after.as_deref(),
        Some("1"),
        "a client may retry later"
    );
    // The process dies before the job runs (its interval is 10 minutes).
    server.child.take().unwrap().kill().unwrap();
    let db = data.join("strongroom.db");
    assert!(count(&db, "SELECT COUNT(*) FROM credential_versions") > 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM erasures"), 1);

    let server = Server::start(
        &data,
        &["--job-interval-secs", "1", "--lease-ttl-secs", "2"],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = server
            .request(
                "GET",
                &format!("/v1/ns/app/users/{USER}/erasure"),
                Some(&app),
                None,
            )
            .json();
        if s["purge_pending"] == false && s["items_remaining"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the purge never finished: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM credential_versions"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM erasures"), 0);
    let (_, audit, _) = server.cli(
        &admin,
        &["audit", "query", "--action", "user.purge", "--limit", "10"],
    );
    assert!(audit.contains("job:erasure-purge"), "{audit}");
    // After the purge the id can be used again, as a new user.
    let r = server.request(
        "PUT",
        &format!("/v1/ns/app/users/{USER}/credentials/new"),
        Some(&app),
        Some(&oauth_body("fresh")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}
