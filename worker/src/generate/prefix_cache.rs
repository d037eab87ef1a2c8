//! The KV of finished sequences, kept so that the next turn of a conversation (which re-sends
//! the whole conversation) prefills only what is new. Bounded in bytes, least recently used
//! first out.
//!
//! An entry a new prompt extends whole is handed over, not shared: the cache's tensors are
//! written in place, so two sequences on one entry would overwrite each other's positions.
//! A prompt that shares only part of an entry (another question after the same system
//! prompt, a regenerated answer) gets a copy of that part, and the entry stays.
//!
//! Each entry belongs to a [`Scope`] and serves only prompts of the same one. A cache shared
//! by every client is an oracle: the cached-token count a response reports, or only how soon
//! its first token came, tells a client how much of a guessed prompt someone else sent, and
//! guesses extended a token at a time read another client's conversation back.

use crate::model::kv_cache::KvCache;

/// Whose finished sequences a request may start from, and whom its own serves later.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every request that names no scope (trusted callers of the worker's gRPC API).
    #[default]
    Shared,
    /// Only requests naming the same key (the controller's: one per conversation).
    Key(String),
    /// Neither starts from the cache nor leaves its sequence there.
    Off,
}

/// One finished sequence: the tokens its KV holds, in order.
struct Entry {
    scope: Scope,
    tokens: Vec<u32>,
    cache: KvCache,
    bytes: usize,
    used: u64,
}

/// Finished sequences' KV, at most `capacity` bytes.
pub struct PrefixCache {
    entries: Vec<Entry>,
    capacity: usize,
    bytes: usize,
    clock: u64,
}

/// How long the common start of two token lists is.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl PrefixCache {
    /// An empty cache of at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Vec::new(),
            capacity,
            bytes: 0,
            clock: 0,
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The KV of the longest start `prompt` shares with an entry of `scope`, and its length:
    /// the entry itself when the prompt extends all of it, else a copy of the shared part. At
    /// least the prompt's last token is left to feed, since sampling needs its logits. None
    /// when no entry of the scope shares a token.
    pub fn take(&mut self, prompt: &[u32], scope: &Scope) -> Option<(KvCache, usize)> {
        if *scope == Scope::Off {
            return None;
        }
        let usable = prompt.len().saturating_sub(1);
        let (best, shared) = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.scope == *scope)
            .map(|(i, e)| (i, common_prefix(&e.tokens, prompt).min(usable)))
            .max_by_key(|&(i, n)| (n, self.entries[i].used))?;
        if shared == 0 {
            return None;
        }
        self.clock += 1;
        if shared < self.entries[best].tokens.len() {
            let entry = &mut self.entries[best];
            // Where a re-sent conversation parts from what the worker generated: often the
            // answer's text tokenized otherwise than the tokens that wrote it.
            tracing::debug!(
                shared,
                entry = entry.tokens.len(),
                prompt = prompt.len(),
                entry_next = ?entry.tokens.get(shared..(shared + 4).min(entry.tokens.len())),
                prompt_next = ?prompt.get(shared..(shared + 4).min(prompt.len())),
                "prefix cache: a partial hit"
            );
            entry.used = self.clock;
            // A failed copy (out of memory) only costs the reuse: the prompt is prefilled.
            return entry.cache.copy_prefix(shared).ok().map(|c| (c, shared));
        }
        let entry = self.entries.swap_remove(best);
        self.bytes -= entry.bytes;
        let mut cache = entry.cache;
        cache.truncate(shared);
        Some((cache, shared))
    }

    /// Keeps `cache`, whose positions hold `tokens`, for prompts of `scope`, evicting the
    /// least recently used entries to make room. Entries of the scope it extends (their tokens
    /// a prefix of these) go: this one serves every prompt they served.
    pub fn put(&mut self, mut tokens: Vec<u32>, cache: KvCache, scope: Scope) {
        tokens.truncate(cache.len());
        let bytes = cache.bytes();
        if tokens.is_empty() || bytes > self.capacity || scope == Scope::Off {
            return;
        }
        let before = self.entries.len();
        self.entries.retain(|e| {
            !(e.scope == scope && e.tokens.len() <= tokens.len() && tokens.starts_with(&e.tokens))
        });
        if self.entries.len() != before {
            self.bytes = self.entries.iter().map(|e| e.bytes).sum();
        }
        while self.bytes + bytes > self.capacity {
            let Some(oldest) = (0..self.entries.len()).min_by_key(|&i| self.entries[i].used) else {
                break;
            };
            let e = self.entries.swap_remove(oldest);
            self.bytes -= e.bytes;
        }
        self.clock += 1;
        self.bytes += bytes;
        self.entries.push(Entry {
            scope,
            tokens,
            cache,
            bytes,
            used: self.clock,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Tensor};

    /// A one-layer cache holding `n` positions of 2 heads x 4 dims.
    fn cache(n: usize) -> KvCache {
        let mut c = KvCache::new(1, 4096, &Device::Cpu);
        let k = Tensor::zeros((2, n, 4), DType::F32, &Device::Cpu).unwrap();
        c.append(0, &k, &k).unwrap();
        c.commit(n);
        c
    }

    #[test]
    fn the_longest_shared_start_is_taken_and_cut() {
        let mut pc = PrefixCache::new(usize::MAX);
        pc.put(vec![1, 2, 3, 4, 5], cache(5), Scope::Shared);
        pc.put(vec![1, 2, 9], cache(3), Scope::Shared);
        assert_eq!(pc.len(), 2);
        // Shares 4 tokens with the first, 2 with the second: a copy of the first's 4.
        let (c, n) = pc.take(&[1, 2, 3, 4, 7, 8], &Scope::Shared).unwrap();
        assert_eq!((n, c.len()), (4, 4));
        assert_eq!(pc.len(), 2);
        // A prompt extending an entry whole gets the entry itself, which leaves the cache.
        let (c, n) = pc.take(&[1, 2, 3, 4, 5, 6], &Scope::Shared).unwrap();
        assert_eq!((n, c.len()), (5, 5));
        assert_eq!(pc.len(), 1);
        let (_, n) = pc.take(&[1, 2, 3, 4, 7, 8], &Scope::Shared).unwrap();
        assert_eq!(n, 2);
        assert!(pc.take(&[3], &Scope::Shared).is_none());
    }

    #[test]
    fn the_last_prompt_token_is_always_fed() {
        let mut pc = PrefixCache::new(usize::MAX);
        pc.put(vec![1, 2, 3], cache(3), Scope::Shared);
        let (c, n) = pc.take(&[1, 2, 3], &Scope::Shared).unwrap();
        assert_eq!((n, c.len()), (2, 2));
        // Only part of the entry was used: it stays for the next prompt.
        assert_eq!(pc.len(), 1);
        pc.put(vec![5], cache(1), Scope::Shared);
        assert!(
            pc.take(&[5], &Scope::Shared).is_none(),
            "nothing can be reused of a one-token prompt"
        );
        assert!(pc.take(&[6, 7], &Scope::Shared).is_none());
    }

    #[test]
    fn bytes_are_bounded_least_recently_used_first() {
        let one = cache(10).bytes();
        let mut pc = PrefixCache::new(2 * one);
        pc.put((0..10).collect(), cache(10), Scope::Shared);
        pc.put((100..110).collect(), cache(10), Scope::Shared);
        pc.put((200..210).collect(), cache(10), Scope::Shared);
        assert_eq!((pc.len(), pc.bytes()), (2, 2 * one));
        assert!(
            pc.take(&[0, 1, 2], &Scope::Shared).is_none(),
            "the oldest was evicted"
        );
        // A copy's use counts as a use: the entry it came from is now the newest.
        assert!(pc.take(&[100, 101, 102], &Scope::Shared).is_some());
        pc.put((300..310).collect(), cache(10), Scope::Shared);
        assert!(pc.take(&[100, 101, 7], &Scope::Shared).is_some());
        assert!(
            pc.take(&[200, 201, 7], &Scope::Shared).is_none(),
            "the least recently used went"
        );
        // Too big to hold at all: not kept, nothing evicted for it.
        let mut small = PrefixCache::new(one / 2);
        small.put((0..10).collect(), cache(10), Scope::Shared);
        assert!(small.is_empty());
    }

    #[test]
    fn a_longer_turn_replaces_the_entry_it_extends() {
        let mut pc = PrefixCache::new(usize::MAX);
        pc.put(vec![1, 2, 3], cache(3), Scope::Shared);
        pc.put(vec![1, 2, 3, 4, 5, 6], cache(6), Scope::Shared);
        assert_eq!(pc.len(), 1);
        assert_eq!(pc.bytes(), cache(6).bytes());
        // Tokens beyond what the cache holds (the last sampled one, never fed) are not kept.
        pc.put(vec![7, 8, 9, 10], cache(3), Scope::Shared);
        let (_, n) = pc.take(&[7, 8, 9, 10, 11], &Scope::Shared).unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn an_entry_serves_only_prompts_of_its_own_scope() {
        let (a, b) = (Scope::Key("a".into()), Scope::Key("b".into()));
        let mut pc = PrefixCache::new(usize::MAX);
        pc.put(vec![1, 2, 3, 4], cache(4), a.clone());
        // Another client sending the same conversation finds nothing, not even its start.
        assert!(pc.take(&[1, 2, 3, 4, 5], &b).is_none());
        assert!(pc.take(&[1, 2, 3, 4, 5], &Scope::Shared).is_none());
        assert!(pc.take(&[1, 2, 3, 4, 5], &Scope::Off).is_none());
        // Nor does its longer sequence replace the entry of another scope.
        pc.put(vec![1, 2, 3, 4, 5, 6], cache(6), b.clone());
        assert_eq!(pc.len(), 2);
        let (c, n) = pc.take(&[1, 2, 3, 4, 9], &a).unwrap();
        assert_eq!((n, c.len()), (4, 4));
        let (_, n) = pc.take(&[1, 2, 3, 4, 5, 6, 7], &b).unwrap();
        assert_eq!(n, 6);
        // A request of no scope leaves nothing behind.
        let mut off = PrefixCache::new(usize::MAX);
        off.put(vec![1, 2, 3], cache(3), Scope::Off);
        assert!(off.is_empty());
    }
}
