//! Choosing a worker: the shortest queue (ties broken at random), or a lottery by capacity.

use rand::seq::IndexedRandom;

use crate::registry::Candidate;

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

/// Picks a candidate by `policy`, skipping ids in `exclude`.
pub fn pick(policy: Policy, candidates: &[Candidate], exclude: &[String]) -> Option<Candidate> {
    match policy {
        Policy::ShortestQueue => shortest_queue(candidates, exclude),
        Policy::Lottery => lottery(candidates, exclude),
    }
}

/// A random candidate, weighted by capacity (at least 1 each).
pub fn lottery(candidates: &[Candidate], exclude: &[String]) -> Option<Candidate> {
    let open: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !exclude.contains(&c.id))
        .collect();
    open.choose_weighted(&mut rand::rng(), |c| c.capacity.max(1))
        .ok()
        .map(|c| (*c).clone())
}

/// The candidate with the least load, skipping ids in `exclude`; a random one among equals.
pub fn shortest_queue(candidates: &[Candidate], exclude: &[String]) -> Option<Candidate> {
    let open: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !exclude.contains(&c.id))
        .collect();
    let best = open.iter().map(|c| c.load).min()?;
    let tied: Vec<&&Candidate> = open.iter().filter(|c| c.load == best).collect();
    tied.choose(&mut rand::rng()).map(|c| (**c).clone())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::registry::{Registry, WorkerInfo};

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
    async fn local_in_flight_counts_at_once() {
        let r = registry(&["a", "b"]);
        let first = shortest_queue(&r.candidates("m"), &[]).unwrap();
        let _guard = first.start();
        let second = shortest_queue(&r.candidates("m"), &[]).unwrap();
        assert_ne!(first.id, second.id);
    }
}
