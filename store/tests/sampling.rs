//! The pair probability of a battle (migration 0009), on both backends: stored exactly as
//! drawn, NULL for named battles and old rows, streamed with each counted vote and folded
//! into the ratings' aggregate for inverse-propensity weighting.

use arena_store::{ArenaStore, NewBattle};
use arena_testkit::on_both_backends;
use std::future::Future;
use std::sync::Arc;

mod common;

async fn with_store<F, Fut>(backend: &'static str, body: F)
where
    F: FnOnce(Arc<dyn ArenaStore>, String) -> Fut,
    Fut: Future<Output = ()>,
{
    common::with_fresh_store(backend, async |s, url| body(s, url).await).await;
}

/// A battle answered in full on both sides, then voted `model_a`, counted.
async fn voted(s: &Arc<dyn ArenaStore>, battle: NewBattle) {
    let id = battle.id.clone();
    s.create_battle(&battle).await.unwrap();
    common::answer_both_sides(s, &id).await;
    s.add_vote(&common::vote_for_a(&id)).await.unwrap();
    // Distinct timestamps keep the votes' order observable.
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
}

// Not a round number in binary or decimal: it must come back bit for bit.
const DRAWN: f64 = 0.123_456_789_012_345_67;

on_both_backends!(
    pair_probabilities_are_stored_exactly_and_streamed_with_counted_votes,
    with_store,
    |s: Arc<dyn ArenaStore>, url: String| async move {
        let drawn = NewBattle {
            pair_probability: Some(DRAWN),
            ..common::battle("b1", "alpha", "beta", true)
        };
        voted(&s, drawn).await;
        // A battle from before probabilities were stored.
        voted(&s, common::battle("b2", "beta", "gamma", true)).await;
        voted(&s, common::battle("b3", "alpha", "gamma", false)).await;

        let stored =
            arena_testkit::db::rows(&url, "SELECT id, pair_probability FROM battles ORDER BY id")
                .await;
        assert_eq!(stored[0], vec!["b1".to_string(), DRAWN.to_string()]);
        assert_eq!(stored[1], vec!["b2".to_string(), String::new()]);
        assert_eq!(stored[2], vec!["b3".to_string(), String::new()]);

        let mut rows = Vec::new();
        s.counted_battles(false, None, &mut |r| {
            rows.push((r.model_b.clone(), r.pair_probability));
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(
            rows,
            vec![
                ("beta".to_string(), Some(DRAWN)),
                ("gamma".to_string(), None)
            ]
        );

        // The aggregate carries them to the ratings: one weighted battle, one at weight 1.
        let agg = arena_store::ratings::counted_aggregate(&*s, None)
            .await
            .unwrap()
            .unwrap();
        let opts = arena_ratings::RatingOptions {
            ipw: true,
            ..Default::default()
        };
        let note = arena_ratings::compute(&agg, &opts).unwrap().ipw.unwrap();
        assert_eq!((note.with_probability, note.without_probability), (1, 1));
    }
);

on_both_backends!(
    a_stored_probability_outside_zero_to_one_is_a_ratings_error,
    with_store,
    |s: Arc<dyn ArenaStore>, _url: String| async move {
        let broken = NewBattle {
            pair_probability: Some(1.5),
            ..common::battle("b1", "alpha", "beta", true)
        };
        voted(&s, broken).await;
        let refused = arena_store::ratings::counted_aggregate(&*s, None)
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(
                refused,
                arena_ratings::RatingsError::BadProbability { probability, .. } if probability == 1.5
            ),
            "{refused:?}"
        );
    }
);
