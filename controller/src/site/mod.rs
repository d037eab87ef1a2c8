//! The arena behind the web page: anonymous and named battles with votes, direct chat with
//! ratings, input limits, moderation and rate limits, all stored for analysts. The routes and
//! their JSON are in docs/ARENA_API.md.

mod battles;
pub mod catalog;
mod chats;
pub mod coalesce;
pub mod evaluation;
pub mod exclusions;
pub mod hygiene;
mod input;
pub mod labeller;
pub mod leaderboard;
mod leaderboard_cli;
mod leaderboard_text;
pub mod moderation;
pub mod pairing;
pub mod pick;
pub mod provisional;
pub mod snapshots;
pub mod terms;
mod turns;
pub mod web;

use std::sync::Arc;

use arena_store::{ArenaStore, StoreError};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::middleware;
use axum::routing::{get, post};
use axum::{Json, Router};
use catalog::Catalog;
use sha2::{Digest, Sha256};

pub use crate::config::ArenaSettings;
use crate::error::{ApiError, ControllerError};
use crate::gateway::Gateway;
use crate::http::{client_addr, rate_limit, Limit};
use leaderboard::LeaderboardCache;
use moderation::Moderation;
use terms::Terms;
pub use turns::spawn_lease_sweep;

/// What the arena handlers share.
pub struct ArenaState {
    /// Dispatch to workers and endpoints.
    pub gateway: Arc<Gateway>,
    /// Where everything is kept.
    pub store: Arc<dyn ArenaStore>,
    /// Limits and rules.
    pub settings: ArenaSettings,
    /// Checks on user input.
    pub moderation: Moderation,
    /// The ratings, recomputed as votes arrive.
    pub leaderboard: LeaderboardCache,
    /// The terms of use the page shows before the first message.
    pub terms: Terms,
    /// What the page shows about each model once its name may be shown.
    pub catalog: Arc<Catalog>,
    /// Tags hard prompts after votes, when configured.
    pub labeller: Option<labeller::Labeller>,
    /// Counted votes per model, for the new-model boost.
    pub vote_counts: pairing::VoteCounts,
    salt: String,
}

impl ArenaState {
    /// The shared state; a random salt when the settings give none.
    pub fn new(
        gateway: Arc<Gateway>,
        store: Arc<dyn ArenaStore>,
        settings: ArenaSettings,
        moderation: Moderation,
        leaderboard: LeaderboardCache,
        terms: Terms,
        catalog: Arc<Catalog>,
    ) -> Self {
        let salt = settings
            .voter_salt
            .clone()
            .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
        Self {
            gateway,
            vote_counts: pairing::VoteCounts::new(store.clone(), settings.vote_count_refresh),
            store,
            settings,
            moderation,
            leaderboard,
            terms,
            catalog,
            labeller: None,
            salt,
        }
    }

    /// The same state, with hard prompts tagged by `labeller` after each vote.
    pub fn with_labeller(self, labeller: Option<labeller::Labeller>) -> Self {
        Self { labeller, ..self }
    }

    /// A salted hash of a client address: votes can be grouped per voter without storing IPs.
    fn hash_client(&self, client: &str) -> String {
        let digest = Sha256::digest(format!("{}:{client}", self.salt));
        crate::ids::hex(&digest[..16])
    }
}

/// The client's address (the right-most untrusted `X-Forwarded-For` hop behind trusted
/// proxies) and its hash.
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
        let addr = client_addr(parts, &state.settings.trusted_proxies);
        Ok(Client {
            hash: state.hash_client(&addr),
            addr,
        })
    }
}

/// The arena routes (docs/ARENA_API.md); generation routes and votes are rate limited, each
/// with its own limit.
pub fn router(state: Arc<ArenaState>, limit: Arc<Limit>, vote_limit: Arc<Limit>) -> Router {
    let votes = Router::new()
        .route("/api/battles/{id}/vote", post(battles::vote))
        .route("/api/chats/{id}/rating", post(chats::rating))
        .route_layer(middleware::from_fn_with_state(vote_limit, rate_limit));
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
        .route("/api/leaderboard", get(leaderboard))
        .route("/api/leaderboard/snapshots", get(snapshots::list))
        .route("/api/leaderboard/snapshots/{day}", get(snapshots::one))
        .merge(evaluation::router(Arc::clone(&state.store)))
        .merge(limited)
        .merge(votes)
        .with_state(state)
}

async fn config(State(state): State<Arc<ArenaState>>) -> Json<serde_json::Value> {
    let s = &state.settings;
    Json(serde_json::json!({
        "models": state.gateway.served_models(false),
        "max_message_chars": s.max_message_chars,
        "max_turns": s.max_turns,
        "sampling": {
            "temperature": s.default_temperature,
            "top_p": s.default_top_p,
            "max_tokens": s.default_max_tokens,
        },
        "terms": {"version": state.terms.version, "text": state.terms.text},
    }))
}

/// `GET /api/leaderboard[?style_control=true][&category=C]`.
async fn leaderboard(
    State(state): State<Arc<ArenaState>>,
    view: Result<axum::extract::Query<leaderboard::View>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let axum::extract::Query(view) = view.map_err(|e| ApiError::bad_request(e.body_text()))?;
    view.check()
        .map_err(|m| ApiError::invalid_param("category", m))?;
    let body = state.leaderboard.get(&view).await.map_err(|e| match e {
        ControllerError::UnknownCategory(m) => ApiError::not_found(m),
        other => store_error(other),
    })?;
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
