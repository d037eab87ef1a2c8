//! What every HTTP route shares: who the client is, per-client rate limits, and the ops
//! endpoints (`/health`, `/ready`, `/api/workers`).

pub mod ops;
pub mod ratelimit;
pub mod server;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use ipnet::IpNet;

use crate::error::ApiError;
use ratelimit::{Decision, RateLimiter};

/// Proxies whose `X-Forwarded-For` is believed (`--trusted-proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses and CIDR blocks (`10.0.0.0/8`, `127.0.0.1`, `::1`).
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        items
            .iter()
            .map(|s| s.as_ref().trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("'{s}' is neither an IP address nor a CIDR block"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether none are set (then `X-Forwarded-For` is ignored).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, hop: &str) -> bool {
        hop.parse::<IpAddr>()
            .is_ok_and(|ip| self.0.iter().any(|net| net.contains(&ip)))
    }

    /// Who the client is: the peer, unless the peer is a trusted proxy; then the right-most
    /// `X-Forwarded-For` hop that is not a trusted proxy. Hops to its left were written by
    /// the client itself and prove nothing.
    pub fn client(&self, peer: Option<IpAddr>, forwarded: &[&str]) -> String {
        let Some(peer) = peer else {
            return "unknown".into();
        };
        if !self.0.iter().any(|net| net.contains(&peer)) {
            return peer.to_string();
        }
        let hops: Vec<&str> = forwarded
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        hops.iter()
            .rev()
            .find(|h| !self.trusts(h))
            .or(hops.first())
            .map_or_else(|| peer.to_string(), |h| h.to_string())
    }
}

/// The client's address as [`TrustedProxies::client`] finds it.
pub fn client_addr(parts: &Parts, proxies: &TrustedProxies) -> String {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    proxies.client(peer, &forwarded)
}

/// A rate limiter and how to tell clients apart, for the `rate_limit` middleware.
pub struct Limit {
    /// The counts.
    pub limiter: RateLimiter,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub proxies: TrustedProxies,
}

/// Refuses a client over its rate limit with 429 and `Retry-After`.
pub async fn rate_limit(
    State(limit): State<Arc<Limit>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let client = client_addr(&parts, &limit.proxies);
    if let Decision::Deny(secs) = limit.limiter.check(&client).await {
        return Err(ApiError::rate_limited(secs));
    }
    Ok(next.run(Request::from_parts(parts, body)).await)
}

#[cfg(test)]
mod tests {
    use super::TrustedProxies;

    #[test]
    fn the_client_is_the_right_most_hop_no_trusted_proxy_wrote() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "127.0.0.1"]).unwrap();
        let proxy = Some("10.1.2.3".parse().unwrap());
        // The client wrote "6.6.6.6"; the proxy appended the address it saw.
        assert_eq!(
            proxies.client(proxy, &["6.6.6.6, 203.0.113.7"]),
            "203.0.113.7"
        );
        // Chains of trusted proxies, over several headers.
        assert_eq!(
            proxies.client(proxy, &["6.6.6.6, 198.51.100.9", "10.9.9.9, 127.0.0.1"]),
            "198.51.100.9"
        );
        // No header: the proxy itself.
        assert_eq!(proxies.client(proxy, &[]), "10.1.2.3");
        // Every hop trusted: the left-most.
        assert_eq!(proxies.client(proxy, &["10.0.0.5, 10.0.0.6"]), "10.0.0.5");
        // A peer that is no trusted proxy is the client, whatever it writes.
        let direct = Some("203.0.113.50".parse().unwrap());
        assert_eq!(proxies.client(direct, &["1.2.3.4"]), "203.0.113.50");
        // No proxies configured: the header is ignored.
        let none = TrustedProxies::default();
        assert_eq!(none.client(proxy, &["1.2.3.4"]), "10.1.2.3");
        assert_eq!(none.client(None, &[]), "unknown");
    }

    #[test]
    fn bad_proxy_entries_are_named() {
        let e = TrustedProxies::parse(&["10.0.0.0/8", "proxy.local"]).unwrap_err();
        assert!(e.contains("'proxy.local'"), "{e}");
        assert!(TrustedProxies::parse(&["::1", "fd00::/8"]).is_ok());
    }
}
