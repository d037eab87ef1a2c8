//! `arena bench controller`: what the controller adds to a request's latency, and how many
//! dispatch decisions it makes per second.
//!
//! It starts a real `arena controller` and `arena worker` (child processes of the given
//! binary), then sends the same streamed chat requests straight to the worker over gRPC and
//! through the controller's OpenAI API, in random order, from 1, 16 and 64 concurrent clients.
//!
//! Each client waits a random think time before each request. Without it the measurement is
//! biased: the worker emits every sequence's token at the end of a batch step, so a client
//! that sends its next request the moment the last one finished arrives just after a step
//! boundary, and its time to first token depends on how late it saw the *previous* answer.
//! The path that followed the slower one then looks faster, whatever the controller does
//! (a 2 ms pause after each controller request, untimed, moved the measured overhead by
//! +3 ms). A random wait spreads arrivals over the step, as independent users would.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arena_proto::v1::worker_client::WorkerClient;
use arena_proto::v1::{generate_request, ChatMessage, GenerateRequest, Messages, SamplingParams};
use serde::Serialize;
use tokio_stream::StreamExt;

use crate::dispatch::Policy;
use crate::error::ControllerError;
use crate::process;
use crate::registry::{Registry, WorkerInfo};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The `arena` binary to start the controller and worker with.
    pub arena: PathBuf,
    /// Model the worker serves (a tiny one shows the overhead best).
    pub model: PathBuf,
    /// Concurrent clients per round.
    pub clients: Vec<usize>,
    /// Requests per client per path.
    pub requests: usize,
    /// New tokens per request.
    pub max_tokens: u32,
    /// Upper bound of each client's random wait before a request, in milliseconds.
    pub think_ms: f64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize, Clone, Copy)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// One concurrency level.
#[derive(Debug, Serialize)]
pub struct Round {
    /// Concurrent clients.
    pub clients: usize,
    /// Time to first token, straight to the worker.
    pub ttft_direct_ms: Percentiles,
    /// Time to first token through the controller.
    pub ttft_controller_ms: Percentiles,
    /// Whole request, straight to the worker.
    pub total_direct_ms: Percentiles,
    /// Whole request through the controller.
    pub total_controller_ms: Percentiles,
    /// Requests in flight on average over the round (both paths).
    pub mean_in_flight: f64,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// Per concurrency level.
    pub rounds: Vec<Round>,
    /// `shortest_queue` decisions per second over 100 workers.
    pub dispatch_decisions_per_s: f64,
}

/// Time to first token and total time of one request, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
struct Timing {
    ttft: f64,
    total: f64,
}

/// The same request straight to the worker and through the controller.
#[derive(Debug, Clone, Copy)]
struct Sample {
    direct: Timing,
    via: Timing,
}

fn percentiles(mut v: Vec<f64>) -> Percentiles {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Percentiles {
        p50: at(0.5),
        p99: at(0.99),
    }
}

fn request(max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        input: Some(generate_request::Input::Chat(Messages {
            messages: vec![ChatMessage {
                role: "user".into(),
                content: "hello world".into(),
            }],
        })),
        params: Some(SamplingParams {
            temperature: Some(0.0),
            max_new_tokens: Some(max_tokens),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One request straight to the worker.
async fn direct(
    client: &mut WorkerClient<tonic::transport::Channel>,
    max_tokens: u32,
) -> Result<Timing, ControllerError> {
    let start = Instant::now();
    let mut stream = client
        .generate(request(max_tokens))
        .await
        .map_err(|e| ControllerError::Server(e.to_string()))?
        .into_inner();
    let mut first = None;
    while let Some(m) = stream.next().await {
        let m = m.map_err(|e| ControllerError::Server(e.to_string()))?;
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
async fn via(
    http: &reqwest::Client,
    url: &str,
    max_tokens: u32,
) -> Result<Timing, ControllerError> {
    let body = serde_json::json!({"model": "bench", "messages": [{"role": "user", "content": "hello world"}],
        "temperature": 0, "max_tokens": max_tokens, "stream": true});
    let start = Instant::now();
    let response = http
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| ControllerError::Server(e.to_string()))?;
    let mut bytes = response.bytes_stream();
    let mut first = None;
    // Bytes up to the first content delta, which may arrive split over chunks.
    let mut head = Vec::new();
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk.map_err(|e| ControllerError::Server(e.to_string()))?;
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

/// Runs the benchmark.
pub async fn run(opts: &BenchOptions) -> Result<BenchReport, ControllerError> {
    // The benchmark's own throwaway store, never the user's arena database.
    let db = std::env::temp_dir().join(format!("arena-bench-{}.db", std::process::id()));
    let report = measure(opts, &db).await;
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.clone().into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
    report
}

/// A random wait in `[0, max_ms)`.
async fn think(max_ms: f64) {
    if max_ms > 0.0 {
        let ms = rand::random::<f64>() * max_ms;
        tokio::time::sleep(Duration::from_secs_f64(ms / 1e3)).await;
    }
}

async fn measure(
    opts: &BenchOptions,
    db: &std::path::Path,
) -> Result<BenchReport, ControllerError> {
    let db_url = format!("sqlite://{}", db.display());
    let (_controller, rest) = process::spawn(
        &opts.arena,
        &[
            "controller",
            "--database-url",
            &db_url,
            "--http-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
            "--heartbeat-ms",
            "500",
        ],
        &[("ARENA_LOG", "warn")],
        "arena controller listening on ",
        false,
    )?;
    let addr = |key: &str| {
        rest.split_whitespace()
            .find_map(|p| p.strip_prefix(key))
            .map(str::to_string)
    };
    let (http_addr, grpc_addr) = addr("http=")
        .zip(addr("grpc="))
        .ok_or_else(|| ControllerError::Server(format!("cannot parse '{rest}'")))?;
    let model = opts.model.to_string_lossy().into_owned();
    let controller_url = format!("http://{grpc_addr}");
    let (_worker, worker_addr) = process::spawn(
        &opts.arena,
        &[
            "worker",
            "--model",
            &model,
            "--name",
            "bench",
            "--listen",
            "127.0.0.1:0",
            "--max-concurrency",
            "64",
            "--controller",
            &controller_url,
        ],
        &[("ARENA_LOG", "warn")],
        "arena worker listening on ",
        false,
    )?;
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .map_err(|e| ControllerError::Server(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http
        .get(format!("http://{http_addr}/api/workers"))
        .send()
        .await
        .map_err(|e| ControllerError::Server(e.to_string()))?
        .text()
        .await
        .unwrap_or_default()
        .contains("bench")
    {
        if Instant::now() > deadline {
            return Err(ControllerError::Server(
                "the worker did not register".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let worker = WorkerClient::connect(format!("http://{worker_addr}"))
        .await
        .map_err(|e| ControllerError::Server(e.to_string()))?;
    let url = Arc::new(format!("http://{http_addr}/v1/chat/completions"));
    // Warm both paths.
    direct(&mut worker.clone(), opts.max_tokens).await?;
    via(&http, &url, opts.max_tokens).await?;
    let mut rounds = Vec::new();
    for &clients in &opts.clients {
        let mut tasks = Vec::new();
        let started = Instant::now();
        for _ in 0..clients {
            let (mut worker, http, url) = (worker.clone(), http.clone(), url.clone());
            let (n, max_tokens, think_ms) = (opts.requests, opts.max_tokens, opts.think_ms);
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    // A fixed order would let one path always follow the other.
                    let direct_first = rand::random::<bool>();
                    let mut sample = Sample {
                        direct: Timing::default(),
                        via: Timing::default(),
                    };
                    for path in [direct_first, !direct_first] {
                        think(think_ms).await;
                        if path {
                            sample.direct = direct(&mut worker, max_tokens).await?;
                        } else {
                            sample.via = via(&http, &url, max_tokens).await?;
                        }
                    }
                    out.push(sample);
                }
                Ok::<_, ControllerError>(out)
            }));
        }
        let mut samples = Vec::new();
        for t in tasks {
            samples.extend(
                t.await
                    .map_err(|e| ControllerError::Server(e.to_string()))??,
            );
        }
        let wall_ms = started.elapsed().as_secs_f64() * 1e3;
        let busy_ms: f64 = samples.iter().map(|s| s.direct.total + s.via.total).sum();
        let pick = |f: fn(&Sample) -> f64| percentiles(samples.iter().map(f).collect());
        rounds.push(Round {
            mean_in_flight: busy_ms / wall_ms,
            clients,
            ttft_direct_ms: pick(|s| s.direct.ttft),
            ttft_controller_ms: pick(|s| s.via.ttft),
            total_direct_ms: pick(|s| s.direct.total),
            total_controller_ms: pick(|s| s.via.total),
        });
    }
    Ok(BenchReport {
        rounds,
        dispatch_decisions_per_s: dispatch_rate(),
    })
}

impl BenchReport {
    /// The report as a table for a terminal.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "clients  in flight  TTFT direct p50/p99  TTFT via controller p50/p99  added p50  \
             total direct p50/p99  total via controller p50/p99  (ms)\n",
        );
        for r in &self.rounds {
            out.push_str(&format!(
                "{:>7}  {:>9.1}  {:>8.2} / {:>7.2}  {:>14.2} / {:>7.2}  {:>+9.2}  {:>9.2} / {:>7.2}  {:>15.2} / {:>7.2}\n",
                r.clients,
                r.mean_in_flight,
                r.ttft_direct_ms.p50,
                r.ttft_direct_ms.p99,
                r.ttft_controller_ms.p50,
                r.ttft_controller_ms.p99,
                r.ttft_controller_ms.p50 - r.ttft_direct_ms.p50,
                r.total_direct_ms.p50,
                r.total_direct_ms.p99,
                r.total_controller_ms.p50,
                r.total_controller_ms.p99,
            ));
        }
        out.push_str(&format!(
            "dispatch decisions per second (100 workers): {:.0}\n",
            self.dispatch_decisions_per_s
        ));
        out
    }
}

/// `shortest_queue` over 100 registered workers of one model: candidates plus choice.
fn dispatch_rate() -> f64 {
    let registry = Registry::new(Duration::from_secs(3600));
    for i in 0..100 {
        let _ = registry.register(WorkerInfo {
            id: format!("w{i}"),
            address: format!("http://127.0.0.1:{}", 20000 + i),
            models: vec!["m".into()],
            context_length: 2048,
            max_concurrency: 8,
        });
        registry.heartbeat(&format!("w{i}"), (i % 7) as u32);
    }
    let n = 20_000;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(registry.pick("m", Policy::ShortestQueue, &[]));
    }
    n as f64 / start.elapsed().as_secs_f64()
}
