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
//! (a 2 ms pause after each controller request, untimed, raised the measured overhead from
//! +2.3 to +4.6 ms on average). A random wait spreads arrivals over the step, as independent
//! users would.
//!
//! With `paired`, each client sends its two requests at the same moment instead, and the
//! report adds the percentiles of their differences: the same request under the same load on
//! both paths, far steadier than the difference of two wide distributions' medians. Both
//! requests then usually join the same batch step, so the difference holds the answer's extra
//! hop in full but the request's only when it makes that request miss the step: its median is
//! a lower bound of what the controller adds, the unpaired difference of medians the measure.

mod load;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arena_controller::gateway::dispatch::Policy;
use arena_controller::gateway::registry::{Registry, WorkerInfo};
use arena_proto::v1::worker_client::WorkerClient;
use arena_worker::model::tiny_gguf::{write_tiny_gguf, VocabKind};
use serde::Serialize;

use load::{Client, Sample};

use crate::error::LaunchError;
use crate::process;

pub use load::chat_request;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The `arena` binary to start the controller and worker with.
    pub arena: PathBuf,
    /// Model the worker serves; None: a tiny random LLaMA written to the benchmark's scratch
    /// folder (a tiny one shows the overhead best).
    pub model: Option<PathBuf>,
    /// Concurrent clients per round.
    pub clients: Vec<usize>,
    /// Requests per client per path.
    pub requests: usize,
    /// New tokens per request.
    pub max_tokens: u32,
    /// Upper bound of each client's random wait before a request, in milliseconds.
    pub think_ms: f64,
    /// Send each client's two requests at the same moment (two in flight per client).
    pub paired: bool,
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
    /// Time to first token through the controller minus straight to the worker, per pair of
    /// requests sent together (paired runs only).
    pub added_ttft_ms: Option<Percentiles>,
    /// The same for the whole request (paired runs only).
    pub added_total_ms: Option<Percentiles>,
}

impl Round {
    /// What the controller adds to the time to first token at p50: the median of the pairs'
    /// differences when paired, else the difference of the two medians.
    pub fn added_ttft_p50(&self) -> f64 {
        self.added_ttft_ms
            .map_or(self.ttft_controller_ms.p50 - self.ttft_direct_ms.p50, |a| {
                a.p50
            })
    }
}

/// The report.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// Per concurrency level.
    pub rounds: Vec<Round>,
    /// `shortest_queue` decisions per second over 100 workers.
    pub dispatch_decisions_per_s: f64,
}

fn percentiles(mut v: Vec<f64>) -> Percentiles {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Percentiles {
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// Runs the benchmark.
pub async fn run(opts: &BenchOptions) -> Result<BenchReport, LaunchError> {
    if opts.requests == 0 || opts.clients.is_empty() || opts.clients.contains(&0) {
        return Err(LaunchError::Config(
            "the benchmark needs at least one request per client and client counts of 1 or more"
                .into(),
        ));
    }
    // The benchmark's own throwaway store (never the user's arena database) and default
    // model, in one folder removed when it ends.
    let scratch = tempfile::tempdir()?;
    let model = match &opts.model {
        Some(model) => model.clone(),
        None => {
            let path = scratch.path().join("tiny-chat.gguf");
            write_tiny_gguf(&path, VocabKind::Gpt2, 1)?;
            path
        }
    };
    measure(opts, &scratch.path().join("bench.db"), &model).await
}

async fn measure(
    opts: &BenchOptions,
    db: &std::path::Path,
    model: &std::path::Path,
) -> Result<BenchReport, LaunchError> {
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
            "--ops-addr",
            "127.0.0.1:0",
            "--heartbeat-ms",
            "500",
        ],
        &[("ARENA_LOG", "warn")],
        arena_controller::READY_LINE,
        false,
    )?;
    let (http_addr, grpc_addr, ops_addr) = process::field(&rest, "http=")
        .zip(process::field(&rest, "grpc="))
        .zip(process::field(&rest, "ops="))
        .map(|((h, g), o)| (h, g, o))
        .ok_or_else(|| LaunchError::Server(format!("cannot parse '{rest}'")))?;
    let model = model.to_string_lossy().into_owned();
    // Every request is admitted at once, so the worker's queue is not what is measured.
    let most = opts.clients.iter().max().copied().unwrap_or(1);
    let max_concurrency = (most * if opts.paired { 2 } else { 1 }).max(64).to_string();
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
            &max_concurrency,
            "--controller",
            &controller_url,
        ],
        &[("ARENA_LOG", "warn")],
        arena_worker::READY_LINE,
        false,
    )?;
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .map_err(|e| LaunchError::Server(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http
        .get(format!("http://{ops_addr}/api/workers"))
        .send()
        .await
        .map_err(|e| LaunchError::Server(e.to_string()))?
        .text()
        .await
        .unwrap_or_default()
        .contains("bench")
    {
        if Instant::now() > deadline {
            return Err(LaunchError::Server("the worker did not register".into()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let worker = WorkerClient::connect(format!("http://{worker_addr}"))
        .await
        .map_err(|e| LaunchError::Server(e.to_string()))?;
    let url = Arc::new(format!("http://{http_addr}/v1/chat/completions"));
    // Warm both paths.
    load::direct(&mut worker.clone(), opts.max_tokens).await?;
    load::via(&http, &url, opts.max_tokens).await?;
    let client = Client {
        worker,
        http,
        url,
        max_tokens: opts.max_tokens,
        think_ms: opts.think_ms,
        paired: opts.paired,
    };
    let mut rounds = Vec::new();
    for &clients in &opts.clients {
        let mut tasks = Vec::new();
        let started = Instant::now();
        for _ in 0..clients {
            tasks.push(tokio::spawn(client.clone().run(opts.requests)));
        }
        let mut samples = Vec::new();
        for t in tasks {
            samples.extend(t.await.map_err(|e| LaunchError::Server(e.to_string()))??);
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
            added_ttft_ms: opts.paired.then(|| pick(|s| s.via.ttft - s.direct.ttft)),
            added_total_ms: opts.paired.then(|| pick(|s| s.via.total - s.direct.total)),
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
                r.added_ttft_p50(),
                r.total_direct_ms.p50,
                r.total_direct_ms.p99,
                r.total_controller_ms.p50,
                r.total_controller_ms.p99,
            ));
        }
        let paired = self.rounds.iter().any(|r| r.added_ttft_ms.is_some());
        out.push_str(if paired {
            "added p50: median over pairs of requests sent together of TTFT via minus TTFT direct\n"
        } else {
            "added p50: TTFT via controller p50 minus TTFT direct p50\n"
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(p50: f64, p99: f64) -> Percentiles {
        Percentiles { p50, p99 }
    }

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<f64> = (1..=101).rev().map(f64::from).collect();
        let q = percentiles(v);
        assert_eq!((q.p50, q.p99), (51.0, 100.0));
        assert_eq!(percentiles(vec![7.0]).p99, 7.0);
    }

    #[test]
    fn added_is_the_pairs_median_when_paired() {
        let mut round = Round {
            clients: 1,
            ttft_direct_ms: p(10.0, 20.0),
            ttft_controller_ms: p(10.5, 21.0),
            total_direct_ms: p(30.0, 40.0),
            total_controller_ms: p(30.5, 41.0),
            mean_in_flight: 1.0,
            added_ttft_ms: None,
            added_total_ms: None,
        };
        assert!((round.added_ttft_p50() - 0.5).abs() < 1e-12);
        round.added_ttft_ms = Some(p(0.2, 3.0));
        assert_eq!(round.added_ttft_p50(), 0.2);
    }
}
