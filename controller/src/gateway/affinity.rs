//! Which worker served a conversation's last turn. Its next turn goes there while that worker
//! is healthy and has a free slot: the worker still holds the conversation's keys and values
//! in its prefix cache, and prefills only the new turn. Bounded: the oldest half of the
//! entries goes when the map is full.
//!
//! With Redis, replicas share the map: one key per conversation, `arena:affinity:` and the
//! SHA-256 of model and session (a client's session id may be anything; the hash bounds the
//! key and keeps it out of Redis in the clear), expiring after [`SHARED_TTL`]. A turn that a
//! load balancer sends to another replica then still finds its worker. The in-process map
//! stays as the fallback when Redis fails.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};

/// Longest session key kept; a client's `user` or `x-session-id` may be anything.
const MAX_KEY_BYTES: usize = 200;

/// Conversations remembered by default.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// How long Redis remembers a conversation's worker after its last turn: longer than a
/// worker's prefix cache holds an idle conversation under load.
pub const SHARED_TTL: Duration = Duration::from_secs(3600);

/// How long a lookup waits for Redis before using the in-process map.
const SHARED_WAIT: Duration = Duration::from_millis(250);

const PREFIX: &str = "arena:affinity:";

/// (model, session) → (worker id, when it was last used).
type Entries = HashMap<(String, String), (String, u64)>;

/// The worker of each recent conversation.
pub struct Affinity {
    entries: Mutex<(Entries, u64)>,
    capacity: usize,
    shared: Option<ConnectionManager>,
}

impl std::fmt::Debug for Affinity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Affinity")
            .field("capacity", &self.capacity)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

/// `key` cut to at most [`MAX_KEY_BYTES`], on a character boundary.
fn bounded(key: &str) -> &str {
    if key.len() <= MAX_KEY_BYTES {
        return key;
    }
    let mut end = MAX_KEY_BYTES;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// The Redis key of `session` of `model`. The lengths go in first so that no two (model,
/// session) pairs hash the same bytes.
fn shared_key(model: &str, session: &str) -> String {
    let mut h = Sha256::new();
    h.update((model.len() as u64).to_le_bytes());
    h.update(model.as_bytes());
    h.update(session.as_bytes());
    format!("{PREFIX}{}", crate::ids::hex(&h.finalize()))
}

/// The prefix-cache scope of a conversation's turns on a worker
/// (`GenerateRequest.cache_scope`): a digest of `session`, so that its turns start from each
/// other's keys and values and no other client's prompt meets them; empty, which turns the
/// cache off, for a request of no conversation, whose prompt nothing later would extend.
pub fn cache_scope(session: Option<&str>) -> String {
    session.map_or_else(String::new, |s| {
        let mut h = Sha256::new();
        h.update(b"arena prefix-cache scope\0");
        h.update(s.as_bytes());
        crate::ids::hex(&h.finalize())
    })
}

impl Affinity {
    /// Remembers at most `capacity` conversations (at least 2) in this process.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new((HashMap::new(), 0)),
            capacity: capacity.max(2),
            shared: None,
        }
    }

    /// Shares the map with other replicas through Redis.
    pub fn with_redis(mut self, conn: ConnectionManager) -> Self {
        self.shared = Some(conn);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Entries, u64)> {
        // A panic elsewhere while holding the lock leaves a valid map: keep using it.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The worker that served `session` of `model` last, if remembered: Redis's answer when
    /// shared (another replica may have served the last turn), else this process's.
    pub async fn worker(&self, model: &str, session: &str) -> Option<String> {
        if let Some(conn) = &self.shared {
            let mut conn = conn.clone();
            let mut cmd = redis::cmd("GET");
            cmd.arg(shared_key(model, session));
            let get = cmd.query_async::<Option<String>>(&mut conn);
            match tokio::time::timeout(SHARED_WAIT, get).await {
                Ok(Ok(found)) => return found,
                Ok(Err(e)) => tracing::warn!("conversation's worker not read from redis: {e}"),
                Err(_) => tracing::warn!(
                    "conversation's worker not read: redis did not answer within {} ms",
                    SHARED_WAIT.as_millis()
                ),
            }
        }
        self.local_worker(model, session)
    }

    fn local_worker(&self, model: &str, session: &str) -> Option<String> {
        let key = (model.to_string(), bounded(session).to_string());
        self.lock().0.get(&key).map(|(w, _)| w.clone())
    }

    /// Remembers that `worker` served `session` of `model`. The write to Redis runs on its
    /// own task: the turn's first token does not wait for it, and the next turn comes only
    /// after this one's answer.
    pub fn remember(&self, model: &str, session: &str, worker: &str) {
        if let Some(conn) = &self.shared {
            let mut conn = conn.clone();
            let key = shared_key(model, session);
            let worker = worker.to_string();
            tokio::spawn(async move {
                let mut cmd = redis::cmd("SET");
                cmd.arg(key)
                    .arg(worker)
                    .arg("PX")
                    .arg(SHARED_TTL.as_millis() as u64);
                let set = cmd.query_async::<()>(&mut conn);
                match tokio::time::timeout(SHARED_WAIT * 4, set).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!("conversation's worker not shared: {e}"),
                    Err(_) => tracing::warn!("conversation's worker not shared: redis timed out"),
                }
            });
        }
        let mut guard = self.lock();
        let (entries, clock) = &mut *guard;
        *clock += 1;
        let now = *clock;
        entries.insert(
            (model.to_string(), bounded(session).to_string()),
            (worker.to_string(), now),
        );
        if entries.len() > self.capacity {
            // Stamps are unique and increasing: keep the newest half.
            let keep_from = now.saturating_sub((self.capacity / 2) as u64);
            entries.retain(|_, (_, used)| *used > keep_from);
        }
    }

    /// Conversations remembered in this process now.
    pub fn len(&self) -> usize {
        self.lock().0.len()
    }

    /// True when none is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_worker_per_model_and_session() {
        let a = Affinity::new(10);
        assert_eq!(a.local_worker("m", "s1"), None);
        a.remember("m", "s1", "w1");
        a.remember("m", "s2", "w2");
        a.remember("other", "s1", "w3");
        assert_eq!(a.local_worker("m", "s1").as_deref(), Some("w1"));
        assert_eq!(a.local_worker("other", "s1").as_deref(), Some("w3"));
        a.remember("m", "s1", "w2");
        assert_eq!(a.local_worker("m", "s1").as_deref(), Some("w2"));
    }

    #[test]
    fn shared_keys_tell_every_model_and_session_apart() {
        assert_ne!(shared_key("ab", "c"), shared_key("a", "bc"));
        assert_ne!(shared_key("m", "s"), shared_key("m", "t"));
        assert_eq!(shared_key("m", "s"), shared_key("m", "s"));
        let long = shared_key("m", &"x".repeat(100_000));
        assert_eq!(long.len(), PREFIX.len() + 64);
    }

    #[test]
    fn each_conversation_has_its_own_bounded_cache_scope() {
        assert_eq!(cache_scope(None), "", "no conversation, no cache");
        let s = cache_scope(Some("s"));
        assert_eq!(s, cache_scope(Some("s")));
        assert_ne!(s, cache_scope(Some("t")));
        assert_eq!(s.len(), 64);
        assert_eq!(cache_scope(Some(&"x".repeat(100_000))).len(), 64);
    }

    #[test]
    fn it_stays_bounded_and_keeps_the_newest() {
        let a = Affinity::new(100);
        for i in 0..1000 {
            a.remember("m", &format!("s{i}"), "w");
        }
        assert!(a.len() <= 100, "{}", a.len());
        assert_eq!(a.local_worker("m", "s999").as_deref(), Some("w"));
        assert_eq!(a.local_worker("m", "s0"), None);
        // Huge keys are cut, not stored whole.
        let long = "é".repeat(10_000);
        a.remember("m", &long, "w9");
        assert_eq!(a.local_worker("m", &long).as_deref(), Some("w9"));
        let stored = a.lock().0.keys().map(|k| k.1.len()).max().unwrap();
        assert!(stored <= MAX_KEY_BYTES);
    }
}
