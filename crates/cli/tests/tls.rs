//! TLS through the real binary, with certificates made in the test (rcgen): HTTPS with the
//! CLI trusting a CA file, HTTP/2 by ALPN, a certificate reloaded on SIGHUP while an open
//! connection keeps working, an expired certificate refused at start and on reload, and client
//! certificates (mTLS).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use support::Server;

struct Ca {
    cert: rcgen::Certificate,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn ca() -> Ca {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "strongroom test CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        cert,
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// A leaf certificate for localhost / 127.0.0.1 signed by `ca`, valid in `[from, to]` (years).
fn leaf(ca: &Ca, name: &str, from: i32, to: i32) -> (rcgen::Certificate, rcgen::KeyPair) {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(to, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert, key)
}

fn write(dir: &Path, stem: &str, cert: &rcgen::Certificate, key: &rcgen::KeyPair) {
    std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).unwrap();
}

fn client_config(
    ca: &Ca,
    client: Option<(&rcgen::Certificate, &rcgen::KeyPair)>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap(),
    };
    Arc::new(config)
}

fn start(dir: &Path, extra: &[&str], tls: Arc<rustls::ClientConfig>) -> Result<Server, String> {
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    let mut flags = vec![
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    flags.extend_from_slice(extra);
    Server::try_start_tls(&[], &dir.join("d"), &flags, &[], Some(tls))
}

/// A raw TLS connection: (the server's certificate, the stream).
fn connect(
    base: &str,
    tls: Arc<rustls::ClientConfig>,
) -> (
    CertificateDer<'static>,
    rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
) {
    let host = base.trim_start_matches("https://");
    let sock = TcpStream::connect(host).unwrap();
    let conn =
        rustls::ClientConnection::new(tls, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, sock);
    stream.flush().unwrap();
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).unwrap();
    }
    let cert = stream.conn.peer_certificates().unwrap()[0]
        .clone()
        .into_owned();
    (cert, stream)
}

fn get_ready(stream: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>) -> String {
    stream
        .write_all(b"GET /v1/sys/ready HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn https_http2_and_reload_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
    let (first, first_key) = leaf(&ca, "first", 2020, 2090);
    write(dir.path(), "server", &first, &first_key);
    let tls = client_config(&ca, None);
    let server = start(dir.path(), &[], tls.clone()).expect("starts with TLS");
    assert!(server.base.starts_with("https://"), "{}", server.base);
    // The CLI trusts the CA file.
    let out = std::process::Command::new(support::BIN)
        .args(["namespace", "create", "tls-app"])
        .env("STRONGROOM_ADDR", &server.base)
        .env("STRONGROOM_TOKEN", server.admin())
        .env("STRONGROOM_CA_FILE", dir.path().join("ca.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without it, the public roots do not know this CA: refused.
    let out = std::process::Command::new(support::BIN)
        .args(["namespace", "list"])
        .env("STRONGROOM_ADDR", &server.base)
        .env("STRONGROOM_TOKEN", server.admin())
        .env_remove("STRONGROOM_CA_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    // HTTP/2 by ALPN (curl with nghttp2).
    let curl = std::process::Command::new("curl")
        .args([
            "-s",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
            "--cacert",
        ])
        .arg(dir.path().join("ca.pem"))
        .arg(format!("{}/v1/sys/ready", server.base))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "2");
    // An open connection, then a new certificate and SIGHUP.
    let (seen, mut open) = connect(&server.base, tls.clone());
    assert_eq!(seen.as_ref(), first.der().as_ref());
    assert!(get_ready(&mut open).starts_with("HTTP/1.1 200"));
    let (second, second_key) = leaf(&ca, "second", 2020, 2091);
    write(dir.path(), "server", &second, &second_key);
    let pid = server.child.as_ref().unwrap().id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (now, _) = connect(&server.base, tls.clone());
        if now.as_ref() == second.der().as_ref() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the certificate was not reloaded"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        get_ready(&mut open).starts_with("HTTP/1.1 200"),
        "the open connection kept working"
    );
    // An expired certificate is refused on reload; the current one stays.
    let (expired, expired_key) = leaf(&ca, "expired", 2001, 2002);
    write(dir.path(), "server", &expired, &expired_key);
    std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (now, _) = connect(&server.base, tls.clone());
    assert_eq!(now.as_ref(), second.der().as_ref());
    assert!(
        server.logs().contains("TLS certificate not reloaded"),
        "{}",
        server.logs()
    );
}

#[test]
fn an_expired_certificate_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (expired, key) = leaf(&ca, "expired", 2001, 2002);
    write(dir.path(), "server", &expired, &key);
    let err = start(dir.path(), &[], client_config(&ca, None))
        .err()
        .expect("refused");
    assert!(err.contains("expired"), "{err}");
    std::fs::write(dir.path().join("server.key"), "not a key").unwrap();
    let (valid, _) = leaf(&ca, "valid", 2020, 2090);
    std::fs::write(dir.path().join("server.pem"), valid.pem()).unwrap();
    let err = start(dir.path(), &[], client_config(&ca, None))
        .err()
        .expect("refused");
    assert!(err.contains("server.key"), "the bad file is named: {err}");
}

#[test]
fn client_certificates_are_required_with_a_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (server_cert, server_key) = leaf(&ca, "server", 2020, 2090);
    write(dir.path(), "server", &server_cert, &server_key);
    std::fs::write(dir.path().join("clients.pem"), ca.cert.pem()).unwrap();
    let (client_cert, client_key) = leaf(&ca, "app", 2020, 2090);
    let with_cert = client_config(&ca, Some((&client_cert, &client_key)));
    let clients = dir.path().join("clients.pem");
    let server = start(
        dir.path(),
        &["--tls-client-ca", clients.to_str().unwrap()],
        with_cert,
    )
    .expect("starts");
    assert_eq!(
        server.request("GET", "/v1/sys/ready", None, None).status,
        200
    );
    // Without a client certificate the handshake fails.
    let host = server.base.trim_start_matches("https://").to_string();
    let sock = TcpStream::connect(&host).unwrap();
    let conn = rustls::ClientConnection::new(
        client_config(&ca, None),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut stream = rustls::StreamOwned::new(conn, sock);
    let refused = stream
        .write_all(b"GET /v1/sys/ready HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .and_then(|()| {
            let mut buf = [0u8; 64];
            stream.read(&mut buf)
        });
    assert!(
        refused.is_err() || refused.unwrap() == 0,
        "a client without a certificate got an answer"
    );
}
