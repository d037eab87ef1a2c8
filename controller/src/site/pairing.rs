//! Who meets whom in an anonymous battle: each served model's weight is its
//! `--battle-weights` entry (1 when absent; 0 keeps it out) times `--new-model-boost F` while
//! it has fewer than `--new-model-votes N` counted anonymous votes; `pick` draws the pair from
//! those weights and says the exact probability of the draw, which the battle stores.
//!
//! The counted votes come from the store's `model_stats()`, cached: a battle start reads the
//! cache, and the cache is recounted only when `last_vote_ms()` has moved, at most every
//! `vote_count_refresh`. With the boost off nothing is read at all.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arena_store::{ArenaStore, StoreError};

use super::pick::{self, Draw};
use super::{store_error, ArenaState};
use crate::config::ArenaSettings;
use crate::error::ApiError;

/// The weight of `model` for the next battle: its configured weight, times `boost` while it
/// has fewer than `boost_votes` counted votes (`counts`; absent means none).
pub fn weight(
    model: &str,
    configured: &HashMap<String, f64>,
    counts: &HashMap<String, i64>,
    boost: f64,
    boost_votes: u64,
) -> f64 {
    let w = configured.get(model).copied().unwrap_or(1.0);
    let votes = counts.get(model).copied().unwrap_or(0).max(0) as u64;
    if votes < boost_votes {
        w * boost
    } else {
        w
    }
}

/// Whether the settings boost anyone: a factor of 1 or a threshold of 0 turns it off.
fn boosting(settings: &ArenaSettings) -> bool {
    settings.new_model_boost != 1.0 && settings.new_model_votes > 0
}

/// Draws the two models of an anonymous battle among `models` (the ones served right now),
/// with the probability of their pair; 503 when fewer than two can be drawn.
pub async fn draw(state: &ArenaState, models: &[String]) -> Result<Draw, ApiError> {
    let s = &state.settings;
    let counts = if boosting(s) {
        state.vote_counts.get().await.map_err(store_error)?
    } else {
        Arc::default()
    };
    let pool = pick::pool(models, |m| {
        weight(
            m,
            &s.battle_weights,
            &counts,
            s.new_model_boost,
            s.new_model_votes,
        )
    });
    pick::draw_pair(&pool, &mut rand::rng()).ok_or_else(|| {
        ApiError::unavailable(format!(
            "an anonymous battle needs two models; {} available right now",
            pool.len()
        ))
    })
}

/// Parses `--new-model-boost`: a finite factor of at least 1 (1 turns the boost off).
pub fn parse_boost(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 1.0 => Ok(f),
        _ => Err(format!(
            "'{s}' is not a boost factor: a number of at least 1 (1 turns the boost off)"
        )),
    }
}

/// Counted anonymous votes per model, as of some `last_vote_ms`.
struct Counted {
    last_vote_ms: i64,
    checked: Instant,
    counts: Arc<HashMap<String, i64>>,
}

/// Each model's counted anonymous votes, cached for battle starts.
pub struct VoteCounts {
    store: Arc<dyn ArenaStore>,
    refresh: Duration,
    // One recount at a time; waiters then find it fresh.
    cached: tokio::sync::Mutex<Option<Counted>>,
}

impl VoteCounts {
    /// A cache over `store` that looks for new votes at most every `refresh`.
    pub fn new(store: Arc<dyn ArenaStore>, refresh: Duration) -> Self {
        Self {
            store,
            refresh,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The counts: cached within `refresh` of the last look, else recounted if a vote was
    /// cast since. A vote cast in the very millisecond of the last recount waits for the
    /// next vote to be seen; a boost a moment too long is harmless, and the probability
    /// stored is always that of the weights actually used.
    pub async fn get(&self) -> Result<Arc<HashMap<String, i64>>, StoreError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached
            .as_ref()
            .filter(|c| c.checked.elapsed() < self.refresh)
        {
            return Ok(c.counts.clone());
        }
        let last_vote_ms = self.store.last_vote_ms().await?;
        if let Some(c) = cached.as_mut().filter(|c| c.last_vote_ms == last_vote_ms) {
            c.checked = Instant::now();
            return Ok(c.counts.clone());
        }
        let counts: HashMap<String, i64> = self
            .store
            .model_stats()
            .await?
            .into_iter()
            .map(|s| (s.model, s.battles))
            .collect();
        let counts = Arc::new(counts);
        *cached = Some(Counted {
            last_vote_ms,
            checked: Instant::now(),
            counts: counts.clone(),
        });
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_models_are_boosted_until_they_have_their_votes() {
        let configured = pick::parse_weights("heavy=2,off=0").unwrap();
        let counts: HashMap<String, i64> = [("old".to_string(), 300), ("young".to_string(), 299)]
            .into_iter()
            .collect();
        let w = |m: &str, boost, votes| weight(m, &configured, &counts, boost, votes);
        assert_eq!(w("old", 5.0, 300), 1.0);
        assert_eq!(w("young", 5.0, 300), 5.0);
        assert_eq!(w("unseen", 5.0, 300), 5.0);
        assert_eq!(w("heavy", 5.0, 300), 10.0);
        assert_eq!(w("off", 5.0, 300), 0.0);
        // Either a factor of 1 or a threshold of 0 turns it off.
        assert_eq!(w("young", 1.0, 300), 1.0);
        assert_eq!(w("young", 5.0, 0), 1.0);
        let off = |boost, votes| ArenaSettings {
            new_model_boost: boost,
            new_model_votes: votes,
            ..ArenaSettings::default()
        };
        assert!(boosting(&ArenaSettings::default()));
        assert!(!boosting(&off(1.0, 300)) && !boosting(&off(5.0, 0)));
    }

    #[test]
    fn boost_factors_below_one_or_not_numbers_are_refused() {
        assert_eq!(parse_boost("5"), Ok(5.0));
        assert_eq!(parse_boost("1"), Ok(1.0));
        for bad in ["0.5", "-2", "inf", "NaN", "x", ""] {
            assert!(parse_boost(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn counts_are_read_again_only_after_a_new_vote() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let store = arena_store::connect(&url).await.unwrap();
        let counts = VoteCounts::new(store.clone(), Duration::ZERO);
        let before = counts.get().await.unwrap();
        let vote = arena_store::CountedVote::plain("v", "x", "y", "model_a", 1);
        store.insert_counted_votes(&[vote]).await.unwrap();
        let after = counts.get().await.unwrap();
        assert!(before.is_empty());
        assert_eq!((after.get("x"), after.get("y")), (Some(&1), Some(&1)));
        // Unchanged votes: the very same cached map, not a recount.
        assert!(Arc::ptr_eq(&after, &counts.get().await.unwrap()));
        // Within the refresh period nothing is read, even after a vote.
        let slow = VoteCounts::new(store.clone(), Duration::from_secs(3600));
        let first = slow.get().await.unwrap();
        assert!(Arc::ptr_eq(&first, &slow.get().await.unwrap()));
    }
}
