//! The OpenAI-compatible API: `/v1/models` and `/v1/chat/completions`.

mod chat;
mod completions;
mod params;
mod remote;
pub(crate) mod respond;
mod shapes;
pub mod types;
mod upstream;

pub use upstream::Started;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::registry::Registry;
use types::Model;

/// What the API handlers share.
pub struct ApiState {
    /// The worker registry.
    pub registry: Arc<Registry>,
    /// Accepted Bearer keys; empty means no authentication.
    pub api_keys: Vec<String>,
    /// Where dispatch and generation are counted.
    pub metrics: Arc<Metrics>,
    /// How workers are picked.
    pub policy: crate::dispatch::Policy,
    /// API-hosted contestants by served name.
    pub endpoints: crate::endpoints::Endpoints,
    /// HTTP client for the endpoints.
    pub http: reqwest::Client,
}

/// The `/v1` routes, behind the API-key check.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/completions", post(completions::completions))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key))
        .with_state(state)
}

async fn require_key(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !state.api_keys.is_empty() {
        let presented = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !presented.is_some_and(|k| state.api_keys.iter().any(|a| a == k)) {
            return Err(ApiError::unauthorized());
        }
    }
    Ok(next.run(request).await)
}

async fn models(State(state): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    let data: Vec<Model> = served_models(&state, false)
        .into_iter()
        .map(|id| Model {
            id,
            object: "model",
            created: 0,
            owned_by: "arena",
        })
        .collect();
    Json(serde_json::json!({"object": "list", "data": data}))
}

/// Starts `req` on a worker or the API-hosted endpoint serving its model. Battle-only
/// endpoints are reachable only when `in_battle`.
pub async fn start_generation(
    state: &ApiState,
    req: arena_proto::v1::GenerateRequest,
    in_battle: bool,
) -> Result<Started, ApiError> {
    match state
        .endpoints
        .get(&req.model)
        .filter(|e| in_battle || !e.battle_only)
    {
        Some(endpoint) => remote::start(&state.http, endpoint, req).await,
        None => {
            let model = req.model.clone();
            upstream::start(&state.registry, state.policy, &state.metrics, &model, req).await
        }
    }
}

/// Every model a client may ask for: the workers' and the endpoints' (battle-only ones only
/// when `in_battle`), sorted.
pub fn served_models(state: &ApiState, in_battle: bool) -> Vec<String> {
    let mut names = state.registry.models();
    names.extend(
        state
            .endpoints
            .values()
            .filter(|e| in_battle || !e.battle_only)
            .map(|e| e.name.clone()),
    );
    names.sort();
    names.dedup();
    names
}

/// Seconds since the Unix epoch.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
