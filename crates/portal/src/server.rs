//! The HTTP/1.1 server loop of `qcert serve`: what one client may hold.
//!
//! - at most `max_connections` connections are served at once; the loop
//!   accepts only with a free slot, so further clients wait in the kernel's
//!   listen backlog (not accepted, not refused) until one closes;
//! - at most `max_per_client` of them from one client address: one more is
//!   closed as soon as it is accepted (0: no such cap, for a reverse proxy);
//! - a request's headers must be complete within `header_timeout` of the
//!   connection opening or the previous response (hyper's header timer,
//!   restarted for every request on a kept-alive connection), else the
//!   connection is cut;
//! - a request's body must arrive within the same time once its headers are
//!   in ([`BodyTimeout`], enforced where it is read: `extract::ApiBytes`),
//!   else 408 and the connection closes;
//! - a connection on which no byte moves for `idle_timeout` while no request
//!   is in a handler (kept alive, or opened and silent) is closed;
//! - each request carries `ConnectInfo<SocketAddr>` (the client address), as
//!   `into_make_service_with_connect_info::<SocketAddr>()` gives;
//! - on shutdown the listener closes, idle connections close, requests in
//!   progress finish (for at most [`SHUTDOWN_GRACE`]).
//!
//! A body announced (Content-Length) over the limit is refused by the
//! router's first layer (`http::refuse_announced_oversize`) before it is read.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

/// How long requests in progress may run on after shutdown began.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How long a request's body may take to arrive once its headers are in
/// (`http.header_timeout_secs`); a request extension the body extractors read.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// The limits (from `[http]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Connections one client address may hold (0: no cap).
    pub max_per_client: usize,
}

/// Serve `app` on `listener` until `shutdown` completes, then drain.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let per_client = PerClient::default();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    drop(slot);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let Some(held) = per_client.enter(peer.ip(), limits.max_per_client) else {
            // Over this client's share: closed at once (the slot is freed).
            tracing::debug!(%peer, "connection over the per-client cap closed");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection { app: app.clone(), builder: builder.clone(), limits, stop: stop_rx.clone() };
        tokio::spawn(async move {
            conn.run(stream, peer).await;
            drop(held);
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot: all slots back = all connections closed.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all)).await.is_err() {
        tracing::warn!("requests still in progress {} s after shutdown began; cut", SHUTDOWN_GRACE.as_secs());
    }
    Ok(())
}

/// Open connections by client address.
#[derive(Debug, Default, Clone)]
struct PerClient(Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>);

impl PerClient {
    /// Count a connection of `ip`, unless it holds `max` already (0: no cap).
    fn enter(&self, ip: std::net::IpAddr, max: usize) -> Option<ClientHeld> {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientHeld { clients: self.clone(), ip })
    }
}

/// One counted connection of a client.
struct ClientHeld {
    clients: PerClient,
    ip: std::net::IpAddr,
}

impl Drop for ClientHeld {
    fn drop(&mut self) {
        let mut map = self.clients.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

struct Connection {
    app: Router,
    builder: hyper::server::conn::http1::Builder,
    limits: Limits,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, peer: SocketAddr) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched { inner: stream, activity: activity.clone() });
        let app = TowerToHyperService::new(self.app);
        let in_handler = activity.clone();
        let header_timeout = self.limits.header_timeout;
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(BodyTimeout(header_timeout));
            let busy = Busy::enter(in_handler.clone());
            let answer = hyper::service::Service::call(&app, req);
            async move {
                let resp = answer.await;
                drop(busy);
                resp
            }
        });
        let conn = self.builder.serve_connection(io, service);
        tokio::pin!(conn);
        let idle = self.limits.idle_timeout;
        let mut stopping = *self.stop.borrow();
        if stopping {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %peer, "connection ended");
                    }
                    return;
                }
                () = activity.idle_for(idle) => {
                    tracing::debug!(%peer, "idle connection closed");
                    return;
                }
                changed = self.stop.changed(), if !stopping => {
                    stopping = true;
                    if changed.is_ok() {
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// When bytes last moved on a connection and how many requests are in a handler.
#[derive(Debug)]
struct Activity {
    start: Instant,
    /// Milliseconds after `start`.
    last: AtomicU64,
    in_handler: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity { start: Instant::now(), last: AtomicU64::new(0), in_handler: AtomicUsize::new(0) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.fetch_max(ms, Ordering::Relaxed);
    }

    /// Completes once the connection has been idle for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() < deadline {
                tokio::time::sleep_until(deadline).await;
                continue;
            }
            if self.in_handler.load(Ordering::Relaxed) > 0 {
                // A handler at work is not idleness (its end counts as activity).
                tokio::time::sleep(idle).await;
                continue;
            }
            return;
        }
    }
}

/// A request in a handler (counted until dropped).
struct Busy(Arc<Activity>);

impl Busy {
    fn enter(activity: Arc<Activity>) -> Busy {
        activity.in_handler.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_handler.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The socket, noting each read or write that moved bytes.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
