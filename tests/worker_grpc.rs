//! `arena worker` as a real process over real gRPC, with a tiny model.

mod common;

use std::time::{Duration, Instant};

use arena_proto::v1::{
    generate_request, ChatMessage, CountTokensRequest, FinishReason, GenerateRequest, InfoRequest,
    Messages, SamplingParams,
};
use arena_testkit::controller::TestController;
use tokio_stream::StreamExt;
use tonic::Code;

fn chat(text: &str) -> Option<generate_request::Input> {
    Some(generate_request::Input::Chat(Messages {
        messages: vec![ChatMessage {
            role: "user".into(),
            content: text.into(),
        }],
    }))
}

fn greedy(max_new_tokens: u32) -> Option<SamplingParams> {
    Some(SamplingParams {
        temperature: Some(0.0),
        max_new_tokens: Some(max_new_tokens),
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_stream_matches_cli_generate() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let worker = common::bin().spawn_worker(&["--model", model.to_str().unwrap()]);
    let mut client = worker.client().await;
    let req = GenerateRequest {
        request_id: "r1".into(),
        model: "tiny-chat".into(),
        ..common::chat_request("hello world", 24)
    };
    let (text, last) = common::collect(&mut client, req).await;
    assert_eq!(last.finish_reason, FinishReason::Length as i32);
    assert_eq!(last.usage.unwrap().completion_tokens, 24);

    let cli = common::bin().ok(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--chat",
        "hello world",
        "--max-new-tokens",
        "24",
        "--temperature",
        "0",
    ]);
    assert_eq!(cli.strip_suffix('\n').unwrap(), text);
}

#[tokio::test(flavor = "multi_thread")]
async fn info_and_count_tokens_describe_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let worker = common::bin().spawn_worker(&[
        "--model",
        model.to_str().unwrap(),
        "--name",
        "tiny",
        "--max-concurrency",
        "3",
    ]);
    let mut client = worker.client().await;
    let info = client.info(InfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.model, "tiny");
    assert_eq!(info.context_length, 256);
    assert_eq!(info.max_concurrency, 3);
    assert_eq!(info.format, "gguf");
    assert_eq!(info.template, "model (jinja)");
    let count = client
        .count_tokens(CountTokensRequest {
            input: Some(arena_proto::v1::count_tokens_request::Input::Prompt(
                "hello world".into(),
            )),
            system_message: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(count.count, 2);
}

async fn status_of(
    client: &mut arena_proto::v1::worker_client::WorkerClient<tonic::transport::Channel>,
    req: GenerateRequest,
) -> tonic::Status {
    match client.generate(req).await {
        Ok(_) => panic!("request was accepted"),
        Err(s) => s,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_clear_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let worker = common::bin().spawn_worker(&["--model", model.to_str().unwrap()]);
    let mut client = worker.client().await;
    let base = || GenerateRequest {
        input: chat("hello"),
        params: greedy(8),
        ..Default::default()
    };

    let s = status_of(
        &mut client,
        GenerateRequest {
            params: Some(SamplingParams {
                temperature: Some(-1.0),
                ..Default::default()
            }),
            ..base()
        },
    )
    .await;
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("'temperature'"), "{}", s.message());

    let s = status_of(
        &mut client,
        GenerateRequest {
            params: Some(SamplingParams {
                top_p: Some(2.0),
                ..Default::default()
            }),
            ..base()
        },
    )
    .await;
    assert!(s.message().contains("'top_p'"), "{}", s.message());

    let long = "hello ".repeat(200);
    let s = status_of(
        &mut client,
        GenerateRequest {
            input: chat(&long),
            params: greedy(100),
            ..base()
        },
    )
    .await;
    assert_eq!(s.code(), Code::OutOfRange);
    assert!(
        s.message().contains("context length of 256"),
        "{}",
        s.message()
    );
    assert!(
        s.message().contains("max_new_tokens 100"),
        "{}",
        s.message()
    );

    let s = status_of(
        &mut client,
        GenerateRequest {
            model: "gpt-5".into(),
            ..base()
        },
    )
    .await;
    assert_eq!(s.code(), Code::NotFound);

    let s = status_of(
        &mut client,
        GenerateRequest {
            input: None,
            ..base()
        },
    )
    .await;
    assert_eq!(s.code(), Code::InvalidArgument);

    let bad_role = Some(generate_request::Input::Chat(Messages {
        messages: vec![ChatMessage {
            role: "wizard".into(),
            content: "hi".into(),
        }],
    }));
    let s = status_of(
        &mut client,
        GenerateRequest {
            input: bad_role,
            ..base()
        },
    )
    .await;
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("wizard"), "{}", s.message());

    let s = status_of(
        &mut client,
        GenerateRequest {
            cache_scope: Some("s".repeat(129)),
            ..base()
        },
    )
    .await;
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("'cache_scope'"), "{}", s.message());

    // The worker still serves after all that.
    let ok = client
        .generate(base())
        .await
        .unwrap()
        .into_inner()
        .collect::<Vec<_>>()
        .await;
    assert!(ok.iter().all(|m| m.is_ok()));
}

async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_registers_late_heartbeats_reregisters_and_deregisters() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    // The worker starts while no controller is up: it must wait, not crash.
    let mut worker = common::bin().spawn_registered_worker(
        &model,
        &url,
        &["--worker-id", "w1", "--worker-token", "s3cret"],
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        worker.wait(Duration::ZERO).is_none(),
        "worker exited while the controller was down"
    );

    let ctl = TestController {
        token: Some("s3cret".into()),
        ..Default::default()
    };
    let seen = ctl.seen.clone();
    ctl.clone()
        .serve(format!("127.0.0.1:{port}").parse().unwrap())
        .await;
    wait_for("registration", Duration::from_secs(10), || {
        !seen.lock().unwrap().registrations.is_empty()
    })
    .await;
    {
        let s = seen.lock().unwrap();
        let r = &s.registrations[0];
        assert_eq!(r.worker_id, "w1");
        assert_eq!(r.models, vec!["tiny-chat".to_string()]);
        assert_eq!(r.address, format!("http://{}", worker.addr));
        assert_eq!(r.context_length, 256);
    }
    wait_for("heartbeats", Duration::from_secs(5), || {
        seen.lock().unwrap().heartbeats.len() >= 2
    })
    .await;

    // A controller that lost its registry gets the worker back at the next heartbeat.
    ctl.forget_all();
    wait_for("re-registration", Duration::from_secs(5), || {
        seen.lock().unwrap().registrations.len() >= 2
    })
    .await;

    worker.terminate();
    let status = worker
        .wait(Duration::from_secs(15))
        .expect("worker did not exit on SIGTERM");
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        worker.log()
    );
    assert_eq!(seen.lock().unwrap().deregistered, vec!["w1".to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_worker_token_is_refused_and_the_worker_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let port = common::free_port();
    let ctl = TestController {
        token: Some("right".into()),
        ..Default::default()
    };
    let seen = ctl.seen.clone();
    ctl.serve(format!("127.0.0.1:{port}").parse().unwrap())
        .await;
    let mut worker = common::bin().spawn_worker(&[
        "--model",
        model.to_str().unwrap(),
        "--controller",
        &format!("http://127.0.0.1:{port}"),
        "--worker-token",
        "wrong",
    ]);
    let status = worker
        .wait(Duration::from_secs(15))
        .expect("worker kept running after refusal");
    assert!(!status.success());
    assert!(
        worker.log().contains("refused registration"),
        "{}",
        worker.log()
    );
    assert!(seen.lock().unwrap().registrations.is_empty());
}
