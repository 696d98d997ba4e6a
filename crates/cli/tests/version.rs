//! `strongroom --version` names the version, the commit and what the build can talk to.

mod support;

#[test]
fn version_names_commit_and_backends() {
    let out = std::process::Command::new(support::BIN)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!(
            "strongroom {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    for backend in ["sqlite", "postgres", "folder", "s3"] {
        assert!(text.contains(backend), "{text}");
    }
}
