//! What every HTTP route shares: who the client is, per-client rate limits, and the ops
//! endpoints (`/health`, `/ready`, `/api/workers`).

pub mod ops;
pub mod ratelimit;

use std::net::SocketAddr;
use std::sync::Arc;

use arena_ratings::clock::unix_ms;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;
use ratelimit::{Decision, RateLimiter};

/// The client's address, or the first `X-Forwarded-For` hop when trusted.
pub fn client_addr(parts: &Parts, trust_forwarded_for: bool) -> String {
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
    if let Decision::Deny(secs) = limit.limiter.check(&client, unix_ms()).await {
        return Err(ApiError::rate_limited(secs));
    }
    Ok(next.run(Request::from_parts(parts, body)).await)
}
