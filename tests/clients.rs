//! The official `openai` Python client and curl against a real controller and worker.
//!
//! `scripts/test.sh` installs the client (openai 1.12.0) into a virtualenv and sets
//! `ARENA_CLIENTS_PYTHON` to its interpreter.

mod common;

use std::process::Command;

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
    let c = common::bin().spawn_controller(&["--api-keys", "sk-test"]);
    let _worker = common::bin().spawn_registered_worker(&model, &c.grpc, &[]);
    common::wait_workers(&c, 1).await;
    let http = c.http.clone();
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
