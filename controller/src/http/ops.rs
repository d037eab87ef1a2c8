//! Ops endpoints: liveness, readiness, the workers listing and the Prometheus metrics. The
//! public listener gets only liveness and a bare readiness: per-worker loads and per-model
//! timings, polled during a battle, would tell its anonymous sides apart.

use std::sync::Arc;

use arena_store::ArenaStore;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::error::ApiError;
use crate::gateway::registry::Registry;
use crate::metrics::Metrics;

/// What the ops endpoints look at.
#[derive(Clone)]
struct Ops {
    registry: Arc<Registry>,
    store: Arc<dyn ArenaStore>,
    metrics: Arc<Metrics>,
}

/// The public part: `/health` and `/ready` without details.
pub fn public_router(store: Arc<dyn ArenaStore>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(public_ready))
        .with_state(store)
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn public_ready(
    State(store): State<Arc<dyn ArenaStore>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    store
        .ping()
        .await
        .map_err(|_| ApiError::unavailable("the arena's database does not answer"))?;
    Ok(Json(serde_json::json!({"status": "ready"})))
}

/// The ops listener: `/health`, `/ready` with details, `/api/workers`, `/metrics`.
pub fn router(
    registry: Arc<Registry>,
    store: Arc<dyn ArenaStore>,
    metrics: Arc<Metrics>,
) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/api/workers", get(workers))
        .route("/metrics", get(prometheus))
        .with_state(Ops {
            registry,
            store,
            metrics,
        })
}

/// Ready once the registry is loaded (before the server listens) and while the store answers;
/// 503 naming the store otherwise.
async fn ready(State(ops): State<Ops>) -> Result<Json<serde_json::Value>, ApiError> {
    ops.store.ping().await.map_err(|e| {
        ApiError::unavailable(format!(
            "the {} store does not answer: {e}",
            ops.store.backend()
        ))
    })?;
    Ok(Json(serde_json::json!({
        "status": "ready",
        "workers": ops.registry.snapshot().len(),
        "store": ops.store.backend(),
    })))
}

async fn workers(State(ops): State<Ops>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"workers": ops.registry.snapshot()}))
}

/// `GET /metrics`: the counters, with per-worker gauges read from the registry now.
async fn prometheus(State(ops): State<Ops>) -> Response {
    let workers = ops
        .registry
        .snapshot()
        .into_iter()
        .map(|w| (w.id, w.in_flight, w.queue_length));
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        ops.metrics.render(workers),
    )
        .into_response()
}
