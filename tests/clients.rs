//! The official `openai` Python client and curl against a real controller and worker.
//!
//! `scripts/test.sh` installs the client (openai 1.12.0) into a virtualenv and sets
//! `ARENA_CLIENTS_PYTHON` to its interpreter.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

fn run_client(cmd: &mut Command, http: &str) {
    let out = cmd
        .env("ARENA_BASE_URL", format!("{http}/v1"))
        .env("ARENA_API_KEY", "sk-test")
        .env("ARENA_MODEL", "tiny-chat")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?} failed:\n{}\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_python_client_and_curl_work() {
    let python = std::env::var("ARENA_CLIENTS_PYTHON").expect(
        "ARENA_CLIENTS_PYTHON is not set: run scripts/test.sh, which installs the openai client",
    );
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let mut cmd = common::arena();
    cmd.args([
        "controller",
        "--http-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
        "--api-keys",
        "sk-test",
    ]);
    let (_controller, rest) = common::spawn_until(
        cmd,
        "arena controller listening on ",
        Duration::from_secs(30),
    );
    let addr = |key: &str| {
        rest.split_whitespace()
            .find_map(|p| p.strip_prefix(key))
            .map(|a| format!("http://{a}"))
            .unwrap()
    };
    let (http, grpc) = (addr("http="), addr("grpc="));
    let _worker =
        common::spawn_worker(&["--model", model.to_str().unwrap(), "--controller", &grpc]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = reqwest::get(format!("{http}/api/workers"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if body.contains("tiny-chat") {
            break;
        }
        assert!(Instant::now() < deadline, "worker did not register");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    run_client(
        Command::new(&python).arg(format!("{root}/tests/clients/openai_client.py")),
        &http,
    );
    run_client(
        Command::new("bash").arg(format!("{root}/tests/clients/curl.sh")),
        &http,
    );
}
