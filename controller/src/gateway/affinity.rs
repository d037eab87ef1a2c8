//! Which worker served a conversation's last turn. Its next turn goes there while that worker
//! is healthy and has a free slot: the worker still holds the conversation's keys and values
//! in its prefix cache, and prefills only the new turn. Bounded: the oldest half of the
//! entries goes when the map is full.

use std::collections::HashMap;
use std::sync::Mutex;

/// Longest session key kept; a client's `user` or `x-session-id` may be anything.
const MAX_KEY_BYTES: usize = 200;

/// Conversations remembered by default.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// (model, session) → (worker id, when it was last used).
type Entries = HashMap<(String, String), (String, u64)>;

/// The worker of each recent conversation.
#[derive(Debug)]
pub struct Affinity {
    entries: Mutex<(Entries, u64)>,
    capacity: usize,
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

impl Affinity {
    /// Remembers at most `capacity` conversations (at least 2).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new((HashMap::new(), 0)),
            capacity: capacity.max(2),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Entries, u64)> {
        // A panic elsewhere while holding the lock leaves a valid map: keep using it.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The worker that served `session` of `model` last, if remembered.
    pub fn worker(&self, model: &str, session: &str) -> Option<String> {
        let key = (model.to_string(), bounded(session).to_string());
        self.lock().0.get(&key).map(|(w, _)| w.clone())
    }

    /// Remembers that `worker` served `session` of `model`.
    pub fn remember(&self, model: &str, session: &str, worker: &str) {
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

    /// Conversations remembered now.
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
        assert_eq!(a.worker("m", "s1"), None);
        a.remember("m", "s1", "w1");
        a.remember("m", "s2", "w2");
        a.remember("other", "s1", "w3");
        assert_eq!(a.worker("m", "s1").as_deref(), Some("w1"));
        assert_eq!(a.worker("other", "s1").as_deref(), Some("w3"));
        a.remember("m", "s1", "w2");
        assert_eq!(a.worker("m", "s1").as_deref(), Some("w2"));
    }

    #[test]
    fn it_stays_bounded_and_keeps_the_newest() {
        let a = Affinity::new(100);
        for i in 0..1000 {
            a.remember("m", &format!("s{i}"), "w");
        }
        assert!(a.len() <= 100, "{}", a.len());
        assert_eq!(a.worker("m", "s999").as_deref(), Some("w"));
        assert_eq!(a.worker("m", "s0"), None);
        // Huge keys are cut, not stored whole.
        let long = "é".repeat(10_000);
        a.remember("m", &long, "w9");
        assert_eq!(a.worker("m", &long).as_deref(), Some("w9"));
        let stored = a.lock().0.keys().map(|k| k.1.len()).max().unwrap();
        assert!(stored <= MAX_KEY_BYTES);
    }
}
