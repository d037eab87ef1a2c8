//! The options of `arena controller` and every default, in one place: the command line
//! (clap) and [`ArenaSettings::default`] read these constants.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use arena_store::VoteLimits;

use crate::gateway::dispatch::Policy;
use crate::http::TrustedProxies;

/// Where the HTTP APIs and the page listen.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
/// Where workers register over gRPC.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:21001";
/// Default ops address: loopback only, since worker loads and per-model timings would tell an
/// anonymous battle's sides apart.
pub const DEFAULT_OPS_ADDR: &str = "127.0.0.1:21003";
/// Seconds running requests may take to finish on SIGTERM.
pub const DEFAULT_SHUTDOWN_TIMEOUT_S: u64 = 30;
/// Heartbeat period asked of workers, in milliseconds.
pub const DEFAULT_HEARTBEAT_MS: u64 = 2000;
/// Silence (milliseconds) after which a worker leaves the registry.
pub const DEFAULT_WORKER_EXPIRY_MS: u64 = 6000;
/// How a worker is picked.
pub const DEFAULT_DISPATCH: &str = "shortest_queue";
/// Longest user message, in characters.
pub const DEFAULT_MAX_MESSAGE_CHARS: usize = 4000;
/// Most user turns in one conversation.
pub const DEFAULT_MAX_TURNS: usize = 20;
/// Largest (and default) max_tokens of an arena answer.
pub const DEFAULT_MAX_TOKENS: u32 = 512;
/// Sampling temperature the page starts from.
pub const DEFAULT_TEMPERATURE: f32 = 0.7;
/// top_p the page starts from.
pub const DEFAULT_TOP_P: f32 = 1.0;
/// Arena generation requests per client and window.
pub const DEFAULT_RATE_LIMIT: u32 = 30;
/// Default votes and ratings per client and window: a person votes after reading two
/// answers, so a fast voter is a script.
pub const DEFAULT_VOTE_RATE_LIMIT: u32 = 20;
/// A vote sooner than this (ms) after both answers finished does not count: a script votes
/// within milliseconds, while a person who read the answers as they streamed still needs
/// about a second to point and click.
pub const DEFAULT_MIN_VOTE_DELAY_MS: u64 = 1000;
/// A client's votes beyond this many in the trailing hour do not count: a vote a minute for a
/// whole hour, prompts and answers included, is more than a person sustains (raise it where
/// many people share one address).
pub const DEFAULT_MAX_VOTES_PER_HOUR: u64 = 60;
/// A client's votes beyond this many in a row for the same side do not count: sides are
/// shuffled, so an honest voter's streak passes 10 once in about a thousand votes, while
/// "always left" passes it at once.
pub const DEFAULT_MAX_SAME_SIDE_STREAK: u64 = 10;
/// Most choices (`n`) one OpenAI API request may ask for: each is a sequence on a worker.
pub const MAX_CHOICES: u32 = 8;
/// `/v1` requests per client and window (0: no limit).
pub const DEFAULT_API_RATE_LIMIT: u32 = 0;
/// The rate-limit window, in seconds.
pub const DEFAULT_RATE_WINDOW_S: u64 = 60;
/// Largest request body, in bytes: a whole context of text is far less, and a body is
/// refused before it is parsed, let alone tokenized.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Seconds between leaderboard recomputations (at most; only when votes arrived).
pub const DEFAULT_LEADERBOARD_INTERVAL_S: u64 = 10;
/// Bootstrap rounds behind the leaderboard's intervals (0: arena-rank's sandwich intervals instead).
pub const DEFAULT_LEADERBOARD_BOOTSTRAP: usize = 0;
/// Battles a model needs in a category to be listed on that category's leaderboard.
pub const DEFAULT_CATEGORY_MIN_BATTLES: u64 = 10;

/// FastChat's boost factor for models it samples more (`SAMPLING_BOOST_MODELS`: weight × 5).
pub const DEFAULT_NEW_MODEL_BOOST: f64 = 5.0;
/// Counted votes until a model's boost ends and its rating stops being provisional: a battle
/// against an even opponent carries about ¼ (log-odds)² of information, so n votes give a
/// 95% interval of about ±1.96·173.7·2/√n points, ±39 at 300, below the gaps that usually
/// separate neighbours on a leaderboard.
pub const DEFAULT_NEW_MODEL_VOTES: u64 = 300;

/// Milliseconds a worker or API-hosted contestant may take to accept a connection.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2000;
/// Milliseconds to wait for the first token: a long prompt on a CPU worker needs its prefill
/// time, so this is generous; past it the request moves to another worker.
pub const DEFAULT_FIRST_TOKEN_TIMEOUT_MS: u64 = 60_000;
/// Milliseconds to wait for each next token; past it the stream ends with an error.
pub const DEFAULT_TOKEN_TIMEOUT_MS: u64 = 30_000;
/// Consecutive failures or timeouts of a worker that open its circuit breaker (0: never).
pub const DEFAULT_BREAKER_FAILURES: u32 = 3;
/// Milliseconds an open breaker keeps a worker out of dispatch, doubling each time it opens
/// again, before one trial request.
pub const DEFAULT_BREAKER_COOLDOWN_MS: u64 = 10_000;
/// The longest cool-down, in milliseconds.
pub const DEFAULT_BREAKER_MAX_COOLDOWN_MS: u64 = 60_000;
/// Milliseconds a client may take to send a request's headers; also how long an idle
/// keep-alive connection stays open.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// Open HTTP connections at most (others get 503).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Open HTTP connections per client address at most (others get 429; 0: no cap).
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 64;

/// Options of `arena controller`.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// HTTP listen address (port 0 picks a free port).
    pub http_addr: SocketAddr,
    /// gRPC listen address for workers.
    pub grpc_addr: SocketAddr,
    /// Ops listen address: `/api/workers`, `/metrics`, detailed `/ready`.
    pub ops_addr: SocketAddr,
    /// Secret workers must present to register; also sent on every call to a worker.
    pub worker_token: Option<String>,
    /// Extra CA certificate (PEM file) trusted, beside the system roots, for `https://` workers.
    pub worker_ca: Option<std::path::PathBuf>,
    /// Certificate chain (PEM file) of the gRPC port workers register with; TLS when set.
    pub grpc_tls_cert: Option<std::path::PathBuf>,
    /// Private key (PEM file) of `grpc_tls_cert`.
    pub grpc_tls_key: Option<std::path::PathBuf>,
    /// Accepted API keys; empty means open.
    pub api_keys: Vec<String>,
    /// How workers are picked.
    pub policy: Policy,
    /// Redis URL to share the registry with other replicas; in-process only when absent.
    pub redis_url: Option<String>,
    /// File of API-hosted contestants (TOML or JSON).
    pub endpoints: Option<std::path::PathBuf>,
    /// Heartbeat period asked of workers.
    pub heartbeat_interval: Duration,
    /// Silence after which a worker leaves the registry.
    pub worker_expiry: Duration,
    /// How long in-flight HTTP streams may run on shutdown.
    pub shutdown_timeout: Duration,
    /// The arena's database: `postgres://...` or `sqlite://PATH`.
    pub database_url: String,
    /// Limits and rules of the arena.
    pub arena: ArenaSettings,
    /// File of the terms of use shown before the first message; built-in ones when None.
    pub terms: Option<std::path::PathBuf>,
    /// The model catalog (TOML): display name, organization, licence, link and description
    /// per served model, shown on the page.
    pub model_info: Option<std::path::PathBuf>,
    /// File of local moderation rules (one regular expression per line).
    pub moderation_rules: Option<std::path::PathBuf>,
    /// An OpenAI-compatible `/v1/moderations` URL every user message is checked with.
    pub moderation_url: Option<String>,
    /// Bearer key for the moderation URL.
    pub moderation_api_key: Option<String>,
    /// An OpenAI-compatible base URL whose model tags hard prompts after votes.
    pub hard_prompt_labeller: Option<String>,
    /// The labeller's model name.
    pub hard_prompt_model: Option<String>,
    /// Bearer key for the labeller.
    pub hard_prompt_api_key: Option<String>,
    /// Arena generation requests per client and window; 0: no limit.
    pub rate_limit: u32,
    /// `/v1` requests per client and window; 0: no limit.
    pub api_rate_limit: u32,
    /// Votes and ratings per client and window; 0: no limit.
    pub vote_rate_limit: u32,
    /// The rate-limit window.
    pub rate_window: Duration,
    /// Largest request body in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// The leaderboard is recomputed at most this often (and only when votes arrived).
    pub leaderboard_interval: Duration,
    /// Bootstrap rounds behind the leaderboard's intervals; 0: sandwich intervals.
    pub leaderboard_bootstrap: usize,
    /// A category's leaderboard lists only models with at least this many battles in it.
    pub category_min_battles: u64,
    /// Keep one leaderboard snapshot a day in the store.
    pub daily_snapshots: bool,
    /// How long calls to workers and API-hosted contestants may wait.
    pub timeouts: Timeouts,
    /// When a failing worker is taken out of dispatch for a while.
    pub breaker: BreakerSettings,
    /// Timeouts and connection caps of the HTTP listener.
    pub server_limits: ServerLimits,
}

/// Phrases that give a model's identity away, after FastChat's `clean_battle_data.py`, plus
/// the demo model's own name. `--identity-phrases` replaces the list.
pub const DEFAULT_IDENTITY_PHRASES: &[&str] = &[
    "vicuna",
    "lmsys",
    "koala",
    "uc berkeley",
    "open assistant",
    "laion",
    "chatglm",
    "chatgpt",
    "gpt-4",
    "openai",
    "anthropic",
    "claude",
    "bard",
    "palm",
    "lamda",
    "google",
    "llama",
    "mistral",
    "deepseek",
    "smollm",
    "hugging face",
];

/// How long an answer being generated counts as alive without news from its controller:
/// after a crash, its battle can regenerate or vote this long after the last sign of life.
pub const DEFAULT_ANSWER_LEASE: Duration = Duration::from_secs(10);

/// Limits and rules of the arena, from the controller's flags.
#[derive(Debug, Clone)]
pub struct ArenaSettings {
    /// Longest user message, in characters.
    pub max_message_chars: usize,
    /// Most user turns in one conversation.
    pub max_turns: usize,
    /// Anonymous-battle weights by model (1 when absent, 0 excludes).
    pub battle_weights: HashMap<String, f64>,
    /// Factor on the weight of a model with fewer than `new_model_votes` counted votes
    /// (1: no boost).
    pub new_model_boost: f64,
    /// Counted votes a model needs before its boost ends and its rating is no longer
    /// provisional (0: no boost, nobody provisional).
    pub new_model_votes: u64,
    /// How often battle starts look for new votes to recount the boost by.
    pub vote_count_refresh: Duration,
    /// Phrases whose presence in an answer keeps a vote off the leaderboard.
    pub identity_phrases: Vec<String>,
    /// Proxies whose `X-Forwarded-For` names the client; none: the peer is the client.
    pub trusted_proxies: TrustedProxies,
    /// Salt of voter and client hashes; random per start when None.
    pub voter_salt: Option<String>,
    /// Sampling defaults the page starts from.
    pub default_temperature: f32,
    /// Default top_p.
    pub default_top_p: f32,
    /// Default and largest max_tokens of an answer.
    pub default_max_tokens: u32,
    /// Lease of an answer being generated, renewed while it streams.
    pub answer_lease: Duration,
    /// Thresholds of the client rules applied to every vote's signals (0 turns one off).
    pub vote_limits: VoteLimits,
}

impl Default for ArenaSettings {
    fn default() -> Self {
        Self {
            max_message_chars: DEFAULT_MAX_MESSAGE_CHARS,
            max_turns: DEFAULT_MAX_TURNS,
            battle_weights: HashMap::new(),
            new_model_boost: DEFAULT_NEW_MODEL_BOOST,
            new_model_votes: DEFAULT_NEW_MODEL_VOTES,
            vote_count_refresh: Duration::from_secs(DEFAULT_LEADERBOARD_INTERVAL_S),
            identity_phrases: DEFAULT_IDENTITY_PHRASES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            trusted_proxies: TrustedProxies::default(),
            voter_salt: None,
            default_temperature: DEFAULT_TEMPERATURE,
            default_top_p: DEFAULT_TOP_P,
            default_max_tokens: DEFAULT_MAX_TOKENS,
            answer_lease: DEFAULT_ANSWER_LEASE,
            vote_limits: VoteLimits {
                min_vote_delay_ms: DEFAULT_MIN_VOTE_DELAY_MS,
                max_votes_per_hour: DEFAULT_MAX_VOTES_PER_HOUR,
                max_same_side_streak: DEFAULT_MAX_SAME_SIDE_STREAK,
            },
        }
    }
}

/// How long the gateway waits on a worker or an API-hosted contestant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To connect.
    pub connect: Duration,
    /// From dispatch to the first message; past it the request fails over.
    pub first_token: Duration,
    /// Between two messages; past it the stream ends with an error.
    pub between_tokens: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS),
            first_token: Duration::from_millis(DEFAULT_FIRST_TOKEN_TIMEOUT_MS),
            between_tokens: Duration::from_millis(DEFAULT_TOKEN_TIMEOUT_MS),
        }
    }
}

/// The per-worker circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open it (0: it never opens).
    pub failures: u32,
    /// How long it stays open the first time; doubled each time it opens again.
    pub cool_down: Duration,
    /// The longest cool-down.
    pub max_cool_down: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: DEFAULT_BREAKER_FAILURES,
            cool_down: Duration::from_millis(DEFAULT_BREAKER_COOLDOWN_MS),
            max_cool_down: Duration::from_millis(DEFAULT_BREAKER_MAX_COOLDOWN_MS),
        }
    }
}

/// What an HTTP listener allows its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// To send a request's headers, from the connection's start or the previous response
    /// (so also the idle keep-alive timeout).
    pub header_read_timeout: Duration,
    /// Open connections at most; the next one is answered 503 and closed.
    pub max_connections: usize,
    /// Open connections per client address (IPv6: per /64) at most; the next one is answered
    /// 429 and closed. 0: no cap (behind a proxy every client shares its address).
    pub max_connections_per_client: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_millis(DEFAULT_HEADER_READ_TIMEOUT_MS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        }
    }
}
