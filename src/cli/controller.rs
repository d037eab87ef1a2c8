//! `arena controller`: the worker registry, the APIs and the web arena. Its flags are shown
//! in groups (`help_heading`) in `arena controller --help`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use arena_controller::config;
use arena_controller::gateway::dispatch::Policy;
use arena_controller::site::ArenaSettings;
use arena_controller::ControllerOptions;
use clap::Args;

const NETWORK: &str = "Network";
const WORKERS: &str = "Workers";
const STORE: &str = "Store";
const ARENA: &str = "Arena";
const ACCESS: &str = "Access and limits";
const MODERATION: &str = "Moderation";
const LEADERBOARD: &str = "Leaderboard";
const REDIS: &str = "Redis";

/// Flags of `arena controller`.
#[derive(Args, Debug)]
pub struct ControllerArgs {
    /// HTTP address: OpenAI-compatible API and ops endpoints; port 0 picks a free port.
    #[arg(long, env = "ARENA_HTTP_ADDR", default_value = config::DEFAULT_HTTP_ADDR, help_heading = NETWORK)]
    pub http_addr: SocketAddr,
    /// gRPC address workers register with; port 0 picks a free port.
    #[arg(long, env = "ARENA_GRPC_ADDR", default_value = config::DEFAULT_GRPC_ADDR, help_heading = NETWORK)]
    pub grpc_addr: SocketAddr,
    /// Serve the gRPC port workers register with over TLS, with this certificate chain (PEM);
    /// needs --tls-key.
    #[arg(long, env = "ARENA_GRPC_TLS_CERT", requires = "tls_key", help_heading = NETWORK)]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "ARENA_GRPC_TLS_KEY", requires = "tls_cert", help_heading = NETWORK)]
    pub tls_key: Option<PathBuf>,
    /// Seconds running requests may take to finish on SIGTERM.
    #[arg(long, env = "ARENA_SHUTDOWN_TIMEOUT_S", default_value_t = config::DEFAULT_SHUTDOWN_TIMEOUT_S, help_heading = NETWORK)]
    pub shutdown_timeout_s: u64,

    /// Secret workers must present to register, sent on every call to a worker (strongly
    /// advised in production).
    #[arg(long, env = "ARENA_WORKER_TOKEN", hide_env_values = true, help_heading = WORKERS)]
    pub worker_token: Option<String>,
    /// CA certificate (PEM) trusted beside the system roots for https:// workers (e.g. their
    /// self-signed certificates).
    #[arg(long, env = "ARENA_WORKER_CA", help_heading = WORKERS)]
    pub worker_ca: Option<PathBuf>,
    /// Heartbeat period asked of workers, in milliseconds.
    #[arg(long, env = "ARENA_HEARTBEAT_MS", default_value_t = config::DEFAULT_HEARTBEAT_MS, help_heading = WORKERS)]
    pub heartbeat_ms: u64,
    /// A worker silent this long (milliseconds) leaves the registry.
    #[arg(long, env = "ARENA_WORKER_EXPIRY_MS", default_value_t = config::DEFAULT_WORKER_EXPIRY_MS, help_heading = WORKERS)]
    pub worker_expiry_ms: u64,
    /// How to pick a worker: shortest_queue (least load, ties at random) or lottery (random,
    /// weighted by capacity).
    #[arg(long, env = "ARENA_DISPATCH", default_value = config::DEFAULT_DISPATCH, help_heading = WORKERS)]
    pub dispatch: Policy,
    /// File of API-hosted contestants (OpenAI-compatible endpoints), TOML or JSON.
    #[arg(long, env = "ARENA_ENDPOINTS", help_heading = WORKERS)]
    pub endpoints: Option<PathBuf>,

    /// The arena's database: postgres://USER:PASS@HOST/DB or sqlite://PATH (default:
    /// sqlite://$ARENA_HOME/arena.db, created on first start).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, help_heading = STORE)]
    pub database_url: Option<String>,

    /// Longest user message, in characters (longer ones are refused, never cut).
    #[arg(long, env = "ARENA_MAX_MESSAGE_CHARS", default_value_t = config::DEFAULT_MAX_MESSAGE_CHARS, help_heading = ARENA)]
    pub max_message_chars: usize,
    /// Most user turns in one conversation or battle.
    #[arg(long, env = "ARENA_MAX_TURNS", default_value_t = config::DEFAULT_MAX_TURNS, help_heading = ARENA)]
    pub max_turns: usize,
    /// How long (ms) an answer being generated stays alive without news from its
    /// controller; after a crash its battle can regenerate this long after the last news.
    #[arg(long, env = "ARENA_ANSWER_LEASE_MS", default_value_t = config::DEFAULT_ANSWER_LEASE.as_millis() as u64, help_heading = ARENA)]
    pub answer_lease_ms: u64,
    /// Largest (and default) max_tokens of an arena answer.
    #[arg(long, env = "ARENA_MAX_TOKENS", default_value_t = config::DEFAULT_MAX_TOKENS, help_heading = ARENA)]
    pub max_tokens: u32,
    /// Anonymous-battle weights, NAME=WEIGHT,... (unlisted models weigh 1; 0 excludes).
    #[arg(
        long,
        env = "ARENA_BATTLE_WEIGHTS",
        default_value = "",
        value_parser = arena_controller::site::pick::parse_weights,
        help_heading = ARENA
    )]
    pub battle_weights: HashMap<String, f64>,
    /// Comma-separated phrases whose presence in an answer keeps the vote off the
    /// leaderboard (replaces the built-in list; model names are always checked).
    #[arg(long, env = "ARENA_IDENTITY_PHRASES", value_delimiter = ',', help_heading = ARENA)]
    pub identity_phrases: Option<Vec<String>>,
    /// Salt of the stored voter hashes (random per start when unset; set it to link one
    /// voter's votes across restarts and replicas).
    #[arg(long, env = "ARENA_VOTER_SALT", hide_env_values = true, help_heading = ARENA)]
    pub voter_salt: Option<String>,

    /// Comma-separated API keys accepted as `Authorization: Bearer KEY`; none: open API.
    #[arg(
        long,
        env = "ARENA_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true,
        help_heading = ACCESS
    )]
    pub api_keys: Vec<String>,
    /// Arena generation requests (new battles, turns, regenerations) per client and window;
    /// 0: no limit.
    #[arg(long, env = "ARENA_RATE_LIMIT", default_value_t = config::DEFAULT_RATE_LIMIT, help_heading = ACCESS)]
    pub rate_limit: u32,
    /// /v1 API requests per client and window; 0: no limit.
    #[arg(long, env = "ARENA_API_RATE_LIMIT", default_value_t = config::DEFAULT_API_RATE_LIMIT, help_heading = ACCESS)]
    pub api_rate_limit: u32,
    /// The rate-limit window, in seconds.
    #[arg(long, env = "ARENA_RATE_WINDOW_S", default_value_t = config::DEFAULT_RATE_WINDOW_S, help_heading = ACCESS)]
    pub rate_window_s: u64,
    /// Largest request body in bytes; larger ones are refused with 413 before they are read.
    #[arg(long, env = "ARENA_MAX_BODY_BYTES", default_value_t = config::DEFAULT_MAX_BODY_BYTES, help_heading = ACCESS)]
    pub max_body_bytes: usize,
    /// Tell clients apart by the first X-Forwarded-For address (only behind a proxy that
    /// sets it).
    #[arg(long, env = "ARENA_TRUST_FORWARDED_FOR", help_heading = ACCESS)]
    pub trust_forwarded_for: bool,

    /// File of local moderation rules: one regular expression per line, `#` comments.
    #[arg(long, env = "ARENA_MODERATION_RULES", help_heading = MODERATION)]
    pub moderation_rules: Option<PathBuf>,
    /// OpenAI-compatible moderation URL (e.g. https://api.openai.com/v1/moderations).
    #[arg(long, env = "ARENA_MODERATION_URL", help_heading = MODERATION)]
    pub moderation_url: Option<String>,
    /// Bearer key for the moderation URL.
    #[arg(
        long,
        env = "ARENA_MODERATION_API_KEY",
        hide_env_values = true,
        help_heading = MODERATION
    )]
    pub moderation_api_key: Option<String>,

    /// Recompute the leaderboard at most every this many seconds (and only when votes arrived).
    #[arg(
        long,
        env = "ARENA_LEADERBOARD_INTERVAL_S",
        default_value_t = config::DEFAULT_LEADERBOARD_INTERVAL_S,
        help_heading = LEADERBOARD
    )]
    pub leaderboard_interval_s: u64,
    /// Bootstrap rounds behind the leaderboard's 95% intervals.
    #[arg(
        long,
        env = "ARENA_LEADERBOARD_BOOTSTRAP",
        default_value_t = config::DEFAULT_LEADERBOARD_BOOTSTRAP,
        help_heading = LEADERBOARD
    )]
    pub leaderboard_bootstrap: usize,

    /// Redis URL (redis://HOST:PORT/DB): share the worker registry with other controller
    /// replicas; in-process only when absent.
    #[arg(long, env = "REDIS_URL", help_heading = REDIS)]
    pub redis_url: Option<String>,
}

impl ControllerArgs {
    /// Serves until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        arena_controller::App::build(self.options())
            .await?
            .serve(shutdown)
            .await?;
        Ok(())
    }

    /// Library options for these flags.
    fn options(self) -> ControllerOptions {
        ControllerOptions {
            http_addr: self.http_addr,
            grpc_addr: self.grpc_addr,
            worker_token: self.worker_token.filter(|t| !t.is_empty()),
            worker_ca: self.worker_ca,
            grpc_tls_cert: self.tls_cert,
            grpc_tls_key: self.tls_key,
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
            database_url: super::database_url_or_default(self.database_url),
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
                answer_lease: std::time::Duration::from_millis(self.answer_lease_ms.max(100)),
                ..ArenaSettings::default()
            },
            moderation_rules: self.moderation_rules,
            moderation_url: self.moderation_url.filter(|u| !u.is_empty()),
            moderation_api_key: self.moderation_api_key.filter(|k| !k.is_empty()),
            rate_limit: self.rate_limit,
            api_rate_limit: self.api_rate_limit,
            rate_window: Duration::from_secs(self.rate_window_s.max(1)),
            max_body_bytes: self.max_body_bytes.max(1),
            leaderboard_interval: Duration::from_secs(self.leaderboard_interval_s),
            leaderboard_bootstrap: self.leaderboard_bootstrap,
        }
    }
}
