//! The CUDA build's own check, which `scripts/build-cuda.sh` runs (ignored otherwise): the
//! binary starts, and a worker asked for `--device cuda:0` either serves on the GPU or, on a
//! machine without one, stops at once saying so. A build without CUDA says that instead.

mod common;

use std::process::Command;

/// True when the NVIDIA driver lists at least one GPU.
fn gpu_present() -> bool {
    Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("GPU "))
        .unwrap_or(false)
}

#[test]
#[ignore = "checks the CUDA build: scripts/build-cuda.sh runs it"]
fn a_worker_asked_for_a_gpu_serves_on_it_or_says_there_is_none() {
    let bin = common::bin();
    let version = bin.command().arg("--version").output().unwrap();
    assert!(
        version.status.success(),
        "the binary does not start: {}",
        String::from_utf8_lossy(&version.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let model = model.to_str().unwrap();
    let args = ["--model", model, "--device", "cuda:0"];
    if cfg!(feature = "cuda") && gpu_present() {
        // The ready line comes only after the weights are on the GPU.
        let _worker = bin.spawn_worker(&args);
        return;
    }
    let out = bin
        .command()
        .arg("worker")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let expected = if cfg!(feature = "cuda") {
        "no usable NVIDIA GPU cuda:0"
    } else {
        "this build has no CUDA support"
    };
    assert!(err.contains(expected), "expected '{expected}' in: {err}");
    eprintln!("as expected without a GPU: {}", err.trim());
}
