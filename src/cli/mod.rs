//! Command-line flags of the `arena` binary, one file per subcommand: each defines its flags
//! and a `run` that calls into a library crate.

mod bench;
mod bench_train;
mod controller;
mod demo;
mod eval;
mod export;
mod generate;
mod leaderboard;
mod tokenize;
mod train;
mod worker;

use std::path::PathBuf;

use arena_worker::run::ModelOptions;
use clap::{Args, Parser, Subcommand};

pub use bench::BenchCommand;
pub use controller::ControllerArgs;
pub use demo::DemoArgs;
pub use eval::EvalCommand;
pub use export::ExportArgs;
pub use generate::GenerateArgs;
pub use leaderboard::LeaderboardArgs;
pub use tokenize::TokenizeArgs;
pub use train::TrainCommand;
pub use worker::WorkerArgs;

/// Serve, compare and rank chat LLMs.
#[derive(Parser, Debug)]
#[command(name = "arena", version, about)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `arena_worker=debug`.
    #[arg(long, env = "ARENA_LOG", default_value = "info", global = true)]
    pub log: String,
    /// CPU threads for inference (default: all cores).
    #[arg(long, env = "ARENA_THREADS", global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the whole arena here: a controller, two SmolLM2 contestants and the web page
    /// (fetches the model on first run). Ctrl-C stops everything.
    Demo(DemoArgs),
    /// Run the controller: worker registry (gRPC) and the HTTP APIs.
    Controller(Box<ControllerArgs>),
    /// Serve one model over gRPC, registered with a controller when `--controller` is given.
    Worker(WorkerArgs),
    /// Generate text locally from a model file; the text alone goes to stdout.
    Generate(GenerateArgs),
    /// Print the token ids of a text as one JSON array.
    Tokenize(TokenizeArgs),
    /// Ratings (online Elo, Bradley-Terry with bootstrap 95% intervals) from the store or a
    /// battles file.
    Leaderboard(LeaderboardArgs),
    /// Export votes (Chatbot Arena dataset columns) or conversations (ShareGPT) as JSON lines.
    Export(ExportArgs),
    /// LLM as a judge: answer a question set, judge the answers, show the scores, and compare
    /// the judge with the arena's human votes.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Fine-tune a model on conversations (the Vicuna recipe) into a folder the worker serves.
    #[command(subcommand)]
    Train(TrainCommand),
    /// Benchmarks (see docs/BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// Which model and how to present it (`arena worker`, `arena generate`).
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// A `.gguf` file or a Hugging Face folder (config.json, tokenizer.json, *.safetensors).
    #[arg(long, env = "ARENA_MODEL")]
    pub model: PathBuf,
    /// Conversation template: vicuna_v1.1, alpaca, llama-2, zero_shot, chatml, or `model`
    /// (default: the model's own chat template, else chosen by model name).
    #[arg(long, env = "ARENA_TEMPLATE")]
    pub template: Option<String>,
    /// Device: cpu, cuda or cuda:N (cuda needs a build with `--features cuda`).
    #[arg(long, env = "ARENA_DEVICE", default_value = "cpu")]
    pub device: String,
    /// Read special tokens (`<|im_start|>`, `</s>`, ...) written in raw prompts
    /// (`/v1/completions`, `--prompt`) as control tokens; by default they are plain text.
    /// Chat messages are always plain text.
    #[arg(long, env = "ARENA_ALLOW_SPECIAL_TOKENS")]
    pub allow_special_tokens: bool,
}

impl ModelArgs {
    fn options(self, name: Option<String>) -> ModelOptions {
        ModelOptions {
            path: self.model,
            name,
            template: self.template,
            device: self.device,
            allow_special_tokens: self.allow_special_tokens,
        }
    }
}

/// `--database-url` when given and not empty, else `sqlite://$ARENA_HOME/arena.db`,
/// `ARENA_HOME` defaulting to ~/.local/share/arena.
fn database_url_or_default(url: Option<String>) -> String {
    url.filter(|u| !u.is_empty()).unwrap_or_else(|| {
        let home = std::env::var_os("ARENA_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
                    .join(".local/share/arena")
            });
        format!("sqlite://{}", home.join("arena.db").display())
    })
}

/// The running `arena` binary, which the launcher starts the parts with.
fn current_exe() -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    std::env::current_exe().context("locating the arena binary")
}
