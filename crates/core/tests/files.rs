//! Files through the library: round trips of sizes around segment and piece boundaries, every
//! kind of range, quotas and policies, links, and erasure — on SQLite with an in-memory object
//! store and small pieces so that segments straddle pieces. (The binary's tests repeat the
//! important paths on a local folder and on S3.)

use std::sync::Arc;

use strongroom_core::files::{ByteRange, FileInfo, FilePolicy, LinkRequest, NewFile};
use strongroom_core::{CoreError, Principal, SystemClock, Vault, VaultSettings};
use strongroom_crypto::{Key, Root};
use strongroom_objects::{BlobStore, ObjectLocation, S3Settings};

struct Fixture {
    vault: Vault,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(strongroom_sqlite::SqliteStore::open(&dir.path().join("v.db")).unwrap());
    let settings = VaultSettings {
        files: Some(BlobStore::open(&ObjectLocation::Memory, &S3Settings::default()).unwrap()),
        file_piece_size: 100_003,
        ..VaultSettings::default()
    };
    let vault = Vault::open(
        store,
        Key::<Root>::generate().unwrap(),
        Arc::new(SystemClock),
        settings,
    )
    .unwrap()
    .vault;
    vault.create_namespace(&admin(), "app").unwrap();
    Fixture { vault, _dir: dir }
}

fn admin() -> Principal {
    Principal::system("test")
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// The async parts (piece I/O) run here; the vault's own calls stay on the test thread, as they
/// must (storage is never called from an async worker: `strongroom_core::blocking`).
fn block_on<F: std::future::Future>(work: F) -> F::Output {
    static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    });
    RUNTIME.block_on(work)
}

fn upload(v: &Vault, user: &str, name: &str, bytes: &[u8]) -> Result<FileInfo, CoreError> {
    let mut w = v.begin_upload(
        &admin(),
        "app",
        user,
        NewFile {
            name: name.into(),
            content_type: Some("application/pdf".into()),
            ..NewFile::default()
        },
    )?;
    // Uneven chunks, as a network delivers them.
    let finished = block_on(async move {
        for chunk in bytes.chunks(7_001) {
            if let Err(e) = w.write(chunk).await {
                w.abandon().await;
                return Err(e);
            }
        }
        w.finish().await
    })?;
    finished.commit()
}

fn read(v: &Vault, user: &str, id: &str, range: Option<ByteRange>) -> Result<Vec<u8>, CoreError> {
    let r = v.open_file(&admin(), "app", user, id, range)?;
    drain(r)
}

fn drain(mut r: strongroom_core::files::FileReader) -> Result<Vec<u8>, CoreError> {
    block_on(async move {
        let mut out = Vec::new();
        while let Some(chunk) = r.next_chunk().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    })
}

#[test]
fn sizes_around_segment_and_piece_boundaries_round_trip() {
    let f = fixture();
    let seg = 64 * 1024;
    for len in [0, 1, seg - 1, seg, seg + 1, 2 * seg, 100_003, 300_000] {
        let bytes = data(len);
        let info = upload(&f.vault, "u1", "f.bin", &bytes).unwrap();
        assert_eq!(info.size, len as u64);
        assert_eq!(info.sha256, hex_sha256(&bytes));
        assert_eq!(
            read(&f.vault, "u1", &info.id, None).unwrap(),
            bytes,
            "len {len}"
        );
        if len == 0 {
            continue;
        }
        let l = len as u64;
        for range in [
            ByteRange::Bounded { first: 0, last: 0 },
            ByteRange::Bounded {
                first: l / 2,
                last: l - 1,
            },
            ByteRange::Bounded {
                first: l.saturating_sub(seg as u64 + 5),
                last: l + 100,
            },
            ByteRange::From(l - 1),
            ByteRange::Suffix(3),
        ] {
            let want = range.resolve(l).unwrap();
            let got = read(&f.vault, "u1", &info.id, Some(range)).unwrap();
            assert_eq!(
                got,
                bytes[want.start as usize..want.end as usize],
                "len {len} {range:?}"
            );
        }
        assert!(matches!(
            read(&f.vault, "u1", &info.id, Some(ByteRange::From(l))),
            Err(CoreError::RangeNotSatisfiable { .. })
        ));
    }
    let page = f.vault.list_files(&admin(), "app", "u1", None, 3).unwrap();
    assert_eq!(page.items.len(), 3);
    // The cursor is a position: deleting the page's last file does not end the listing.
    let last = page.items.last().unwrap().id.clone();
    f.vault.delete_file(&admin(), "app", "u1", &last).unwrap();
    let rest = f
        .vault
        .list_files(&admin(), "app", "u1", page.next_cursor.as_deref(), 100)
        .unwrap();
    assert_eq!(rest.items.len(), 5);
    assert!(f
        .vault
        .list_files(&admin(), "app", "u1", Some("not-a-cursor"), 10)
        .is_err());
    assert!(f
        .vault
        .list_files(&admin(), "app", "u2", None, 10)
        .unwrap()
        .items
        .is_empty());
}

fn hex_sha256(b: &[u8]) -> String {
    strongroom_crypto::keyed_hash::sha256(&[b])
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
fn policies_limit_size_count_bytes_and_types() {
    let f = fixture();
    f.vault
        .set_file_policy(
            &admin(),
            "app",
            FilePolicy {
                max_file_size: Some(1000),
                user_max_files: Some(2),
                user_max_bytes: Some(1500),
                allowed_content_types: Some(vec!["application/*".into()]),
                ..FilePolicy::default()
            },
        )
        .unwrap();
    assert!(matches!(
        upload(&f.vault, "u", "big", &data(1001)),
        Err(CoreError::FileTooLarge { limit: 1000 })
    ));
    upload(&f.vault, "u", "a", &data(1000)).unwrap();
    assert!(matches!(
        upload(&f.vault, "u", "b", &data(600)),
        Err(CoreError::QuotaExceeded(_))
    ));
    upload(&f.vault, "u", "b", &data(500)).unwrap();
    assert!(matches!(
        upload(&f.vault, "u", "c", &data(1)),
        Err(CoreError::QuotaExceeded(_))
    ));
    let err = f.vault.begin_upload(
        &admin(),
        "app",
        "v",
        NewFile {
            name: "x.html".into(),
            content_type: Some("text/html".into()),
            ..NewFile::default()
        },
    );
    assert!(matches!(err, Err(CoreError::UnsupportedContentType(_))));
    let declared = f.vault.begin_upload(
        &admin(),
        "app",
        "v",
        NewFile {
            name: "x".into(),
            declared_size: Some(5000),
            ..NewFile::default()
        },
    );
    assert!(matches!(declared, Err(CoreError::FileTooLarge { .. })));
    // Rejected uploads leave nothing counted.
    let view = f.vault.get_file_policy(&admin(), "app").unwrap();
    assert_eq!((view.usage.files, view.usage.bytes), (2, 1500));
}

#[test]
fn a_wrong_checksum_or_an_abandoned_upload_leaves_nothing() {
    let f = fixture();
    let mut w = f
        .vault
        .begin_upload(
            &admin(),
            "app",
            "u",
            NewFile {
                name: "x".into(),
                expected_sha256: Some("00".repeat(32)),
                ..NewFile::default()
            },
        )
        .unwrap();
    block_on(w.write(&data(200_000))).unwrap();
    assert!(matches!(
        block_on(w.finish()),
        Err(CoreError::Invalid {
            field: "sha256",
            ..
        })
    ));
    let mut w = f
        .vault
        .begin_upload(
            &admin(),
            "app",
            "u",
            NewFile {
                name: "y".into(),
                ..NewFile::default()
            },
        )
        .unwrap();
    block_on(w.write(&data(250_000))).unwrap();
    drop(w);
    // Cleanup runs on its own thread.
    for _ in 0..100 {
        if f.vault
            .get_file_policy(&admin(), "app")
            .unwrap()
            .usage
            .files
            == 0
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        f.vault
            .get_file_policy(&admin(), "app")
            .unwrap()
            .usage
            .files,
        0
    );
}

#[test]
fn links_are_signed_expiring_and_optionally_one_time() {
    let f = fixture();
    let bytes = data(70_000);
    let info = upload(&f.vault, "student-42", "a.pdf", &bytes).unwrap();
    let link = f
        .vault
        .create_file_link(
            &admin(),
            "app",
            "student-42",
            &info.id,
            LinkRequest {
                expires_in_secs: Some(60),
                one_time: true,
            },
        )
        .unwrap();
    let payload = link.token.split('.').nth(1).unwrap();
    let payload =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap();
    let payload = String::from_utf8(payload).unwrap();
    assert!(
        payload.contains(&info.id) && !payload.contains("student-42"),
        "no user id in the link: {payload}"
    );
    let got = drain(f.vault.open_file_link(&link.token, None).unwrap()).unwrap();
    assert_eq!(got, bytes);
    assert!(matches!(
        f.vault.open_file_link(&link.token, None),
        Err(CoreError::LinkUsed)
    ));

    let reusable = f
        .vault
        .create_file_link(
            &admin(),
            "app",
            "student-42",
            &info.id,
            LinkRequest::default(),
        )
        .unwrap();
    assert!(f.vault.open_file_link(&reusable.token, None).is_ok());
    assert!(f
        .vault
        .open_file_link(&reusable.token, Some(ByteRange::Suffix(5)))
        .is_ok());
    // A forged or altered token is refused.
    let mut forged = reusable.token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert!(matches!(
        f.vault.open_file_link(&forged, None),
        Err(CoreError::InvalidLink)
    ));
    for junk in ["", "v1.", "v1.a.b", "v2.x.y", &"v1.".repeat(500)] {
        assert!(
            matches!(
                f.vault.open_file_link(junk, None),
                Err(CoreError::InvalidLink)
            ),
            "{junk}"
        );
    }
    assert!(f
        .vault
        .create_file_link(
            &admin(),
            "app",
            "student-42",
            &info.id,
            LinkRequest {
                expires_in_secs: Some(0),
                one_time: false
            }
        )
        .is_err());
    // Deleting the file ends its links.
    f.vault
        .delete_file(&admin(), "app", "student-42", &info.id)
        .unwrap();
    assert!(matches!(
        f.vault.open_file_link(&reusable.token, None),
        Err(CoreError::NotFound("file"))
    ));
}

#[test]
fn erasure_makes_files_unreadable_at_once_and_the_purge_removes_them() {
    let f = fixture();
    let info = upload(&f.vault, "gone", "a", &data(1234)).unwrap();
    let keep = upload(&f.vault, "stays", "b", &data(10)).unwrap();
    let export = f.vault.export_user(&admin(), "app", "gone").unwrap();
    assert_eq!(export.files, vec![info.clone()]);
    let link = f
        .vault
        .create_file_link(&admin(), "app", "gone", &info.id, LinkRequest::default())
        .unwrap();
    let report = f.vault.erase_user(&admin(), "app", "gone", "gone").unwrap();
    assert!(report.purge_pending, "files are purged by the job");
    assert!(read(&f.vault, "gone", &info.id, None).is_err());
    assert!(f.vault.open_file_link(&link.token, None).is_err());
    let status = f.vault.erasure_status(&admin(), "app", "gone").unwrap();
    assert_eq!(status.items_remaining, 1);
    {
        use strongroom_core::jobs::{ErasurePurgeJob, Job};
        ErasurePurgeJob.run_once(&f.vault).unwrap();
    }
    let status = f.vault.erasure_status(&admin(), "app", "gone").unwrap();
    assert_eq!((status.items_remaining, status.purge_pending), (0, false));
    assert_eq!(read(&f.vault, "stays", &keep.id, None).unwrap(), data(10));
}

/// A clock the test moves by hand.
struct ManualClock(std::sync::atomic::AtomicI64);

impl strongroom_core::Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn a_slow_upload_that_makes_progress_is_not_swept_and_a_stalled_one_is() {
    use strongroom_core::jobs::{FileSweepJob, Job};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(strongroom_sqlite::SqliteStore::open(&dir.path().join("v.db")).unwrap());
    let clock = Arc::new(ManualClock(std::sync::atomic::AtomicI64::new(
        1_700_000_000_000,
    )));
    let settings = VaultSettings {
        files: Some(BlobStore::open(&ObjectLocation::Memory, &S3Settings::default()).unwrap()),
        file_piece_size: 100_003,
        upload_stale_ms: 60_000,
        ..VaultSettings::default()
    };
    let vault = Vault::open(
        store,
        Key::<Root>::generate().unwrap(),
        clock.clone(),
        settings,
    )
    .unwrap()
    .vault;
    vault.create_namespace(&admin(), "app").unwrap();
    let advance = |secs: i64| {
        clock
            .0
            .fetch_add(secs * 1000, std::sync::atomic::Ordering::SeqCst);
    };
    let sweep = |v: &Vault| {
        let v = v.clone();
        std::thread::spawn(move || FileSweepJob.run_once(&v).unwrap())
            .join()
            .unwrap()
    };
    let new = || NewFile {
        name: "slow.bin".into(),
        ..NewFile::default()
    };

    // Progress every 50 s against a 60 s stale window: never swept.
    let mut w = vault.begin_upload(&admin(), "app", "u", new()).unwrap();
    for _ in 0..3 {
        advance(50);
        block_on(w.write(&data(150_000))).unwrap();
        sweep(&vault);
    }
    let info = block_on(w.finish()).unwrap().commit().unwrap();
    assert_eq!(info.size, 450_000);

    // No progress for longer than the window: swept, and the writer finds out at its next piece.
    let mut w = vault.begin_upload(&admin(), "app", "u", new()).unwrap();
    block_on(w.write(&data(150_000))).unwrap();
    advance(120);
    sweep(&vault);
    let err = block_on(w.write(&data(150_000))).unwrap_err();
    assert!(matches!(err, CoreError::NotFound("upload")), "{err:?}");
    let view = vault.get_file_policy(&admin(), "app").unwrap();
    assert_eq!(view.usage.files, 1, "only the completed file remains");
}
