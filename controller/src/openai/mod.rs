//! The OpenAI-compatible API: `/v1/models`, `/v1/chat/completions`, `/v1/completions` and a
//! text-only `/v1/responses`. Bodies are read field by field so that every error names the
//! client's field, and a field this server cannot honour is refused, never ignored.

mod chat;
mod completions;
mod fields;
mod logprobs;
mod messages;
mod params;
mod respond;
mod responses;
mod responses_stream;
mod shapes;
mod stream;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
pub mod types;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::error::ApiError;
use crate::gateway::Gateway;
use types::Model;

/// What the API handlers share.
pub struct ApiState {
    /// Where generations start.
    pub gateway: Arc<Gateway>,
    /// Accepted Bearer keys; empty means no authentication.
    pub api_keys: Vec<String>,
}

/// The `/v1` routes, behind the API-key check.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/completions", post(completions::completions))
        .route("/v1/responses", post(responses::responses))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key))
        .with_state(state)
}

async fn require_key(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !state.api_keys.is_empty() {
        let presented = bearer_key(request.headers());
        if !presented.is_some_and(|k| state.api_keys.iter().any(|a| a == k)) {
            return Err(ApiError::unauthorized());
        }
    }
    Ok(next.run(request).await)
}

/// The key a request presents (`Authorization: Bearer KEY`), as the key check reads it.
fn bearer_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

async fn models(State(state): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    let data: Vec<Model> = state
        .gateway
        .served_models(false)
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

/// Seconds since the Unix epoch.
fn now_secs() -> u64 {
    arena_ratings::clock::unix_ms() / 1000
}
