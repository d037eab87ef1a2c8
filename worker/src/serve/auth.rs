//! Only the controller may call the worker: with a worker token set, every call to the Worker
//! service must carry `authorization: Bearer <token>`. Without it, anyone who reaches the port
//! could generate for free, skipping the controller's API keys, rate limits and moderation.

use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The metadata key the token travels in (lower case, as gRPC metadata keys are).
pub const HEADER: &str = "authorization";

/// What a caller without the right token is told.
pub const REFUSAL: &str = "this worker requires the controller's worker token";

/// A tonic interceptor that refuses calls without the worker token.
#[derive(Clone)]
pub struct RequireToken {
    token: Arc<[u8]>,
}

impl std::fmt::Debug for RequireToken {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequireToken(..)")
    }
}

impl RequireToken {
    /// Requires `token` on every call.
    pub fn new(token: &str) -> Self {
        Self {
            token: token.as_bytes().into(),
        }
    }

    /// Whether `header` (the raw `authorization` value) carries the token.
    pub fn accepts(&self, header: &[u8]) -> bool {
        let presented = header
            .strip_prefix(b"Bearer ")
            .or_else(|| header.strip_prefix(b"bearer "))
            .unwrap_or(b"");
        constant_time_eq(presented, &self.token)
    }
}

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        match request.metadata().get(HEADER) {
            Some(value) if self.accepts(value.as_bytes()) => Ok(request),
            Some(_) => {
                tracing::warn!(peer = ?request.remote_addr(), "refused a call with a wrong worker token");
                Err(Status::unauthenticated(format!(
                    "wrong worker token: {REFUSAL}"
                )))
            }
            None => {
                tracing::warn!(peer = ?request.remote_addr(), "refused a call without the worker token");
                Err(Status::unauthenticated(format!(
                    "{REFUSAL} (metadata '{HEADER}: Bearer TOKEN')"
                )))
            }
        }
    }
}

/// Equality whose time depends on the lengths only, never on where the bytes differ, so a
/// caller cannot guess the token byte by byte from response times.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // An empty token is never configured; an empty presentation never matches.
    !a.is_empty() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn call(header: Option<&str>) -> Result<Request<()>, Status> {
        let mut req = Request::new(());
        if let Some(h) = header {
            req.metadata_mut()
                .insert(HEADER, MetadataValue::try_from(h).unwrap());
        }
        RequireToken::new("s3cret").call(req)
    }

    #[test]
    fn constant_time_eq_compares_bytes_and_lengths() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        assert!(!constant_time_eq(b"s3cre", b"s3cret"));
        assert!(!constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn a_missing_header_is_unauthenticated() {
        let s = call(None).unwrap_err();
        assert_eq!(s.code(), tonic::Code::Unauthenticated);
        assert!(s.message().contains(REFUSAL), "{}", s.message());
    }

    #[test]
    fn a_wrong_token_is_unauthenticated() {
        for h in [
            "Bearer wrong",
            "Bearer s3cre",
            "Bearer s3cret2",
            "Bearer ",
            "s3cret",
            "Basic s3cret",
        ] {
            let s = call(Some(h)).unwrap_err();
            assert_eq!(s.code(), tonic::Code::Unauthenticated, "{h}");
            assert!(s.message().contains(REFUSAL), "{}", s.message());
        }
    }

    #[test]
    fn the_right_token_passes() {
        assert!(call(Some("Bearer s3cret")).is_ok());
        assert!(call(Some("bearer s3cret")).is_ok());
    }
}
