//! A scripted gRPC worker behind the `/v1` router, in process, and helpers to call it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arena_proto::v1::worker_server::{Worker, WorkerServer};
use arena_proto::v1::{
    CountTokensRequest, CountTokensResponse, FinishReason, GenerateRequest, GenerateResponse,
    InfoRequest, InfoResponse, TokenLogprob, TopLogprobs, Usage,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tokio_stream::Stream;
use tonic::{Response, Status};
use tower::ServiceExt;

use super::{router, ApiState};
use crate::gateway::registry::{Registry, WorkerInfo};
use crate::gateway::Gateway;
use crate::metrics::Metrics;

/// The scripted answer: these tokens, one message each.
pub const WORDS: [&str; 4] = ["Hel", "lo", " wor", "ld"];

/// A message containing this makes the worker hold each answer's end until two such
/// requests have arrived, so concurrent choices provably overlap however loaded the machine.
pub const TOGETHER: &str = "together";

/// A worker that answers every request with [`WORDS`] and remembers the requests.
#[derive(Clone, Default)]
pub struct Scripted {
    /// Every request it was sent.
    pub seen: Arc<Mutex<Vec<GenerateRequest>>>,
}

fn word_message(i: usize, req: &GenerateRequest) -> GenerateResponse {
    let top = req
        .params
        .as_ref()
        .and_then(|p| p.top_logprobs)
        .unwrap_or(0);
    let logprob = -0.5 * (i + 1) as f32;
    let mut m = GenerateResponse {
        text: WORDS[i].into(),
        ..Default::default()
    };
    if req.return_tokens {
        m.token_ids = vec![i as u32];
        m.logprobs = vec![logprob];
        m.token_bytes = vec![WORDS[i].as_bytes().to_vec()];
        if top > 0 {
            let alternative = |token: &[u8], logprob| TokenLogprob {
                token_id: 0,
                token: token.to_vec(),
                logprob,
            };
            let mut tokens = vec![alternative(WORDS[i].as_bytes(), logprob)];
            tokens.extend((1..top).map(|k| alternative(b"x", logprob - k as f32)));
            m.top_logprobs = vec![TopLogprobs { tokens }];
        }
    }
    m
}

#[tonic::async_trait]
impl Worker for Scripted {
    type GenerateStream = Pin<Box<dyn Stream<Item = Result<GenerateResponse, Status>> + Send>>;

    async fn generate(
        &self,
        request: tonic::Request<GenerateRequest>,
    ) -> Result<Response<Self::GenerateStream>, Status> {
        let req = request.into_inner();
        self.seen.lock().unwrap().push(req.clone());
        let max = req.params.as_ref().and_then(|p| p.max_new_tokens);
        if max.is_some_and(|m| m > 256) {
            return Err(Status::invalid_argument(format!(
                "invalid parameter 'max_new_tokens': {} is outside [1, 256] (the model's context length)",
                max.unwrap_or(0)
            )));
        }
        let fail = format!("{:?}", req.input).contains("fail");
        let together = format!("{:?}", req.input).contains(TOGETHER);
        let seen = self.seen.clone();
        let count = max.map_or(WORDS.len(), |m| (m as usize).min(WORDS.len()));
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            for i in 0..count {
                let _ = tx.send(Ok(word_message(i, &req))).await;
                if fail {
                    let _ = tx.send(Err(Status::internal("boom"))).await;
                    return;
                }
                // Slow enough for concurrent choices to interleave.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if together {
                let partners = || {
                    seen.lock()
                        .map(|s| {
                            s.iter()
                                .filter(|r| format!("{:?}", r.input).contains(TOGETHER))
                                .count()
                        })
                        .unwrap_or(0)
                };
                for _ in 0..1000 {
                    if partners() >= 2 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                // Let the partner's first words reach the client first.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let finish = if max.is_some_and(|m| m as usize <= WORDS.len()) {
                FinishReason::Length
            } else {
                FinishReason::Stop
            };
            let _ = tx
                .send(Ok(GenerateResponse {
                    finish_reason: finish as i32,
                    usage: Some(Usage {
                        prompt_tokens: 4,
                        completion_tokens: count as u32,
                        cached_tokens: 0,
                        estimated: false,
                    }),
                    ..Default::default()
                }))
                .await;
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn count_tokens(
        &self,
        _: tonic::Request<CountTokensRequest>,
    ) -> Result<Response<CountTokensResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn info(&self, _: tonic::Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }
}

/// The `/v1` router with one scripted worker serving "fake"; the worker, to see its requests.
pub async fn setup() -> (axum::Router, Scripted) {
    let worker = Scripted::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = WorkerServer::new(worker.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let registry = Arc::new(Registry::new(Duration::from_secs(60)));
    registry
        .register(WorkerInfo {
            id: "w1".into(),
            address: format!("http://{addr}"),
            models: vec!["fake".into()],
            context_length: 256,
            max_concurrency: 8,
        })
        .unwrap();
    let gateway = Arc::new(Gateway {
        registry,
        metrics: Arc::new(Metrics::new().unwrap()),
        policy: crate::gateway::dispatch::Policy::ShortestQueue,
        endpoints: Default::default(),
        http: reqwest::Client::new(),
        timeouts: Default::default(),
        affinity: crate::gateway::affinity::Affinity::new(
            crate::gateway::affinity::DEFAULT_CAPACITY,
        ),
    });
    let state = Arc::new(ApiState {
        gateway,
        api_keys: Vec::new(),
    });
    (router(state), worker)
}

/// POSTs `body` to `path`; returns the status and the body text.
pub async fn post(app: &axum::Router, path: &str, body: Value) -> (StatusCode, String) {
    post_with(app, path, &[], body).await
}

/// Like [`post`], with these request `headers` too.
pub async fn post_with(
    app: &axum::Router,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (StatusCode, String) {
    let mut request = Request::post(path).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::from(body.to_string())).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// Like [`post`], the body read as JSON (Null if it is not).
pub async fn post_json(app: &axum::Router, path: &str, body: Value) -> (StatusCode, Value) {
    let (status, text) = post(app, path, body).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// An SSE body's events: (event name, data).
pub fn sse_events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let field = |name: &str| {
                e.lines()
                    .filter_map(|l| l.strip_prefix(name))
                    .map(str::trim_start)
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            (field("event:"), field("data:"))
        })
        .collect()
}

/// A chat request for the scripted model with `extra` fields.
pub fn chat(extra: Value) -> Value {
    let mut body = json!({"model": "fake", "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}
