//! `arena controller`: gRPC for workers, HTTP for clients, until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arena_proto::v1::controller_server::ControllerServer;

use crate::arena::moderation::{LocalRules, Moderation, RemoteModeration};
use crate::arena::ratelimit::RateLimiter;
use crate::arena::{self, ArenaSettings, ArenaState, Limit};
use crate::error::ControllerError;
use crate::grpc::ControllerService;
use crate::metrics::{self, Metrics, MetricsState};
use crate::openai::{self, ApiState};
use crate::ops;
use crate::registry::Registry;
use crate::store::{RedisStore, RegistryStore};

/// Options of `arena controller`.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// HTTP listen address (port 0 picks a free port).
    pub http_addr: SocketAddr,
    /// gRPC listen address for workers.
    pub grpc_addr: SocketAddr,
    /// Secret workers must present to register.
    pub worker_token: Option<String>,
    /// Accepted API keys; empty means open.
    pub api_keys: Vec<String>,
    /// How workers are picked.
    pub policy: crate::dispatch::Policy,
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
    /// File of local moderation rules (one regular expression per line).
    pub moderation_rules: Option<std::path::PathBuf>,
    /// An OpenAI-compatible `/v1/moderations` URL every user message is checked with.
    pub moderation_url: Option<String>,
    /// Bearer key for the moderation URL.
    pub moderation_api_key: Option<String>,
    /// Arena generation requests per client and window; 0: no limit.
    pub rate_limit: u32,
    /// `/v1` requests per client and window; 0: no limit.
    pub api_rate_limit: u32,
    /// The rate-limit window.
    pub rate_window: Duration,
    /// The leaderboard is recomputed at most this often (and only when votes arrived).
    pub leaderboard_interval: Duration,
    /// Bootstrap rounds behind the leaderboard's intervals.
    pub leaderboard_bootstrap: usize,
}

/// Serves until a shutdown signal, then stops accepting and lets running streams finish.
pub async fn run_controller(opts: ControllerOptions) -> Result<(), ControllerError> {
    if opts.worker_token.is_none() {
        tracing::warn!("no worker token set: any process that can reach the gRPC port can register as a worker (set ARENA_WORKER_TOKEN in production)");
    }
    let endpoints = match &opts.endpoints {
        Some(path) => crate::endpoints::load(path)?,
        None => Default::default(),
    };
    if !endpoints.is_empty() {
        tracing::info!(endpoints = ?endpoints.keys().collect::<Vec<_>>(), "API-hosted contestants loaded");
    }
    let db = arena_store::connect(&opts.database_url).await?;
    tracing::info!(
        backend = db.backend(),
        url = %arena_store::redact(&opts.database_url),
        "arena store ready"
    );
    let registry = Arc::new(Registry::new(opts.worker_expiry));
    let mut rate_redis = None;
    let store: Option<Arc<dyn RegistryStore>> = match &opts.redis_url {
        Some(url) => {
            let redis = RedisStore::connect(url, opts.worker_expiry).await?;
            rate_redis = Some(redis.connection());
            // Ready only once the shared registry is loaded.
            registry.sync_from(&redis.load().await?);
            tracing::info!(
                workers = registry.snapshot().len(),
                "shared registry loaded from redis"
            );
            Some(Arc::new(redis))
        }
        None => None,
    };
    let grpc_listener = tokio::net::TcpListener::bind(opts.grpc_addr).await?;
    let http_listener = tokio::net::TcpListener::bind(opts.http_addr).await?;
    let grpc_addr = grpc_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let service = ControllerService::new(
        registry.clone(),
        store.clone(),
        opts.worker_token.clone(),
        opts.heartbeat_interval,
    );
    let grpc = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ControllerServer::new(service))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
                wait_stop(stop_rx.clone()),
            ),
    );
    let metrics =
        Arc::new(Metrics::new().map_err(|e| ControllerError::Server(format!("metrics: {e}")))?);
    let api = Arc::new(ApiState {
        registry: registry.clone(),
        api_keys: opts.api_keys.clone(),
        metrics: metrics.clone(),
        policy: opts.policy,
        endpoints,
        http: reqwest::Client::new(),
    });
    let mut moderation = Moderation::default();
    if let Some(path) = &opts.moderation_rules {
        moderation = moderation.with(Box::new(LocalRules::load(path)?));
    }
    if let Some(url) = &opts.moderation_url {
        moderation = moderation.with(Box::new(RemoteModeration::new(
            url.clone(),
            opts.moderation_api_key.clone(),
            api.http.clone(),
        )));
    }
    let limiter = |limit: u32| {
        let limiter = match &rate_redis {
            Some(conn) => RateLimiter::redis(limit, opts.rate_window, conn.clone()),
            None => RateLimiter::local(limit, opts.rate_window),
        };
        Arc::new(Limit {
            limiter,
            trust_forwarded_for: opts.arena.trust_forwarded_for,
        })
    };
    let arena_limit = limiter(opts.rate_limit);
    let leaderboard = crate::ratings::LeaderboardCache::new(
        db.clone(),
        rate_redis.clone(),
        opts.leaderboard_interval,
        arena_ratings::RatingOptions {
            bootstrap_rounds: opts.leaderboard_bootstrap,
            ..Default::default()
        },
    );
    let arena_state = Arc::new(ArenaState::new(
        api.clone(),
        db.clone(),
        opts.arena.clone(),
        moderation,
        leaderboard,
    ));
    let metrics_state = MetricsState {
        metrics,
        workers: registry.clone(),
    };
    let mut v1 = openai::router(api);
    // No limit, no layer: the OpenAI path is the latency-critical one.
    if opts.api_rate_limit > 0 {
        v1 = v1.route_layer(axum::middleware::from_fn_with_state(
            limiter(opts.api_rate_limit),
            arena::rate_limit,
        ));
    }
    let app = v1
        .merge(arena::router(arena_state, arena_limit))
        .merge(arena::web::router())
        .merge(ops::router(registry.clone(), db))
        .route(
            "/metrics",
            axum::routing::get(metrics::serve).with_state(metrics_state.clone()),
        )
        .layer(axum::middleware::from_fn_with_state(
            metrics_state,
            metrics::record,
        ));
    let http_stop = wait_stop(stop_rx.clone());
    // SSE writes are small: without TCP_NODELAY, Nagle's algorithm and the client's delayed
    // ACK hold each token back by up to 40 ms.
    let http_listener = axum::serve::ListenerExt::tap_io(http_listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY: {e}");
        }
    });
    let http = tokio::spawn(async move {
        axum::serve(
            http_listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(http_stop)
        .await
    });
    let expiry_registry = registry.clone();
    let period = (opts.worker_expiry / 4).max(Duration::from_millis(50));
    let expiry = tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            for id in expiry_registry.expire() {
                tracing::warn!(worker_id = %id, "worker expired: no heartbeat");
            }
        }
    });
    let sync = store.map(|store| {
        let registry = registry.clone();
        let period = (opts.heartbeat_interval / 2)
            .clamp(Duration::from_millis(50), Duration::from_millis(500));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                match store.load().await {
                    Ok(records) => registry.sync_from(&records),
                    Err(e) => tracing::warn!(
                        "could not read the shared registry from {}: {e}",
                        store.name()
                    ),
                }
            }
        })
    });
    // A stable line on stderr that scripts and tests wait for.
    eprintln!("arena controller listening on http={http_addr} grpc={grpc_addr}");

    shutdown_signal().await;
    tracing::info!("shutting down: no new connections; finishing running requests");
    let _ = stop_tx.send(true);
    expiry.abort();
    if let Some(sync) = sync {
        sync.abort();
    }
    let deadline = opts.shutdown_timeout;
    let (h, g) = tokio::join!(
        tokio::time::timeout(deadline, http),
        tokio::time::timeout(deadline, grpc)
    );
    if let Ok(Ok(Err(e))) = h {
        return Err(ControllerError::Server(e.to_string()));
    }
    if let Ok(Ok(Err(e))) = g {
        return Err(ControllerError::Server(e.to_string()));
    }
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
