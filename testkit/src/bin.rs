//! The `arena` binary under test, and the controllers and workers it runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use arena_launch::process::field;

use crate::process::{output_ok, spawn_until, Proc};

/// The `arena` binary and a scratch folder, as cargo gives them to the root package's tests:
/// `Bin::new(env!("CARGO_BIN_EXE_arena"), env!("CARGO_TARGET_TMPDIR"))`.
#[derive(Debug, Clone)]
pub struct Bin {
    exe: PathBuf,
    tmp: PathBuf,
}

/// A running `arena controller` and its URLs.
pub struct Controller {
    /// The process.
    pub proc: Proc,
    /// `http://ADDR` of the HTTP APIs.
    pub http: String,
    /// `http://ADDR` workers register with.
    pub grpc: String,
    /// `http://ADDR` of the ops endpoints (`/api/workers`, `/metrics`).
    pub ops: String,
}

impl Bin {
    /// The binary at `exe`; controllers keep their stores under `tmp`.
    pub fn new(exe: impl Into<PathBuf>, tmp: impl Into<PathBuf>) -> Self {
        Self {
            exe: exe.into(),
            tmp: tmp.into(),
        }
    }

    /// `arena` with `ARENA_LOG=info`, ready for arguments.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.exe);
        c.env("ARENA_LOG", "info");
        c
    }

    /// Runs `arena ARGS`, asserts it succeeded, and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        String::from_utf8(output_ok(self.command().args(args)).stdout).unwrap()
    }

    /// Runs `arena ARGS`, asserts it failed and said `needle` on stderr, and returns its
    /// stderr.
    pub fn fails(&self, args: &[&str], needle: &str) -> String {
        let out = self.command().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "arena {args:?} succeeded");
        assert!(
            stderr.contains(needle),
            "arena {args:?}: no '{needle}' in:\n{stderr}"
        );
        stderr
    }

    /// Starts `arena worker` on a free port with extra `args` and waits until it listens.
    pub fn spawn_worker(&self, args: &[&str]) -> Proc {
        let mut cmd = self.command();
        cmd.arg("worker")
            .args(["--listen", "127.0.0.1:0"])
            .args(args);
        let (proc, _) = spawn_until(cmd, arena_worker::READY_LINE, Duration::from_secs(120));
        proc
    }

    /// Starts `arena worker` for `model`, registering with the controller at `grpc`.
    pub fn spawn_registered_worker(&self, model: &Path, grpc: &str, extra: &[&str]) -> Proc {
        let mut args = vec![
            "--model",
            model.to_str().expect("utf-8 model path"),
            "--controller",
            grpc,
        ];
        args.extend_from_slice(extra);
        self.spawn_worker(&args)
    }

    /// `arena controller` on free ports, ready for more arguments.
    pub fn controller_command(&self) -> Command {
        let mut cmd = self.command();
        // Each controller gets a store of its own unless the test passes --database-url.
        cmd.env("DATABASE_URL", crate::db::scratch_sqlite_url(&self.tmp));
        // Tests vote the moment the answers end, faster than any reader: the delay rule is
        // off unless a test passes --min-vote-delay-ms (tests/vote_signals.rs does).
        cmd.env("ARENA_MIN_VOTE_DELAY_MS", "0");
        cmd.args([
            "controller",
            "--http-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
            "--ops-addr",
            "127.0.0.1:0",
        ]);
        cmd
    }

    /// Starts `arena controller` on free ports (fast heartbeats, 1.5 s expiry) with extra
    /// `args`.
    pub fn spawn_controller(&self, args: &[&str]) -> Controller {
        let mut cmd = self.controller_command();
        cmd.args(["--heartbeat-ms", "200", "--worker-expiry-ms", "1500"])
            .args(args);
        start_controller(cmd)
    }
}

/// Starts a controller command and waits until it listens.
pub fn start_controller(cmd: Command) -> Controller {
    let (proc, rest) = spawn_until(cmd, arena_controller::READY_LINE, Duration::from_secs(30));
    let url = |key: &str| {
        field(&rest, key)
            .map(|a| format!("http://{a}"))
            .unwrap_or_else(|| panic!("no {key} in '{rest}'"))
    };
    let (http, grpc, ops) = (url("http="), url("grpc="), url("ops="));
    Controller {
        proc,
        http,
        grpc,
        ops,
    }
}

/// The workers the controller lists on its ops listener (`/api/workers`).
pub async fn workers(c: &Controller) -> Vec<serde_json::Value> {
    let v: serde_json::Value = reqwest::get(format!("{}/api/workers", c.ops))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["workers"].as_array().cloned().unwrap_or_default()
}

/// Waits until the controller lists `n` workers.
pub async fn wait_workers(c: &Controller, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let have = workers(c).await;
        if have.len() == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} workers, have {have:?}"
        );
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

/// Streams a generation from the worker at `addr` sending `token` as the worker token (a
/// worker started with `--worker-token` refuses calls without it): the whole text and the
/// last message.
pub async fn collect_with_token(
    addr: std::net::SocketAddr,
    token: &str,
    req: arena_proto::v1::GenerateRequest,
) -> (String, arena_proto::v1::GenerateResponse) {
    let mut client =
        arena_proto::v1::worker_client::WorkerClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
    let mut req = tonic::Request::new(req);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("an ASCII token"),
    );
    let mut stream = client.generate(req).await.unwrap().into_inner();
    let mut text = String::new();
    let mut last = None;
    while let Some(m) = stream.message().await.unwrap() {
        text.push_str(&m.text);
        last = Some(m);
    }
    (text, last.expect("an empty stream"))
}
