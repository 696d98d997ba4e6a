//! Audit fails closed, through the real binary on SQLite and on PostgreSQL: an operation whose
//! entry cannot be stored is refused (503 `audit_unavailable`, 507 `insufficient_storage` on a
//! full disk) and never answered with data; entries of answered reads survive `kill -9`; a
//! deleted, truncated or replaced audit log is detected at start and by `audit verify`, and
//! service resumes by itself once the log can be written again.

mod support;

use std::time::{Duration, Instant};

use support::{app_token, oauth_body, Db, Server};

const SECRET: &str = "FAILCLOSED-access-token-91c2";
const CRED: &str = "/v1/ns/app/users/u1/credentials/spotify";

on_both_databases!(
    answered_reads_are_in_the_log_after_kill_9,
    a_log_that_cannot_be_written_refuses_operations_until_it_can,
    a_removed_or_replaced_log_is_detected_at_start_and_by_verify,
    entries_are_found_by_user_id_outcome_and_newest_first,
);

fn kill_9(server: &mut Server) {
    let mut child = server.child.take().unwrap();
    std::process::Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
}

fn audit_count(server: &Server, action: &str) -> usize {
    let r = server.request(
        "GET",
        &format!("/v1/sys/audit?action={action}&limit=1000"),
        Some(server.admin()),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["items"].as_array().unwrap().len()
}

fn answered_reads_are_in_the_log_after_kill_9(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = db.start(&data, &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&oauth_body(SECRET)))
            .status,
        200
    );
    for _ in 0..40 {
        let r = server.request("GET", CRED, Some(&app), None);
        assert!(r.body.contains(SECRET), "{}", r.body);
    }
    // Dead at once, no flush at shutdown: every answered read must already be stored.
    kill_9(&mut server);
    drop(server);
    let mut server = db.start(&data, &[]);
    server.admin = Some(admin);
    assert_eq!(audit_count(&server, "credential.read"), 40);
    let r = server.request(
        "POST",
        "/v1/sys/audit/verify",
        server.admin.as_deref(),
        None,
    );
    assert_eq!(r.json()["valid"], true, "{}", r.body);
}

/// Makes the log unwritable for a while, in the way each backend can fail: a full disk under
/// SQLite (a tmpfs the test fills), a disk-full error and then a held lock under PostgreSQL.
fn a_log_that_cannot_be_written_refuses_operations_until_it_can(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let _mount = match &db {
        Db::Sqlite => Some(Tmpfs::mount(&data, "8m")),
        Db::Postgres { .. } => None,
    };
    let server = db.start(&data, &[]);
    let app = app_token(&server, "app", &["read", "write"]);
    assert_eq!(
        server
            .request("PUT", CRED, Some(&app), Some(&oauth_body(SECRET)))
            .status,
        200
    );
    let before = audit_count(&server, "credential.read");

    // The disk fills (SQLite) / the database reports a full disk (PostgreSQL).
    let filler = data.join("filler");
    match &db {
        Db::Sqlite => fill(&filler),
        Db::Postgres { .. } => drop(db.psql(
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             RAISE EXCEPTION 'no space left' USING ERRCODE = 'disk_full'; END $$; \
             CREATE TRIGGER refuse_audit BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
        )),
    };
    // On SQLite an entry is durable once in the audit journal: a read may still be answered
    // while the journal's last page has room (or has room again after the writer emptied it)
    // — with its entry stored. Every other read is refused, and none is answered without its
    // entry (counted at the end).
    let (mut answered, mut refused) = (0, 0);
    for _ in 0..60 {
        let r = server.request("GET", CRED, Some(&app), None);
        if r.status == 200 {
            assert!(
                !db.is_postgres(),
                "a read was answered without its audit entry"
            );
            assert!(r.body.contains(SECRET));
            answered += 1;
            continue;
        }
        assert!(
            !r.body.contains(SECRET),
            "a refused read carried the secret"
        );
        assert_eq!(
            (r.status, r.code().as_str()),
            (507, "insufficient_storage"),
            "{}",
            r.body
        );
        assert!(r.retry_after.is_some());
        refused += 1;
        if refused == 1 {
            // Refused while the log cannot take entries: writes too, and the node is not ready
            // (it stays alive).
            let r = server.request("PUT", CRED, Some(&app), Some(&oauth_body("other")));
            assert_eq!((r.status, r.code().as_str()), (507, "insufficient_storage"));
            assert_eq!(
                server.request("GET", "/v1/sys/health", None, None).status,
                200
            );
            assert_ne!(
                server.request("GET", "/v1/sys/ready", None, None).status,
                200
            );
        }
    }
    assert!(
        refused >= 20,
        "reads went on being answered on a full disk: {answered} answered, {refused} refused"
    );

    // Space returns: service resumes by itself.
    match &db {
        Db::Sqlite => std::fs::remove_file(&filler).unwrap(),
        Db::Postgres { .. } => drop(db.psql("DROP TRIGGER refuse_audit ON audit;")),
    };
    wait_until_readable(&server, &app);
    assert_eq!(
        server.request("GET", "/v1/sys/ready", None, None).status,
        200
    );

    if db.is_postgres() {
        // A lock that keeps the entry from being stored: refused within the stated bound.
        let holder = hold_audit_lock(&db, 8);
        let started = Instant::now();
        let r = server.request("GET", CRED, Some(&app), None);
        assert!(!r.body.contains(SECRET));
        // 503: `audit_unavailable`, or `unavailable` (the database's lock timeout ended it).
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(
            ["audit_unavailable", "unavailable"].contains(&r.code().as_str()),
            "{}",
            r.body
        );
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "refused within the 5 s bound"
        );
        holder.wait_with_output().unwrap();
        wait_until_readable(&server, &app);
    }
    // Every answered read, and the refused ones' entries retried in order, are in a valid log.
    assert!(audit_count(&server, "credential.read") > before + answered);
    let r = server.request("POST", "/v1/sys/audit/verify", Some(server.admin()), None);
    assert_eq!(r.json()["valid"], true, "{}", r.body);
    assert!(!server.logs().contains("panicked"), "{}", server.logs());
}

fn wait_until_readable(server: &Server, app: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = server.request("GET", CRED, Some(app), None);
        if r.status == 200 {
            assert!(r.body.contains(SECRET));
            return;
        }
        assert!(
            Instant::now() < deadline,
            "service did not resume: {}",
            r.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A psql session holding an exclusive lock on the audit table for `secs` seconds.
fn hold_audit_lock(db: &Db, secs: u32) -> std::process::Child {
    let Db::Postgres { url, schema, .. } = db else {
        unreachable!()
    };
    let child = std::process::Command::new("psql")
        .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!(
            "SET search_path TO \"{schema}\"; BEGIN; LOCK TABLE audit IN ACCESS EXCLUSIVE MODE; \
             SELECT pg_sleep({secs}); COMMIT;"
        ))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the lock is held (on this schema's table: other tests create theirs meanwhile).
    let deadline = Instant::now() + Duration::from_secs(10);
    while db
        .psql("SELECT count(*) FROM pg_locks l WHERE l.relation = 'audit'::regclass AND l.mode = 'AccessExclusiveLock' AND l.granted")
        .trim()
        == "0"
    {
        assert!(Instant::now() < deadline, "the lock was never taken");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn a_removed_or_replaced_log_is_detected_at_start_and_by_verify(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = db.start(&data, &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    server.request("PUT", CRED, Some(&app), Some(&oauth_body(SECRET)));
    for _ in 0..5 {
        server.request("GET", CRED, Some(&app), None);
    }

    // Everything is in the log's table (on SQLite entries reach it from the journal on the
    // writer's next tick; a verify flushes).
    let r = server.request("POST", "/v1/sys/audit/verify", Some(&admin), None);
    assert_eq!(r.json()["valid"], true, "{}", r.body);

    // Entries removed from the end while the node runs: verify says so, and the node refuses
    // to append on top of the gap (which would hide it).
    remove_newest_entries(&db, &data, 3);
    let r = server.request("POST", "/v1/sys/audit/verify", Some(&admin), None);
    if r.status == 200 {
        assert_eq!(r.json()["valid"], false, "{}", r.body);
    } else {
        assert_eq!(r.code(), "audit_unavailable", "{}", r.body);
    }
    let r = server.request("GET", CRED, Some(&app), None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "audit_unavailable"),
        "{}",
        r.body
    );
    assert!(!r.body.contains(SECRET));
    server.stop();

    // At start: refused, naming the problem and the way out.
    let err = match db.try_start(&data, &[]) {
        Ok(_) => panic!("a truncated audit log was accepted at start"),
        Err(log) => log,
    };
    assert!(
        err.contains("audit log") && err.contains("--accept-audit-loss"),
        "{err}"
    );

    // The whole log deleted (SQLite: the file; PostgreSQL: the table emptied): refused too.
    match &db {
        Db::Sqlite => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(data.join(format!("strongroom.audit.db{suffix}")));
            }
        }
        Db::Postgres { .. } => {
            db.psql("DELETE FROM audit;");
        }
    }
    let err = match db.try_start(&data, &[]) {
        Ok(_) => panic!("a deleted audit log was accepted at start"),
        Err(log) => log,
    };
    assert!(err.contains("audit log"), "{err}");

    // The operator accepts the loss: it is recorded, and the log verifies from there on.
    let mut server = db.start(&data, &["--accept-audit-loss"]);
    server.admin = Some(admin.clone());
    let r = server.request("POST", "/v1/sys/audit/verify", Some(&admin), None);
    let report = r.json();
    assert_eq!(report["valid"], true, "{}", r.body);
    assert_eq!(
        report["acknowledged_losses"].as_array().unwrap().len(),
        1,
        "{}",
        r.body
    );
    assert_eq!(server.request("GET", CRED, Some(&app), None).status, 200);
    server.stop();
    // And the next start is an ordinary one.
    let server = db.start(&data, &[]);
    assert_eq!(server.request("GET", CRED, Some(&app), None).status, 200);
}

/// SQLite's audit journal: reads answered while the log table cannot take their entries (its
/// file is locked by another process) are durable in the journal; after `kill -9` the next
/// start copies them into the log, chained; a torn last record (a crash mid-write) is dropped;
/// an edited record refuses the start, naming the journal.
#[test]
fn journaled_entries_survive_kill_9_and_are_recovered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = Server::start(&data, &[], &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    let r = server.request("PUT", CRED, Some(&app), Some(&oauth_body(SECRET)));
    assert_eq!(r.status, 200, "{}", r.body);
    let before = audit_count(&server, "credential.read");
    let journal = data.join("strongroom.audit.journal");

    // Another process holds the log's write lock: entries cannot reach the table.
    let holder = rusqlite::Connection::open(data.join("strongroom.audit.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE;").unwrap();
    let mut answered = 0;
    for _ in 0..30 {
        let r = server.request("GET", CRED, Some(&app), None);
        if r.status == 200 {
            assert!(r.body.contains(SECRET));
            answered += 1;
        }
    }
    assert!(answered >= 20, "reads were refused: {answered} answered");
    let held = std::fs::metadata(&journal).unwrap().len();
    assert!(
        held > 0,
        "the journal holds the entries the log could not take"
    );
    kill_9(&mut server);
    drop(server);
    holder.execute_batch("ROLLBACK;").unwrap();
    drop(holder);

    // A crash mid-write left half a record behind.
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes.extend_from_slice(&[0x40, 0, 0, 0, b'{', b'"']);
    std::fs::write(&journal, &bytes).unwrap();

    let mut server = Server::start(&data, &[], &[]);
    server.admin = Some(admin.clone());
    assert_eq!(audit_count(&server, "credential.read"), before + answered);
    let r = server.request("POST", "/v1/sys/audit/verify", Some(&admin), None);
    assert_eq!(r.json()["valid"], true, "{}", r.body);
    assert!(
        server.logs().contains("recovered from the journal"),
        "{}",
        server.logs()
    );
    // Copied in, then emptied (the requests above journal entries of their own: the writer
    // copies those in on its next tick, and empties the journal again).
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(&journal).unwrap().len() > 0 {
        assert!(Instant::now() < deadline, "the journal was never emptied");
        std::thread::sleep(Duration::from_millis(20));
    }

    // An entry edited in the journal (here: its action) refuses the start and names the file.
    let holder = rusqlite::Connection::open(data.join("strongroom.audit.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE;").unwrap();
    assert_eq!(server.request("GET", CRED, Some(&app), None).status, 200);
    kill_9(&mut server);
    drop(server);
    holder.execute_batch("ROLLBACK;").unwrap();
    drop(holder);
    let text = std::fs::read(&journal).unwrap();
    let edited = String::from_utf8_lossy(&text).replace("credential.read", "credential.exis");
    assert_ne!(edited.as_bytes(), &text[..], "the journal held the read");
    std::fs::write(&journal, edited.as_bytes()).unwrap();
    let err = match Server::try_start(&data, &[], &[]) {
        Ok(_) => panic!("an edited journal was accepted"),
        Err(log) => log,
    };
    assert!(
        err.contains("audit journal") || err.contains("does not chain"),
        "{err}"
    );
}

/// A corrupt audit log is reported as the audit log, not as the database.
#[test]
fn a_corrupt_audit_log_file_is_named_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut server = Server::start(&data, &[], &[]);
    server.stop();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(data.join(format!("strongroom.audit.db{suffix}")));
    }
    std::fs::write(data.join("strongroom.audit.db"), vec![0x5Au8; 8192]).unwrap();
    let err = match Server::try_start(&data, &[], &[]) {
        Ok(_) => panic!("a corrupt audit log was accepted"),
        Err(log) => log,
    };
    assert!(err.contains("strongroom.audit.db"), "{err}");
}

fn remove_newest_entries(db: &Db, data: &std::path::Path, n: u32) {
    let sql = format!("DELETE FROM audit WHERE seq > (SELECT max(seq) - {n} FROM audit)");
    match db {
        Db::Sqlite => {
            let conn = rusqlite::Connection::open(data.join("strongroom.audit.db")).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            conn.execute(&sql, []).unwrap();
        }
        Db::Postgres { .. } => {
            db.psql(&format!("{sql};"));
        }
    }
}

/// Fills the file system holding `path` with one file, until it is full.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0xA5u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

/// A small tmpfs mounted at a directory for one test (the disk-full test needs a disk it can
/// fill); unmounted on drop. Needs root, as the test machines run.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a tmpfs for the disk-full test failed (run the tests as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The search an operator runs: one user's entries (by the app's id; the server hashes it
/// per namespace), only the denials, newest first and paged back in time.
fn entries_are_found_by_user_id_outcome_and_newest_first(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let server = db.start(&dir.path().join("d"), &[]);
    let admin = server.admin().to_string();
    let app = app_token(&server, "app", &["read", "write"]);
    for user in ["searched-alice", "searched-bob"] {
        let path = format!("/v1/ns/app/users/{user}/credentials/spotify");
        let r = server.request("PUT", &path, Some(&app), Some(&oauth_body(SECRET)));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(server.request("GET", &path, Some(&app), None).status, 200);
    }
    let denied = server.request(
        "DELETE",
        "/v1/ns/app/users/searched-alice/credentials/spotify",
        Some(&app),
        None,
    );
    assert_eq!(denied.status, 403, "{}", denied.body);
    let query = |q: &str| {
        let r = server.request("GET", &format!("/v1/sys/audit?{q}"), Some(&admin), None);
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        r.json()
    };
    let alice = query("namespace=app&user=searched-alice");
    let actions: Vec<&str> = alice["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["credential.put", "credential.read"]);
    let hashes: std::collections::BTreeSet<&str> = alice["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user_hash"].as_str().unwrap())
        .collect();
    assert_eq!(hashes.len(), 1, "one user's entries only");
    assert!(!alice.to_string().contains("searched-alice"));

    // A refused call is recorded before its user is resolved: under no user hash.
    let denials = query("namespace=app&outcome=denied");
    assert_eq!(denials["items"].as_array().unwrap().len(), 1);
    assert_eq!(denials["items"][0]["action"], "credential.delete");

    let newest = query("order=newest&limit=2&namespace=app");
    let first: Vec<u64> = newest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(first[0] > first[1], "newest first: {first:?}");
    let cursor = newest["next_cursor"].as_str().unwrap();
    let older = query(&format!(
        "order=newest&limit=2&namespace=app&cursor={cursor}"
    ));
    assert!(older["items"][0]["seq"].as_u64().unwrap() < first[1]);

    // The CLI asks the same.
    let (code, out, err) = server.cli(
        &admin,
        &[
            "audit",
            "query",
            "--namespace",
            "app",
            "--user",
            "searched-bob",
            "--newest",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let actions: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["credential.read", "credential.put"]);

    for (q, code) in [
        ("user=searched-alice", "invalid_input"),
        ("order=sideways", "invalid_parameter"),
    ] {
        let r = server.request("GET", &format!("/v1/sys/audit?{q}"), Some(&admin), None);
        assert_eq!(
            (r.status, r.code()),
            (400, code.to_string()),
            "{q}: {}",
            r.body
        );
        assert!(!r.body.contains("searched-alice") && !r.body.contains("sideways"));
    }
}
