//! Conformance checks for file metadata: the upload life cycle, quotas (also under concurrent
//! admissions), erasure, policies and one-time links.

use super::ns_with_users;
use crate::*;

fn file(id: &str, user: u8, size: u64, at: i64) -> FileRow {
    FileRow {
        namespace: "app".into(),
        user_hash: vec![user; 32],
        file_id: id.into(),
        object_id: format!("0b{id}"),
        state: FileState::Uploading,
        size,
        piece_size: 1024,
        header: vec![1, 1, 0, 0, 4, 0, 7, 7, 7, 7, 7, 7, 7],
        sealed: Vec::new(),
        created_at: at,
        updated_at: at,
    }
}

const OPEN: FileQuota = FileQuota {
    user_bytes: None,
    user_files: None,
    namespace_bytes: None,
    namespace_files: None,
};

fn upload(s: &dyn Storage, id: &str, user: u8, size: u64, at: i64) {
    assert_eq!(s.begin_file(&file(id, user, 0, at), &OPEN).unwrap(), None);
    assert_eq!(
        s.complete_file("app", id, size, b"sealed", at + 1, &OPEN)
            .unwrap(),
        FileCompletion::Completed
    );
}

pub fn files_lifecycle(s: &dyn Storage) {
    ns_with_users(s, "app");
    assert_eq!(s.begin_file(&file("aa", 1, 0, 10), &OPEN).unwrap(), None);
    assert!(
        s.get_file("app", "aa").unwrap().is_none(),
        "uploading is invisible"
    );
    assert!(s.list_files("app", &[1; 32], None, 10).unwrap().is_empty());
    assert!(
        s.begin_file(&file("aa", 1, 0, 10), &OPEN).is_err(),
        "file ids are unique"
    );
    assert_eq!(
        s.complete_file("app", "aa", 700, b"meta", 11, &OPEN)
            .unwrap(),
        FileCompletion::Completed
    );
    assert_eq!(
        s.complete_file("app", "aa", 700, b"meta", 11, &OPEN)
            .unwrap(),
        FileCompletion::Gone,
        "completes once"
    );
    let got = s.get_file("app", "aa").unwrap().expect("ready");
    assert_eq!(
        (got.state, got.size, got.sealed.as_slice()),
        (FileState::Ready, 700, &b"meta"[..])
    );
    assert_eq!(got.header, file("aa", 1, 0, 10).header);
    assert_eq!(
        (got.object_id.as_str(), got.piece_size, got.created_at),
        ("0baa", 1024, 10)
    );

    upload(s, "cc", 1, 1, 12);
    upload(s, "bb", 1, 1, 12);
    upload(s, "dd", 2, 1, 12);
    let ids = |after: Option<(i64, &str)>| -> Vec<String> {
        s.list_files("app", &[1; 32], after, 2)
            .unwrap()
            .into_iter()
            .map(|f| f.file_id)
            .collect()
    };
    assert_eq!(ids(None), ["aa", "bb"], "oldest first, then by id");
    assert_eq!(ids(Some((12, "bb"))), ["cc"]);
    assert_eq!(
        ids(Some((11, "zz"))),
        ["bb", "cc"],
        "the position need not be a file"
    );
    assert_eq!(
        s.file_usage("app", Some(&[1; 32])).unwrap(),
        FileUsage {
            bytes: 702,
            files: 3
        }
    );
    assert_eq!(
        s.file_usage("app", None).unwrap(),
        FileUsage {
            bytes: 703,
            files: 4
        }
    );

    let was = s.mark_file_deleting("app", "aa").unwrap().expect("marked");
    assert_eq!(was.state, FileState::Ready);
    assert!(s.mark_file_deleting("app", "aa").unwrap().is_none(), "once");
    assert!(s.get_file("app", "aa").unwrap().is_none());
    assert_eq!(s.file_usage("app", Some(&[1; 32])).unwrap().files, 2);
    // The sweeper sees deleting rows at once and uploads only once they are stale.
    assert_eq!(s.begin_file(&file("ee", 1, 0, 50), &OPEN).unwrap(), None);
    let stale = |before| -> Vec<String> {
        s.stale_files(before, 10)
            .unwrap()
            .into_iter()
            .map(|f| f.file_id)
            .collect()
    };
    assert_eq!(stale(40), ["aa"]);
    // Progress keeps an upload out of the sweep; only uploading rows can be touched.
    assert!(s.touch_upload("app", "ee", 60).unwrap());
    assert_eq!(stale(55), ["aa"]);
    assert!(
        !s.touch_upload("app", "bb", 60).unwrap(),
        "ready rows are not uploads"
    );
    assert!(!s.touch_upload("app", "nope", 60).unwrap());
    let mut both = stale(61);
    both.sort();
    assert_eq!(both, ["aa", "ee"]);
    assert!(s.delete_file_row("app", "aa").unwrap());
    assert!(!s.delete_file_row("app", "aa").unwrap());
    assert_eq!(stale(61), ["ee"]);
}

pub fn files_quotas(s: &dyn Storage) {
    ns_with_users(s, "app");
    let q = FileQuota {
        user_bytes: Some(100),
        user_files: Some(2),
        namespace_bytes: Some(150),
        namespace_files: None,
    };
    assert_eq!(s.begin_file(&file("a1", 1, 60, 1), &q).unwrap(), None);
    assert_eq!(
        s.begin_file(&file("a2", 1, 50, 1), &q).unwrap(),
        Some(QuotaBreach::UserBytes { limit: 100 }),
        "reservations count"
    );
    assert_eq!(s.begin_file(&file("a2", 1, 0, 1), &q).unwrap(), None);
    assert_eq!(
        s.begin_file(&file("a3", 1, 0, 1), &q).unwrap(),
        Some(QuotaBreach::UserFiles { limit: 2 })
    );
    assert_eq!(
        s.complete_file("app", "a2", 41, b"m", 2, &q).unwrap(),
        FileCompletion::Exceeded(QuotaBreach::UserBytes { limit: 100 }),
        "checked again with the final size"
    );
    assert_eq!(
        s.complete_file("app", "a2", 40, b"m", 2, &q).unwrap(),
        FileCompletion::Completed
    );
    assert_eq!(s.begin_file(&file("b1", 2, 50, 1), &q).unwrap(), None);
    assert_eq!(
        s.begin_file(&file("b2", 2, 1, 1), &q).unwrap(),
        Some(QuotaBreach::NamespaceBytes { limit: 150 })
    );
    // Deleting frees quota at once.
    s.mark_file_deleting("app", "a1").unwrap().expect("marked");
    assert_eq!(s.begin_file(&file("b2", 2, 1, 1), &q).unwrap(), None);
    let nsq = FileQuota {
        namespace_files: Some(3),
        ..OPEN
    };
    assert_eq!(
        s.begin_file(&file("b3", 2, 0, 1), &nsq).unwrap(),
        Some(QuotaBreach::NamespaceFiles { limit: 3 })
    );
}

pub fn files_concurrent_admissions_respect_quota(s: &dyn Storage) {
    ns_with_users(s, "app");
    let q = FileQuota {
        user_files: Some(3),
        ..OPEN
    };
    let admitted = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let admitted = &admitted;
            scope.spawn(move || loop {
                match s.begin_file(&file(&format!("c{t}"), 1, 10, 1), &q) {
                    Ok(None) => {
                        admitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        break;
                    }
                    Ok(Some(_)) => break,
                    Err(StorageError::Unavailable(_)) | Err(StorageError::Conflict(_)) => continue,
                    Err(other) => panic!("admission failed: {other}"),
                }
            });
        }
    });
    assert_eq!(admitted.into_inner(), 3);
}

pub fn files_vanish_with_their_user(s: &dyn Storage) {
    ns_with_users(s, "app");
    upload(s, "f1", 1, 5, 1);
    assert_eq!(s.begin_file(&file("f2", 1, 0, 1), &OPEN).unwrap(), None);
    upload(s, "f3", 2, 5, 1);
    assert_eq!(s.count_user_items("app", &[1; 32]).unwrap(), 2);
    assert!(s
        .begin_erasure("app", &[1; 32], 5, "ledger-files-1", None)
        .unwrap());
    assert!(
        s.get_file("app", "f1").unwrap().is_none(),
        "unreadable at once"
    );
    assert!(s.list_files("app", &[1; 32], None, 10).unwrap().is_empty());
    assert_eq!(
        s.complete_file("app", "f2", 5, b"m", 6, &OPEN).unwrap(),
        FileCompletion::Gone,
        "an upload cannot complete for an erased user"
    );
    assert!(
        !s.touch_upload("app", "f2", 6).unwrap(),
        "nor make progress"
    );
    let mut rows: Vec<String> = s
        .user_file_rows("app", &[1; 32], 10)
        .unwrap()
        .into_iter()
        .map(|f| f.file_id)
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        ["f1", "f2"],
        "the purge finds every row, whatever its state"
    );
    for id in rows {
        assert!(s.delete_file_row("app", &id).unwrap());
    }
    assert_eq!(s.count_user_items("app", &[1; 32]).unwrap(), 0);
    assert!(
        s.get_file("app", "f3").unwrap().is_some(),
        "others untouched"
    );
}

pub fn file_policies_and_links(s: &dyn Storage) {
    ns_with_users(s, "app");
    assert_eq!(s.get_file_policy("app").unwrap(), None);
    s.set_file_policy("app", Some(b"{\"a\":1}")).unwrap();
    s.set_file_policy("app", Some(b"{\"a\":2}")).unwrap();
    assert_eq!(
        s.get_file_policy("app").unwrap().as_deref(),
        Some(&b"{\"a\":2}"[..])
    );
    s.set_file_policy("app", None).unwrap();
    assert_eq!(s.get_file_policy("app").unwrap(), None);

    assert!(s.consume_link("l1", 100).unwrap());
    assert!(
        !s.consume_link("l1", 100).unwrap(),
        "a one-time link works once"
    );
    assert!(s.consume_link("l2", 300).unwrap());
    assert_eq!(s.purge_used_links(200).unwrap(), 1);
    assert!(
        !s.consume_link("l2", 300).unwrap(),
        "unexpired uses are kept"
    );
}
