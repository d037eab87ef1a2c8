//! Ops endpoints: liveness, readiness and the workers listing.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::registry::Registry;

/// `/health`, `/ready`, `/api/workers`.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/ready", get(ready))
        .route("/api/workers", get(workers))
        .with_state(registry)
}

/// Ready once the registry is loaded: in-process it is from the start.
async fn ready(State(registry): State<Arc<Registry>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ready", "workers": registry.snapshot().len()}))
}

async fn workers(State(registry): State<Arc<Registry>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"workers": registry.snapshot()}))
}
