//! Workers accept only the controller: with a worker token, every call to the Worker service
//! must carry it, and the controller sends it; workers on other hosts serve gRPC over TLS and
//! the controller (and a worker registering with a TLS controller) dials them with a CA.

use std::path::{Path, PathBuf};

use arena_proto::v1::worker_client::WorkerClient;
use arena_proto::v1::{count_tokens_request, CountTokensRequest, InfoRequest};
use serde_json::{json, Value};

use crate::common;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

/// Wraps `msg` in a request carrying `authorization: <header>` when given.
fn with_auth<T>(msg: T, header: Option<&str>) -> Request<T> {
    let mut req = Request::new(msg);
    if let Some(h) = header {
        req.metadata_mut()
            .insert("authorization", MetadataValue::try_from(h).unwrap());
    }
    req
}

fn count_request() -> CountTokensRequest {
    CountTokensRequest {
        input: Some(count_tokens_request::Input::Prompt("hello world".into())),
        system_message: None,
    }
}

/// Calls Generate, CountTokens and Info with `header`; returns each outcome.
async fn call_all(
    client: &mut WorkerClient<Channel>,
    header: Option<&str>,
) -> Vec<Result<(), Status>> {
    let generate = client
        .generate(with_auth(common::chat_request("hello", 3), header))
        .await
        .map(|_| ());
    let count = client
        .count_tokens(with_auth(count_request(), header))
        .await
        .map(|_| ());
    let info = client
        .info(with_auth(InfoRequest {}, header))
        .await
        .map(|_| ());
    vec![generate, count, info]
}

fn assert_refused(outcomes: &[Result<(), Status>], why: &str) {
    for (rpc, outcome) in ["Generate", "CountTokens", "Info"].iter().zip(outcomes) {
        let status = outcome
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("{rpc} {why} was answered"));
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{rpc} {why}: {status:?}"
        );
        assert!(
            status
                .message()
                .contains("this worker requires the controller's worker token"),
            "{rpc} {why}: {}",
            status.message()
        );
    }
}

fn greedy_chat(text: &str) -> Value {
    json!({"model": "tiny-chat", "messages": [{"role": "user", "content": text}], "temperature": 0, "max_tokens": 4})
}

/// Posts a chat completion and asserts it was answered with some text.
async fn assert_chat_ok(http: &str) {
    let (status, body) = common::post_chat(http, &greedy_chat("hello")).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["choices"][0]["message"]["content"].is_string(), "{body}");
    assert_eq!(v["usage"]["completion_tokens"], 4, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_with_a_token_answers_only_callers_that_carry_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let worker = common::bin().spawn_worker(&[
        "--model",
        model.to_str().unwrap(),
        "--worker-token",
        "s3cret",
    ]);
    let mut client = worker.client().await;
    assert_refused(&call_all(&mut client, None).await, "without a token");
    assert_refused(
        &call_all(&mut client, Some("Bearer wrong")).await,
        "with a wrong token",
    );
    assert_refused(
        &call_all(&mut client, Some("Bearer s3cret-and-more")).await,
        "with a longer token",
    );
    assert_refused(
        &call_all(&mut client, Some("s3cret")).await,
        "with the token but no Bearer",
    );
    for (rpc, outcome) in ["Generate", "CountTokens", "Info"]
        .iter()
        .zip(call_all(&mut client, Some("Bearer s3cret")).await)
    {
        assert!(outcome.is_ok(), "{rpc} with the token: {outcome:?}");
    }
    // The right token gets a whole generation, not only its start.
    let mut stream = client
        .generate(with_auth(
            common::chat_request("hello", 3),
            Some("Bearer s3cret"),
        ))
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(m) = stream.message().await.unwrap() {
        last = Some(m);
    }
    assert_eq!(last.unwrap().usage.unwrap().completion_tokens, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_sends_the_worker_token_on_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let c = common::bin().spawn_controller(&["--worker-token", "s3cret"]);
    let _w = common::bin().spawn_registered_worker(&model, &c.grpc, &["--worker-token", "s3cret"]);
    common::wait_workers(&c, 1).await;
    assert_chat_ok(&c.http).await;
}

/// A self-signed certificate for `localhost` and `127.0.0.1`: its PEM file and its key's.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// A TLS client of the worker at `addr` that trusts `tls`.
async fn tls_client(
    addr: std::net::SocketAddr,
    tls: ClientTlsConfig,
) -> Result<WorkerClient<Channel>, tonic::transport::Error> {
    let channel = Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(WorkerClient::new(channel))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_link_with_workers_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let (cert, key) = self_signed(dir.path());
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let c = common::bin().spawn_controller(&[
        "--worker-token",
        "s3cret",
        "--worker-ca",
        cert_s,
        "--tls-cert",
        cert_s,
        "--tls-key",
        key_s,
    ]);
    // The controller's gRPC port by name (the certificate's DNS name), the worker's by IP.
    let grpc = c.grpc.replace("http://127.0.0.1", "https://localhost");
    assert!(grpc.starts_with("https://localhost:"), "{grpc}");
    let w = common::bin().spawn_registered_worker(
        &model,
        &grpc,
        &[
            "--worker-token",
            "s3cret",
            "--tls-cert",
            cert_s,
            "--tls-key",
            key_s,
            "--controller-ca",
            cert_s,
        ],
    );
    common::wait_workers(&c, 1).await;
    let workers = common::workers(&c).await;
    assert_eq!(
        workers[0]["address"],
        format!("https://{}", w.addr),
        "with TLS the worker advertises https://"
    );

    // Plaintext gRPC does not reach a TLS worker.
    if let Ok(mut plain) = WorkerClient::connect(format!("http://{}", w.addr)).await {
        let r = plain
            .info(with_auth(InfoRequest {}, Some("Bearer s3cret")))
            .await;
        assert!(r.is_err(), "a plaintext call was answered: {r:?}");
    }
    // Nor does TLS that does not trust its certificate.
    let untrusted = tls_client(w.addr, ClientTlsConfig::new().with_native_roots()).await;
    if let Ok(mut client) = untrusted {
        let r = client
            .info(with_auth(InfoRequest {}, Some("Bearer s3cret")))
            .await;
        assert!(r.is_err(), "an untrusted certificate was accepted: {r:?}");
    }
    // TLS with the CA reaches it, and the token is still required.
    let pem = std::fs::read(&cert).unwrap();
    let trusted = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
    let mut client = tls_client(w.addr, trusted).await.unwrap();
    assert_refused(
        &call_all(&mut client, None).await,
        "over TLS without a token",
    );
    let info = client
        .info(with_auth(InfoRequest {}, Some("Bearer s3cret")))
        .await
        .unwrap();
    assert_eq!(info.get_ref().model, "tiny-chat");

    // The controller dials the worker over TLS with --worker-ca and the token.
    assert_chat_ok(&c.http).await;
}

#[test]
fn bad_tls_files_stop_start_up_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    common::bin().fails(
        &[
            "worker",
            "--model",
            model.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            missing,
            "--tls-key",
            missing,
        ],
        "--tls-cert",
    );
    let out = common::bin()
        .controller_command()
        .args(["--worker-ca", missing])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--worker-ca"), "{stderr}");
}
