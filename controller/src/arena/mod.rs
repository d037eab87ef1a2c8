//! The arena behind the web page: anonymous and named battles with votes, direct chat with
//! ratings, input limits, moderation and rate limits, all stored for analysts. The routes and
//! their JSON are in docs/ARENA_API.md.

mod battles;
mod chats;
pub mod hygiene;
mod input;
pub mod moderation;
pub mod pick;
pub mod ratelimit;
mod turns;
pub mod web;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use arena_store::{ArenaStore, StoreError};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ControllerError};
use crate::openai::ApiState;
use moderation::Moderation;
use ratelimit::{Decision, RateLimiter};

/// Limits and rules of the arena, from the controller's flags.
#[derive(Debug, Clone)]
pub struct ArenaSettings {
    /// Longest user message, in characters.
    pub max_message_chars: usize,
    /// Most user turns in one conversation.
    pub max_turns: usize,
    /// Anonymous-battle weights by model (1 when absent, 0 excludes).
    pub battle_weights: HashMap<String, f64>,
    /// Phrases whose presence in an answer keeps a vote off the leaderboard.
    pub identity_phrases: Vec<String>,
    /// Take the client address from `X-Forwarded-For` (behind a trusted proxy only).
    pub trust_forwarded_for: bool,
    /// Salt of voter and client hashes; random per start when None.
    pub voter_salt: Option<String>,
    /// Sampling defaults the page starts from.
    pub default_temperature: f32,
    /// Default top_p.
    pub default_top_p: f32,
    /// Default and largest max_tokens of an answer.
    pub default_max_tokens: u32,
}

impl Default for ArenaSettings {
    fn default() -> Self {
        Self {
            max_message_chars: 4000,
            max_turns: 20,
            battle_weights: HashMap::new(),
            identity_phrases: hygiene::DEFAULT_IDENTITY_PHRASES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            trust_forwarded_for: false,
            voter_salt: None,
            default_temperature: 0.7,
            default_top_p: 1.0,
            default_max_tokens: 512,
        }
    }
}

/// What the arena handlers share.
pub struct ArenaState {
    /// Dispatch to workers and endpoints.
    pub api: Arc<ApiState>,
    /// Where everything is kept.
    pub store: Arc<dyn ArenaStore>,
    /// Limits and rules.
    pub settings: ArenaSettings,
    /// Checks on user input.
    pub moderation: Moderation,
    /// The ratings, recomputed as votes arrive.
    pub leaderboard: crate::ratings::LeaderboardCache,
    salt: String,
}

impl ArenaState {
    /// The shared state; a random salt when the settings give none.
    pub fn new(
        api: Arc<ApiState>,
        store: Arc<dyn ArenaStore>,
        settings: ArenaSettings,
        moderation: Moderation,
        leaderboard: crate::ratings::LeaderboardCache,
    ) -> Self {
        let salt = settings
            .voter_salt
            .clone()
            .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
        Self {
            api,
            store,
            settings,
            moderation,
            leaderboard,
            salt,
        }
    }

    /// A salted hash of a client address: votes can be grouped per voter without storing IPs.
    fn hash_client(&self, client: &str) -> String {
        let digest = Sha256::digest(format!("{}:{client}", self.salt));
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The client's address (or the first `X-Forwarded-For` hop when trusted) and its hash.
pub struct Client {
    /// The address as seen, used as the rate-limit key.
    pub addr: String,
    /// Salted hash stored with votes and conversations.
    pub hash: String,
}

impl FromRequestParts<Arc<ArenaState>> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ArenaState>,
    ) -> Result<Self, Self::Rejection> {
        let addr = client_addr(parts, state.settings.trust_forwarded_for);
        Ok(Client {
            hash: state.hash_client(&addr),
            addr,
        })
    }
}

fn client_addr(parts: &Parts, trust_forwarded_for: bool) -> String {
    let forwarded = trust_forwarded_for
        .then(|| parts.headers.get("x-forwarded-for"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    forwarded.unwrap_or_else(|| {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".into(), |c| c.0.ip().to_string())
    })
}

/// A rate limiter and how to tell clients apart, for the `rate_limit` middleware.
pub struct Limit {
    /// The counts.
    pub limiter: RateLimiter,
    /// Key clients by `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
}

/// Refuses a client over its rate limit with 429 and `Retry-After`.
pub async fn rate_limit(
    State(limit): State<Arc<Limit>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let client = client_addr(&parts, limit.trust_forwarded_for);
    if let Decision::Deny(secs) = limit.limiter.check(&client, crate::store::unix_ms()).await {
        return Err(ApiError::rate_limited(secs));
    }
    Ok(next.run(Request::from_parts(parts, body)).await)
}

/// The arena routes (docs/ARENA_API.md); generation routes are rate limited.
pub fn router(state: Arc<ArenaState>, limit: Arc<Limit>) -> Router {
    let limited = Router::new()
        .route("/api/battles", post(battles::create))
        .route("/api/battles/{id}/turns", post(battles::turn))
        .route("/api/battles/{id}/regenerate", post(battles::regenerate))
        .route("/api/chats", post(chats::create))
        .route("/api/chats/{id}/turns", post(chats::turn))
        .route("/api/chats/{id}/regenerate", post(chats::regenerate))
        .route_layer(middleware::from_fn_with_state(limit, rate_limit));
    Router::new()
        .route("/api/config", get(config))
        .route("/api/battles/{id}", get(battles::show))
        .route("/api/battles/{id}/vote", post(battles::vote))
        .route("/api/chats/{id}/rating", post(chats::rating))
        .route("/api/leaderboard", get(leaderboard))
        .merge(limited)
        .with_state(state)
}

async fn config(State(state): State<Arc<ArenaState>>) -> Json<serde_json::Value> {
    let s = &state.settings;
    Json(serde_json::json!({
        "models": crate::openai::served_models(&state.api, false),
        "max_message_chars": s.max_message_chars,
        "max_turns": s.max_turns,
        "sampling": {
            "temperature": s.default_temperature,
            "top_p": s.default_top_p,
            "max_tokens": s.default_max_tokens,
        },
    }))
}

async fn leaderboard(
    State(state): State<Arc<ArenaState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = state.leaderboard.get().await.map_err(store_error)?;
    Ok(Json(serde_json::Value::clone(&body)))
}

/// A store failure as the caller sees it: conflicts are 409, the rest 503 (logged).
pub fn store_error(e: impl Into<ControllerError>) -> ApiError {
    match e.into() {
        ControllerError::Database(StoreError::Conflict(m)) => ApiError::conflict("conflict", m),
        other => {
            tracing::error!("store: {other}");
            ApiError::unavailable(format!("the arena's database failed: {other}"))
        }
    }
}

/// A JSON body, or the error saying what is wrong with it (400 or 422).
fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v)
        .map_err(|e| ApiError::from_json_rejection(&e))
}

/// Like [`body`], but no body at all (no JSON content type) is the default.
fn optional_body<T: Default>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match b {
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
        other => body(other),
    }
}

#[cfg(test)]
mod tests {
    use super::store_error;
    use crate::error::ControllerError;
    use arena_store::StoreError;
    use axum::http::StatusCode;

    fn shown(e: impl Into<ControllerError>) -> (StatusCode, &'static str, String) {
        let api = store_error(e);
        (api.status, api.code, api.message)
    }

    #[test]
    fn a_conflict_is_409_and_every_other_store_failure_503() {
        let conflict = "UNIQUE constraint failed: votes.battle_id, votes.turn";
        assert_eq!(
            shown(StoreError::Conflict(conflict.into())),
            (StatusCode::CONFLICT, "conflict", conflict.to_string())
        );
        // The same through the controller's error, as the leaderboard hands it over.
        assert_eq!(
            shown(ControllerError::from(StoreError::Conflict(conflict.into()))).0,
            StatusCode::CONFLICT
        );
        let unavailable = |m: &str| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "worker_unavailable",
                format!("the arena's database failed: {m}"),
            )
        };
        let down = "cannot open the database at postgres://arena:***@db/arena: refused";
        assert_eq!(shown(StoreError::Database(down.into())), unavailable(down));
        assert_eq!(
            shown(StoreError::Config("bad URL".into())),
            unavailable("configuration error: bad URL")
        );
        assert_eq!(
            shown(StoreError::Io(std::io::Error::other("disk full"))),
            unavailable("i/o error: disk full")
        );
        assert_eq!(
            shown(ControllerError::Leaderboard(
                "the ratings task failed".into()
            )),
            unavailable("ratings: the ratings task failed")
        );
    }
}
