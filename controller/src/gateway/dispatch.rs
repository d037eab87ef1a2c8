//! Choosing a worker: the shortest queue (ties broken at random), or a lottery by capacity.

use rand::Rng;

/// How the controller picks among the workers of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Least load (in-flight here plus reported queue), ties at random.
    ShortestQueue,
    /// Random, weighted by each worker's capacity (`max_concurrency`).
    Lottery,
}

impl std::str::FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "shortest_queue" => Ok(Self::ShortestQueue),
            "lottery" => Ok(Self::Lottery),
            other => Err(format!(
                "unknown dispatch policy '{other}' (shortest_queue or lottery)"
            )),
        }
    }
}

/// What dispatch needs to know of a worker.
pub trait Load {
    /// Requests running on it (here) plus its reported queue.
    fn load(&self) -> usize;
    /// Its capacity (`max_concurrency`).
    fn capacity(&self) -> u32;
}

/// Picks one item by `policy` in a single pass, without allocating: ties and lottery draws
/// use reservoir sampling, so every eligible item has its fair chance.
pub fn choose<'a, T: Load>(policy: Policy, items: impl Iterator<Item = &'a T>) -> Option<&'a T> {
    let mut rng = rand::rng();
    let mut chosen = None;
    match policy {
        Policy::ShortestQueue => {
            let (mut best, mut ties) = (usize::MAX, 0u32);
            for item in items {
                let load = item.load();
                if load < best {
                    (best, ties, chosen) = (load, 1, Some(item));
                } else if load == best {
                    ties += 1;
                    if rng.random_range(0..ties) == 0 {
                        chosen = Some(item);
                    }
                }
            }
        }
        Policy::Lottery => {
            let mut total = 0u64;
            for item in items {
                let weight = u64::from(item.capacity().max(1));
                total += weight;
                if rng.random_range(0..total) < weight {
                    chosen = Some(item);
                }
            }
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::gateway::registry::{Candidate, Registry, WorkerInfo};

    impl Load for Candidate {
        fn load(&self) -> usize {
            self.load
        }
        fn capacity(&self) -> u32 {
            self.capacity
        }
    }

    /// Picks a candidate by `policy`, skipping ids in `exclude`.
    pub fn pick(policy: Policy, candidates: &[Candidate], exclude: &[String]) -> Option<Candidate> {
        choose(
            policy,
            candidates.iter().filter(|c| !exclude.contains(&c.id)),
        )
        .cloned()
    }

    /// The least-loaded candidate, a random one among equals.
    pub fn shortest_queue(candidates: &[Candidate], exclude: &[String]) -> Option<Candidate> {
        pick(Policy::ShortestQueue, candidates, exclude)
    }

    fn registry(ids: &[&str]) -> Registry {
        let r = Registry::new(Duration::from_secs(10));
        for id in ids {
            r.register(WorkerInfo {
                id: id.to_string(),
                address: "http://127.0.0.1:1".into(),
                models: vec!["m".into()],
                context_length: 100,
                max_concurrency: 1,
            })
            .unwrap();
        }
        r
    }

    #[tokio::test]
    async fn a_conversations_worker_is_preferred_while_it_has_a_free_slot() {
        let r = registry(&["a", "b"]);
        let pick = |prefer: Option<&str>, exclude: &[String]| {
            r.pick_preferring("m", Policy::ShortestQueue, exclude, prefer)
                .map(|c| c.id)
        };
        // Equal loads would split at random; the preference decides every time.
        for _ in 0..20 {
            assert_eq!(pick(Some("b"), &[]).as_deref(), Some("b"));
        }
        // Busy (its one slot taken by a queued request): the shortest queue decides.
        assert!(r.heartbeat("b", 1));
        assert_eq!(pick(Some("b"), &[]).as_deref(), Some("a"));
        assert!(r.heartbeat("b", 0));
        // Tried and failed, or unknown: ignored.
        assert_eq!(pick(Some("b"), &["b".to_string()]).as_deref(), Some("a"));
        assert!(pick(Some("nobody"), &[]).is_some());
        r.mark_failed("b");
        assert_eq!(pick(Some("b"), &[]).as_deref(), Some("a"));
    }

    #[tokio::test]
    async fn picks_the_least_loaded_and_spreads_ties() {
        let r = registry(&["a", "b", "c"]);
        assert!(r.heartbeat("a", 5));
        assert!(r.heartbeat("b", 1));
        assert!(r.heartbeat("c", 1));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let c = shortest_queue(&r.candidates("m"), &[]).unwrap();
            assert_ne!(c.id, "a");
            seen.insert(c.id);
        }
        assert_eq!(seen.len(), 2, "ties are broken at random");
        let only = shortest_queue(&r.candidates("m"), &["b".into(), "c".into()]).unwrap();
        assert_eq!(only.id, "a");
        assert!(
            shortest_queue(&r.candidates("m"), &["a".into(), "b".into(), "c".into()]).is_none()
        );
    }

    #[tokio::test]
    async fn lottery_follows_capacity() {
        let r = Registry::new(Duration::from_secs(10));
        for (id, cap) in [("small", 1), ("big", 9)] {
            r.register(WorkerInfo {
                id: id.into(),
                address: "http://127.0.0.1:1".into(),
                models: vec!["m".into()],
                context_length: 100,
                max_concurrency: cap,
            })
            .unwrap();
        }
        let c = r.candidates("m");
        let big = (0..2000)
            .filter(|_| pick(Policy::Lottery, &c, &[]).unwrap().id == "big")
            .count();
        assert!((1650..1950).contains(&big), "{big} of 2000");
        assert_eq!(
            pick(Policy::Lottery, &c, &["big".into()]).unwrap().id,
            "small"
        );
        assert!("lottery".parse::<Policy>().is_ok() && "fastest".parse::<Policy>().is_err());
    }

    #[tokio::test]
    async fn registry_pick_skips_failed_excluded_and_other_models() {
        let r = registry(&["a", "b", "c"]);
        r.mark_failed("a");
        for _ in 0..50 {
            let c = r.pick("m", Policy::ShortestQueue, &["b".into()]).unwrap();
            assert_eq!(c.id, "c");
        }
        assert!(r.pick("other", Policy::Lottery, &[]).is_none());
        assert!(r
            .pick("m", Policy::Lottery, &["b".into(), "c".into()])
            .is_none());
        assert!(r.heartbeat("b", 0) && r.heartbeat("c", 3));
        assert_eq!(r.pick("m", Policy::ShortestQueue, &[]).unwrap().id, "b");
    }

    #[tokio::test]
    async fn local_in_flight_counts_at_once() {
        let r = registry(&["a", "b"]);
        let first = shortest_queue(&r.candidates("m"), &[]).unwrap();
        let _guard = first.start();
        let second = shortest_queue(&r.candidates("m"), &[]).unwrap();
        assert_ne!(first.id, second.id);
    }
}
