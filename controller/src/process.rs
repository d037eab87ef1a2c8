//! Child `arena` processes (the benchmark's and the demo's): started, waited for, killed on
//! drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::error::ControllerError;

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

/// Starts `arena ARGS` with extra environment and returns it with the rest of its stderr line
/// starting with `marker`. With `echo`, its stderr is passed on to ours.
pub fn spawn(
    arena: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    marker: &str,
    echo: bool,
) -> Result<(ChildProc, String), ControllerError> {
    let mut child = Command::new(arena)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| ControllerError::Server("no stderr".into()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.to_string();
    std::thread::spawn(move || {
        let mut tail = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(&marker) {
                let _ = tx.send(Ok(rest.trim().to_string()));
            }
            if echo {
                eprintln!("{line}");
            } else if tail.len() < 20 {
                tail.push(line);
            }
        }
        // The process ended without the marker: hand its last words to the waiter.
        let _ = tx.send(Err(tail.join("\n")));
    });
    let child = ChildProc { child };
    match rx.recv_timeout(Duration::from_secs(300)) {
        Ok(Ok(rest)) => Ok((child, rest)),
        Ok(Err(log)) => Err(ControllerError::Server(format!(
            "{} {} exited before it was ready{}{log}",
            arena.display(),
            args.first().unwrap_or(&""),
            if log.is_empty() { "" } else { ":\n" }
        ))),
        Err(_) => Err(ControllerError::Server(format!(
            "{} {args:?} did not start in time",
            arena.display()
        ))),
    }
}
