//! The configuration file: settings become flag defaults (flags and environment win), unknown
//! settings and an inline root key are refused with a clear message.

mod support;

use support::{Server, BIN};

#[test]
fn settings_come_from_the_file_and_bad_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strongroom.toml");
    std::fs::write(
        &config,
        "lockout_threshold = 2\nlockout_secs = 30\nlog_format = \"json\"\n",
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("d"),
        &["--config", config.to_str().unwrap()],
        &[],
    );
    let bad = "sr_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for _ in 0..2 {
        assert_eq!(
            server
                .request("GET", "/v1/sys/tokens/self", Some(bad), None)
                .status,
            401
        );
    }
    let r = server.request("GET", "/v1/sys/tokens/self", Some(bad), None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (429, "locked_out"),
        "the file's threshold of 2 applies"
    );
    assert!(
        server.logs().contains("{\""),
        "the file's log_format applies"
    );

    for (text, expected) in [
        ("colour = \"blue\"\n", "unknown setting \"colour\""),
        (
            "root_key = \"AAAA\"\n",
            "may not be written in the configuration file",
        ),
        (
            "lockout_threshold = [1]\n",
            "must be a string, an integer or a boolean",
        ),
        ("this is not toml", "is not valid TOML"),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = std::process::Command::new(BIN)
            .args(["--config", config.to_str().unwrap(), "serve", "--data-dir"])
            .arg(dir.path().join("x"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{text}: {err}");
    }
    let out = std::process::Command::new(BIN)
        .args(["--config", "/nonexistent/strongroom.toml", "keygen"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
