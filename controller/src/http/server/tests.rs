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
