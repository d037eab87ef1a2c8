//! Choosing a worker: the shortest queue, ties broken at random.

use rand::seq::IndexedRandom;

use crate::registry::Candidate;

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
    async fn local_in_flight_counts_at_once() {
        let r = registry(&["a", "b"]);
        let first = shortest_queue(&r.candidates("m"), &[]).unwrap();
        let _guard = first.start();
        let second = shortest_queue(&r.candidates("m"), &[]).unwrap();
        assert_ne!(first.id, second.id);
    }
}
