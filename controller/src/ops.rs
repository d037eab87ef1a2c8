//! Ops endpoints: liveness, readiness and the workers listing.

use std::sync::Arc;

use arena_store::ArenaStore;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::error::ApiError;
use crate::registry::Registry;

/// What the ops endpoints look at.
#[derive(Clone)]
struct Ops {
    registry: Arc<Registry>,
    store: Arc<dyn ArenaStore>,
}

/// `/health`, `/ready`, `/api/workers`.
pub fn router(registry: Arc<Registry>, store: Arc<dyn ArenaStore>) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/ready", get(ready))
        .route("/api/workers", get(workers))
        .with_state(Ops { registry, store })
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
