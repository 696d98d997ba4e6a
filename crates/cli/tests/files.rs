//! Encrypted files through the real binary, run unchanged against the local folder (the
//! default) and against a real S3-compatible server on loopback (moto, started by
//! `scripts/test`): round trips with ranges over HTTP and the CLI, tampering (flipped byte,
//! swapped objects, truncation), signed links, quotas and policies, the export archive,
//! erasure and the sweeping of abandoned uploads.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::files::{contains, content, data, send, upload, Backend, Cable, Store};
use support::Db;
use support::{app_token, Server};

const PLANTED_NAME: &str = "PLANTED-thesis-draft.pdf";
const PLANTED_USER: &str = "student-PLANTED-42";

/// Each test on {SQLite, PostgreSQL metadata} × {local folder, S3}.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite_local {
            $(#[test] fn $test() { if let Some(b) = super::Backend::local() { super::$test(b) } })*
        }
        mod sqlite_s3 {
            $(#[test] fn $test() { if let Some(b) = super::Backend::s3() { super::$test(b) } })*
        }
        mod postgres_local {
            $(#[test] fn $test() {
                if let Some(b) = super::Backend::local().and_then(|b| b.on(super::Db::postgres())) { super::$test(b) }
            })*
        }
        mod postgres_s3 {
            $(#[test] fn $test() {
                if let Some(b) = super::Backend::s3().and_then(|b| b.on(super::Db::postgres())) { super::$test(b) }
            })*
        }
    };
}

on_every_backend!(
    round_trip_with_ranges_over_http_and_the_cli,
    tampering_is_an_integrity_error_never_wrong_bytes,
    signed_links_expire_work_once_and_cannot_be_forged,
    quotas_sizes_and_types_are_enforced_with_clear_errors,
    export_archive_then_erasure_shreds_and_purges,
    abandoned_uploads_are_removed_and_swept_after_a_crash,
    refused_cut_off_and_stalled_transfers_leave_the_node_serving,
);

fn round_trip_with_ranges_over_http_and_the_cli(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.start(&dir.path().join("d"), &[]);
    let objects = backend.objects(&server.data_dir);
    let token = app_token(&server, "app", &["read", "write", "delete", "list"]);
    let plain = {
        let mut p = data(300_000, 1);
        p[1000..1000 + 24].copy_from_slice(b"PLANTED-plaintext-marker");
        p
    };

    // Upload with the CLI, download with the CLI.
    let src = dir.path().join(PLANTED_NAME);
    std::fs::write(&src, &plain).unwrap();
    let (code, out, err) = server.cli(
        &token,
        &[
            "files",
            "upload",
            "app",
            PLANTED_USER,
            src.to_str().unwrap(),
            "--content-type",
            "application/pdf",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let info: Value = serde_json::from_str(&out).unwrap();
    let id = info["id"].as_str().unwrap().to_string();
    assert_eq!(info["size"], 300_000);
    assert_eq!(info["name"], PLANTED_NAME);
    let expected_sha: String = strongroom_crypto::keyed_hash::sha256(&[&plain])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(info["sha256"], expected_sha);
    let dst = dir.path().join("back.pdf");
    let (code, _, err) = server.cli(
        &token,
        &[
            "files",
            "download",
            "app",
            PLANTED_USER,
            &id,
            "-o",
            dst.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&dst).unwrap(), plain);
    let ranged = dir.path().join("range.bin");
    let (code, _, err) = server.cli(
        &token,
        &[
            "files",
            "download",
            "app",
            PLANTED_USER,
            &id,
            "-o",
            ranged.to_str().unwrap(),
            "--range",
            "65530-131100",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&ranged).unwrap(), plain[65530..=131100]);

    // Ranges over HTTP: every form, across segment and piece boundaries.
    for (range, want) in [
        ("bytes=0-0", 0..1),
        ("bytes=99990-100020", 99990..100021),
        ("bytes=299999-", 299999..300000),
        ("bytes=-70000", 230000..300000),
        ("bytes=200000-999999", 200000..300000),
    ] {
        let r = content(&server, &token, PLANTED_USER, &id, Some(range));
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body.as_ref().unwrap(), &plain[want.clone()], "{range}");
        assert_eq!(
            r.header("content-range").unwrap(),
            format!("bytes {}-{}/300000", want.start, want.end - 1)
        );
    }
    let whole = content(&server, &token, PLANTED_USER, &id, None);
    assert_eq!(
        (whole.status, whole.body.as_ref().unwrap() == &plain),
        (200, true)
    );
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(whole.header("content-type"), Some("application/pdf"));
    assert_eq!(whole.header("x-content-type-options"), Some("nosniff"));
    let r = content(&server, &token, PLANTED_USER, &id, Some("bytes=300000-"));
    assert_eq!(
        (r.status, r.code().as_str()),
        (416, "range_not_satisfiable")
    );
    assert_eq!(r.header("content-range"), Some("bytes */300000"));
    for bad in ["bytes=1-2,5-6", "items=0-1", "bytes=x-", "bytes=-"] {
        let r = content(&server, &token, PLANTED_USER, &id, Some(bad));
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "invalid_range"),
            "{bad}"
        );
    }

    // Listing, metadata, an empty file, and a second user who sees nothing.
    let empty = upload(&server, &token, PLANTED_USER, "empty.txt", b"");
    let r = content(
        &server,
        &token,
        PLANTED_USER,
        empty["id"].as_str().unwrap(),
        None,
    );
    assert_eq!((r.status, r.body.unwrap().len()), (200, 0));
    let (code, out, _) = server.cli(
        &token,
        &["files", "list", "app", PLANTED_USER, "--limit", "1"],
    );
    assert_eq!(code, 0);
    let page: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["items"][0]["id"], id.as_str());
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, out, _) = server.cli(
        &token,
        &["files", "list", "app", PLANTED_USER, "--cursor", cursor],
    );
    let rest: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rest["items"][0]["id"], empty["id"]);
    let r = send(
        &server,
        "GET",
        &format!("/v1/ns/app/users/other/files/{id}"),
        Some(&token),
        &[],
        None,
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (404, "not_found"),
        "another user's id is not found"
    );

    // The store holds random ids and ciphertext only.
    assert_eq!(objects.ids().len(), 2);
    assert_eq!(
        objects
            .pieces(&objects.ids()[0])
            .len()
            .max(objects.pieces(&objects.ids()[1]).len()),
        4
    );
    let stored = objects.all_bytes();
    for needle in [
        PLANTED_NAME.as_bytes(),
        PLANTED_USER.as_bytes(),
        b"PLANTED-plaintext-marker",
        id.as_bytes(),
    ] {
        assert!(
            !contains(&stored, needle),
            "{} leaked into the object store",
            String::from_utf8_lossy(needle)
        );
    }

    // Nor do the database (its files, or its PostgreSQL rows) or the server's log hold the
    // name, the user id or the bytes.
    let db_bytes = backend.database_dump(&server.data_dir);
    let logs = server.logs();
    for needle in [PLANTED_NAME, PLANTED_USER, "PLANTED-plaintext-marker"] {
        assert!(
            !support::holds(&db_bytes, needle),
            "{needle} is in the database"
        );
        assert!(!logs.contains(needle), "{needle} is in the server log");
    }

    // Deleting removes the row and the objects.
    let (code, _, err) = server.cli(&token, &["files", "delete", "app", PLANTED_USER, &id]);
    assert_eq!(code, 0, "{err}");
    let r = content(&server, &token, PLANTED_USER, &id, None);
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
    objects.wait_for_count(1);
    let (code, _, err) = server.cli(&token, &["files", "info", "app", PLANTED_USER, &id]);
    assert_ne!(code, 0);
    assert!(err.contains("not_found"), "{err}");
}

fn tampering_is_an_integrity_error_never_wrong_bytes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.start(&dir.path().join("d"), &[]);
    let objects = backend.objects(&server.data_dir);
    let token = app_token(&server, "app", &["read", "write", "delete", "list"]);
    let a_plain = data(250_000, 3);
    let a = upload(&server, &token, "u", "a.bin", &a_plain);
    let a_id = a["id"].as_str().unwrap();
    let a_obj = objects.ids()[0].clone();
    let b = upload(&server, &token, "u", "b.bin", &data(250_000, 4));
    let b_obj = objects.ids().into_iter().find(|o| *o != a_obj).unwrap();
    let check_broken = |what: &str| {
        // A range inside the damage: refused before any byte is sent.
        let r = content(&server, &token, "u", a_id, Some("bytes=100000-100100"));
        assert_eq!(
            (r.status, r.code().as_str()),
            (500, "integrity_error"),
            "{what}: range"
        );
        // The whole file: the first segment is good, so the answer starts, and is cut off
        // after the last good byte — the client holds a true prefix, never wrong bytes, never
        // the whole file, and not an empty reply.
        let (head, body) = raw_get(
            &server,
            &token,
            &format!("/v1/ns/app/users/u/files/{a_id}/content"),
        );
        assert!(head.starts_with("HTTP/1.1 200"), "{what}: {head}");
        assert!(
            body.len() >= 64 * 1024 && body.len() < a_plain.len(),
            "{what}: {} bytes arrived",
            body.len()
        );
        assert_eq!(body, a_plain[..body.len()], "{what}: only good bytes");
    };

    // 1. One flipped byte in the middle piece.
    let original = objects.get(&a_obj, 1);
    let mut flipped = original.clone();
    flipped[500] ^= 0x01;
    objects.put(&a_obj, 1, flipped);
    check_broken("flipped byte");
    objects.put(&a_obj, 1, original.clone());
    assert_eq!(
        content(&server, &token, "u", a_id, None).body.unwrap(),
        a_plain,
        "restored"
    );

    // 2. The same piece of another file swapped in (another per-file key and prefix).
    objects.put(&a_obj, 1, objects.get(&b_obj, 1));
    check_broken("swapped piece");
    objects.put(&a_obj, 1, original.clone());

    // 3. Pieces of one file swapped with each other (segments out of position).
    let first = objects.get(&a_obj, 0);
    objects.put(&a_obj, 0, original.clone());
    objects.put(&a_obj, 1, first.clone());
    let r = content(&server, &token, "u", a_id, Some("bytes=0-10"));
    assert_eq!(
        (r.status, r.code().as_str()),
        (500, "integrity_error"),
        "reordered"
    );
    objects.put(&a_obj, 0, first);
    objects.put(&a_obj, 1, original);

    // 4. Truncated: the last piece cut short (the final segment is gone).
    let last = objects.pieces(&a_obj).last().unwrap().0;
    let tail = objects.get(&a_obj, last);
    objects.put(&a_obj, last, tail[..tail.len() - 100].to_vec());
    let r = content(&server, &token, "u", a_id, Some("bytes=-10"));
    assert_eq!(
        (r.status, r.code().as_str()),
        (500, "integrity_error"),
        "truncated"
    );
    // ... and cut so short that the read starts past its end.
    objects.put(&a_obj, last, tail[..10].to_vec());
    let r = content(&server, &token, "u", a_id, Some("bytes=-10"));
    assert_eq!(
        (r.status, r.code().as_str()),
        (500, "integrity_error"),
        "truncated past the range"
    );
    objects.put(&a_obj, last, tail);

    // 5. The whole object of another file swapped in.
    for (i, _) in objects.pieces(&a_obj) {
        objects.put(&a_obj, i, objects.get(&b_obj, i));
    }
    let r = content(&server, &token, "u", a_id, Some("bytes=0-10"));
    assert_eq!(
        (r.status, r.code().as_str()),
        (500, "integrity_error"),
        "swapped object"
    );
    let _ = b;

    // ... counted for operators ...
    let metrics = server.request("GET", "/v1/sys/metrics", None, None).body;
    let failures_metric = metrics
        .lines()
        .find_map(|l| l.strip_prefix("strongroom_file_integrity_failures_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(failures_metric >= 5, "{metrics}");
    assert!(
        metrics.contains("strongroom_file_bytes_uploaded_total 500000"),
        "{metrics}"
    );
    // ... and every failure was audited as an integrity error.
    let r = server.request(
        "GET",
        "/v1/sys/audit?action=file.read&limit=100",
        Some(server.admin()),
        None,
    );
    let failures = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "integrity_error")
        .count();
    assert!(
        failures >= 5,
        "audited integrity failures: {failures}; {}",
        r.body
    );
}

/// A chunked upload (no Content-Length) of `chunks` × 10,000 bytes over a plain socket; the
/// whole answer as text (the server may stop reading midway).
fn chunked_upload(server: &Server, token: &str, path: &str, chunks: usize) -> String {
    let mut s = std::net::TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/pdf\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    for _ in 0..chunks {
        let chunk = data(10_000, 1);
        if write!(s, "{:x}\r\n", chunk.len()).is_err()
            || s.write_all(&chunk).is_err()
            || s.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
}

/// A GET over a plain socket, read until the server closes it: the status line and headers,
/// and every body byte that arrived (a transfer cut off midway keeps what came).
fn raw_get(server: &Server, token: &str, path: &str) -> (String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a status line and headers arrived");
    (
        String::from_utf8_lossy(&all[..split]).into_owned(),
        all[split + 4..].to_vec(),
    )
}

fn signed_links_expire_work_once_and_cannot_be_forged(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.start(&dir.path().join("d"), &[]);
    let token = app_token(&server, "app", &["read", "write", "delete", "list"]);
    let plain = data(120_000, 5);
    let info = upload(&server, &token, "u", "a.bin", &plain);
    let id = info["id"].as_str().unwrap();

    let (code, out, err) = server.cli(&token, &["files", "link", "app", "u", id, "--one-time"]);
    assert_eq!(code, 0, "{err}");
    let link: Value = serde_json::from_str(&out).unwrap();
    let path = link["path"].as_str().unwrap().to_string();
    assert!(!path.contains("/users/") && !path.contains(id), "{path}");
    let r = send(&server, "GET", &path, None, &[], None);
    assert_eq!((r.status, r.body.unwrap() == plain), (200, true));
    let r = send(&server, "GET", &path, None, &[], None);
    assert_eq!((r.status, r.code().as_str()), (410, "link_used"));

    // Reusable, with ranges; forged and altered tokens are refused.
    let r = server.request(
        "POST",
        &format!("/v1/ns/app/users/u/files/{id}/links"),
        Some(&token),
        Some(r#"{"expires_in_secs": 1}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let path = r.json()["path"].as_str().unwrap().to_string();
    let r = send(
        &server,
        "GET",
        &path,
        None,
        &[("Range", "bytes=10-19")],
        None,
    );
    assert_eq!((r.status, r.body.unwrap()), (206, plain[10..20].to_vec()));
    let mut forged = path.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'x' { 'y' } else { 'x' });
    let r = send(&server, "GET", &forged, None, &[], None);
    assert_eq!((r.status, r.code().as_str()), (403, "invalid_link"));
    let r = send(&server, "GET", "/v1/links/v1.e30.AAAA", None, &[], None);
    assert_eq!((r.status, r.code().as_str()), (403, "invalid_link"));
    std::thread::sleep(Duration::from_millis(1100));
    let r = send(&server, "GET", &path, None, &[], None);
    assert_eq!((r.status, r.code().as_str()), (410, "link_expired"));

    // Bad requests for links.
    for body in [
        r#"{"expires_in_secs": 0}"#,
        r#"{"expires_in_secs": 999999999}"#,
        r#"{"bogus": 1}"#,
    ] {
        let r = server.request(
            "POST",
            &format!("/v1/ns/app/users/u/files/{id}/links"),
            Some(&token),
            Some(body),
        );
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    // Deleting the file ends its links.
    let r = server.request(
        "POST",
        &format!("/v1/ns/app/users/u/files/{id}/links"),
        Some(&token),
        Some("{}"),
    );
    let path = r.json()["path"].as_str().unwrap().to_string();
    let r = send(
        &server,
        "DELETE",
        &format!("/v1/ns/app/users/u/files/{id}"),
        Some(&token),
        &[],
        None,
    );
    assert_eq!(r.status, 204);
    let r = send(&server, "GET", &path, None, &[], None);
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
}

fn quotas_sizes_and_types_are_enforced_with_clear_errors(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.start(&dir.path().join("d"), &[]);
    let objects = backend.objects(&server.data_dir);
    let token = app_token(&server, "app", &["read", "write", "delete", "list"]);
    let (code, _, err) = server.cli(
        server.admin(),
        &[
            "files",
            "set-policy",
            "app",
            "--max-file-size",
            "200000",
            "--user-max-files",
            "2",
            "--user-max-bytes",
            "300000",
            "--namespace-max-bytes",
            "500000",
            "--allow-type",
            "application/pdf,image/*",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = server.cli(
        &token,
        &["files", "set-policy", "app", "--user-max-files", "9"],
    );
    assert!(
        code != 0 && err.contains("forbidden"),
        "policies are for operators: {err}"
    );

    let up = |user: &str, len: usize, ctype: &str| {
        send(
            &server,
            "POST",
            &format!("/v1/ns/app/users/{user}/files?name=f"),
            Some(&token),
            &[("Content-Type", ctype)],
            Some(&data(len, 9)),
        )
    };
    let r = up("u", 200_001, "application/pdf");
    assert_eq!((r.status, r.code().as_str()), (413, "file_too_large"));
    let r = up("u", 10, "text/html");
    assert_eq!(
        (r.status, r.code().as_str()),
        (415, "unsupported_content_type")
    );
    assert_eq!(up("u", 200_000, "image/png").status, 201);
    let r = up("u", 150_000, "application/pdf");
    assert_eq!(
        (r.status, r.code().as_str()),
        (413, "quota_exceeded"),
        "user bytes"
    );
    assert_eq!(up("u", 100_000, "application/pdf").status, 201);
    let r = up("u", 1, "application/pdf");
    assert_eq!(
        (r.status, r.code().as_str()),
        (413, "quota_exceeded"),
        "user files"
    );
    assert_eq!(up("v", 200_000, "application/pdf").status, 201);
    let r = up("w", 100_001, "application/pdf");
    assert_eq!(
        (r.status, r.code().as_str()),
        (413, "quota_exceeded"),
        "namespace bytes"
    );
    assert!(r
        .body
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).contains("namespace"))
        .unwrap_or(false));

    // A streamed body (no Content-Length) that crosses the limit midway is cut off too.
    let chunked = chunked_upload(&server, &token, "/v1/ns/app/users/w/files?name=s", 30);
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    assert!(
        chunked.contains("quota_exceeded") || chunked.contains("file_too_large"),
        "{chunked}"
    );

    // Refused uploads leave no object and no usage behind.
    objects.wait_for_count(3);
    let (code, out, _) = server.cli(&token, &["files", "policy", "app"]);
    assert_eq!(code, 0);
    let view: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(view["usage"]["files"], 3);
    assert_eq!(view["usage"]["bytes"], 500_000);
    assert_eq!(view["policy"]["user_max_files"], 2);

    // Bad input to the upload itself.
    for (path, headers) in [
        ("/v1/ns/app/users/u/files", vec![]),
        ("/v1/ns/app/users/u/files?name=a%2Fb", vec![]),
        ("/v1/ns/app/users/u/files?name=", vec![]),
        ("/v1/ns/app/users/u/files?name=x&bogus=1", vec![]),
        (
            "/v1/ns/app/users/u/files?name=x",
            vec![("Content-Type", "not a type")],
        ),
        (
            "/v1/ns/app/users/u/files?name=x",
            vec![("X-Content-SHA256", "zz")],
        ),
    ] {
        let r = send(&server, "POST", path, Some(&token), &headers, Some(b"x"));
        assert_eq!(
            r.status,
            400,
            "{path} {headers:?}: {:?}",
            r.body.map(String::from_utf8)
        );
    }
    let r = send(
        &server,
        "POST",
        "/v1/ns/app/users/u/files?name=x",
        None,
        &[],
        Some(b"x"),
    );
    assert_eq!(r.status, 401);
    let r = send(
        &server,
        "GET",
        "/v1/ns/app/users/u/files/not-an-id",
        Some(&token),
        &[],
        None,
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"));
    let r = server.request(
        "PUT",
        "/v1/ns/app/file-policy",
        Some(server.admin()),
        Some(r#"{"allowed_content_types": ["nope"]}"#),
    );
    assert_eq!(r.status, 400, "{}", r.body);
}

fn export_archive_then_erasure_shreds_and_purges(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.start(&dir.path().join("d"), &["--job-interval-secs", "1"]);
    let objects = backend.objects(&server.data_dir);
    let token = app_token(
        &server,
        "app",
        &["read", "write", "list", "export", "erase"],
    );
    let one = data(150_000, 6);
    let two = data(1_000, 7);
    let a = upload(&server, &token, "leaver", "notes.pdf", &one);
    let b = upload(&server, &token, "leaver", "avatar.png", &two);
    let keep = upload(&server, &token, "stayer", "x.pdf", &two);

    let archive = dir.path().join("export.tar");
    let (code, _, err) = server.cli(
        &token,
        &[
            "users",
            "export",
            "app",
            "leaver",
            "--archive",
            archive.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let out = dir.path().join("unpacked");
    std::fs::create_dir(&out).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "the archive unpacks with tar");
    let doc: Value =
        serde_json::from_slice(&std::fs::read(out.join("export.json")).unwrap()).unwrap();
    assert_eq!(doc["files"].as_array().unwrap().len(), 2);
    assert_eq!(doc["files"][0]["name"], "notes.pdf");
    for (info, bytes) in [(&a, &one), (&b, &two)] {
        let path = out.join("files").join(info["id"].as_str().unwrap());
        assert_eq!(&std::fs::read(path).unwrap(), bytes);
    }
    let json_export = server.cli(&token, &["users", "export", "app", "leaver"]);
    assert!(json_export.1.contains("avatar.png"));

    let link = server.request(
        "POST",
        &format!(
            "/v1/ns/app/users/leaver/files/{}/links",
            a["id"].as_str().unwrap()
        ),
        Some(&token),
        Some("{}"),
    );
    let link = link.json()["path"].as_str().unwrap().to_string();
    assert_eq!(objects.ids().len(), 3);
    let (code, out, err) = server.cli(
        &token,
        &["users", "erase", "app", "leaver", "--confirm", "leaver"],
    );
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["purge_pending"], true,
        "objects go with the background purge"
    );
    // Unreadable at once, by every path.
    let r = content(&server, &token, "leaver", a["id"].as_str().unwrap(), None);
    assert_eq!(r.status, 404);
    assert_eq!(send(&server, "GET", &link, None, &[], None).status, 404);
    // Then the purge deletes the objects and finishes.
    objects.wait_for_count(1);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, out, _) = server.cli(&token, &["users", "erasure-status", "app", "leaver"]);
        let s: Value = serde_json::from_str(&out).unwrap();
        if s["purge_pending"] == false && s["items_remaining"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "purge never finished: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = content(
        &server,
        &token,
        "stayer",
        keep["id"].as_str().unwrap(),
        None,
    );
    assert_eq!(r.body.unwrap(), two, "other users keep their files");
}

fn abandoned_uploads_are_removed_and_swept_after_a_crash(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("d");
    // The restarted node keeps its id, so it holds the job leases the dead one held.
    let mut server = backend.start(&data_dir, &["--node-id", "n1"]);
    let objects = backend.objects(&data_dir);
    let token = app_token(&server, "app", &["read", "write", "list"]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let admin = server.admin().to_string();
    let partial_upload = |name: &str| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "POST /v1/ns/app/users/u/files?name={name} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/pdf\r\nContent-Length: 1000000\r\n\r\n"
        )
        .unwrap();
        s.write_all(&data(350_000, 2)).unwrap();
        s
    };
    // The client goes away midway: the server removes what it wrote.
    let s = partial_upload("gone-client");
    objects.wait_for_count(1);
    drop(s);
    objects.wait_for_count(0);

    // The server dies midway: after a restart the sweeper removes the leftovers.
    let _s = partial_upload("crash");
    objects.wait_for_count(1);
    let pid = server.child.as_ref().unwrap().id();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let _ = server.child.take().map(|mut c| c.wait());
    drop(server);
    assert_eq!(
        objects.ids().len(),
        1,
        "the crash left an orphan for the sweeper"
    );
    let server = backend.start(
        &data_dir,
        &[
            "--node-id",
            "n1",
            "--upload-stale-secs",
            "1",
            "--job-interval-secs",
            "1",
        ],
    );
    objects.wait_for_count(0);
    let r = server.request("GET", "/v1/ns/app/file-policy", Some(&admin), None);
    assert_eq!(r.json()["usage"]["files"], 0, "{}", r.body);
    let r = server.request("GET", "/v1/sys/audit?action=file.sweep", Some(&admin), None);
    assert!(r.body.contains("file.sweep"), "{}", r.body);
    // Nothing dangling: the user has no files and uploads work.
    let r = server.request("GET", "/v1/ns/app/users/u/files", Some(&token), None);
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 0);
    upload(&server, &token, "u", "after.pdf", b"fine");
}

/// The transfers that aborted PostgreSQL nodes and held quota hostage: a wrong checksum, a
/// chunked body over the limit, a client gone mid-upload and mid-download, an upload that
/// declares a large size and stalls. Each is refused or cut cleanly, leaves nothing behind,
/// frees its quota, and the node answers `ready` after each.
fn refused_cut_off_and_stalled_transfers_leave_the_node_serving(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.start(&dir.path().join("d"), &["--upload-idle-secs", "2"]);
    let objects = backend.objects(&server.data_dir);
    let token = app_token(&server, "app", &["read", "write", "list"]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let ready = |what: &str| {
        let r = server.request("GET", "/v1/sys/ready", None, None);
        assert_eq!(r.status, 200, "not ready after {what}: {}", r.body);
    };
    let usage = || {
        let r = server.request("GET", "/v1/ns/app/file-policy", Some(server.admin()), None);
        (
            r.json()["usage"]["files"].as_u64().unwrap(),
            r.json()["usage"]["bytes"].as_u64().unwrap(),
        )
    };

    // A wrong X-Content-SHA256: refused after the body, nothing kept.
    let r = send(
        &server,
        "POST",
        "/v1/ns/app/users/u/files?name=x.pdf",
        Some(&token),
        &[
            ("Content-Type", "application/pdf"),
            ("X-Content-SHA256", &"00".repeat(32)),
        ],
        Some(&data(250_000, 3)),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_input"));
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("sha256"));
    objects.wait_for_count(0);
    assert_eq!(usage(), (0, 0));
    ready("a wrong checksum");

    // A chunked body that crosses the maximum file size midway.
    let r = server.request(
        "PUT",
        "/v1/ns/app/file-policy",
        Some(server.admin()),
        Some(r#"{"max_file_size": 200000, "namespace_max_bytes": 1000000}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = chunked_upload(&server, &token, "/v1/ns/app/users/u/files?name=c", 30);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    objects.wait_for_count(0);
    assert_eq!(usage(), (0, 0));
    ready("a chunked body over the limit");

    // The client goes away mid-upload.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "POST /v1/ns/app/users/u/files?name=gone HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/pdf\r\nContent-Length: 190000\r\n\r\n"
    )
    .unwrap();
    s.write_all(&data(170_000, 5)).unwrap();
    objects.wait_for_count(1);
    drop(s);
    objects.wait_for_count(0);
    assert_eq!(usage(), (0, 0));
    ready("a client gone mid-upload");

    // The client goes away mid-download.
    let info = upload(&server, &token, "u", "kept.pdf", &data(190_000, 6));
    let id = info["id"].as_str().unwrap();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /v1/ns/app/users/u/files/{id}/content HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 4096];
    let n = s.read(&mut first).unwrap();
    assert!(n > 0 && first.starts_with(b"HTTP/1.1 200"));
    drop(s);
    ready("a client gone mid-download");
    let r = content(&server, &token, "u", id, None);
    assert_eq!(r.body.unwrap(), data(190_000, 6));

    // An upload that declares most of the namespace's quota, sends a byte and stalls holds
    // the reservation only until it is cut off (--upload-idle-secs 2).
    let mut staller = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        staller,
        "POST /v1/ns/app/users/slow/files?name=s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/pdf\r\nContent-Length: 199000\r\n\r\nx"
    )
    .unwrap();
    let others = |user: &str| {
        send(
            &server,
            "POST",
            &format!("/v1/ns/app/users/{user}/files?name=o"),
            Some(&token),
            &[("Content-Type", "application/pdf")],
            Some(&data(150_000, 7)),
        )
    };
    // 190,000 stored + 199,000 reserved + 4 × 150,000 fit the 1,000,000 bytes; a fifth does not.
    for (i, user) in ["a", "b", "c", "d"].iter().enumerate() {
        let r = others(user);
        assert_eq!(r.status, 201, "upload {i}");
    }
    let r = others("e");
    assert_eq!(
        (r.status, r.code().as_str()),
        (413, "quota_exceeded"),
        "the stalled upload's reservation counts"
    );
    staller
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    let _ = staller.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = others("e");
        if r.status == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled upload's reservation was never freed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    ready("a stalled upload");
    let logs = server.logs();
    assert!(!logs.contains("panicked"), "{logs}");
    assert!(!logs.contains("BUG:"), "{logs}");
}

/// Two stateless nodes on one PostgreSQL database and one bucket: a file uploaded through one is
/// read, ranged, linked and deleted through the other, and quotas hold across both.
#[test]
fn two_nodes_share_files_through_postgres_and_s3() {
    let Some(url) = support::postgres_url() else {
        return;
    };
    let Some(backend) = Backend::s3() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = support::shared_root_key();
    let schema = format!("files_{}", std::process::id());
    let mut flags = backend.flags();
    flags.extend([
        "--database".into(),
        url.clone(),
        "--db-schema".into(),
        schema,
    ]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut env = backend.env();
    env.push(("STRONGROOM_ROOT_KEY", key));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = Server::start(&dir.path().join("a"), &flags, &env);
    let b = Server::start(&dir.path().join("b"), &flags, &env);
    let admin = a.admin().to_string();
    let token = app_token(&a, "app", &["read", "write", "delete", "list"]);
    let r = a.request(
        "PUT",
        "/v1/ns/app/file-policy",
        Some(&admin),
        Some(r#"{"user_max_files": 2}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let plain = data(230_000, 8);
    let info = upload(&a, &token, "u", "shared.bin", &plain);
    let id = info["id"].as_str().unwrap();
    let r = content(&b, &token, "u", id, None);
    assert_eq!((r.status, r.body.unwrap() == plain), (200, true));
    let r = content(&b, &token, "u", id, Some("bytes=150000-150009"));
    assert_eq!(r.body.unwrap(), plain[150_000..150_010]);
    let link = a.request(
        "POST",
        &format!("/v1/ns/app/users/u/files/{id}/links"),
        Some(&token),
        Some(r#"{"one_time": true}"#),
    );
    let path = link.json()["path"].as_str().unwrap().to_string();
    assert_eq!(send(&b, "GET", &path, None, &[], None).status, 200);
    assert_eq!(
        send(&a, "GET", &path, None, &[], None).code(),
        "link_used",
        "one-time across nodes"
    );

    upload(&b, &token, "u", "second.bin", b"x");
    let r = send(
        &a,
        "POST",
        "/v1/ns/app/users/u/files?name=third",
        Some(&token),
        &[],
        Some(b"y"),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (413, "quota_exceeded"),
        "quota counts files from both nodes"
    );

    let r = send(
        &b,
        "DELETE",
        &format!("/v1/ns/app/users/u/files/{id}"),
        Some(&token),
        &[],
        None,
    );
    assert_eq!(r.status, 204);
    assert_eq!(content(&a, &token, "u", id, None).status, 404);
    let objects = backend.objects(&dir.path().join("a"));
    objects.wait_for_count(1);
}

/// A TCP forwarder in front of the S3 server that can cut every connection and refuse new ones.
/// The object store going away answers 503 with Retry-After within seconds (no hang, no 500),
/// keeps metadata readable, loses nothing, and the node recovers by itself; the upload that
/// failed during the outage is swept once the store is back.
#[test]
fn an_s3_outage_is_503_and_recovers() {
    let Some(Backend {
        store: Store::S3 {
            endpoint,
            bucket,
            prefix,
        },
        db,
    }) = Backend::s3()
    else {
        return;
    };
    let cable = Cable::to(&endpoint);
    let backend = Backend {
        store: Store::S3 {
            endpoint: cable.addr.clone(),
            bucket,
            prefix,
        },
        db,
    };
    let dir = tempfile::tempdir().unwrap();
    let server = backend.start(&dir.path().join("d"), &["--job-interval-secs", "1"]);
    let token = app_token(&server, "app", &["read", "write", "list"]);
    let plain = data(150_000, 11);
    let kept = upload(&server, &token, "u", "kept.bin", &plain);
    let kept_id = kept["id"].as_str().unwrap();

    cable.cut();
    let started = Instant::now();
    let r = content(&server, &token, "u", kept_id, None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "object_storage_unavailable")
    );
    assert!(r.header("retry-after").is_some());
    let r = send(
        &server,
        "POST",
        "/v1/ns/app/users/u/files?name=lost.bin",
        Some(&token),
        &[],
        Some(&data(1000, 12)),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "object_storage_unavailable")
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered within seconds"
    );
    let r = server.request("GET", "/v1/ns/app/users/u/files", Some(&token), None);
    let items = r.json()["items"].as_array().unwrap().len();
    assert_eq!(
        items, 1,
        "metadata stays readable and the failed upload is invisible"
    );

    cable.mend();
    let r = content(&server, &token, "u", kept_id, None);
    assert_eq!(
        (r.status, r.body.unwrap() == plain),
        (200, true),
        "nothing was lost"
    );
    let objects = backend.objects(&server.data_dir);
    objects.wait_for_count(1);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = server.request("GET", "/v1/ns/app/file-policy", Some(server.admin()), None);
        if r.json()["usage"]["files"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failed upload was never swept: {}",
            r.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
