//! `arena bench train`: training throughput of one configuration (each in its own process, so
//! that its peak memory is its own).

use std::path::PathBuf;

use arena_train::bench::TrainBenchOptions;
use arena_train::model::Tuning;
use clap::Args;

/// Flags of `arena bench train`.
#[derive(Args, Debug)]
pub struct BenchTrainArgs {
    /// A `.gguf` file (dequantized to f32) or a Hugging Face folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Tokens per training sequence (batch 1).
    #[arg(long, default_value_t = 512)]
    pub len: usize,
    /// LoRA rank (0: full fine-tuning).
    #[arg(long, default_value_t = 0)]
    pub lora_rank: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Print one JSON object instead of a line.
    #[arg(long)]
    pub json: bool,
}

impl BenchTrainArgs {
    /// Runs the measurement and prints it.
    pub async fn run(self) -> anyhow::Result<()> {
        let opts = TrainBenchOptions {
            len: self.len,
            tuning: Tuning::from_rank(self.lora_rank, None),
            warmup: self.warmup,
            steps: self.steps,
            seed: 0,
        };
        let model = self.model;
        let report =
            tokio::task::spawn_blocking(move || arena_train::bench::run(&model, &opts)).await??;
        let rss = arena_worker::bench::peak_rss_mib().unwrap_or(0.0);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if self.json {
            let mut v = serde_json::to_value(&report)?;
            v["peak_rss_mib"] = rss.into();
            v["threads"] = threads.into();
            println!("{}", serde_json::to_string(&v)?);
        } else {
            println!(
                "{:?}, {} tokens: {:.2} s/step, {:.1} tokens/s, {} trainable parameters, \
                 peak RSS {rss:.0} MiB",
                report.tuning,
                report.len,
                report.seconds_per_step,
                report.tokens_per_s,
                report.parameters
            );
        }
        Ok(())
    }
}
