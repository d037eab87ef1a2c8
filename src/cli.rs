//! Command-line flags of the `arena` binary; every command calls into a library crate.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use arena_controller::arena::ArenaSettings;
use arena_worker::generate::params::RawParams;
use arena_worker::run::{self, GenerateOptions, ModelOptions, WorkerOptions};
use arena_worker::serve::served::Input;
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
    /// Run the whole arena here: a controller, two SmolLM2 contestants and the web page
    /// (fetches the model on first run). Ctrl-C stops everything.
    Demo(DemoArgs),
    /// Run the controller: worker registry (gRPC) and the HTTP APIs.
    Controller(ControllerArgs),
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
    /// Ratings (online Elo, Bradley-Terry, bootstrap) on synthetic battles.
    Leaderboard(BenchLeaderboardArgs),
}

/// Flags of `arena demo`; the controller's other settings come from their environment
/// variables (DATABASE_URL, ARENA_HOME, ...).
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the web page and the APIs listen.
    #[arg(long, env = "ARENA_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Where the model is kept (default: ~/.cache/arena/models).
    #[arg(long, env = "ARENA_MODELS")]
    pub models_dir: Option<PathBuf>,
}

/// Flags of `arena leaderboard`.
#[derive(Args, Debug)]
pub struct LeaderboardArgs {
    /// The arena's database (default: sqlite://$ARENA_HOME/arena.db); its counted anonymous
    /// votes are the battles.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A battles file instead: JSONL/JSON or CSV with model_a, model_b, winner (+ tstamp,
    /// anony, turn), e.g. the public Chatbot Arena dataset.
    #[arg(long)]
    pub battles: Option<PathBuf>,
    /// Stop at the first bad row of the file instead of skipping (and listing) bad rows.
    #[arg(long)]
    pub strict: bool,
    /// Bootstrap rounds for the 95% intervals.
    #[arg(long, default_value_t = 100)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Shift Bradley-Terry ratings so MODEL has RATING, e.g. llama-13b=800.
    #[arg(long, value_parser = parse_anchor)]
    pub anchor: Option<(String, f64)>,
    /// Plain maximum likelihood instead of FastChat's L2-regularised fit (C = 1).
    #[arg(long)]
    pub mle: bool,
    /// Models with fewer battles are flagged.
    #[arg(long, default_value_t = 30)]
    pub min_battles: u64,
    /// table, json (one array of row objects) or csv.
    #[arg(long, default_value = "table")]
    pub format: arena_controller::ratings::OutputFormat,
}

fn parse_anchor(spec: &str) -> Result<(String, f64), String> {
    arena_controller::ratings::parse_anchor(spec)
}

impl LeaderboardArgs {
    /// Where the battles come from.
    pub fn source(&self) -> arena_controller::ratings::Source {
        use arena_controller::ratings::Source;
        match &self.battles {
            Some(path) => Source::File {
                path: path.clone(),
                strict: self.strict,
            },
            None => Source::Database(
                self.database_url
                    .clone()
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(default_database_url),
            ),
        }
    }

    /// The rating options.
    pub fn options(&self) -> arena_ratings::RatingOptions {
        use arena_ratings::{RatingOptions, Regularization};
        RatingOptions {
            bootstrap_rounds: self.bootstrap,
            seed: self.seed,
            anchor: self.anchor.clone(),
            regularization: if self.mle {
                Regularization::None
            } else {
                Regularization::L2 { c: 1.0 }
            },
            min_battles: self.min_battles,
        }
    }
}

/// Flags of `arena export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// chatbot-arena (one vote per line) or sharegpt (one conversation per line).
    #[arg(long)]
    pub format: arena_store::export::Format,
    /// The arena's database (default: sqlite://$ARENA_HOME/arena.db).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Also export votes that do not count for the leaderboard (chatbot-arena).
    #[arg(long)]
    pub all: bool,
    /// Write here instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

impl ExportArgs {
    /// The database URL, defaulted like the controller's.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(default_database_url)
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
    #[arg(long)]
    pub write: Option<PathBuf>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
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
    /// The arena's database: postgres://USER:PASS@HOST/DB or sqlite://PATH (default:
    /// sqlite://$ARENA_HOME/arena.db, created on first start).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Longest user message, in characters (longer ones are refused, never cut).
    #[arg(long, env = "ARENA_MAX_MESSAGE_CHARS", default_value_t = 4000)]
    pub max_message_chars: usize,
    /// Most user turns in one conversation or battle.
    #[arg(long, env = "ARENA_MAX_TURNS", default_value_t = 20)]
    pub max_turns: usize,
    /// Largest (and default) max_tokens of an arena answer.
    #[arg(long, env = "ARENA_MAX_TOKENS", default_value_t = 512)]
    pub max_tokens: u32,
    /// Anonymous-battle weights, NAME=WEIGHT,... (unlisted models weigh 1; 0 excludes).
    #[arg(long, env = "ARENA_BATTLE_WEIGHTS", default_value = "", value_parser = parse_weights)]
    pub battle_weights: HashMap<String, f64>,
    /// Comma-separated phrases whose presence in an answer keeps the vote off the
    /// leaderboard (replaces the built-in list; model names are always checked).
    #[arg(long, env = "ARENA_IDENTITY_PHRASES", value_delimiter = ',')]
    pub identity_phrases: Option<Vec<String>>,
    /// File of local moderation rules: one regular expression per line, `#` comments.
    #[arg(long, env = "ARENA_MODERATION_RULES")]
    pub moderation_rules: Option<PathBuf>,
    /// OpenAI-compatible moderation URL (e.g. https://api.openai.com/v1/moderations).
    #[arg(long, env = "ARENA_MODERATION_URL")]
    pub moderation_url: Option<String>,
    /// Bearer key for the moderation URL.
    #[arg(long, env = "ARENA_MODERATION_API_KEY", hide_env_values = true)]
    pub moderation_api_key: Option<String>,
    /// Arena generation requests (new battles, turns, regenerations) per client and window;
    /// 0: no limit.
    #[arg(long, env = "ARENA_RATE_LIMIT", default_value_t = 30)]
    pub rate_limit: u32,
    /// /v1 API requests per client and window; 0: no limit.
    #[arg(long, env = "ARENA_API_RATE_LIMIT", default_value_t = 0)]
    pub api_rate_limit: u32,
    /// The rate-limit window, in seconds.
    #[arg(long, env = "ARENA_RATE_WINDOW_S", default_value_t = 60)]
    pub rate_window_s: u64,
    /// Tell clients apart by the first X-Forwarded-For address (only behind a proxy that
    /// sets it).
    #[arg(long, env = "ARENA_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// Recompute the leaderboard at most every this many seconds (and only when votes arrived).
    #[arg(long, env = "ARENA_LEADERBOARD_INTERVAL_S", default_value_t = 10)]
    pub leaderboard_interval_s: u64,
    /// Bootstrap rounds behind the leaderboard's 95% intervals.
    #[arg(long, env = "ARENA_LEADERBOARD_BOOTSTRAP", default_value_t = 100)]
    pub leaderboard_bootstrap: usize,
    /// Salt of the stored voter hashes (random per start when unset; set it to link one
    /// voter's votes across restarts and replicas).
    #[arg(long, env = "ARENA_VOTER_SALT", hide_env_values = true)]
    pub voter_salt: Option<String>,
}

fn parse_think_ms(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=60_000.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of milliseconds from 0 to 60000"
        )),
    }
}

fn parse_weights(spec: &str) -> Result<HashMap<String, f64>, String> {
    arena_controller::arena::pick::parse_weights(spec)
}

/// `sqlite://$ARENA_HOME/arena.db`, `ARENA_HOME` defaulting to ~/.local/share/arena.
pub fn default_database_url() -> String {
    let home = std::env::var_os("ARENA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
                .join(".local/share/arena")
        });
    format!("sqlite://{}", home.join("arena.db").display())
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
            database_url: self
                .database_url
                .filter(|u| !u.is_empty())
                .unwrap_or_else(default_database_url),
            arena: ArenaSettings {
                max_message_chars: self.max_message_chars,
                max_turns: self.max_turns,
                battle_weights: self.battle_weights,
                identity_phrases: self
                    .identity_phrases
                    .unwrap_or_else(|| ArenaSettings::default().identity_phrases),
                trust_forwarded_for: self.trust_forwarded_for,
                voter_salt: self.voter_salt.filter(|s| !s.is_empty()),
                default_max_tokens: self.max_tokens.max(1),
                ..ArenaSettings::default()
            },
            moderation_rules: self.moderation_rules,
            moderation_url: self.moderation_url.filter(|u| !u.is_empty()),
            moderation_api_key: self.moderation_api_key.filter(|k| !k.is_empty()),
            rate_limit: self.rate_limit,
            api_rate_limit: self.api_rate_limit,
            rate_window: Duration::from_secs(self.rate_window_s.max(1)),
            leaderboard_interval: Duration::from_secs(self.leaderboard_interval_s),
            leaderboard_bootstrap: self.leaderboard_bootstrap,
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
