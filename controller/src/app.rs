//! The controller wired together: [`App::build`] turns the options into the HTTP router, the
//! gRPC registration service and what the background tasks need; [`App::serve`] binds the
//! ports and runs them until the shutdown future resolves. Only this module wires the
//! gateway, the OpenAI API, the site and the ops endpoints together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arena_proto::v1::controller_server::ControllerServer;
use arena_store::ArenaStore;
use axum::Router;
use redis::aio::ConnectionManager;

use crate::config::ControllerOptions;
use crate::error::ControllerError;
use crate::gateway::register::ControllerService;
use crate::gateway::registry::Registry;
use crate::gateway::shared::{RedisRegistry, SharedRegistry};
use crate::gateway::worker_auth::{self, WorkerDialer};
use crate::gateway::{api_client, contestants, Gateway};
use crate::http::ratelimit::RateLimiter;
use crate::http::{self, Limit};
use crate::metrics::{self, Metrics};
use crate::openai::{self, ApiState};
use crate::site::catalog::Catalog;
use crate::site::leaderboard::LeaderboardCache;
use crate::site::moderation::{LocalRules, Moderation, RemoteModeration};
use crate::site::{self, ArenaState};

/// The stable stderr line scripts and tests wait for, followed by
/// `http=ADDR grpc=ADDR ops=ADDR`.
pub const READY_LINE: &str = "arena controller listening on ";

/// A controller ready to serve: every connection made, nothing bound yet.
pub struct App {
    /// The public HTTP routes: the OpenAI API, the arena and its page, `/health`, `/ready`.
    pub router: Router,
    /// The ops routes (`/api/workers`, `/metrics`, detailed `/ready`), on their own listener.
    pub ops: Router,
    /// The gRPC service workers register and heartbeat with.
    pub grpc: ControllerServer<ControllerService>,
    /// The gRPC server builder, with TLS when `--tls-cert`/`--tls-key` are set.
    grpc_server: tonic::transport::Server,
    registry: Arc<Registry>,
    shared: Option<Arc<dyn SharedRegistry>>,
    store: Arc<dyn ArenaStore>,
    opts: ControllerOptions,
}

impl App {
    /// Loads the contestants and moderation rules, connects the store (and Redis when set),
    /// and builds the router and the gRPC service.
    pub async fn build(opts: ControllerOptions) -> Result<Self, ControllerError> {
        if opts.worker_token.is_none() {
            tracing::warn!("no worker token set: any process that can reach the gRPC port can register as a worker (set ARENA_WORKER_TOKEN in production)");
        }
        // Bad TLS files or token stop start-up before anything connects.
        let grpc_server =
            worker_auth::grpc_server(opts.grpc_tls_cert.as_deref(), opts.grpc_tls_key.as_deref())?;
        let dialer =
            WorkerDialer::with_ca_file(opts.worker_token.as_deref(), opts.worker_ca.as_deref())?
                .with_connect_timeout(opts.timeouts.connect);
        let endpoints = match &opts.endpoints {
            Some(path) => contestants::load(path)?,
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
        let metrics =
            Arc::new(Metrics::new().map_err(|e| ControllerError::Server(format!("metrics: {e}")))?);
        let registry = Arc::new(
            Registry::with_dialer(opts.worker_expiry, dialer)
                .with_breaker(opts.breaker, metrics.circuit_opened.clone()),
        );
        let mut redis = None;
        let shared: Option<Arc<dyn SharedRegistry>> = match &opts.redis_url {
            Some(url) => {
                let shown = arena_store::redact(url);
                let store = RedisRegistry::connect(url, &shown, opts.worker_expiry).await?;
                redis = Some(store.connection());
                // Ready only once the shared registry is loaded.
                registry.sync_from(&store.load().await?);
                tracing::info!(
                    workers = registry.snapshot().len(),
                    "shared registry loaded from redis"
                );
                Some(Arc::new(store))
            }
            None => None,
        };
        let grpc = ControllerServer::new(ControllerService::new(
            registry.clone(),
            shared.clone(),
            opts.worker_token.clone(),
            opts.heartbeat_interval,
        ));
        let mut affinity =
            crate::gateway::affinity::Affinity::new(crate::gateway::affinity::DEFAULT_CAPACITY);
        if let Some(conn) = &redis {
            affinity = affinity.with_redis(conn.clone());
        }
        let gateway = Arc::new(Gateway {
            registry: registry.clone(),
            metrics: metrics.clone(),
            policy: opts.policy,
            endpoints,
            http: api_client::http_client(&opts.timeouts)?,
            timeouts: opts.timeouts,
            affinity,
        });
        let ops = http::ops::router(registry.clone(), db.clone(), metrics.clone());
        let router = routes(&opts, gateway, db.clone(), redis, metrics)?;
        Ok(Self {
            router,
            ops,
            grpc,
            grpc_server,
            registry,
            shared,
            store: db,
            opts,
        })
    }

    /// Binds the HTTP and gRPC ports, prints [`READY_LINE`], serves until `shutdown`
    /// resolves, then stops accepting and lets running streams finish (bounded by the
    /// shutdown timeout).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ControllerError> {
        let opts = self.opts;
        let grpc_listener = tokio::net::TcpListener::bind(opts.grpc_addr).await?;
        let http_listener = tokio::net::TcpListener::bind(opts.http_addr).await?;
        let ops_listener = tokio::net::TcpListener::bind(opts.ops_addr).await?;
        let grpc_addr = grpc_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;
        let ops_addr = ops_listener.local_addr()?;

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut grpc_server = self.grpc_server;
        let grpc = tokio::spawn(
            grpc_server
                .add_service(self.grpc)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(grpc_listener)
                        .with_nodelay(Some(true)),
                    wait_stop(stop_rx.clone()),
                ),
        );
        let http_stop = wait_stop(stop_rx.clone());
        let http = tokio::spawn(http::server::serve(
            http_listener,
            self.router,
            opts.server_limits,
            http_stop,
        ));
        let ops_router = self.ops;
        let ops_stop = wait_stop(stop_rx.clone());
        let ops = tokio::spawn(async move {
            axum::serve(ops_listener, ops_router)
                .with_graceful_shutdown(ops_stop)
                .await
        });
        let expiry = spawn_expiry(self.registry.clone(), opts.worker_expiry);
        let sweep = site::spawn_lease_sweep(self.store, opts.arena.answer_lease);
        let sync = self
            .shared
            .map(|shared| spawn_sync(self.registry, shared, opts.heartbeat_interval));
        // A stable line on stderr that scripts and tests wait for.
        eprintln!("{READY_LINE}http={http_addr} grpc={grpc_addr} ops={ops_addr}");

        shutdown.await;
        tracing::info!("shutting down: no new connections; finishing running requests");
        let _ = stop_tx.send(true);
        expiry.abort();
        ops.abort();
        sweep.abort();
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
}

/// Every HTTP route: `/v1` (rate limited only when a limit is set), the arena API and page,
/// ops, `/metrics`, all timed by the metrics middleware.
fn routes(
    opts: &ControllerOptions,
    gateway: Arc<Gateway>,
    db: Arc<dyn ArenaStore>,
    redis: Option<ConnectionManager>,
    metrics: Arc<Metrics>,
) -> Result<Router, ControllerError> {
    let mut moderation = Moderation::default();
    if let Some(path) = &opts.moderation_rules {
        moderation = moderation.with(Box::new(LocalRules::load(path)?));
    }
    if let Some(url) = &opts.moderation_url {
        moderation = moderation.with(Box::new(RemoteModeration::new(
            url.clone(),
            opts.moderation_api_key.clone(),
            gateway.http.clone(),
        )));
    }
    let catalog = Arc::new(match &opts.model_info {
        Some(path) => Catalog::load(path)?,
        None => Catalog::default(),
    });
    if !catalog.is_empty() {
        tracing::info!(models = catalog.len(), "model catalog loaded");
    }
    let limiter = |limit: u32, scope: &str| {
        let limiter = match &redis {
            Some(conn) => RateLimiter::redis(limit, opts.rate_window, conn.clone(), scope),
            None => RateLimiter::local(limit, opts.rate_window),
        };
        Arc::new(Limit {
            limiter,
            proxies: opts.arena.trusted_proxies.clone(),
        })
    };
    let leaderboard = LeaderboardCache::new(
        db.clone(),
        redis.clone(),
        opts.leaderboard_interval,
        arena_ratings::RatingOptions {
            ci: if opts.leaderboard_bootstrap > 0 {
                arena_ratings::Ci::Bootstrap
            } else {
                arena_ratings::Ci::Sandwich
            },
            bootstrap_rounds: opts.leaderboard_bootstrap,
            ..Default::default()
        },
    )
    .with_catalog(catalog.clone())
    .with_category_min_battles(opts.category_min_battles)
    .with_daily_snapshots(opts.daily_snapshots)
    .with_provisional_votes(opts.arena.new_model_votes);
    let arena_state = Arc::new(
        ArenaState::new(
            gateway.clone(),
            db.clone(),
            opts.arena.clone(),
            moderation,
            leaderboard,
            site::terms::Terms::load(opts.terms.as_deref())?,
            catalog,
        )
        .with_labeller(match &opts.hard_prompt_labeller {
            Some(url) => Some(site::labeller::Labeller::new(
                url,
                opts.hard_prompt_model.as_deref().unwrap_or(""),
                opts.hard_prompt_api_key.clone(),
            )?),
            None => None,
        }),
    );
    let mut v1 = openai::router(Arc::new(ApiState {
        gateway,
        api_keys: opts.api_keys.clone(),
    }));
    // No limit, no layer: the OpenAI path is the latency-critical one.
    if opts.api_rate_limit > 0 {
        v1 = v1.route_layer(axum::middleware::from_fn_with_state(
            limiter(opts.api_rate_limit, "api"),
            http::rate_limit,
        ));
    }
    Ok(v1
        .merge(site::router(
            arena_state,
            limiter(opts.rate_limit, "arena"),
            limiter(opts.vote_rate_limit, "votes"),
        ))
        .merge(site::web::router())
        .merge(http::ops::public_router(db))
        .layer(axum::extract::DefaultBodyLimit::max(opts.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::record,
        )))
}

/// Drops workers whose heartbeats stopped.
fn spawn_expiry(registry: Arc<Registry>, expiry: Duration) -> tokio::task::JoinHandle<()> {
    let period = (expiry / 4).max(Duration::from_millis(50));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            for id in registry.expire() {
                tracing::warn!(worker_id = %id, "worker expired: no heartbeat");
            }
        }
    })
}

/// Pulls the other replicas' workers from the shared registry into ours.
fn spawn_sync(
    registry: Arc<Registry>,
    shared: Arc<dyn SharedRegistry>,
    heartbeat: Duration,
) -> tokio::task::JoinHandle<()> {
    let period = (heartbeat / 2).clamp(Duration::from_millis(50), Duration::from_millis(500));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            match shared.load().await {
                Ok(records) => registry.sync_from(&records),
                Err(e) => tracing::warn!(
                    "could not read the shared registry from {}: {e}",
                    shared.name()
                ),
            }
        }
    })
}
