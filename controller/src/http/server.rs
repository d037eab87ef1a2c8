//! An HTTP listener fit for a public port, driven by hand because `axum::serve` has no such
//! knobs: a header-read timeout (hyper also applies it to a keep-alive connection waiting for
//! its next request, so it is the idle timeout too), a cap on open connections overall (503)
//! and per client address (429), each refusal a short answer and a close rather than
//! silence, TCP_NODELAY, and a graceful shutdown. Every HTTP listener of the controller uses
//! [`serve`].
//!
//! HTTP/1.1 only: hyper's protocol detection for HTTP/2 reads the connection's first bytes
//! without any timeout, so a client sending one byte would hold a connection forever. The
//! SSE streams need nothing more; a TLS proxy in front can speak HTTP/2 to browsers.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arena_ratings::clock::unix_ms;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_service::Service;

pub use crate::config::ServerLimits;

/// Refused connections being answered at once, at most: past that a refused connection is
/// closed without a word, so that a flood cannot make the answers hold every descriptor.
const MAX_REFUSING: usize = 256;
/// How long a refused connection may take to read its answer before it is closed.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// Pause after a failed accept (out of file descriptors): the backlog waits, the loop does
/// not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// File descriptors kept out of the connection cap for everything else: the store, workers,
/// Redis, the refusals' answers.
const FD_RESERVE: usize = 512;

/// Serves `router` on `listener` within `limits` until `shutdown` resolves; then stops
/// accepting, lets running requests finish and returns once every connection has closed
/// (callers bound that wait). Handlers see the client as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let limits = ServerLimits {
        max_connections: capped_by_open_files(limits.max_connections, open_file_limit()),
        ..limits
    };
    let gate = Arc::new(Gate::new(limits));
    let refusing = Arc::new(AtomicUsize::new(0));
    // Every connection holds a receiver: `closed()` tells when the last one is gone.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!("accepting an HTTP connection failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // SSE writes are small: without TCP_NODELAY, Nagle's algorithm and the client's
        // delayed ACK hold each token back by up to 40 ms.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY: {e}");
        }
        match gate.admit(peer.ip()) {
            Ok(ticket) => {
                let conn = Connection {
                    router: router.clone(),
                    peer,
                    header_read_timeout: limits.header_read_timeout,
                    _ticket: ticket,
                };
                tokio::spawn(conn.run(tcp, stop_rx.clone()));
            }
            Err(refusal) => refuse(tcp, peer, refusal, &refusing, &gate.last_warning),
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
    Ok(())
}

/// Errors of one connection that leave the listener fine.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One admitted connection.
struct Connection {
    router: Router,
    peer: SocketAddr,
    header_read_timeout: Duration,
    /// Counts the connection against the caps until it closes.
    _ticket: Ticket,
}

impl Connection {
    async fn run(self, tcp: TcpStream, mut stop: tokio::sync::watch::Receiver<bool>) {
        let (router, peer) = (self.router, self.peer);
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            // What `into_make_service_with_connect_info` gives handlers: the client address.
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(req)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(tcp), service);
        tokio::pin!(conn);
        let mut stopping = false;
        loop {
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(e) = done {
                        tracing::debug!(client = %peer, "HTTP connection ended: {e}");
                    }
                    break;
                }
                _ = stop.wait_for(|stop| *stop), if !stopping => {
                    // Finishes the running request, then closes; an idle one closes now.
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Why a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The listener holds its most connections: 503.
    Full,
    /// This client holds its most connections: 429.
    ClientFull,
}

impl Refusal {
    /// The whole answer: status line, headers and an OpenAI-shaped error body.
    fn answer(self) -> String {
        let (status, code, message) = match self {
            Self::Full => (
                "503 Service Unavailable",
                "too_many_connections",
                "the server has too many open connections: try again shortly",
            ),
            Self::ClientFull => (
                "429 Too Many Requests",
                "too_many_connections_from_client",
                "too many open connections from this client: close some and try again",
            ),
        };
        let body = serde_json::json!({"error": {
            "message": message, "type": "rate_limit_error", "param": null, "code": code,
        }})
        .to_string();
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }
}

/// Answers a refused connection and closes it, without holding it long.
fn refuse(
    tcp: TcpStream,
    peer: SocketAddr,
    why: Refusal,
    refusing: &Arc<AtomicUsize>,
    last_warning: &AtomicU64,
) {
    // At most one line every 10 s: a flood must not flood the log too.
    let now = unix_ms();
    let last = last_warning.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 10_000
        && last_warning
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(client = %peer, "refusing HTTP connections: {why:?} (logged at most every 10 s)");
    }
    if refusing.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let refusing = refusing.clone();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_LINGER, answer(tcp, why)).await;
        refusing.fetch_sub(1, Ordering::Relaxed);
    });
}

async fn answer(mut tcp: TcpStream, why: Refusal) -> io::Result<()> {
    tcp.write_all(why.answer().as_bytes()).await?;
    tcp.shutdown().await?;
    // Reads what the client sent until it closes: closing with unread bytes would send a
    // reset, which can destroy the answer before the client reads it.
    let mut buf = [0u8; 1024];
    while tcp.read(&mut buf).await? > 0 {}
    Ok(())
}

/// Counts open connections, overall and per client.
struct Gate {
    limits: ServerLimits,
    counts: Mutex<Counts>,
    /// Unix ms of the last refusal logged.
    last_warning: AtomicU64,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

impl Gate {
    fn new(limits: ServerLimits) -> Self {
        Self {
            limits,
            counts: Mutex::default(),
            last_warning: AtomicU64::new(0),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A ticket for a connection from `ip`, or why there is none.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let client = client_key(ip);
        let mut counts = self.counts();
        if counts.total >= self.limits.max_connections {
            return Err(Refusal::Full);
        }
        let per_client = self.limits.max_connections_per_client;
        if per_client > 0 {
            let n = counts.per_client.entry(client).or_default();
            if *n >= per_client {
                return Err(Refusal::ClientFull);
            }
            *n += 1;
        }
        counts.total += 1;
        Ok(Ticket {
            gate: self.clone(),
            client: (per_client > 0).then_some(client),
        })
    }
}

/// One open connection, counted until dropped.
struct Ticket {
    gate: Arc<Gate>,
    /// The client it counts against, when clients are counted.
    client: Option<IpAddr>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.gate.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(client) = self.client {
            if let Some(n) = counts.per_client.get_mut(&client) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.per_client.remove(&client);
                }
            }
        }
    }
}

/// What counts as one client: an IPv4 address, or an IPv6 /64 (one host usually holds a
/// whole /64, and would otherwise get 2^64 allowances).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The process's soft limit on open files (Linux), when known.
fn open_file_limit() -> Option<usize> {
    parse_open_files(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// The soft "Max open files" of a `/proc/self/limits` text (None when unlimited).
fn parse_open_files(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The connection cap, lowered (with a warning) so that the open-file limit leaves room for
/// answering refusals and for everything else: a cap above it would not protect anything.
fn capped_by_open_files(cap: usize, open_files: Option<usize>) -> usize {
    let Some(open_files) = open_files else {
        return cap;
    };
    let usable = open_files
        .saturating_sub(FD_RESERVE.min(open_files / 2))
        .max(1);
    if cap > usable {
        tracing::warn!(
            "HTTP connection cap lowered from {cap} to {usable}: the open-file limit is {open_files} (raise it with `ulimit -n`)"
        );
        usable
    } else {
        cap
    }
}

#[cfg(test)]
mod tests;
