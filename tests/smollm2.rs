//! The real model, SmolLM2-135M-Instruct Q4_1: answers, streaming over gRPC, queueing,
//! cancellation and draining.

mod common;

use std::time::{Duration, Instant};

use arena_proto::v1::worker_client::WorkerClient;
use arena_proto::v1::{FinishReason, GenerateRequest, InfoRequest, SamplingParams};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

const QUESTION: &str = "What is the capital of France? Answer in one word.";

fn request(text: &str, max_new_tokens: u32) -> GenerateRequest {
    common::chat_request(text, max_new_tokens)
}

async fn stream_text(client: &mut WorkerClient<Channel>, req: GenerateRequest) -> (String, i32) {
    let (text, last) = common::collect(client, req).await;
    (text, last.finish_reason)
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_paris_in_the_cli_and_over_grpc_identically() {
    let model = common::smollm2();
    let cli = common::bin().ok(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--chat",
        QUESTION,
        "--max-new-tokens",
        "24",
    ]);
    assert!(cli.contains("Paris"), "{cli}");

    let worker = common::bin().spawn_worker(&["--model", model.to_str().unwrap()]);
    let mut client = worker.client().await;
    let (text, finish) = stream_text(&mut client, request(QUESTION, 24)).await;
    assert_eq!(finish, FinishReason::Stop as i32, "ends at <|im_end|>");
    assert_eq!(format!("{text}\n"), cli);
}

async fn info(client: &mut WorkerClient<Channel>) -> (u32, u32) {
    let i = client.info(InfoRequest {}).await.unwrap().into_inner();
    (i.in_flight, i.queue_length)
}

async fn wait_info(client: &mut WorkerClient<Channel>, want: (u32, u32)) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = info(client).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "in_flight/queue {got:?}, wanted {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_beyond_max_concurrency_queue_and_disconnects_cancel() {
    let model = common::smollm2();
    let worker =
        common::bin().spawn_worker(&["--model", model.to_str().unwrap(), "--max-concurrency", "1"]);
    let mut client = worker.client().await;
    // Long generations that would run for minutes if not cancelled.
    let long = "Write a very long story about a dragon.";
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut s = client
            .generate(request(long, 4000))
            .await
            .unwrap()
            .into_inner();
        if streams.is_empty() {
            // The first one is running once it streams.
            s.next().await.unwrap().unwrap();
        }
        streams.push(s);
    }
    wait_info(&mut client, (1, 2)).await;
    drop(streams);
    wait_info(&mut client, (0, 0)).await;
    // The freed slot serves new work at once.
    let (text, _) = stream_text(&mut client, request(QUESTION, 24)).await;
    assert!(text.contains("Paris"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_running_requests_before_exiting() {
    let model = common::smollm2();
    let mut worker = common::bin().spawn_worker(&["--model", model.to_str().unwrap()]);
    let mut client = worker.client().await;
    let req = GenerateRequest {
        params: Some(SamplingParams {
            temperature: Some(0.0),
            max_new_tokens: Some(40),
            stop_token_ids: vec![],
            ..Default::default()
        }),
        ..request("Count from one to fifty in words.", 40)
    };
    let mut s = client.generate(req).await.unwrap().into_inner();
    s.next().await.unwrap().unwrap();
    worker.terminate();
    let mut last = None;
    while let Some(m) = s.next().await {
        last = Some(m.expect("stream broke during drain"));
    }
    let last = last.unwrap();
    assert_ne!(last.finish_reason, FinishReason::Error as i32);
    assert_ne!(last.finish_reason, FinishReason::Unspecified as i32);
    let status = worker
        .wait(Duration::from_secs(20))
        .expect("no exit after drain");
    assert!(status.success(), "{}", worker.log());
}
