//! Files on every backend for the end-to-end tests: which object store a test server uses
//! (a local folder or the loopback S3 server), the test's own view of the stored objects (to
//! look at and tamper with them), binary requests, and a cable that can cut the S3 connection.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use strongroom_objects::{BlobStore, ObjectLocation, S3Settings};

use super::{Db, Server};

/// Small pieces, so a few hundred KiB span several objects and segments straddle pieces.
pub const PIECE: &str = "100000";

/// Where a test server keeps file objects, and the same store opened by the test to look at
/// (and tamper with) what is stored.
pub enum Store {
    Local,
    S3 {
        endpoint: String,
        bucket: String,
        prefix: String,
    },
}

/// A test server's backends: file objects in `store`, metadata in `db`.
pub struct Backend {
    pub store: Store,
    pub db: Db,
}

impl Backend {
    pub fn local() -> Option<Backend> {
        Some(Backend {
            store: Store::Local,
            db: Db::Sqlite,
        })
    }

    /// The same objects, with metadata in `db` instead.
    pub fn on(self, db: Option<Db>) -> Option<Backend> {
        Some(Backend { db: db?, ..self })
    }

    /// The loopback S3 server; panics when it is required and missing, `None` only when
    /// `STRONGROOM_SKIP_S3=1` asks to skip S3 tests.
    pub fn s3() -> Option<Backend> {
        let endpoint = match std::env::var("STRONGROOM_TEST_S3_ENDPOINT") {
            Ok(e) if !e.is_empty() => e,
            _ if std::env::var("STRONGROOM_SKIP_S3").as_deref() == Ok("1") => {
                eprintln!("STRONGROOM_SKIP_S3=1: S3 test skipped on request");
                return None;
            }
            _ => panic!("STRONGROOM_TEST_S3_ENDPOINT is not set: run scripts/test (which starts an S3-compatible server), or set STRONGROOM_SKIP_S3=1 to skip on purpose"),
        };
        let bucket = "strongroom-tests".to_string();
        let r = ureq::put(&format!("{endpoint}/{bucket}")).call();
        assert!(
            matches!(r, Ok(_) | Err(ureq::Error::Status(409, _))),
            "creating the test bucket: {r:?}"
        );
        let prefix = format!(
            "run-{}-{}",
            std::process::id(),
            strongroom_crypto::random::bytes::<4>()
                .unwrap()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Some(Backend {
            store: Store::S3 {
                endpoint,
                bucket,
                prefix,
            },
            db: Db::Sqlite,
        })
    }

    pub fn flags(&self) -> Vec<String> {
        let mut flags = vec!["--file-piece-bytes".to_string(), PIECE.to_string()];
        flags.extend(self.db.flags());
        if let Store::S3 {
            endpoint,
            bucket,
            prefix,
        } = &self.store
        {
            flags.extend([
                "--files".into(),
                format!("s3://{bucket}/{prefix}"),
                "--s3-endpoint".into(),
                endpoint.clone(),
                "--s3-region".into(),
                "us-east-1".into(),
                "--s3-allow-http".into(),
            ]);
        }
        flags
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.db.env();
        if let Store::S3 { .. } = self.store {
            env.push(("AWS_ACCESS_KEY_ID", "test".into()));
            env.push(("STRONGROOM_S3_SECRET_ACCESS_KEY", "test".into()));
        }
        env
    }

    pub fn start(&self, dir: &Path, extra: &[&str]) -> Server {
        let mut flags = self.flags();
        flags.extend(extra.iter().map(|s| s.to_string()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::start(dir, &flags, &env)
    }

    /// Every byte the metadata database holds (see [`Db::dump`]).
    pub fn database_dump(&self, data_dir: &Path) -> Vec<u8> {
        self.db.dump(data_dir)
    }

    pub fn objects(&self, data_dir: &Path) -> Objects {
        let (location, s3) = match &self.store {
            Store::Local => (
                ObjectLocation::Local(data_dir.join("files")),
                S3Settings::default(),
            ),
            Store::S3 {
                endpoint,
                bucket,
                prefix,
            } => (
                ObjectLocation::S3 {
                    bucket: bucket.clone(),
                    prefix: prefix.clone(),
                },
                S3Settings {
                    endpoint: Some(endpoint.clone()),
                    region: Some("us-east-1".into()),
                    access_key_id: Some("test".into()),
                    secret_access_key: Some("test".to_string().into()),
                    allow_http: true,
                },
            ),
        };
        Objects {
            store: BlobStore::open(&location, &s3).unwrap(),
            rt: tokio::runtime::Runtime::new().unwrap(),
        }
    }
}

/// The test's own view of the object store.
pub struct Objects {
    store: BlobStore,
    rt: tokio::runtime::Runtime,
}

impl Objects {
    pub fn ids(&self) -> Vec<String> {
        self.rt.block_on(self.store.list_object_ids()).unwrap()
    }
    pub fn pieces(&self, id: &str) -> Vec<(u64, u64)> {
        self.rt.block_on(self.store.pieces(id)).unwrap()
    }
    pub fn get(&self, id: &str, piece: u64) -> Vec<u8> {
        self.rt
            .block_on(self.store.get_piece(id, piece))
            .unwrap()
            .to_vec()
    }
    pub fn put(&self, id: &str, piece: u64, bytes: Vec<u8>) {
        self.rt
            .block_on(
                self.store
                    .put_piece(id, piece, bytes.into(), &Default::default()),
            )
            .unwrap()
    }
    /// Every stored byte, for "the plaintext is not there" checks.
    pub fn all_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for id in self.ids() {
            out.extend(id.as_bytes());
            for (i, _) in self.pieces(&id) {
                out.extend(self.get(&id, i));
            }
        }
        out
    }
    /// Waits until the store holds exactly `n` objects.
    #[track_caller]
    pub fn wait_for_count(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.ids().len() != n {
            assert!(
                Instant::now() < deadline,
                "expected {n} objects, have {:?}",
                self.ids()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 131 + seed as usize * 7) % 251) as u8)
        .collect()
}

/// A response with a binary body; `body` is `Err` when the transfer broke off midway (status 0
/// when it broke off before the status line).
pub struct Download {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Result<Vec<u8>, String>,
}

impl Download {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        self.body
            .as_ref()
            .ok()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null)
    }
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

#[track_caller]
pub fn send(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Download {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let mut req = agent.request(method, &format!("{}{path}", server.base));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        // The connection was cut before a status line (a transfer aborted at once).
        Err(e) => {
            return Download {
                status: 0,
                headers: Vec::new(),
                body: Err(e.to_string()),
            }
        }
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.header(&n).unwrap_or_default().to_string();
            (n, v)
        })
        .collect();
    let mut body = Vec::new();
    let body = match resp.into_reader().read_to_end(&mut body) {
        Ok(_) => Ok(body),
        Err(e) => Err(e.to_string()),
    };
    Download {
        status,
        headers,
        body,
    }
}

pub fn upload(server: &Server, token: &str, user: &str, name: &str, bytes: &[u8]) -> Value {
    let r = send(
        server,
        "POST",
        &format!("/v1/ns/app/users/{user}/files?name={name}"),
        Some(token),
        &[("Content-Type", "application/pdf")],
        Some(bytes),
    );
    assert_eq!(r.status, 201, "{:?}", r.body.map(String::from_utf8));
    r.json()
}

#[track_caller]
pub fn content(
    server: &Server,
    token: &str,
    user: &str,
    id: &str,
    range: Option<&str>,
) -> Download {
    let headers: Vec<(&str, &str)> = range.iter().map(|r| ("Range", *r)).collect();
    send(
        server,
        "GET",
        &format!("/v1/ns/app/users/{user}/files/{id}/content"),
        Some(token),
        &headers,
        None,
    )
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A TCP forwarder in front of the S3 server that can cut every connection and refuse new ones.
pub struct Cable {
    pub addr: String,
    connected: std::sync::Arc<std::sync::atomic::AtomicBool>,
    live: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Cable {
    pub fn to(target: &str) -> Cable {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let target = target.trim_start_matches("http://").to_string();
        let connected = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let live = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (on, streams) = (connected.clone(), live.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !on.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes at once
                }
                let Ok(server) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                let mut held = streams.lock().unwrap();
                held.push(client.try_clone().unwrap());
                held.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Cable {
            addr,
            connected,
            live,
        }
    }

    pub fn cut(&self) {
        self.connected
            .store(false, std::sync::atomic::Ordering::SeqCst);
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn mend(&self) {
        self.connected
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
