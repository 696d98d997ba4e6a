//! HTTP scenarios over loopback: Strongroom's API (auth, encryption, audit) beside a plain axum
//! server on the same runtime settings that reads and writes the plaintext store directly.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use strongroom_core::{Capability, Policy};
use strongroom_server::{AppState, ServerSettings};
use strongroom_storage::{ItemKey, NewVersion, Storage};
use tokio::sync::oneshot;

use crate::loadgen::{self, RequestFn};
use crate::report::Row;
use crate::setup::{token_set_json, user_id, Fixture, NAME, NAMESPACE};
use crate::Params;

/// A server running on its own runtime until dropped.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn start(router: Option<Router>, state: Option<AppState>) -> Result<Running> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            let shutdown = async move {
                let _ = rx.await;
            };
            match (router, state) {
                (_, Some(state)) => strongroom_server::serve(listener, state, shutdown)
                    .await
                    .expect("serve"),
                (Some(router), None) => axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
                    .expect("serve"),
                (None, None) => {}
            }
        });
    });
    Ok(Running {
        addr,
        stop: Some(tx),
        thread: Some(thread),
    })
}

fn plain_key(user: String, name: String) -> ItemKey {
    ItemKey {
        namespace: NAMESPACE.into(),
        user_hash: user.into_bytes(),
        name,
    }
}

async fn plain_get(
    State(store): State<Arc<dyn Storage>>,
    Path((user, name)): Path<(String, String)>,
) -> Result<Vec<u8>, StatusCode> {
    let found = tokio::task::spawn_blocking(move || {
        store.get_credential_version(&plain_key(user, name), None)
    })
    .await
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
    .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    found
        .and_then(|(_, v)| v.ciphertext)
        .ok_or(StatusCode::NOT_FOUND)
}

async fn plain_put(
    State(store): State<Arc<dyn Storage>>,
    Path((user, name)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let result = tokio::task::spawn_blocking(move || {
        let new = NewVersion {
            created_at: 3,
            max_versions: None,
            default_max_versions: 10,
            sealed_name: None,
            status: None,
        };
        store.put_credential_version(
            &plain_key(user, name),
            None,
            &new,
            &|_| Ok(body.to_vec()),
            &|_| Vec::new(),
        )
    })
    .await;
    match result {
        Ok(Ok(_)) => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn request(method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\n");
    if let Some(t) = token {
        out.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    match body {
        Some(b) => out.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )),
        None => out.push_str("\r\n"),
    }
    out.into_bytes()
}

/// The limit: a plain axum server reading and writing the plaintext store directly.
pub(crate) fn start_plain(f: &Fixture) -> Result<Running> {
    let plain_router = Router::new()
        .route("/plain/{user}/{name}", get(plain_get).put(plain_put))
        .with_state(f.plain.clone());
    start(Some(plain_router), None)
}

/// Reads of random users' token sets from the plain server.
pub(crate) fn plain_get_requests(users: usize) -> RequestFn {
    Arc::new(move |rng| {
        request(
            "GET",
            &format!("/plain/{}/{NAME}", user_id(rng.below(users))),
            None,
            None,
        )
    })
}

/// Writes of random users' token sets to the plain server.
pub(crate) fn plain_put_requests(users: usize) -> RequestFn {
    Arc::new(move |rng| {
        let i = rng.below(users);
        request(
            "PUT",
            &format!("/plain/{}/{NAME}", user_id(i)),
            None,
            Some(&token_set_json(i, 9)),
        )
    })
}

pub fn run(f: &Fixture, params: &Params) -> Result<Vec<Row>> {
    let policy = Policy {
        namespaces: vec![NAMESPACE.into()],
        capabilities: BTreeSet::from([Capability::Read, Capability::Write]),
        rate_limit_per_sec: None,
    };
    let (_, token) = f.vault.create_token(&f.who, "bench", policy, None)?;
    let token: Arc<str> = token.expose_text().into();
    let strongroom = start(
        None,
        Some(AppState::new(f.vault.clone(), ServerSettings::default())),
    )?;
    let plain = start_plain(f)?;
    let users = f.users;
    let duration = Duration::from_secs(params.http_secs);
    let mut rows = Vec::new();

    for &conns in &params.connections {
        let t = token.clone();
        let sr_get: RequestFn = Arc::new(move |rng| {
            request(
                "GET",
                &format!(
                    "/v1/ns/{NAMESPACE}/users/{}/credentials/{NAME}",
                    user_id(rng.below(users))
                ),
                Some(&t),
                None,
            )
        });
        let limit = loadgen::run(plain.addr, conns, duration, plain_get_requests(users));
        let ours = loadgen::run(strongroom.addr, conns, duration, sr_get);
        let target = match (f.backend, conns) {
            ("sqlite", 64) => ">= 0.85x, p99 <= 1.5x the limit's (#19)",
            ("sqlite", _) => "no errors",
            _ => ">= 0.8x (#19)",
        };
        rows.push(Row::new(
            format!("{} HTTP get, {conns} connections", f.backend),
            ours,
            limit,
            target,
        ));
    }
    for &conns in &params.connections {
        let t = token.clone();
        let sr_put: RequestFn = Arc::new(move |rng| {
            let i = rng.below(users);
            let body = format!(r#"{{"data":{}}}"#, token_set_json(i, 9));
            request(
                "PUT",
                &format!("/v1/ns/{NAMESPACE}/users/{}/credentials/{NAME}", user_id(i)),
                Some(&t),
                Some(&body),
            )
        });
        let limit = loadgen::run(plain.addr, conns, duration, plain_put_requests(users));
        let ours = loadgen::run(strongroom.addr, conns, duration, sr_put);
        rows.push(Row::new(
            format!("{} HTTP put, {conns} connections", f.backend),
            ours,
            limit,
            "no errors",
        ));
    }
    drop(strongroom);
    drop(plain);
    Ok(rows)
}
