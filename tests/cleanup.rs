//! A test's processes die with it: dropping a started process kills everything it started
//! too, as `scripts/test.sh` requires (it fails on any process a test leaves behind).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

/// Whether `pid` is still a live process (a zombie waiting to be reaped counts as gone).
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: "123 (sleep) S ...".
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn dropping_a_process_kills_its_children_too() {
    // A parent that starts a child of its own and says the child's pid as its ready line.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "sleep 600 & echo \"ready $!\" >&2; wait"]);
    let (parent, child) = common::spawn_until(cmd, "ready ", Duration::from_secs(10));
    assert!(alive(&child), "the child {child} did not start");
    drop(parent);
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(&child) {
        assert!(
            Instant::now() < deadline,
            "the child {child} outlived its parent's handle"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
