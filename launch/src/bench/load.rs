//! The benchmark's clients: one streamed request on each path, and a client's loop of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arena_proto::v1::worker_client::WorkerClient;
use arena_proto::v1::{generate_request, ChatMessage, GenerateRequest, Messages, SamplingParams};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use crate::error::LaunchError;

/// Time to first token and total time of one request, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    /// Until the first text arrived.
    pub ttft: f64,
    /// Until the stream ended.
    pub total: f64,
}

/// The same request straight to the worker and through the controller.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Straight to the worker.
    pub direct: Timing,
    /// Through the controller.
    pub via: Timing,
}

/// Where one client sends its requests, and how.
#[derive(Clone)]
pub struct Client {
    /// The worker, over gRPC.
    pub worker: WorkerClient<Channel>,
    /// HTTP client for the controller.
    pub http: reqwest::Client,
    /// The controller's chat completions URL.
    pub url: Arc<String>,
    /// New tokens per request.
    pub max_tokens: u32,
    /// Upper bound of the random wait before each request (or pair), in milliseconds.
    pub think_ms: f64,
    /// Send the two requests of a sample at the same moment.
    pub paired: bool,
}

impl Client {
    /// `n` samples, one after the other.
    pub async fn run(mut self, n: usize) -> Result<Vec<Sample>, LaunchError> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.sample().await?);
        }
        Ok(out)
    }

    async fn sample(&mut self) -> Result<Sample, LaunchError> {
        if self.paired {
            think(self.think_ms).await;
            let mut worker = self.worker.clone();
            let (d, v) = tokio::join!(
                direct(&mut worker, self.max_tokens),
                via(&self.http, &self.url, self.max_tokens)
            );
            return Ok(Sample {
                direct: d?,
                via: v?,
            });
        }
        // A fixed order would let one path always follow the other.
        let direct_first = rand::random::<bool>();
        let mut sample = Sample {
            direct: Timing::default(),
            via: Timing::default(),
        };
        for to_worker in [direct_first, !direct_first] {
            think(self.think_ms).await;
            if to_worker {
                sample.direct = direct(&mut self.worker, self.max_tokens).await?;
            } else {
                sample.via = via(&self.http, &self.url, self.max_tokens).await?;
            }
        }
        Ok(sample)
    }
}

/// A random wait in `[0, max_ms)`.
async fn think(max_ms: f64) {
    if max_ms > 0.0 {
        let ms = rand::random::<f64>() * max_ms;
        tokio::time::sleep(Duration::from_secs_f64(ms / 1e3)).await;
    }
}

/// A greedy chat request with one user message (the end-to-end tests send it too).
pub fn chat_request(text: &str, max_new_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        input: Some(generate_request::Input::Chat(Messages {
            messages: vec![ChatMessage {
                role: "user".into(),
                content: text.into(),
            }],
        })),
        params: Some(SamplingParams {
            temperature: Some(0.0),
            max_new_tokens: Some(max_new_tokens),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One request straight to the worker.
pub async fn direct(
    client: &mut WorkerClient<Channel>,
    max_tokens: u32,
) -> Result<Timing, LaunchError> {
    let start = Instant::now();
    let mut stream = client
        .generate(chat_request("hello world", max_tokens))
        .await
        .map_err(|e| LaunchError::Server(e.to_string()))?
        .into_inner();
    let mut first = None;
    while let Some(m) = stream.next().await {
        let m = m.map_err(|e| LaunchError::Server(e.to_string()))?;
        if first.is_none() && !m.text.is_empty() {
            first = Some(start.elapsed());
        }
    }
    let total = start.elapsed();
    Ok(Timing {
        ttft: first.unwrap_or(total).as_secs_f64() * 1e3,
        total: total.as_secs_f64() * 1e3,
    })
}

/// One streamed request through the controller.
pub async fn via(
    http: &reqwest::Client,
    url: &str,
    max_tokens: u32,
) -> Result<Timing, LaunchError> {
    let body = serde_json::json!({"model": "bench", "messages": [{"role": "user", "content": "hello world"}],
        "temperature": 0, "max_tokens": max_tokens, "stream": true});
    let start = Instant::now();
    let response = http
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| LaunchError::Server(e.to_string()))?;
    let mut bytes = response.bytes_stream();
    let mut first = None;
    // Bytes up to the first content delta, which may arrive split over chunks.
    let mut head = Vec::new();
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk.map_err(|e| LaunchError::Server(e.to_string()))?;
        if first.is_none() {
            head.extend_from_slice(&chunk);
            if head.windows(9).any(|w| w == b"\"content\"") {
                first = Some(start.elapsed());
            }
        }
    }
    let total = start.elapsed();
    Ok(Timing {
        ttft: first.unwrap_or(total).as_secs_f64() * 1e3,
        total: total.as_secs_f64() * 1e3,
    })
}
