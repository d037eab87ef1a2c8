//! `arena bench worker|controller|leaderboard` (see docs/BENCHMARKS.md).

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// What to benchmark.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Prefill and decode throughput of a model's forward pass, and peak memory.
    Worker(BenchWorkerArgs),
    /// Time to first token along a multi-turn conversation, with and without the prefix cache.
    Chat(BenchChatArgs),
    /// Latency the controller adds over calling the worker directly, and dispatch rate.
    Controller(BenchControllerArgs),
    /// Ratings (online Elo, Bradley-Terry, bootstrap) on synthetic battles.
    Leaderboard(BenchLeaderboardArgs),
    /// Training throughput (`arena train sft`'s step) at one length, full or LoRA.
    Train(super::bench_train::BenchTrainArgs),
}

impl BenchCommand {
    /// Runs the benchmark and prints its report.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Worker(args) => args.run().await,
            Self::Chat(args) => args.run().await,
            Self::Controller(args) => args.run().await,
            Self::Leaderboard(args) => args.run().await,
            Self::Train(args) => args.run().await,
        }
    }
}

/// Flags of `arena bench leaderboard`.
#[derive(Args, Debug)]
pub struct BenchLeaderboardArgs {
    /// Synthetic battles.
    #[arg(long, default_value_t = 1_000_000)]
    pub battles: u64,
    /// Models among which they are drawn.
    #[arg(long, default_value_t = 100)]
    pub models: usize,
    /// Bootstrap rounds.
    #[arg(long, default_value_t = 100)]
    pub bootstrap: usize,
    /// Seed of the battles and the bootstrap.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the battles to this file (.csv or .jsonl) instead of timing, for FastChat's side
    /// (scripts/bench-leaderboard-fastchat.py) and `arena leaderboard --battles`.
    #[arg(long, conflicts_with = "store")]
    pub write: Option<PathBuf>,
    /// Fill the arena store at this URL (sqlite://PATH or postgres://..., with no votes yet)
    /// with the battles as counted anonymous votes instead of timing, for
    /// `arena leaderboard --database URL`.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

impl BenchLeaderboardArgs {
    async fn run(self) -> anyhow::Result<()> {
        use arena_ratings::bench;
        if let Some(path) = &self.write {
            bench::write_battles(path, self.battles, self.models, self.seed)?;
            println!(
                "wrote {} battles among {} models to {}",
                self.battles,
                self.models,
                path.display()
            );
            return Ok(());
        }
        if let Some(url) = &self.store {
            let store = arena_store::connect(url).await?;
            let started = std::time::Instant::now();
            let n = arena_store::fill_with_synthetic(
                store.as_ref(),
                self.battles,
                self.models,
                self.seed,
            )
            .await?;
            println!(
                "wrote {n} votes among {} models to {} in {:.1} s",
                self.models,
                arena_store::redact(url),
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        let opts = bench::BenchOptions {
            battles: self.battles,
            models: self.models,
            bootstrap_rounds: self.bootstrap,
            seed: self.seed,
        };
        let report = tokio::task::spawn_blocking(move || {
            let mut report = bench::run(&opts)?;
            // The ratings crate reads nothing of the process; its peak memory is added here.
            report.peak_rss_mib = arena_worker::bench::peak_rss_mib();
            Ok::<_, arena_ratings::RatingsError>(report)
        })
        .await??;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", bench::render(&report));
        }
        Ok(())
    }
}

/// Flags of `arena bench controller`.
#[derive(Args, Debug)]
pub struct BenchControllerArgs {
    /// Model the benchmark's worker serves (default: a tiny random LLaMA written to a temp
    /// dir, which isolates the controller's overhead).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Concurrent clients per round, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub clients: Vec<usize>,
    /// Requests per client and path in each round.
    #[arg(long, default_value_t = 50)]
    pub requests: usize,
    /// New tokens per request.
    #[arg(long, default_value_t = 16)]
    pub max_tokens: u32,
    /// Each client waits a random time up to this many milliseconds before each request, so
    /// requests do not all arrive just after the worker's batch steps end; keep it a few times
    /// the worker's step time (raise it for bigger models). 0 sends back to back.
    #[arg(long, default_value_t = 5.0, value_parser = parse_think_ms)]
    pub think_ms: f64,
    /// Send each client's two requests at the same moment and report the percentiles of their
    /// differences: the same request under the same load on both paths (each client then has
    /// two requests in flight). Steadier, but the request leg only counts when it makes the
    /// request miss a batch step, so its median shows mostly the answer's extra hop.
    #[arg(long)]
    pub paired: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_think_ms(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=60_000.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of milliseconds from 0 to 60000"
        )),
    }
}

impl BenchControllerArgs {
    async fn run(self) -> anyhow::Result<()> {
        let opts = arena_launch::bench::BenchOptions {
            arena: super::current_exe()?,
            model: self.model,
            clients: self.clients,
            requests: self.requests,
            max_tokens: self.max_tokens,
            think_ms: self.think_ms,
            paired: self.paired,
        };
        let report = arena_launch::bench::run(&opts).await?;
        if self.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print!("{}", report.table());
        }
        Ok(())
    }
}

/// Flags of `arena bench worker`.
#[derive(Args, Debug)]
pub struct BenchWorkerArgs {
    /// A `.gguf` file or a Hugging Face folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Prompt lengths to prefill, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "128,512")]
    pub prompt_lens: Vec<usize>,
    /// New tokens per decode measurement.
    #[arg(long, default_value_t = 128)]
    pub decode_tokens: usize,
    /// Concurrent sequences for aggregate decode, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4,8")]
    pub concurrency: Vec<usize>,
    /// Repetitions of each measure; the best is reported (batches past 4 sequences: at most 2).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Multiply every row as it would be alone, as `arena worker --batch-invariant` does.
    #[arg(long, env = "ARENA_BATCH_INVARIANT")]
    pub batch_invariant: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl BenchWorkerArgs {
    async fn run(self) -> anyhow::Result<()> {
        if self.batch_invariant {
            arena_worker::model::half::keep_rows_alike();
        }
        let opts = arena_worker::bench::BenchOptions {
            prompt_lens: self.prompt_lens,
            decode_tokens: self.decode_tokens,
            concurrency: self.concurrency,
            repeats: self.repeats,
        };
        let model = self.model;
        let report =
            tokio::task::spawn_blocking(move || arena_worker::bench::run(&model, &opts)).await??;
        if self.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!("model: {}  threads: {}", report.model, report.threads);
            for m in &report.measures {
                println!("{:<45} {:>9.1} tok/s", m.name, m.tokens_per_s);
            }
            println!("{:<45} {:>9.1} MiB", "peak RSS", report.peak_rss_mib);
        }
        Ok(())
    }
}

/// Flags of `arena bench chat`.
#[derive(Args, Debug)]
pub struct BenchChatArgs {
    /// A `.gguf` file or a Hugging Face folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Turns of the conversation (at most 12).
    #[arg(long, default_value_t = 10)]
    pub turns: usize,
    /// Tokens per answer at most (greedy).
    #[arg(long, default_value_t = 200)]
    pub answer_tokens: u32,
    /// MiB of prefix cache for the run with it.
    #[arg(long, default_value_t = 512)]
    pub prefix_cache: usize,
    /// Times the conversation is played on fresh workers; each turn reports the median.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub repeats: u16,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl BenchChatArgs {
    async fn run(self) -> anyhow::Result<()> {
        let opts = arena_worker::chat_bench::ChatBenchOptions {
            turns: self.turns,
            answer_tokens: self.answer_tokens,
            prefix_cache_bytes: self.prefix_cache.saturating_mul(1 << 20),
            repeats: self.repeats.into(),
        };
        let report = arena_worker::chat_bench::run(&self.model, &opts).await?;
        if self.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print!("{}", report.table());
        }
        Ok(())
    }
}
