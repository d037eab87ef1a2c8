//! Per-client rate limits as a token bucket (GCRA): a client may send `limit` requests at
//! once, then one more every `window / limit`. There are no window edges, so nobody gets two
//! bursts by straddling one (a fixed window let 30 votes through in 20 s at a limit of 15 a
//! minute). In process the bucket is governor's; with Redis, one Lua script runs the same
//! algorithm on Redis's clock, so every replica sees one bucket per client.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use redis::aio::ConnectionManager;

/// Keys tracked in process before idle ones are dropped.
const MAX_LOCAL_KEYS: usize = 100_000;

/// GCRA in Redis: KEYS[1] holds the bucket's theoretical arrival time (ms); ARGV[1] is the
/// emission interval (ms), ARGV[2] the burst. Returns -1 when allowed, else the wait in ms.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat + period - period * burst
if allow_at > now then return allow_at - now end
local new_tat = tat + period
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return -1
"#;

/// Where the buckets live.
enum Buckets {
    Off,
    Local(DefaultKeyedRateLimiter<String>),
    Redis {
        conn: ConnectionManager,
        script: redis::Script,
        scope: String,
        period_ms: u64,
        burst: u32,
    },
}

/// A per-client token-bucket limiter.
pub struct RateLimiter {
    buckets: Buckets,
}

/// The outcome of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse; retry after this many seconds.
    Deny(u64),
}

/// `limit` per `window` as a burst and an emission interval; None for no limit.
fn quota(limit: u32, window: Duration) -> Option<(NonZeroU32, Duration)> {
    let burst = NonZeroU32::new(limit)?;
    let period = (window / limit).max(Duration::from_millis(1));
    Some((burst, period))
}

fn seconds(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

impl RateLimiter {
    /// An in-process limiter; `limit` 0 means no limit.
    pub fn local(limit: u32, window: Duration) -> Self {
        let buckets = match quota(limit, window) {
            None => Buckets::Off,
            Some((burst, period)) => match Quota::with_period(period) {
                Some(q) => Buckets::Local(DefaultKeyedRateLimiter::keyed(q.allow_burst(burst))),
                None => Buckets::Off,
            },
        };
        Self { buckets }
    }

    /// A limiter shared through Redis; `scope` keeps different limits' buckets apart.
    pub fn redis(limit: u32, window: Duration, conn: ConnectionManager, scope: &str) -> Self {
        let buckets = match quota(limit, window) {
            None => Buckets::Off,
            Some((burst, period)) => Buckets::Redis {
                conn,
                script: redis::Script::new(GCRA),
                scope: scope.to_string(),
                period_ms: period.as_millis().max(1) as u64,
                burst: burst.get(),
            },
        };
        Self { buckets }
    }

    /// Takes one token from `client`'s bucket. When Redis fails the request is allowed and
    /// a warning logged: an outage of the limiter must not stop the arena.
    pub async fn check(&self, client: &str) -> Decision {
        match &self.buckets {
            Buckets::Off => Decision::Allow,
            Buckets::Local(limiter) => {
                if limiter.len() > MAX_LOCAL_KEYS {
                    limiter.retain_recent();
                }
                match limiter.check_key(&client.to_string()) {
                    Ok(()) => Decision::Allow,
                    Err(not_until) => Decision::Deny(seconds(
                        not_until.wait_time_from(DefaultClock::default().now()),
                    )),
                }
            }
            Buckets::Redis {
                conn,
                script,
                scope,
                period_ms,
                burst,
            } => {
                let wait: redis::RedisResult<i64> = script
                    .key(format!("arena:ratelimit:{scope}:{client}"))
                    .arg(*period_ms)
                    .arg(*burst)
                    .invoke_async(&mut conn.clone())
                    .await;
                match wait {
                    Ok(ms) if ms < 0 => Decision::Allow,
                    Ok(ms) => Decision::Deny(seconds(Duration::from_millis(ms as u64))),
                    Err(e) => {
                        tracing::warn!("rate limit not checked, redis failed: {e}");
                        Decision::Allow
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_the_limit_then_one_per_interval_per_client() {
        let l = RateLimiter::local(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(l.check("x").await, Decision::Allow);
        }
        // The fourth waits for one token: 60 s / 3, never a fresh window's full burst.
        match l.check("x").await {
            Decision::Deny(s) => assert!((19..=20).contains(&s), "{s}"),
            Decision::Allow => panic!("a fourth request in a burst of three"),
        }
        assert_eq!(l.check("y").await, Decision::Allow);
        assert_eq!(
            RateLimiter::local(0, Duration::from_secs(1))
                .check("x")
                .await,
            Decision::Allow
        );
    }

    #[test]
    fn quotas_spread_the_window_over_the_limit() {
        let (burst, period) = quota(15, Duration::from_secs(60)).unwrap();
        assert_eq!((burst.get(), period), (15, Duration::from_secs(4)));
        assert!(quota(0, Duration::from_secs(60)).is_none());
    }
}
