//! The judge's Bradley-Terry ranking beside the arena's, compared by Spearman's rank
//! correlation.

use std::collections::HashMap;

use arena_ratings::{Aggregate, Battle, RatingOptions, RatingsError, Winner};
use serde::Serialize;

use super::{JudgedBattle, Side};
use crate::EvalError;

/// Average ranks from 1, tied values sharing the mean of their positions.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0; v.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && v[order[end]] == v[order[start]] {
            end += 1;
        }
        // Positions start+1 ..= end share their mean.
        let avg = (start + 1 + end) as f64 / 2.0;
        order[start..end].iter().for_each(|&i| r[i] = avg);
        start = end;
    }
    r
}

/// Spearman's rank correlation (average ranks for ties); None for fewer than 2 points,
/// unequal lengths, a value that is not finite, or no variance in either.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    // Average ranks of n items always have mean (n + 1) / 2.
    let mean = (x.len() + 1) as f64 / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        let (dx, dy) = (a - mean, b - mean);
        (sxy, sxx, syy) = (sxy + dx * dy, sxx + dx * dx, syy + dy * dy);
    }
    (sxx > 0.0 && syy > 0.0).then(|| (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// One model rated by the arena's votes and by the judge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankRow {
    /// Model name.
    pub model: String,
    /// Bradley-Terry rating from the arena's votes.
    pub arena_rating: f64,
    /// Bradley-Terry rating from the judge's outcomes.
    pub judge_rating: f64,
    /// 1 + models (of those in both) rated higher by the arena.
    pub arena_rank: usize,
    /// 1 + models (of those in both) rated higher by the judge.
    pub judge_rank: usize,
}

/// The arena's ranking beside the judge's, over models both rated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankComparison {
    /// Best arena rating first.
    pub rows: Vec<RankRow>,
    /// Spearman's ρ between the two ratings; None under two models or no spread.
    pub spearman: Option<f64>,
    /// Models in both.
    pub models: usize,
}

/// Bradley-Terry ratings from `arena`'s votes and from the judge's readable outcomes of
/// `battles` (judge tie = `Winner::Tie`), compared over the models in both.
pub fn rank_comparison(
    arena: &Aggregate,
    battles: &[JudgedBattle],
) -> Result<RankComparison, EvalError> {
    let fail = |e: RatingsError| EvalError::Ratings(e.to_string());
    let opts = RatingOptions {
        bootstrap_rounds: 0,
        ..Default::default()
    };
    let mut judged = Aggregate::new();
    for b in battles {
        let winner = match b.judge() {
            Some(Side::A) => Winner::ModelA,
            Some(Side::B) => Winner::ModelB,
            Some(Side::Tie) => Winner::Tie,
            None => continue,
        };
        let battle = Battle {
            model_a: b.model_a.clone(),
            model_b: b.model_b.clone(),
            winner,
            tstamp: None,
            anony: None,
            turn: None,
        };
        judged.add(&battle).map_err(fail)?;
    }
    let judge_board = arena_ratings::compute(&judged, &opts).map_err(fail)?;
    let judge_bt: HashMap<&str, f64> = judge_board
        .rows
        .iter()
        .map(|r| (r.model.as_str(), r.bt))
        .collect();
    compare(arena, &judge_bt)
}

/// A benchmark's scores (mean grade, or win rate against the baseline) beside the arena's
/// Bradley-Terry ratings, over the models in both: how well the benchmark predicts the
/// arena, Arena-Hard's headline figure. The "judge" columns hold the benchmark's scores.
pub fn benchmark_vs_arena(
    arena: &Aggregate,
    summary: &crate::summary::Summary,
) -> Result<RankComparison, EvalError> {
    let scores: HashMap<&str, f64> = summary
        .models
        .iter()
        .filter_map(|m| {
            let score = match (&m.single, &m.pairs) {
                (Some(s), _) if s.graded > 0 => s.overall,
                (_, Some(p)) if p.rate.wins + p.rate.ties + p.rate.losses > 0 => p.rate.win_rate,
                _ => return None,
            };
            Some((m.model.as_str(), score))
        })
        .collect();
    compare(arena, &scores)
}

/// The arena's Bradley-Terry ratings beside `judge` scores, over the models in both.
fn compare(arena: &Aggregate, judge: &HashMap<&str, f64>) -> Result<RankComparison, EvalError> {
    let opts = RatingOptions {
        bootstrap_rounds: 0,
        ..Default::default()
    };
    let arena_board =
        arena_ratings::compute(arena, &opts).map_err(|e| EvalError::Ratings(e.to_string()))?;
    // Leaderboard rows come best first, so the rows do too.
    let both: Vec<(&str, f64, f64)> = arena_board
        .rows
        .iter()
        .filter_map(|r| Some((r.model.as_str(), r.bt, *judge.get(r.model.as_str())?)))
        .collect();
    let arena_bt: Vec<f64> = both.iter().map(|b| b.1).collect();
    let judge_bt: Vec<f64> = both.iter().map(|b| b.2).collect();
    let rank = |all: &[f64], x: f64| 1 + all.iter().filter(|&&o| o > x).count();
    let rows: Vec<RankRow> = both
        .iter()
        .map(|&(model, a, j)| RankRow {
            model: model.to_string(),
            arena_rating: a,
            judge_rating: j,
            arena_rank: rank(&arena_bt, a),
            judge_rank: rank(&judge_bt, j),
        })
        .collect();
    Ok(RankComparison {
        spearman: spearman(&arena_bt, &judge_bt),
        models: rows.len(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agreement::fixtures::{arena, judged};

    fn close(x: Option<f64>, want: f64) -> bool {
        x.is_some_and(|x| (x - want).abs() < 1e-9)
    }

    #[test]
    fn spearman_by_hand() {
        // Ranks y = [1, 2, 3.5, 5, 3.5]; d = rank - 3: Σdxdy = 8, Σdx² = 10, Σdy² = 9.5.
        let rho = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]);
        assert!(close(rho, 8.0 / 95f64.sqrt()), "{rho:?}");
        assert!(close(rho.map(|r| (r * 1e4).round() / 1e4), 0.8208));
        assert!(close(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 300.0]), 1.0));
        assert!(close(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0));
        // Ties in both: ranks [1.5, 1.5, 3] and [1, 2.5, 2.5]; Σdxdy = 0.75, Σ² = 1.5 each.
        assert!(close(spearman(&[1.0, 1.0, 2.0], &[0.0, 5.0, 5.0]), 0.5));
        assert_eq!(spearman(&[1.0], &[1.0]), None);
        assert_eq!(spearman(&[1.0, 2.0], &[1.0]), None);
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[4.0, 4.0, 4.0]), None);
        assert_eq!(spearman(&[1.0, f64::NAN], &[1.0, 2.0]), None);
    }

    #[test]
    fn judge_ranking_beside_the_arena() {
        let same = rank_comparison(&arena(), &judged(true)).expect("fits");
        assert_eq!(same.models, 3);
        assert!(close(same.spearman, 1.0), "{same:?}");
        let order: Vec<(&str, usize, usize)> = same
            .rows
            .iter()
            .map(|r| (r.model.as_str(), r.arena_rank, r.judge_rank))
            .collect();
        assert_eq!(order, [("p", 1, 1), ("q", 2, 2), ("r", 3, 3)]);
        assert!(same
            .rows
            .windows(2)
            .all(|w| w[0].judge_rating > w[1].judge_rating));
        let reversed = rank_comparison(&arena(), &judged(false)).expect("fits");
        assert!(close(reversed.spearman, -1.0), "{reversed:?}");
        let ranks: Vec<usize> = reversed.rows.iter().map(|r| r.judge_rank).collect();
        assert_eq!(ranks, [3, 2, 1]);
        let none = rank_comparison(&arena(), &[]).expect("fits");
        assert_eq!((none.models, none.spearman), (0, None));
    }
}
