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
mod tests {
    use super::*;
    use axum::routing::get;

    fn limits(max: usize, per_client: usize) -> ServerLimits {
        ServerLimits {
            header_read_timeout: Duration::from_millis(500),
            max_connections: max,
            max_connections_per_client: per_client,
        }
    }

    #[test]
    fn the_gate_counts_overall_and_per_client_and_forgets_closed_connections() {
        let gate = Arc::new(Gate::new(limits(3, 2)));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = gate.admit(a).unwrap();
        let _a2 = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).err(), Some(Refusal::ClientFull));
        let _b1 = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).err(), Some(Refusal::Full));
        drop(a1);
        let _a3 = gate.admit(a).expect("a closed connection frees its place");
        assert_eq!(gate.counts().total, 3);
        drop(_a3);
        assert_eq!(gate.counts().total, 2);
        assert_eq!(gate.counts().per_client.get(&a), Some(&1));
    }

    #[test]
    fn without_a_per_client_cap_only_the_total_counts() {
        let gate = Arc::new(Gate::new(limits(2, 0)));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let _t = (gate.admit(a).unwrap(), gate.admit(a).unwrap());
        assert_eq!(gate.admit(a).err(), Some(Refusal::Full));
        assert!(gate.counts().per_client.is_empty());
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
    }

    #[test]
    fn refusals_are_whole_http_answers() {
        let a = Refusal::ClientFull.answer();
        assert!(a.starts_with("HTTP/1.1 429 Too Many Requests\r\n"), "{a}");
        let (head, body) = a.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "too_many_connections_from_client");
        assert!(Refusal::Full.answer().starts_with("HTTP/1.1 503 "));
    }

    #[test]
    fn the_cap_leaves_room_below_the_open_file_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_open_files(limits), Some(1024));
        assert_eq!(
            parse_open_files("Max open files  unlimited  unlimited  files"),
            None
        );
        assert_eq!(capped_by_open_files(4096, Some(1024)), 512);
        assert_eq!(capped_by_open_files(4096, Some(100)), 50);
        assert_eq!(capped_by_open_files(64, Some(1024)), 64);
        assert_eq!(capped_by_open_files(4096, None), 4096);
    }

    /// A server on a free loopback port with `limits`; returns its address and a sender that
    /// shuts it down, and the task serving.
    async fn server(
        limits: ServerLimits,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<io::Result<()>>,
    ) {
        let router = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route(
                "/ip",
                get(|ConnectInfo(a): ConnectInfo<SocketAddr>| async move { a.ip().to_string() }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, router, limits, async {
            let _ = rx.await;
        }));
        (addr, tx, task)
    }

    /// Connects from `from` (any loopback address: Linux routes 127/8 locally).
    async fn connect(addr: SocketAddr, from: &str) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket.connect(addr).await.unwrap()
    }

    /// Everything the server sends until it closes, within 10 s (the timeouts under test
    /// are far shorter; a missing one waits forever).
    async fn read_to_close(tcp: &mut TcpStream) -> String {
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out));
        match read.await.expect("the server kept the connection open") {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("{e}"),
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    async fn request(tcp: &mut TcpStream, path: &str) -> String {
        let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        read_to_close(tcp).await
    }

    #[tokio::test]
    async fn handlers_see_the_client_address() {
        let (addr, _stop, _task) = server(limits(16, 4)).await;
        let answer = request(&mut connect(addr, "127.0.0.1").await, "/ip").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("127.0.0.1"), "{answer}");
    }

    #[tokio::test]
    async fn stalled_clients_get_429_past_their_cap_and_others_are_served() {
        let (addr, _stop, _task) = server(ServerLimits {
            header_read_timeout: Duration::from_secs(60),
            ..limits(16, 3)
        })
        .await;
        let mut stalled = Vec::new();
        for _ in 0..3 {
            let mut tcp = connect(addr, "127.0.0.1").await;
            tcp.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
                .await
                .unwrap();
            stalled.push(tcp);
        }
        let answer = request(&mut connect(addr, "127.0.0.1").await, "/health").await;
        assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
        let answer = request(&mut connect(addr, "127.0.0.2").await, "/health").await;
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        // Their places come back when they leave.
        drop(stalled);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let answer = request(&mut connect(addr, "127.0.0.1").await, "/health").await;
            if answer.starts_with("HTTP/1.1 200 ") {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{answer}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn past_the_total_cap_connections_get_503() {
        let (addr, _stop, _task) = server(limits(2, 0)).await;
        let _held = (
            connect(addr, "127.0.0.1").await,
            connect(addr, "127.0.0.2").await,
        );
        let answer = request(&mut connect(addr, "127.0.0.3").await, "/health").await;
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    }

    #[tokio::test]
    async fn slow_headers_and_idle_keep_alive_connections_are_closed() {
        let (addr, _stop, _task) = server(limits(16, 4)).await;
        // Headers a byte at a time, never finished: closed though bytes keep coming.
        let mut slow = connect(addr, "127.0.0.1").await;
        let head = b"GET /health HTTP/1.1\r\nhost: x\r\nx-slow: ";
        let trickle = async {
            for b in head.iter().chain(std::iter::repeat(&b'a')) {
                if slow.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), trickle)
            .await
            .expect("a client sending headers slowly kept its connection");
        // A kept-alive connection, idle after its answer.
        let mut idle = connect(addr, "127.0.0.1").await;
        idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = read_to_close(&mut idle).await;
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    }

    #[tokio::test]
    async fn shutdown_finishes_once_connections_close() {
        let (addr, stop, task) = server(limits(16, 4)).await;
        let mut idle = connect(addr, "127.0.0.1").await;
        idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = idle.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 "));
        stop.send(()).unwrap();
        let done = tokio::time::timeout(Duration::from_secs(10), task).await;
        done.expect("serve did not return").unwrap().unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "still accepting"
        );
    }
}
