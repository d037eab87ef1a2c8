//! The style-controlled leaderboard: battles with the style of both answers, rated by the
//! contextual Bradley-Terry (`super::contextual`), with the same intervals, floor and table
//! as the plain one.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::aggregate::Aggregate;
use super::arena_rank;
use super::battle::{Battle, JsonRow, Winner};
use super::board::{anchor_index, around, finish, fit_error, shift_to_anchor};
use super::bootstrap::quantile;
use super::bradley_terry;
use super::contextual::{self, Rows};
use super::metadata::styles_of;
use super::style::{style_features, StyleCounts, STYLE_FEATURES, STYLE_FEATURE_NAMES};
use super::table::{Meta, StyleCoefficient};
use super::{Ci, Leaderboard, RatingOptions, RatingsError};

/// arena-rank's `reg`: the style coefficients' L2 penalty on its mean loss.
const STYLE_REG: f64 = 1.0;

/// FastChat's L2 (C = 1) in arena-rank's units: `|r|²/(2·ln²10)` on the summed per-battle
/// log-loss, the penalty a fit falls back to when plain maximum likelihood has no optimum.
fn fallback_ridge(battles: f64) -> f64 {
    1.0 / (2.0 * std::f64::consts::LN_10.powi(2)) / battles
}

/// A battle with the style of each answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StyledBattle {
    /// The vote.
    #[serde(flatten)]
    pub battle: Battle,
    /// `model_a`'s answer.
    pub style_a: StyleCounts,
    /// `model_b`'s answer.
    pub style_b: StyleCounts,
}

/// A JSON row in the public dataset's shape as a styled battle (see `read_styled_battles`).
pub(crate) fn styled_from_json(mut row: JsonRow) -> Result<StyledBattle, String> {
    let battle = row.battle()?;
    let meta = row.conv_metadata.take().unwrap_or(serde_json::Value::Null);
    let (style_a, style_b) = styles_of(&meta)?;
    Ok(StyledBattle {
        battle,
        style_a,
        style_b,
    })
}

/// The style-controlled leaderboard of `battles` (`opts.method` is not consulted: this is
/// arena-rank's contextual model; `opts.reweight` defaults to on there, see the CLI).
pub fn compute_style_controlled(
    battles: &[StyledBattle],
    opts: &RatingOptions,
) -> Result<Leaderboard, RatingsError> {
    if opts.ipw {
        return Err(RatingsError::IpwUnsupported("style control"));
    }
    let mut agg = Aggregate::new();
    let mut rows = Rows::default();
    let mut styles = Vec::with_capacity(battles.len());
    for sb in battles {
        agg.add(&sb.battle)?;
        let a = agg.model_index(&sb.battle.model_a);
        let b = agg.model_index(&sb.battle.model_b);
        rows.pairs.push((a, b));
        rows.outcomes.push(match sb.battle.winner {
            Winner::ModelA => 1.0,
            Winner::ModelB => 0.0,
            Winner::Tie | Winner::TieBothBad => 0.5,
        });
        styles.push((sb.style_a, sb.style_b));
    }
    let anchor = anchor_index(&agg, opts)?;
    let n = agg.models().len();
    let pairs = agg.pair_counts();
    let raw_weights = arena_rank::pair_weights(&pairs, opts.reweight);
    rows.weights = row_weights(&rows, &pairs, &raw_weights);
    rows.features = style_features(&styles);
    if n < 2 {
        return super::board::compute(&agg, opts);
    }
    // Whether plain maximum likelihood has an optimum depends only on who beat whom.
    let ridge = if bradley_terry::plain_mle_exists(n, &pairs) {
        0.0
    } else {
        fallback_ridge(battles.len() as f64)
    };
    let k = STYLE_FEATURES;
    let fit = contextual::fit(n, k, &rows, STYLE_REG, ridge).map_err(|e| fit_error(&agg, e))?;
    let mut bt = fit.ratings.clone();
    shift_to_anchor(&mut bt, anchor);
    let (low, high, rounds) = match opts.ci {
        Ci::Sandwich => {
            let (low, high) = around(&bt, &fit.half_widths);
            (low, high, 0)
        }
        Ci::Bootstrap => bootstrap(n, &rows, ridge, opts, anchor),
    };
    let floor = opts
        .interval_floor
        .then(|| arena_rank::floor_half_widths(n, &pairs, &raw_weights, opts.reweight.is_some()));
    let style_coefficients = STYLE_FEATURE_NAMES
        .iter()
        .zip(&fit.coefficients)
        .map(|(f, c)| StyleCoefficient {
            feature: f.to_string(),
            coefficient: *c,
        })
        .collect();
    Ok(finish(
        &agg,
        &bt,
        (low, high),
        floor,
        Meta {
            fallback_l2: ridge > 0.0,
            style_coefficients,
            ..Meta::of(opts, rounds)
        },
    ))
}

/// Each battle's weight, its pair's (`raw`, per unordered pair in `pairs` order), scaled to
/// a mean of 1 as arena-rank's contextual dataset does.
fn row_weights(rows: &Rows, pairs: &[super::aggregate::PairCounts], raw: &[f64]) -> Vec<f64> {
    let index: std::collections::HashMap<(u32, u32), f64> = pairs
        .iter()
        .zip(raw)
        .map(|(p, w)| ((p.i, p.j), *w))
        .collect();
    let w: Vec<f64> = rows
        .pairs
        .iter()
        .map(|&(a, b)| index.get(&(a.min(b), a.max(b))).copied().unwrap_or(1.0))
        .collect();
    let mean = w.iter().sum::<f64>() / w.len().max(1) as f64;
    w.iter().map(|x| x / mean).collect()
}

/// Percentile intervals from refits on battles resampled with replacement (arena-rank's
/// contextual bootstrap), in parallel over rounds.
fn bootstrap(
    n: usize,
    rows: &Rows,
    ridge: f64,
    opts: &RatingOptions,
    anchor: Option<(usize, f64)>,
) -> (Vec<f64>, Vec<f64>, usize) {
    let k = STYLE_FEATURES;
    let samples: Vec<Vec<f64>> = (0..opts.bootstrap_rounds as u64)
        .into_par_iter()
        .filter_map(|round| {
            let mut rng =
                StdRng::seed_from_u64(opts.seed.wrapping_mul(0x9E37_79B9).wrapping_add(round));
            let total = rows.outcomes.len();
            let mut sample = Rows::default();
            for _ in 0..total {
                let t = rng.random_range(0..total);
                sample.pairs.push(rows.pairs[t]);
                sample.outcomes.push(rows.outcomes[t]);
                sample.weights.push(rows.weights[t]);
                sample
                    .features
                    .extend_from_slice(&rows.features[t * k..(t + 1) * k]);
            }
            let mut r = contextual::fit(n, k, &sample, STYLE_REG, ridge)
                .ok()?
                .ratings;
            shift_to_anchor(&mut r, anchor);
            Some(r)
        })
        .collect();
    let mut low = vec![f64::NAN; n];
    let mut high = vec![f64::NAN; n];
    for m in 0..n {
        let mut column: Vec<f64> = samples.iter().map(|s| s[m]).collect();
        column.sort_unstable_by(f64::total_cmp);
        low[m] = quantile(&column, 0.025);
        high[m] = quantile(&column, 0.975);
    }
    (low, high, samples.len())
}
