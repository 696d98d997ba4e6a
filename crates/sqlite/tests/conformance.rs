//! The storage conformance suite against a real SQLite file.

use strongroom_sqlite::SqliteStore;

/// A store in a fresh temporary directory, removed when the test ends.
struct TempStore {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TempStore {
    type Target = SqliteStore;
    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

fn fresh() -> TempStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("test.db")).expect("open sqlite");
    TempStore { store, _dir: dir }
}

strongroom_storage::conformance_tests!(Some(fresh()));

#[test]
fn reopening_keeps_data_and_schema() {
    use strongroom_storage::MetaStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    SqliteStore::open(&path)
        .unwrap()
        .put_meta_if_absent("a", b"1")
        .unwrap();
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(again.get_meta("a").unwrap().as_deref(), Some(&b"1"[..]));
}
