//! Command-line flags of the `arena` binary; every command calls into a library crate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use arena_worker::params::RawParams;
use arena_worker::run::{self, GenerateOptions, ModelOptions, WorkerOptions};
use arena_worker::served::Input;
use clap::{Args, Parser, Subcommand};

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
    /// Run the controller: worker registry (gRPC) and the HTTP APIs.
    Controller(ControllerArgs),
    /// Serve one model over gRPC, registered with a controller when `--controller` is given.
    Worker(WorkerArgs),
    /// Generate text locally from a model file; the text alone goes to stdout.
    Generate(GenerateArgs),
    /// Print the token ids of a text as one JSON array.
    Tokenize(TokenizeArgs),
    /// Benchmarks (see docs/BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// What to benchmark.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Prefill and decode throughput of a model's forward pass, and peak memory.
    Worker(BenchWorkerArgs),
    /// Latency the controller adds over calling the worker directly, and dispatch rate.
    Controller(BenchControllerArgs),
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
    #[arg(long, default_value_t = 20)]
    pub requests: usize,
    /// New tokens per request.
    #[arg(long, default_value_t = 16)]
    pub max_tokens: u32,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
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
    /// Repetitions of prefill and single-stream decode; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `arena controller`.
#[derive(Args, Debug)]
pub struct ControllerArgs {
    /// HTTP address: OpenAI-compatible API and ops endpoints; port 0 picks a free port.
    #[arg(long, env = "ARENA_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// gRPC address workers register with; port 0 picks a free port.
    #[arg(long, env = "ARENA_GRPC_ADDR", default_value = "127.0.0.1:21001")]
    pub grpc_addr: SocketAddr,
    /// Secret workers must present to register (strongly advised in production).
    #[arg(long, env = "ARENA_WORKER_TOKEN", hide_env_values = true)]
    pub worker_token: Option<String>,
    /// Comma-separated API keys accepted as `Authorization: Bearer KEY`; none: open API.
    #[arg(
        long,
        env = "ARENA_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,
    /// Heartbeat period asked of workers, in milliseconds.
    #[arg(long, env = "ARENA_HEARTBEAT_MS", default_value_t = 2000)]
    pub heartbeat_ms: u64,
    /// How to pick a worker: shortest_queue (least load, ties at random) or lottery (random,
    /// weighted by capacity).
    #[arg(long, env = "ARENA_DISPATCH", default_value = "shortest_queue")]
    pub dispatch: arena_controller::dispatch::Policy,
    /// Redis URL (redis://HOST:PORT/DB): share the worker registry with other controller
    /// replicas; in-process only when absent.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// File of API-hosted contestants (OpenAI-compatible endpoints), TOML or JSON.
    #[arg(long, env = "ARENA_ENDPOINTS")]
    pub endpoints: Option<PathBuf>,
    /// A worker silent this long (milliseconds) leaves the registry.
    #[arg(long, env = "ARENA_WORKER_EXPIRY_MS", default_value_t = 6000)]
    pub worker_expiry_ms: u64,
    /// Seconds running requests may take to finish on SIGTERM.
    #[arg(long, env = "ARENA_SHUTDOWN_TIMEOUT_S", default_value_t = 30)]
    pub shutdown_timeout_s: u64,
}

impl ControllerArgs {
    /// Library options for these flags.
    pub fn options(self) -> arena_controller::run::ControllerOptions {
        arena_controller::run::ControllerOptions {
            http_addr: self.http_addr,
            grpc_addr: self.grpc_addr,
            worker_token: self.worker_token.filter(|t| !t.is_empty()),
            policy: self.dispatch,
            endpoints: self.endpoints,
            redis_url: self.redis_url.filter(|u| !u.is_empty()),
            api_keys: self
                .api_keys
                .into_iter()
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect(),
            heartbeat_interval: Duration::from_millis(self.heartbeat_ms.max(1)),
            worker_expiry: Duration::from_millis(self.worker_expiry_ms.max(1)),
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_s),
        }
    }
}

/// Which model and how to present it.
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
}

/// Flags of `arena worker`.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Name the model is served under (default: the file or folder name).
    #[arg(long, env = "ARENA_MODEL_NAME")]
    pub name: Option<String>,
    /// gRPC listen address; port 0 picks a free port.
    #[arg(long, env = "ARENA_WORKER_LISTEN", default_value = "127.0.0.1:21002")]
    pub listen: SocketAddr,
    /// URL the controller dials to reach this worker (default: http://<listen address>).
    #[arg(long, env = "ARENA_WORKER_ADVERTISE")]
    pub advertise: Option<String>,
    /// Controller gRPC URL, e.g. http://127.0.0.1:21001; standalone when absent.
    #[arg(long, env = "ARENA_CONTROLLER")]
    pub controller: Option<String>,
    /// Shared secret presented on registration.
    #[arg(long, env = "ARENA_WORKER_TOKEN", hide_env_values = true)]
    pub worker_token: Option<String>,
    /// Worker id (default: the model name plus a random suffix).
    #[arg(long, env = "ARENA_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Sequences generated at once; more requests wait in a queue.
    #[arg(long, env = "ARENA_MAX_CONCURRENCY", default_value_t = 8)]
    pub max_concurrency: usize,
    /// Heartbeat period in milliseconds, unless the controller sets one.
    #[arg(long, env = "ARENA_HEARTBEAT_MS", default_value_t = 2000)]
    pub heartbeat_ms: u64,
    /// Seconds to let running requests finish on SIGTERM before exiting.
    #[arg(long, env = "ARENA_DRAIN_TIMEOUT_S", default_value_t = 30)]
    pub drain_timeout_s: u64,
}

/// Sampling flags shared by local generation.
#[derive(Args, Debug)]
pub struct SamplingArgs {
    /// New tokens at most.
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: u32,
    /// Temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Top-k cut-off (0: off).
    #[arg(long, default_value_t = 0)]
    pub top_k: u32,
    /// Repetition penalty (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    /// Seed for reproducible sampling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop string (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
}

/// Flags of `arena generate`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["prompt", "chat"])))]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Raw prompt, tokenized as is.
    #[arg(long)]
    pub prompt: Option<String>,
    /// One user message, rendered with the conversation template.
    #[arg(long)]
    pub chat: Option<String>,
    /// System message replacing the template's default.
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// Flags of `arena tokenize`.
#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// A `.gguf` file or a Hugging Face folder.
    #[arg(long)]
    pub model: PathBuf,
    /// The text to tokenize.
    #[arg(long)]
    pub text: String,
    /// Add BOS/EOS as the model's tokenizer would for a prompt.
    #[arg(long)]
    pub add_special: bool,
}

impl ModelArgs {
    fn options(self, name: Option<String>) -> ModelOptions {
        ModelOptions {
            path: self.model,
            name,
            template: self.template,
            device: self.device,
        }
    }
}

impl WorkerArgs {
    /// Library options for these flags.
    pub fn options(self) -> WorkerOptions {
        WorkerOptions {
            model: self.model.options(self.name),
            listen: self.listen,
            advertise: self.advertise,
            controller: self.controller,
            token: self.worker_token.filter(|t| !t.is_empty()),
            worker_id: self.worker_id,
            max_concurrency: self.max_concurrency,
            heartbeat_interval: Duration::from_millis(self.heartbeat_ms.max(1)),
            drain_timeout: Duration::from_secs(self.drain_timeout_s),
        }
    }
}

impl GenerateArgs {
    /// Library options for these flags.
    pub fn options(self) -> GenerateOptions {
        let s = self.sampling;
        let input = match (self.prompt, self.chat) {
            (Some(p), _) => Input::Prompt(p),
            (None, Some(c)) => run::chat_input(&c),
            (None, None) => run::chat_input(""),
        };
        GenerateOptions {
            model: self.model.options(None),
            input,
            system: self.system,
            params: RawParams {
                temperature: Some(s.temperature),
                top_p: Some(s.top_p),
                top_k: Some(s.top_k),
                repetition_penalty: Some(s.repetition_penalty),
                max_new_tokens: Some(s.max_new_tokens),
                stop: s.stop,
                stop_token_ids: Vec::new(),
                seed: s.seed,
            },
        }
    }
}
