//! Timeouts and limits: a worker that accepts connections and never answers is failed over
//! and then skipped by its circuit breaker, a worker that stalls mid-answer ends the stream
//! with a clear error, and clients that hold connections half-sent neither exhaust the HTTP
//! port nor silence `/health`. Each bound below is many times the timeout under test, and
//! without the timeout the wait would be forever.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arena_proto::v1::controller_client::ControllerClient;
use arena_proto::v1::worker_server::{Worker, WorkerServer};
use arena_proto::v1::{
    CountTokensRequest, CountTokensResponse, GenerateRequest, GenerateResponse, HeartbeatRequest,
    InfoRequest, InfoResponse, RegisterRequest,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::common::{self, Controller};

/// The longest any single step may take here; the timeouts under test are 1 or 2 s (long
/// enough for the tiny model's tokens on a loaded machine).
const PATIENCE: Duration = Duration::from_secs(30);

/// `f`, which must finish within [`PATIENCE`].
async fn soon<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after {PATIENCE:?}"))
}

/// Aborts the task when dropped.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A fake worker registered with a controller, heartbeating (so it looks alive and healthy)
/// until dropped.
struct FakeWorker {
    _serving: Task,
    _heartbeats: Task,
}

impl FakeWorker {
    /// Registers a worker of `model` at `addr` with capacity `capacity` and keeps it alive.
    async fn register(
        c: &Controller,
        id: &str,
        addr: SocketAddr,
        model: &str,
        capacity: u32,
        serving: Task,
    ) -> Self {
        let register = RegisterRequest {
            worker_id: id.into(),
            address: format!("http://{addr}"),
            models: vec![model.into()],
            context_length: 2048,
            max_concurrency: capacity,
            token: String::new(),
        };
        let mut client = ControllerClient::connect(c.grpc.clone()).await.unwrap();
        client.register(register.clone()).await.unwrap();
        let heartbeats = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let beat = HeartbeatRequest {
                    worker_id: register.worker_id.clone(),
                    ..Default::default()
                };
                if let Ok(r) = client.heartbeat(beat).await {
                    if !r.into_inner().known {
                        let _ = client.register(register.clone()).await;
                    }
                }
            }
        });
        Self {
            _serving: serving,
            _heartbeats: Task(heartbeats),
        }
    }
}

/// A "worker" that accepts TCP connections and never answers a byte: the attack.
async fn hung_worker(c: &Controller, id: &str, model: &str, capacity: u32) -> FakeWorker {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    FakeWorker::register(c, id, addr, model, capacity, Task(serving)).await
}

/// Sets its flag when dropped: tells that the controller dropped the call.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A gRPC worker that sends one token, then nothing, forever.
struct Stalling {
    dropped: Arc<AtomicBool>,
}

type Messages = Pin<Box<dyn Stream<Item = Result<GenerateResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Worker for Stalling {
    type GenerateStream = Messages;

    async fn generate(&self, _: Request<GenerateRequest>) -> Result<Response<Messages>, Status> {
        let flag = DropFlag(self.dropped.clone());
        let first = GenerateResponse {
            text: "Hello".into(),
            ..Default::default()
        };
        let messages = tokio_stream::once(Ok(first))
            .chain(tokio_stream::pending())
            .map(move |m| {
                let _alive_while_streaming = &flag;
                m
            });
        Ok(Response::new(Box::pin(messages)))
    }

    async fn count_tokens(
        &self,
        _: Request<CountTokensRequest>,
    ) -> Result<Response<CountTokensResponse>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }

    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }
}

async fn stalling_worker(c: &Controller, model: &str, dropped: Arc<AtomicBool>) -> FakeWorker {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(WorkerServer::new(Stalling { dropped }))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    FakeWorker::register(c, "stalling", addr, model, 8, Task(serving)).await
}

fn chat(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 4,
        "temperature": 0,
    })
}

/// Posts a chat completion; returns the status and the body (JSON, or the SSE text).
async fn post(c: &Controller, body: &Value) -> (u16, String) {
    soon("a chat completion", common::post_chat(&c.http, body)).await
}

/// The worker `id` as `/api/workers` shows it.
async fn worker_view(c: &Controller, id: &str) -> Value {
    let listed = common::workers(c).await;
    listed
        .iter()
        .find(|w| w["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no worker {id} in {listed:?}"))
}

/// The value of the Prometheus counter `name` (0 when absent).
async fn counter(c: &Controller, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", c.ops))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn timeout_flags<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut flags = vec![
        "--first-token-timeout-ms",
        "2000",
        "--token-timeout-ms",
        "2000",
        "--breaker-cooldown-ms",
        "600000",
        "--breaker-max-cooldown-ms",
        "600000",
    ];
    flags.extend_from_slice(more);
    flags
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_worker_is_failed_over_then_skipped_by_its_circuit_breaker() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    // A lottery weighted by capacity sends almost every request to the hung worker first.
    let c = common::bin().spawn_controller(&timeout_flags(&["--dispatch", "lottery"]));
    let _good = common::bin().spawn_registered_worker(&model, &c.grpc, &["--name", "tiny-chat"]);
    let _hung = hung_worker(&c, "hung", "tiny-chat", 1000).await;
    common::wait_workers(&c, 2).await;

    // Every request is answered, by failing over after the first-token timeout; the third
    // timeout in a row opens the hung worker's breaker.
    soon("the breaker to open", async {
        while worker_view(&c, "hung").await["circuit"] != "open" {
            let (status, body) = post(&c, &chat("tiny-chat")).await;
            assert_eq!(status, 200, "{body}");
            // A failed worker is out of dispatch until its next heartbeat, 200 ms away.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await;
    let hung = worker_view(&c, "hung").await;
    assert_eq!(hung["healthy"], false, "{hung}");
    assert_eq!(counter(&c, "arena_worker_circuit_open_total").await, 1.0);
    let failures = counter(&c, "arena_dispatch_failures_total").await;
    assert!(failures >= 3.0, "{failures} dispatch failures");

    // Now requests go straight to the good worker: no more failures, though the hung worker
    // keeps heartbeating.
    for _ in 0..5 {
        let (status, body) = post(&c, &chat("tiny-chat")).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        counter(&c, "arena_dispatch_failures_total").await,
        failures,
        "a request was sent to the worker whose breaker is open"
    );
    assert_eq!(worker_view(&c, "hung").await["circuit"], "open");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_only_a_hung_worker_requests_fail_with_a_clear_error_not_a_hang() {
    let c = common::bin().spawn_controller(&timeout_flags(&["--breaker-failures", "2"]));
    let _hung = hung_worker(&c, "hung", "tiny-chat", 8).await;
    common::wait_workers(&c, 1).await;

    let (status, body) = post(&c, &chat("tiny-chat")).await;
    assert_eq!(status, 504, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("sent no first token within 2000 ms"),
        "{message}"
    );
    assert_eq!(v["error"]["code"], "worker_timeout");

    soon("the breaker to open", async {
        while worker_view(&c, "hung").await["circuit"] != "open" {
            // A failed worker is out of dispatch until its next heartbeat, 200 ms away.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (status, body) = post(&c, &chat("tiny-chat")).await;
            assert!(status == 504 || status == 503, "{status}: {body}");
        }
    })
    .await;
    // An open breaker: refused at once, saying why.
    let (status, body) = post(&c, &chat("tiny-chat")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("paused by the circuit breaker"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_stalling_after_its_first_token_ends_the_stream_with_an_error() {
    let c = common::bin().spawn_controller(&timeout_flags(&[]));
    let dropped = Arc::new(AtomicBool::new(false));
    let _w = stalling_worker(&c, "stall", dropped.clone()).await;
    common::wait_workers(&c, 1).await;

    let mut streamed = chat("stall");
    streamed["stream"] = json!(true);
    let (status, body) = post(&c, &streamed).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Hello"),
        "the first token was relayed: {body}"
    );
    assert!(
        body.contains("stopped sending tokens") && body.contains("token timeout"),
        "{body}"
    );
    // The controller dropped the call, which cancels the worker's sequence.
    soon("the call to be dropped", async {
        while !dropped.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    let (status, body) = post(&c, &chat("stall")).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("token timeout"), "{body}");
}

/// Connects to `addr` from the loopback address `from` (Linux routes all of 127/8 locally),
/// so that one test can be several clients.
async fn connect(addr: &str, from: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr.parse().unwrap()).await.unwrap()
}

/// Everything the server sends until it closes the connection.
async fn read_to_close(tcp: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = soon(
        "the server to close the connection",
        tcp.read_to_end(&mut out),
    )
    .await;
    if let Err(e) = read {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET /health` from `from` on a fresh connection: the whole answer.
async fn health(addr: &str, from: &str) -> String {
    let mut tcp = connect(addr, from).await;
    tcp.write_all(b"GET /health HTTP/1.1\r\nhost: arena\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    read_to_close(&mut tcp).await
}

/// Opens a connection from `from` that sends half a request and stalls.
async fn half_request(addr: &str, from: &str) -> TcpStream {
    let mut tcp = connect(addr, from).await;
    tcp.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: arena\r\n")
        .await
        .unwrap();
    tcp
}

fn addr_of(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_connections_from_one_client_get_429_and_health_still_answers() {
    let c = common::bin().spawn_controller(&[
        "--max-connections-per-client",
        "8",
        // Long enough that the stalled connections stay while the test runs.
        "--header-read-timeout-ms",
        "600000",
    ]);
    let addr = addr_of(&c.http);
    let mut stalled = Vec::new();
    for _ in 0..8 {
        stalled.push(half_request(&addr, "127.0.0.1").await);
    }
    // The flood goes on: every further connection of that client is refused, in words.
    for _ in 0..50 {
        let mut tcp = half_request(&addr, "127.0.0.1").await;
        let answer = read_to_close(&mut tcp).await;
        assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
        assert!(
            answer.contains("too many open connections from this client"),
            "{answer}"
        );
    }
    let answer = health(&addr, "127.0.0.2").await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    // The client's places come back as its connections close.
    drop(stalled);
    soon("the client's places to come back", async {
        while !health(&addr, "127.0.0.1")
            .await
            .starts_with("HTTP/1.1 200 ")
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_connection_cap_the_controller_answers_503() {
    let c = common::bin().spawn_controller(&[
        "--max-connections",
        "4",
        "--max-connections-per-client",
        "0",
        "--header-read-timeout-ms",
        "600000",
    ]);
    let addr = addr_of(&c.http);
    let mut held = Vec::new();
    for from in ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        held.push(half_request(&addr, from).await);
    }
    let answer = health(&addr, "127.0.0.5").await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    drop(held);
    soon("places to come back", async {
        while !health(&addr, "127.0.0.5")
            .await
            .starts_with("HTTP/1.1 200 ")
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_headers_and_idle_connections_are_closed_after_the_header_timeout() {
    let c = common::bin().spawn_controller(&["--header-read-timeout-ms", "1000"]);
    let addr = addr_of(&c.http);

    // Slowloris: headers a byte every 100 ms, never finished. Bytes keep coming, but the
    // whole header must arrive within the timeout.
    let mut slow = connect(&addr, "127.0.0.1").await;
    soon("the slow client to be cut off", async {
        let head = b"GET /health HTTP/1.1\r\nhost: arena\r\nx-slow: ";
        for b in head.iter().chain(std::iter::repeat(&b'a')) {
            if slow.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;

    // Connected, silent.
    let mut silent = connect(&addr, "127.0.0.1").await;
    read_to_close(&mut silent).await;

    // Kept alive after an answer, then idle.
    let mut idle = connect(&addr, "127.0.0.1").await;
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: arena\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}
