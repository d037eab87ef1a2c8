//! Child `arena` processes (the benchmark's and the demo's): started, waited for until they
//! print their ready line, killed on drop.
//!
//! [`start_until_ready`] is the one start-and-wait-for-the-ready-line routine: [`spawn`] builds
//! on it here, and the end-to-end tests' process helpers build on it too.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::LaunchError;

/// A child process, killed when dropped.
pub struct ChildProc {
    child: Child,
}

impl ChildProc {
    /// Whether it has exited, with its status.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why a started process is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// Its stderr closed (it exited) before it printed the ready line.
    Exited,
    /// It printed no ready line in time.
    TimedOut,
}

/// A process [`start_until_ready`] started, with what became of the wait.
pub struct Started {
    /// The process, running unless `ready` says it exited. Nothing kills it on drop: the
    /// caller wraps it in its own guard.
    pub child: Child,
    /// The rest of its ready line, trimmed, or why there is none.
    pub ready: Result<String, NotReady>,
    /// Gets a message, or disconnects, once every stderr line went to `on_line`: a process
    /// that exited may still have lines in the pipe.
    pub stderr_done: std::sync::mpsc::Receiver<()>,
}

/// Starts `cmd` with stdin and stdout closed and stderr piped, hands each stderr line to
/// `on_line` (on a thread of its own, for as long as the process writes), and waits up to
/// `timeout` for a line starting with `marker`. Fails only when the process cannot be started.
pub fn start_until_ready(
    cmd: &mut Command,
    marker: &str,
    timeout: Duration,
    mut on_line: impl FnMut(&str) + Send + 'static,
) -> std::io::Result<Started> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, stderr_done) = std::sync::mpsc::channel();
    let marker = marker.to_string();
    let ready = match child.stderr.take() {
        Some(stderr) => {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(rest) = line.strip_prefix(&marker) {
                        let _ = tx.send(Some(rest.trim().to_string()));
                    }
                    on_line(&line);
                }
                // The process ended without the marker.
                let _ = tx.send(None);
                let _ = done_tx.send(());
            });
            match rx.recv_timeout(timeout) {
                Ok(Some(rest)) => Ok(rest),
                Ok(None) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    Err(NotReady::Exited)
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(NotReady::TimedOut),
            }
        }
        None => Err(NotReady::Exited),
    };
    Ok(Started {
        child,
        ready,
        stderr_done,
    })
}

/// The value of `KEY=VALUE` among the words of a ready line (`key` with its `=`), e.g. the
/// gRPC address in `http=127.0.0.1:8080 grpc=127.0.0.1:21001`.
pub fn field<'a>(rest: &'a str, key: &str) -> Option<&'a str> {
    rest.split_whitespace().find_map(|p| p.strip_prefix(key))
}

/// Starts `arena ARGS` with extra environment and returns it with the rest of its stderr line
/// starting with `marker`. With `echo`, its stderr is passed on to ours.
pub fn spawn(
    arena: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    marker: &str,
    echo: bool,
) -> Result<(ChildProc, String), LaunchError> {
    // Its first lines, kept for the error when it exits before it is ready.
    let tail = Arc::new(Mutex::new(Vec::new()));
    let kept = tail.clone();
    let started = start_until_ready(
        Command::new(arena).args(args).envs(envs.iter().copied()),
        marker,
        Duration::from_secs(300),
        move |line| {
            if echo {
                eprintln!("{line}");
            } else {
                let mut tail = kept.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() < 20 {
                    tail.push(line.to_string());
                }
            }
        },
    )?;
    let child = ChildProc {
        child: started.child,
    };
    match started.ready {
        Ok(rest) => Ok((child, rest)),
        Err(NotReady::Exited) => {
            let log = tail.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
            Err(LaunchError::Server(format!(
                "{} {} exited before it was ready{}{log}",
                arena.display(),
                args.first().unwrap_or(&""),
                if log.is_empty() { "" } else { ":\n" }
            )))
        }
        Err(NotReady::TimedOut) => Err(LaunchError::Server(format!(
            "{} {args:?} did not start in time",
            arena.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_a_ready_line() {
        let rest = "http=127.0.0.1:8080 grpc=127.0.0.1:21001";
        assert_eq!(field(rest, "grpc="), Some("127.0.0.1:21001"));
        assert_eq!(field(rest, "http="), Some("127.0.0.1:8080"));
        assert_eq!(field(rest, "redis="), None);
    }

    #[test]
    fn a_process_is_ready_when_it_prints_the_marker() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut started = start_until_ready(
            Command::new("sh").args([
                "-c",
                "echo starting >&2; echo 'ready at  x:1 ' >&2; exec sleep 5",
            ]),
            "ready at",
            Duration::from_secs(10),
            move |line| {
                let _ = tx.send(line.to_string());
            },
        )
        .unwrap();
        assert_eq!(started.ready, Ok("x:1".to_string()));
        let _ = started.child.kill();
        let _ = started.child.wait();
        let seen: Vec<String> = rx.iter().collect();
        assert_eq!(seen, ["starting", "ready at  x:1 "]);
    }

    #[test]
    fn exits_and_silences_are_told_apart() {
        let exited = start_until_ready(
            Command::new("sh").args(["-c", "echo bye >&2"]),
            "ready",
            Duration::from_secs(10),
            |_| {},
        )
        .unwrap();
        assert_eq!(exited.ready, Err(NotReady::Exited));
        let mut silent = start_until_ready(
            Command::new("sleep").arg("5"),
            "ready",
            Duration::from_millis(100),
            |_| {},
        )
        .unwrap();
        assert_eq!(silent.ready, Err(NotReady::TimedOut));
        let _ = silent.child.kill();
        let _ = silent.child.wait();
    }

    #[test]
    fn a_part_that_dies_is_reported_with_its_first_lines() {
        let err = match spawn(
            Path::new("sh"),
            &["-c", "echo one >&2; echo two >&2; exit 3"],
            &[],
            "ready",
            false,
        ) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("sh printed no ready line"),
        };
        assert_eq!(
            err,
            "server error: sh -c exited before it was ready:\none\ntwo"
        );
        let missing = spawn(Path::new("/nonexistent/arena"), &[], &[], "ready", false);
        assert!(matches!(missing, Err(LaunchError::Io(_))));
    }
}
