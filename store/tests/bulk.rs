//! Filling a store with the leaderboard benchmark's synthetic votes: the ratings read from the
//! store equal the ones computed from the same battles in memory, categories and pair
//! probabilities included. Every test runs on SQLite and Postgres.

use std::sync::Arc;

use arena_ratings::bench::{battles, model_name};
use arena_ratings::{compute, Aggregate, Battle, RatingOptions};
use arena_store::ratings::{counted_aggregate, counted_styled};
use arena_store::{fill_with_synthetic, ArenaStore};
use arena_testkit::on_both_backends;

mod common;

const N: u64 = 2_345;
const MODELS: usize = 7;
const SEED: u64 = 5;

/// The same battles folded in memory, those of `category` only when given.
fn in_memory(category: Option<&str>, ipw: bool) -> Aggregate {
    let mut agg = Aggregate::new();
    for b in battles(N, MODELS, SEED).unwrap() {
        if category.is_some_and(|c| !b.categories.contains(&c)) {
            continue;
        }
        let battle = Battle {
            model_a: model_name(b.a as usize),
            model_b: model_name(b.b as usize),
            winner: b.winner,
            tstamp: Some(b.tstamp),
            anony: Some(true),
            turn: None,
        };
        let p = ipw.then_some(b.pair_probability);
        agg.add_with_probability(&battle, p).unwrap();
    }
    agg
}

fn ratings(agg: &Aggregate, opts: &RatingOptions) -> Vec<(String, f64)> {
    let board = compute(agg, opts).unwrap();
    board.rows.iter().map(|r| (r.model.clone(), r.bt)).collect()
}

async fn filled_store_rates_like_memory(backend: &'static str) {
    common::with_fresh_store(backend, async |s: Arc<dyn ArenaStore>, _url| {
        let written = fill_with_synthetic(s.as_ref(), N, MODELS, SEED)
            .await
            .unwrap();
        assert_eq!(written, N);
        let ipw = RatingOptions {
            ipw: true,
            ..RatingOptions::default()
        };
        let stored = counted_aggregate(s.as_ref(), None).await.unwrap().unwrap();
        assert_eq!(stored.battles(), N);
        assert_eq!(
            ratings(&stored, &RatingOptions::default()),
            ratings(&in_memory(None, false), &RatingOptions::default())
        );
        assert_eq!(
            ratings(&stored, &ipw),
            ratings(&in_memory(None, true), &ipw)
        );
        let coding = counted_aggregate(s.as_ref(), Some("coding"))
            .await
            .unwrap()
            .unwrap();
        let expected = in_memory(Some("coding"), false);
        assert!(coding.battles() > N / 5 && coding.battles() < N / 2);
        assert_eq!(coding.battles(), expected.battles());
        assert_eq!(
            ratings(&coding, &RatingOptions::default()),
            ratings(&expected, &RatingOptions::default())
        );
        let styled = counted_styled(s.as_ref(), None).await.unwrap();
        assert_eq!((styled.battles.len() as u64, styled.without_style), (N, 0));
        // A second fill would mix two benchmarks' votes.
        let again = fill_with_synthetic(s.as_ref(), 10, MODELS, SEED).await;
        assert!(
            again.is_err_and(|e| e.to_string().contains("already has votes")),
            "a store with votes was filled again"
        );
    })
    .await;
}

on_both_backends!(
    a_store_filled_with_synthetic_votes_rates_them_as_memory_does,
    filled_store_rates_like_memory
);
