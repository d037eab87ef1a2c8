//! Per-client rate limits: a fixed window of `limit` requests per `window`, counted in Redis
//! when configured (so every replica sees one count) and in-process otherwise.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::ConnectionManager;

/// Where the counts live.
enum Counter {
    Local(Mutex<HashMap<String, (u64, u32)>>),
    Redis(ConnectionManager),
}

/// A fixed-window limiter.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    counter: Counter,
}

/// The outcome of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse; retry after this many seconds.
    Deny(u64),
}

impl RateLimiter {
    /// An in-process limiter; `limit` 0 means no limit.
    pub fn local(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            counter: Counter::Local(Mutex::new(HashMap::new())),
        }
    }

    /// A limiter shared through Redis.
    pub fn redis(limit: u32, window: Duration, conn: ConnectionManager) -> Self {
        Self {
            limit,
            window,
            counter: Counter::Redis(conn),
        }
    }

    /// Counts one request of `client` at `now_ms` (Unix milliseconds). When Redis fails the
    /// request is allowed and a warning logged: an outage of the limiter must not stop the
    /// arena.
    pub async fn check(&self, client: &str, now_ms: u64) -> Decision {
        if self.limit == 0 {
            return Decision::Allow;
        }
        let window_ms = self.window.as_millis().max(1) as u64;
        let slot = now_ms / window_ms;
        let retry_after = ((slot + 1) * window_ms - now_ms).div_ceil(1000).max(1);
        let count = match &self.counter {
            Counter::Local(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                if map.len() > 100_000 {
                    map.retain(|_, (s, _)| *s == slot);
                }
                let entry = map.entry(client.to_string()).or_insert((slot, 0));
                if entry.0 != slot {
                    *entry = (slot, 0);
                }
                entry.1 += 1;
                entry.1
            }
            Counter::Redis(conn) => {
                let key = format!("arena:ratelimit:{client}:{slot}");
                let result: redis::RedisResult<(u32,)> = redis::pipe()
                    .atomic()
                    .incr(&key, 1)
                    .pexpire(&key, window_ms as i64)
                    .ignore()
                    .query_async(&mut conn.clone())
                    .await;
                match result {
                    Ok((n,)) => n,
                    Err(e) => {
                        tracing::warn!("rate limit not checked, redis failed: {e}");
                        return Decision::Allow;
                    }
                }
            }
        };
        if count > self.limit {
            Decision::Deny(retry_after)
        } else {
            Decision::Allow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_windows_count_per_client_and_reset() {
        let l = RateLimiter::local(2, Duration::from_secs(60));
        let t = 120_000 + 15_000;
        assert_eq!(l.check("x", t).await, Decision::Allow);
        assert_eq!(l.check("x", t).await, Decision::Allow);
        assert_eq!(l.check("x", t + 1).await, Decision::Deny(45));
        assert_eq!(l.check("y", t).await, Decision::Allow);
        assert_eq!(l.check("x", 180_000).await, Decision::Allow);
        assert_eq!(
            RateLimiter::local(0, Duration::from_secs(1))
                .check("x", 0)
                .await,
            Decision::Allow
        );
    }
}
