//! Accepting connections so that no client can hold the node hostage.
//!
//! - **Header-read timeout**: a connection must send a request's headers within
//!   `header_read_timeout` (hyper closes it otherwise), so connections that send nothing, or
//!   trickle headers, do not pile up.
//! - **Idle timeout**: a connection that moves no byte in either direction for `idle_timeout`
//!   is closed — gracefully when no request is in flight, at once when one is stuck (a client
//!   that stopped sending its body or reading its download).
//! - **Connection cap**: at most `max_connections` are served. At the cap, the connection idle
//!   the longest with no request in flight is closed to make room, so a flood of idle
//!   connections cannot lock out real clients (nor the readiness probe); only when every
//!   connection is busy is the new one refused. Both are logged, at most every 10 s.
//! - **Shutdown** stops accepting, lets in-flight requests finish (at most [`DRAIN_LIMIT`]),
//!   then closes what remains.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

/// How long shutdown waits for in-flight requests before closing their connections.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How long a connection asked to close gracefully may take before it is cut.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// What the registry knows of one connection.
struct Activity {
    /// Milliseconds since the registry's epoch of the last byte read or written.
    last: AtomicU64,
    /// Requests whose handler is running.
    busy: AtomicUsize,
    /// Set when the registry asked this connection to make room.
    evicting: AtomicBool,
    evict: Notify,
}

/// Every open connection, for the cap.
struct Registry {
    epoch: Instant,
    max: usize,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
    last_warning: Mutex<Option<Instant>>,
    /// Signalled whenever a connection closes (shutdown waits on it).
    closed: Notify,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn warn(&self, message: &str, open: usize) {
        let mut last = self.last_warning.lock();
        if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(open, max = self.max, "{message}");
        }
    }

    /// Admits a new connection, making room at the cap; `None` when every connection is busy.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut open = self.open.lock();
        let evicting = open
            .values()
            .filter(|a| a.evicting.load(Ordering::Relaxed))
            .count();
        if open.len() - evicting >= self.max {
            let victim = open
                .values()
                .filter(|a| {
                    a.busy.load(Ordering::Relaxed) == 0 && !a.evicting.load(Ordering::Relaxed)
                })
                .min_by_key(|a| a.last.load(Ordering::Relaxed));
            match victim {
                Some(v) => {
                    v.evicting.store(true, Ordering::Relaxed);
                    v.evict.notify_one();
                    self.warn(
                        "connection limit reached: closing the longest-idle connection to make room",
                        open.len(),
                    );
                }
                None => {
                    self.warn(
                        "connection limit reached and every connection is busy: refusing new connections",
                        open.len(),
                    );
                    return None;
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity {
            last: AtomicU64::new(self.now_ms()),
            busy: AtomicUsize::new(0),
            evicting: AtomicBool::new(false),
            evict: Notify::new(),
        });
        open.insert(id, activity.clone());
        Some(Slot {
            id,
            activity,
            registry: self.clone(),
        })
    }

    fn count(&self) -> usize {
        self.open.lock().len()
    }
}

/// A connection's place in the registry; leaving it (drop) frees the place.
struct Slot {
    id: u64,
    activity: Arc<Activity>,
    registry: Arc<Registry>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.open.lock().remove(&self.id);
        self.registry.closed.notify_waiters();
    }
}

/// A socket that records when it last moved a byte.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    epoch: Instant,
}

impl Watched {
    fn touch(&self) {
        self.activity
            .last
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `router` on `listener` under `limits` (over TLS when `tls` is given) until
/// `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<Arc<crate::tls::Tls>>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> io::Result<()> {
    let registry = Arc::new(Registry {
        epoch: Instant::now(),
        max: limits.max_connections.max(1),
        next_id: AtomicU64::new(0),
        open: Mutex::new(HashMap::new()),
        last_warning: Mutex::new(None),
        closed: Notify::new(),
    });
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors, usually: back off instead of spinning.
                        registry.warn(&format!("accepting a connection failed: {err}"), registry.count());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(slot) = registry.admit() else {
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let tls = tls.as_ref().map(|t| t.acceptor());
                tokio::spawn(connection(stream, peer, router.clone(), slot, limits, tls, stopped.clone()));
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let deadline = tokio::time::Instant::now() + DRAIN_LIMIT + CLOSE_GRACE;
    while registry.count() > 0 {
        let closed = registry.closed.notified();
        if registry.count() == 0 {
            break;
        }
        if tokio::time::timeout_at(deadline, closed).await.is_err() {
            tracing::warn!(
                open = registry.count(),
                "connections still open after the drain limit; closing them"
            );
            break;
        }
    }
    Ok(())
}

/// Serves one connection under the limits: the TLS handshake first when configured (bounded
/// by the header-read timeout), then HTTP/1.1 or HTTP/2.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the arguments are the connection's whole context"
)]
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    slot: Slot,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stopped: watch::Receiver<bool>,
) {
    let activity = slot.activity.clone();
    let epoch = slot.registry.epoch;
    let io = Watched {
        stream,
        activity: activity.clone(),
        epoch,
    };
    match tls {
        None => drive(io, peer, router, &slot, limits, stopped).await,
        Some(acceptor) => {
            match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(io)).await {
                Ok(Ok(tls_stream)) => drive(tls_stream, peer, router, &slot, limits, stopped).await,
                Ok(Err(err)) => tracing::debug!(error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
    drop(slot);
}

/// Serves HTTP on an established connection until it ends, is evicted, idles out or the
/// server stops.
async fn drive<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    slot: &Slot,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = slot.activity.clone();
    let epoch = slot.registry.epoch;
    let busy = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        let busy = busy.clone();
        busy.busy.fetch_add(1, Ordering::Relaxed);
        async move {
            let response = router.oneshot(request.map(axum::body::Body::new)).await;
            busy.busy.fetch_sub(1, Ordering::Relaxed);
            response
        }
    });
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let mut conn = pin!(builder.serve_connection(TokioIo::new(io), service));
    let mut closing_since: Option<Instant> = None;
    let mut grace = CLOSE_GRACE;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(err) = done {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                break;
            }
            () = activity.evict.notified(), if closing_since.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing_since = Some(Instant::now());
            }
            changed = stopped.changed(), if closing_since.is_none() => {
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                    closing_since = Some(Instant::now());
                    grace = DRAIN_LIMIT;
                }
            }
            _ = tick.tick() => {
                let idle_ms = Instant::now()
                    .duration_since(epoch)
                    .as_millis()
                    .saturating_sub(activity.last.load(Ordering::Relaxed) as u128);
                let idle = Duration::from_millis(idle_ms as u64);
                match closing_since {
                    Some(since) if since.elapsed() > grace => break,
                    Some(_) => {}
                    None if idle >= limits.idle_timeout => {
                        if activity.busy.load(Ordering::Relaxed) > 0 {
                            tracing::info!(idle_secs = idle.as_secs(), "closing a connection whose request stopped moving");
                            break;
                        }
                        conn.as_mut().graceful_shutdown();
                        closing_since = Some(Instant::now());
                    }
                    None => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(max: usize) -> Arc<Registry> {
        Arc::new(Registry {
            epoch: Instant::now(),
            max,
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            last_warning: Mutex::new(None),
            closed: Notify::new(),
        })
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let r = registry(2);
        let a = r.admit().unwrap();
        let b = r.admit().unwrap();
        a.activity.last.store(5, Ordering::Relaxed);
        b.activity.last.store(1, Ordering::Relaxed);
        let c = r.admit().expect("room is made");
        assert!(
            b.activity.evicting.load(Ordering::Relaxed),
            "b was idle longest"
        );
        assert!(!a.activity.evicting.load(Ordering::Relaxed));
        // Every other connection busy: refused.
        a.activity.busy.store(1, Ordering::Relaxed);
        c.activity.busy.store(1, Ordering::Relaxed);
        assert!(r.admit().is_none());
        drop(b);
        assert_eq!(r.count(), 2);
    }
}
