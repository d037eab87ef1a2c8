//! Processes started by tests: each in its own process group, killed with everything it
//! started when its handle drops (also when the test panics), so no test leaves a process
//! behind (`scripts/test.sh` fails if one does).

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arena_launch::process::start_until_ready;
use arena_proto::v1::worker_client::WorkerClient;
use tonic::transport::Channel;

/// A running process, killed with its process group on drop.
pub struct Proc {
    child: Child,
    log: Arc<Mutex<String>>,
    /// Signals (or disconnects) once the whole stderr is in `log`.
    stderr_done: std::sync::mpsc::Receiver<()>,
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

    /// Waits for exit, at most `timeout`; then [`Proc::log`] holds all it wrote (its last
    /// lines may still be in the pipe when it exits).
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // Bounded: a process it started may hold the pipe open after it exits.
                let _ = self.stderr_done.recv_timeout(Duration::from_secs(5));
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

/// Starts a process and waits for a stderr line starting with `marker` (one of the
/// `READY_LINE`s); returns the rest of it. The waiting is `arena_launch`'s, the launcher's
/// own; here the process gets a process group of its own, so that dropping it also stops
/// whatever it started, and its whole stderr is kept for [`Proc::log`].
pub fn spawn_until(mut cmd: Command, marker: &str, timeout: Duration) -> (Proc, String) {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let started = start_until_ready(cmd.process_group(0), marker, timeout, move |line| {
        let mut l = sink.lock().unwrap();
        l.push_str(line);
        l.push('\n');
    })
    .expect("start arena");
    let mut child = started.child;
    let stderr_done = started.stderr_done;
    match started.ready {
        Ok(rest) => {
            let addr = rest
                .parse()
                .unwrap_or_else(|_| "0.0.0.0:0".parse().unwrap());
            (
                Proc {
                    child,
                    log,
                    stderr_done,
                    addr,
                },
                rest,
            )
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

/// A random number (for names and ports that must not collide between tests).
pub fn rand_u64() -> u64 {
    rand::random()
}
