//! `arena controller`: the worker registry, the APIs and the web arena. Its flags are shown
//! in groups (`help_heading`) in `arena controller --help`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use arena_controller::config;
use arena_controller::gateway::dispatch::Policy;
use arena_controller::http::TrustedProxies;
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
const TIMEOUTS: &str = "Timeouts and connection limits";

/// Flags of `arena controller`.
#[derive(Args, Debug)]
pub struct ControllerArgs {
    /// Public HTTP address: the OpenAI-compatible API, the arena and its page, `/health`,
    /// `/ready`; port 0 picks a free port.
    #[arg(long, env = "ARENA_HTTP_ADDR", default_value = config::DEFAULT_HTTP_ADDR, help_heading = NETWORK)]
    pub http_addr: SocketAddr,
    /// gRPC address workers register with; port 0 picks a free port.
    #[arg(long, env = "ARENA_GRPC_ADDR", default_value = config::DEFAULT_GRPC_ADDR, help_heading = NETWORK)]
    pub grpc_addr: SocketAddr,
    /// Ops HTTP address (`/api/workers`, `/metrics`, detailed `/ready`): keep it private
    /// (loopback by default), since load and timings per worker tell battle sides apart.
    #[arg(long, env = "ARENA_OPS_ADDR", default_value = config::DEFAULT_OPS_ADDR, help_heading = NETWORK)]
    pub ops_addr: SocketAddr,
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
    /// Factor on the anonymous-battle weight of a model with fewer than --new-model-votes
    /// counted votes (FastChat's boost is 5; 1 turns it off).
    #[arg(
        long,
        env = "ARENA_NEW_MODEL_BOOST",
        default_value_t = config::DEFAULT_NEW_MODEL_BOOST,
        value_parser = arena_controller::site::pairing::parse_boost,
        help_heading = ARENA
    )]
    pub new_model_boost: f64,
    /// Counted anonymous votes until a model's boost ends and its rating stops being marked
    /// provisional (0: no boost, nothing provisional).
    #[arg(long, env = "ARENA_NEW_MODEL_VOTES", default_value_t = config::DEFAULT_NEW_MODEL_VOTES, help_heading = ARENA)]
    pub new_model_votes: u64,
    /// Comma-separated phrases whose presence in an answer keeps the vote off the
    /// leaderboard (replaces the built-in list; model names are always checked).
    #[arg(long, env = "ARENA_IDENTITY_PHRASES", value_delimiter = ',', help_heading = ARENA)]
    pub identity_phrases: Option<Vec<String>>,
    /// A vote sooner than this many ms after both answers finished is stored but does not
    /// count (nobody read them that fast); 0: off.
    #[arg(long, env = "ARENA_MIN_VOTE_DELAY_MS", default_value_t = config::DEFAULT_MIN_VOTE_DELAY_MS, help_heading = ARENA)]
    pub min_vote_delay_ms: u64,
    /// A client's votes beyond this many in the trailing hour are stored but do not count;
    /// 0: off (raise it where many people share one address).
    #[arg(long, env = "ARENA_MAX_VOTES_PER_HOUR", default_value_t = config::DEFAULT_MAX_VOTES_PER_HOUR, help_heading = ARENA)]
    pub max_votes_per_hour: u64,
    /// A client's votes beyond this many in a row for the same side (A or B; a tie breaks the
    /// streak) are stored but do not count; 0: off.
    #[arg(long, env = "ARENA_MAX_SAME_SIDE_STREAK", default_value_t = config::DEFAULT_MAX_SAME_SIDE_STREAK, help_heading = ARENA)]
    pub max_same_side_streak: u64,
    /// Salt of the stored voter hashes (random per start when unset; set it to link one
    /// voter's votes across restarts and replicas).
    #[arg(long, env = "ARENA_VOTER_SALT", hide_env_values = true, help_heading = ARENA)]
    pub voter_salt: Option<String>,
    /// File of the terms of use (plain text, blank lines between paragraphs) the page shows
    /// before the first message; default: a research-preview notice like chat.lmsys.org's.
    #[arg(long, env = "ARENA_TERMS", help_heading = ARENA)]
    pub terms: Option<PathBuf>,
    /// Model catalog (TOML, `[models."NAME"]` tables): display name, organization, licence,
    /// link and description the page shows for each served model (see models.toml).
    #[arg(long, env = "ARENA_MODEL_INFO", value_name = "FILE", help_heading = ARENA)]
    pub model_info: Option<PathBuf>,

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
    /// Votes and ratings per client and window; 0: no limit.
    #[arg(long, env = "ARENA_VOTE_RATE_LIMIT", default_value_t = config::DEFAULT_VOTE_RATE_LIMIT, help_heading = ACCESS)]
    pub vote_rate_limit: u32,
    /// /v1 API requests per client and window; 0: no limit.
    #[arg(long, env = "ARENA_API_RATE_LIMIT", default_value_t = config::DEFAULT_API_RATE_LIMIT, help_heading = ACCESS)]
    pub api_rate_limit: u32,
    /// The rate-limit window, in seconds.
    #[arg(long, env = "ARENA_RATE_WINDOW_S", default_value_t = config::DEFAULT_RATE_WINDOW_S, help_heading = ACCESS)]
    pub rate_window_s: u64,
    /// Largest request body in bytes; larger ones are refused with 413 before they are read.
    #[arg(long, env = "ARENA_MAX_BODY_BYTES", default_value_t = config::DEFAULT_MAX_BODY_BYTES, help_heading = ACCESS)]
    pub max_body_bytes: usize,
    /// Comma-separated addresses or CIDR blocks of the reverse proxies in front of the
    /// controller. A request from one of them is keyed by the right-most X-Forwarded-For hop
    /// that is not one of them; without this flag X-Forwarded-For is ignored.
    #[arg(long, env = "ARENA_TRUSTED_PROXIES", value_delimiter = ',', help_heading = ACCESS)]
    pub trusted_proxies: Vec<String>,

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

    /// OpenAI-compatible base URL (e.g. https://api.openai.com/v1) of a model that judges
    /// each voted battle's first prompt on LMArena's seven hard-prompt criteria (6 or more:
    /// the hard_prompt category); off when absent.
    #[arg(long, env = "ARENA_HARD_PROMPT_LABELLER", help_heading = LEADERBOARD)]
    pub hard_prompt_labeller: Option<String>,
    /// The labeller's model name at that URL.
    #[arg(long, env = "ARENA_HARD_PROMPT_MODEL", help_heading = LEADERBOARD)]
    pub hard_prompt_model: Option<String>,
    /// Bearer key for the labeller.
    #[arg(
        long,
        env = "ARENA_HARD_PROMPT_API_KEY",
        hide_env_values = true,
        help_heading = LEADERBOARD
    )]
    pub hard_prompt_api_key: Option<String>,

    /// Recompute the leaderboard at most every this many seconds (and only when votes arrived).
    #[arg(
        long,
        env = "ARENA_LEADERBOARD_INTERVAL_S",
        default_value_t = config::DEFAULT_LEADERBOARD_INTERVAL_S,
        help_heading = LEADERBOARD
    )]
    pub leaderboard_interval_s: u64,
    /// 0: the leaderboard's 95% intervals from arena-rank's sandwich estimator; N > 0: from
    /// N bootstrap rounds instead.
    #[arg(
        long,
        env = "ARENA_LEADERBOARD_BOOTSTRAP",
        default_value_t = config::DEFAULT_LEADERBOARD_BOOTSTRAP,
        help_heading = LEADERBOARD
    )]
    pub leaderboard_bootstrap: usize,
    /// A category's leaderboard (`?category=C`) lists only models with at least N battles
    /// in it.
    #[arg(
        long,
        env = "ARENA_CATEGORY_MIN_BATTLES",
        default_value_t = config::DEFAULT_CATEGORY_MIN_BATTLES,
        help_heading = LEADERBOARD
    )]
    pub category_min_battles: u64,
    /// Do not keep a leaderboard snapshot a day in the store (kept by default: the first
    /// leaderboard computed with votes each UTC day, for `arena leaderboard --verify`).
    #[arg(long, env = "ARENA_NO_DAILY_SNAPSHOTS", help_heading = LEADERBOARD)]
    pub no_daily_snapshots: bool,

    /// Redis URL (redis://HOST:PORT/DB): share the worker registry with other controller
    /// replicas; in-process only when absent.
    #[arg(long, env = "REDIS_URL", help_heading = REDIS)]
    pub redis_url: Option<String>,

    /// Milliseconds a worker or API-hosted contestant may take to accept a connection.
    #[arg(long, env = "ARENA_CONNECT_TIMEOUT_MS", default_value_t = config::DEFAULT_CONNECT_TIMEOUT_MS, help_heading = TIMEOUTS)]
    pub connect_timeout_ms: u64,
    /// Milliseconds to wait for a generation's first token (prefill of a long prompt
    /// included); past it the request moves to another worker.
    #[arg(long, env = "ARENA_FIRST_TOKEN_TIMEOUT_MS", default_value_t = config::DEFAULT_FIRST_TOKEN_TIMEOUT_MS, help_heading = TIMEOUTS)]
    pub first_token_timeout_ms: u64,
    /// Milliseconds to wait for each next token; past it the stream ends with an error and
    /// the worker's sequence is cancelled.
    #[arg(long, env = "ARENA_TOKEN_TIMEOUT_MS", default_value_t = config::DEFAULT_TOKEN_TIMEOUT_MS, help_heading = TIMEOUTS)]
    pub token_timeout_ms: u64,
    /// Consecutive failures or timeouts after which a worker's circuit breaker opens and
    /// dispatch skips it for a cool-down; 0: never.
    #[arg(long, env = "ARENA_BREAKER_FAILURES", default_value_t = config::DEFAULT_BREAKER_FAILURES, help_heading = TIMEOUTS)]
    pub breaker_failures: u32,
    /// Milliseconds an open breaker skips a worker before one trial request (doubling each
    /// time it opens again).
    #[arg(long, env = "ARENA_BREAKER_COOLDOWN_MS", default_value_t = config::DEFAULT_BREAKER_COOLDOWN_MS, help_heading = TIMEOUTS)]
    pub breaker_cooldown_ms: u64,
    /// The longest cool-down of a breaker, in milliseconds.
    #[arg(long, env = "ARENA_BREAKER_MAX_COOLDOWN_MS", default_value_t = config::DEFAULT_BREAKER_MAX_COOLDOWN_MS, help_heading = TIMEOUTS)]
    pub breaker_max_cooldown_ms: u64,
    /// Milliseconds an HTTP client may take to send a request's headers; also how long an
    /// idle keep-alive connection stays open.
    #[arg(long, env = "ARENA_HEADER_READ_TIMEOUT_MS", default_value_t = config::DEFAULT_HEADER_READ_TIMEOUT_MS, help_heading = TIMEOUTS)]
    pub header_read_timeout_ms: u64,
    /// Open HTTP connections at most; more are answered 503 and closed.
    #[arg(long, env = "ARENA_MAX_CONNECTIONS", default_value_t = config::DEFAULT_MAX_CONNECTIONS, help_heading = TIMEOUTS)]
    pub max_connections: usize,
    /// Open HTTP connections per client address (IPv6: per /64) at most; more are answered
    /// 429 and closed. 0: no cap (set it behind a proxy, where every client shares its address).
    #[arg(long, env = "ARENA_MAX_CONNECTIONS_PER_CLIENT", default_value_t = config::DEFAULT_MAX_CONNECTIONS_PER_CLIENT, help_heading = TIMEOUTS)]
    pub max_connections_per_client: usize,
}

impl ControllerArgs {
    /// Serves until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        arena_controller::App::build(self.options()?)
            .await?
            .serve(shutdown)
            .await?;
        Ok(())
    }

    /// Library options for these flags.
    fn options(self) -> anyhow::Result<ControllerOptions> {
        Ok(ControllerOptions {
            http_addr: self.http_addr,
            grpc_addr: self.grpc_addr,
            ops_addr: self.ops_addr,
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
                new_model_boost: self.new_model_boost,
                new_model_votes: self.new_model_votes,
                // Battle starts look for new votes as often as the leaderboard does.
                vote_count_refresh: Duration::from_secs(self.leaderboard_interval_s),
                identity_phrases: self
                    .identity_phrases
                    .unwrap_or_else(|| ArenaSettings::default().identity_phrases),
                trusted_proxies: TrustedProxies::parse(&self.trusted_proxies)
                    .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?,
                voter_salt: self.voter_salt.filter(|s| !s.is_empty()),
                default_max_tokens: self.max_tokens.max(1),
                answer_lease: std::time::Duration::from_millis(self.answer_lease_ms.max(100)),
                vote_limits: arena_store::VoteLimits {
                    min_vote_delay_ms: self.min_vote_delay_ms,
                    max_votes_per_hour: self.max_votes_per_hour,
                    max_same_side_streak: self.max_same_side_streak,
                },
                ..ArenaSettings::default()
            },
            terms: self.terms.filter(|p| !p.as_os_str().is_empty()),
            model_info: self.model_info.filter(|p| !p.as_os_str().is_empty()),
            moderation_rules: self.moderation_rules,
            moderation_url: self.moderation_url.filter(|u| !u.is_empty()),
            moderation_api_key: self.moderation_api_key.filter(|k| !k.is_empty()),
            hard_prompt_labeller: self.hard_prompt_labeller.filter(|u| !u.is_empty()),
            hard_prompt_model: self.hard_prompt_model,
            hard_prompt_api_key: self.hard_prompt_api_key.filter(|k| !k.is_empty()),
            rate_limit: self.rate_limit,
            api_rate_limit: self.api_rate_limit,
            vote_rate_limit: self.vote_rate_limit,
            rate_window: Duration::from_secs(self.rate_window_s.max(1)),
            max_body_bytes: self.max_body_bytes.max(1),
            leaderboard_interval: Duration::from_secs(self.leaderboard_interval_s),
            leaderboard_bootstrap: self.leaderboard_bootstrap,
            category_min_battles: self.category_min_battles,
            daily_snapshots: !self.no_daily_snapshots,
            timeouts: config::Timeouts {
                connect: Duration::from_millis(self.connect_timeout_ms.max(1)),
                first_token: Duration::from_millis(self.first_token_timeout_ms.max(1)),
                between_tokens: Duration::from_millis(self.token_timeout_ms.max(1)),
            },
            breaker: config::BreakerSettings {
                failures: self.breaker_failures,
                cool_down: Duration::from_millis(self.breaker_cooldown_ms.max(1)),
                max_cool_down: Duration::from_millis(self.breaker_max_cooldown_ms.max(1)),
            },
            server_limits: config::ServerLimits {
                header_read_timeout: Duration::from_millis(self.header_read_timeout_ms.max(1)),
                max_connections: self.max_connections.max(1),
                max_connections_per_client: self.max_connections_per_client,
            },
        })
    }
}
