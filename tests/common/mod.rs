//! Helpers for end-to-end tests: real `arena` processes on free ports, tiny models on disk,
//! and a small in-test gRPC controller.
#![allow(dead_code, unused_macros)]

/// Runs an async test body once per store backend.
macro_rules! on_both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$body("sqlite").await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$body("postgres").await;
            }
        }
    };
}

pub mod arena;
pub mod browser;
pub mod controller;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arena_proto::v1::worker_client::WorkerClient;
use tonic::transport::Channel;

/// The `arena` binary under test.
pub fn arena() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_arena"));
    c.env("ARENA_LOG", "info");
    c
}

/// A running `arena` process, killed on drop.
pub struct Proc {
    child: Child,
    log: Arc<Mutex<String>>,
    /// The gRPC address it listens on.
    pub addr: SocketAddr,
}

impl Proc {
    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits for exit, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A gRPC client for its worker service.
    pub async fn client(&self) -> WorkerClient<Channel> {
        WorkerClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Kills a child started in its own process group together with everything it started (the
/// demo's controller and workers, Chromium under chromedriver), then reaps it.
pub fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts `arena worker` on a free port with extra `args` and waits until it listens.
pub fn spawn_worker(args: &[&str]) -> Proc {
    let mut cmd = arena();
    cmd.arg("worker")
        .args(["--listen", "127.0.0.1:0"])
        .args(args);
    let (proc, _) = spawn_until(cmd, "arena worker listening on ", Duration::from_secs(120));
    proc
}

/// Starts a process and waits for a stderr line starting with `marker`; returns the rest of it.
pub fn spawn_until(mut cmd: Command, marker: &str, timeout: Duration) -> (Proc, String) {
    // Its own process group, so that dropping it also stops whatever it started.
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start arena");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted = marker.to_string();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(&wanted) {
                let _ = tx.send(rest.trim().to_string());
            }
            let mut l = sink.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    match rx.recv_timeout(timeout) {
        Ok(rest) => {
            let addr = rest
                .parse()
                .unwrap_or_else(|_| "0.0.0.0:0".parse().unwrap());
            (Proc { child, log, addr }, rest)
        }
        Err(_) => {
            kill_group(&mut child);
            panic!(
                "process did not print '{marker}' in time; log:\n{}",
                log.lock().unwrap()
            );
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes the tiny byte-level GGUF model into `dir`.
pub fn tiny_gguf(dir: &Path) -> PathBuf {
    let path = dir.join("tiny-chat.gguf");
    arena_worker::tiny::write_tiny_gguf(&path, arena_worker::tiny::VocabKind::Gpt2, 5).unwrap();
    path
}

/// The SmolLM2 GGUF that `scripts/fetch-models.sh` fetches; tests that need it fail with a
/// clear message when it is missing.
pub fn smollm2() -> PathBuf {
    let dir = std::env::var_os("ARENA_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/arena/models")
        });
    let path = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models.sh (scripts/test.sh does it)",
        path.display()
    );
    path
}

/// Runs `arena ARGS`, asserts it succeeded, and returns its stdout.
pub fn arena_ok(args: &[&str]) -> String {
    String::from_utf8(output_ok(arena().args(args)).stdout).unwrap()
}

/// Runs `cmd`, asserts it succeeded, and returns what it printed.
pub fn output_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `arena ARGS`, asserts it failed and said `needle` on stderr, and returns its stderr.
pub fn arena_fails(args: &[&str], needle: &str) -> String {
    let out = arena().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "arena {args:?} succeeded");
    assert!(
        stderr.contains(needle),
        "arena {args:?}: no '{needle}' in:\n{stderr}"
    );
    stderr
}

/// A greedy chat request with one user message.
pub fn chat_request(text: &str, max_new_tokens: u32) -> arena_proto::v1::GenerateRequest {
    use arena_proto::v1::{generate_request, ChatMessage, Messages, SamplingParams};
    arena_proto::v1::GenerateRequest {
        input: Some(generate_request::Input::Chat(Messages {
            messages: vec![ChatMessage {
                role: "user".into(),
                content: text.into(),
            }],
        })),
        params: Some(SamplingParams {
            temperature: Some(0.0),
            max_new_tokens: Some(max_new_tokens),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Streams a generation to its end: the whole text and the last message.
pub async fn collect(
    client: &mut WorkerClient<Channel>,
    req: arena_proto::v1::GenerateRequest,
) -> (String, arena_proto::v1::GenerateResponse) {
    use tokio_stream::StreamExt;
    let mut s = client.generate(req).await.unwrap().into_inner();
    let mut text = String::new();
    let mut last = None;
    while let Some(m) = s.next().await {
        let m = m.unwrap();
        text.push_str(&m.text);
        last = Some(m);
    }
    (text, last.expect("an empty stream"))
}

/// A running `arena controller` and its URLs.
pub struct Controller {
    /// The process.
    pub proc: Proc,
    /// `http://ADDR` of the HTTP APIs.
    pub http: String,
    /// `http://ADDR` workers register with.
    pub grpc: String,
}

/// `arena controller` on free ports, ready for more arguments.
pub fn controller_command() -> Command {
    let mut cmd = arena();
    // Each controller gets a store of its own unless the test passes --database-url.
    cmd.env("DATABASE_URL", scratch_sqlite_url());
    cmd.args([
        "controller",
        "--http-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
    ]);
    cmd
}

/// Starts a controller command and waits until it listens.
pub fn start_controller(cmd: Command) -> Controller {
    let (proc, rest) = spawn_until(
        cmd,
        "arena controller listening on ",
        Duration::from_secs(30),
    );
    let url = |key: &str| {
        rest.split_whitespace()
            .find_map(|p| p.strip_prefix(key))
            .map(|a| format!("http://{a}"))
            .unwrap_or_else(|| panic!("no {key} in '{rest}'"))
    };
    let (http, grpc) = (url("http="), url("grpc="));
    Controller { proc, http, grpc }
}

/// Starts `arena controller` on free ports (fast heartbeats, 1.5 s expiry) with extra `args`.
pub fn spawn_controller(args: &[&str]) -> Controller {
    let mut cmd = controller_command();
    cmd.args(["--heartbeat-ms", "200", "--worker-expiry-ms", "1500"])
        .args(args);
    start_controller(cmd)
}

/// Waits until the controller lists `n` workers.
pub async fn wait_workers(c: &Controller, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: serde_json::Value = reqwest::get(format!("{}/api/workers", c.http))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let have = v["workers"].as_array().map_or(0, Vec::len);
        if have == n {
            return;
        }
        assert!(Instant::now() < deadline, "expected {n} workers, have {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POSTs a chat completion to a controller; returns the status and the body text.
pub async fn post_chat(http: &str, body: &serde_json::Value) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{http}/v1/chat/completions"))
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Starts `arena worker` for `model`, registering with the controller at `grpc`.
pub fn spawn_registered_worker(model: &Path, grpc: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--model",
        model.to_str().expect("utf-8 model path"),
        "--controller",
        grpc,
    ];
    args.extend_from_slice(extra);
    spawn_worker(&args)
}

/// A fresh SQLite URL under cargo's temp dir for integration tests.
pub fn scratch_sqlite_url() -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("arena-db");
    std::fs::create_dir_all(&dir).unwrap();
    format!(
        "sqlite://{}",
        dir.join(format!("{:016x}.db", rand_u64())).display()
    )
}

/// A random number from the clock and a counter (no rand dependency in tests).
pub fn rand_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    t ^ (u64::from(std::process::id()) << 32)
        ^ N.fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
