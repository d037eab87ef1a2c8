//! Inverse-propensity weighting: each battle weighs `1/π`, π the probability with which the
//! arena drew its pair (stored with the battle), scaled so that the weights of the battles
//! with a probability have a mean of 1; a battle without one weighs 1. A pair drawn ten
//! times as often as another then counts as much as it, not ten times more, so boosted new
//! models do not tilt the ratings toward their opponents' matchups: the fit estimates the
//! ratings a uniform pairing would have given.
//!
//! Per-battle weights reach the fit and the sandwich as sums per (pair, outcome): the fit
//! needs `Σ w` of each outcome, the sandwich `Σ w` for its Hessian and `Σ w²` for the spread
//! of the residuals. With every weight 1 those sums are the counts themselves, exactly, so
//! the result is bit for bit the unweighted one.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::aggregate::{Aggregate, PairCounts};
use super::battle::{Battle, Winner};
use super::board::{around, finish, fit_for, shift_to_anchor};
use super::table::Meta;
use super::{arena_rank, bradley_terry};
use super::{Ci, Leaderboard, RatingOptions, RatingsError, Ties, INIT_RATING, SCALE};

/// How many battles were weighted and how many had no stored probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IpwSummary {
    /// Battles weighted by the inverse of their stored pair probability.
    pub with_probability: u64,
    /// Battles without one (cast before the arena stored it, or from a file): weight 1.
    pub without_probability: u64,
    /// The largest weight given to a battle (after scaling to a mean of 1).
    pub max_weight: f64,
}

/// The inverse probabilities of the battles that have one, per ordered pair and outcome.
#[derive(Debug, Clone, Default)]
pub(crate) struct Propensities {
    /// Keyed like the aggregate's cells, outcomes in `Winner::ALL` order.
    cells: HashMap<(u32, u32), [Known; 4]>,
    /// SHA-256 of every battle's probability in order (see `Aggregate::propensity_sha256`).
    digest: Sha256,
}

/// Battles of one cell with a stored probability: how many, `Σ 1/π`, `Σ 1/π²`, `max 1/π`.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    battles: u64,
    inverse: f64,
    inverse_sq: f64,
    max_inverse: f64,
}

impl Aggregate {
    /// `add`, remembering the probability `pair_probability` with which the battle's pair
    /// was drawn (None: unknown), for `RatingOptions::ipw`. A probability outside (0, 1] is
    /// refused before anything is added.
    pub fn add_with_probability(
        &mut self,
        battle: &Battle,
        pair_probability: Option<f64>,
    ) -> Result<(), RatingsError> {
        if let Some(p) = pair_probability.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(RatingsError::BadProbability {
                model_a: battle.model_a.clone(),
                model_b: battle.model_b.clone(),
                probability: p,
            });
        }
        self.add(battle)?;
        match pair_probability {
            Some(p) => {
                self.propensities.digest.update([1]);
                self.propensities.digest.update(p.to_le_bytes());
            }
            None => self.propensities.digest.update([0]),
        }
        if let Some(p) = pair_probability {
            let a = self.model_index(&battle.model_a);
            let b = self.model_index(&battle.model_b);
            let known =
                &mut self.propensities.cells.entry((a, b)).or_default()[battle.winner.index()];
            known.battles += 1;
            known.inverse += 1.0 / p;
            known.inverse_sq += 1.0 / (p * p);
            known.max_inverse = known.max_inverse.max(1.0 / p);
        }
        Ok(())
    }
}

impl Aggregate {
    /// The SHA-256 (hex) of the pair probabilities of the battles folded in with
    /// `add_with_probability`, in order: per battle one byte 0 (unknown) or 1 followed by the
    /// probability's 8 bytes (IEEE 754, little-endian). With `vote_set_sha256` it names
    /// exactly what inverse-propensity-weighted ratings were computed from.
    pub fn propensity_sha256(&self) -> String {
        crate::snapshot::hex(self.propensities.digest.clone().finalize())
    }
}

/// One pair's battle weights summed per outcome (`[wins_i, wins_j, ties]`), and their squares.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct PairSums {
    /// `Σ w` per outcome.
    pub sum: [f64; 3],
    /// `Σ w²` per outcome.
    pub sum_sq: [f64; 3],
}

impl PairSums {
    fn total(&self) -> f64 {
        self.sum[0] + self.sum[1] + self.sum[2]
    }

    fn total_sq(&self) -> f64 {
        self.sum_sq[0] + self.sum_sq[1] + self.sum_sq[2]
    }
}

/// Each pair's weight sums (aligned with `pairs`) and the summary.
pub(crate) fn pair_sums(agg: &Aggregate, pairs: &[PairCounts]) -> (Vec<PairSums>, IpwSummary) {
    let (with, inverse_total, max_inverse) = agg
        .propensities
        .cells
        .values()
        .flatten()
        .fold((0u64, 0.0f64, 0.0f64), |(n, t, m), k| {
            (n + k.battles, t + k.inverse, m.max(k.max_inverse))
        });
    // Scaled to a mean of 1 over the battles that have a probability, which makes them
    // commensurable with the unknown ones at weight 1.
    let scale = if with > 0 {
        with as f64 / inverse_total
    } else {
        1.0
    };
    let sums = pairs
        .iter()
        .map(|p| {
            let mut s = PairSums::default();
            for (a, b) in [(p.i, p.j), (p.j, p.i)] {
                let counts = agg.cell(a, b);
                let known = agg
                    .propensities
                    .cells
                    .get(&(a, b))
                    .copied()
                    .unwrap_or_default();
                for w in Winner::ALL {
                    let slot = match w {
                        Winner::ModelA => usize::from(a != p.i),
                        Winner::ModelB => usize::from(b != p.i),
                        Winner::Tie | Winner::TieBothBad => 2,
                    };
                    let k = known[w.index()];
                    let unknown = (counts[w.index()] - k.battles) as f64;
                    s.sum[slot] += scale * k.inverse + unknown;
                    s.sum_sq[slot] += scale * scale * k.inverse_sq + unknown;
                }
            }
            s
        })
        .collect();
    let summary = IpwSummary {
        with_probability: with,
        without_probability: agg.battles() - with,
        max_weight: if with > 0 { scale * max_inverse } else { 1.0 },
    };
    (sums, summary)
}

/// The leaderboard with every battle weighted by its inverse pair probability (see the
/// module's documentation); per-pair reweighting (`opts.reweight`) multiplies on top.
pub(crate) fn board(
    agg: &Aggregate,
    opts: &RatingOptions,
    pairs: &[PairCounts],
    anchor: Option<(usize, f64)>,
) -> Result<Leaderboard, RatingsError> {
    if opts.ties == Ties::Davidson {
        return Err(RatingsError::IpwUnsupported("Davidson's ties"));
    }
    if opts.ci == Ci::Bootstrap {
        return Err(RatingsError::IpwUnsupported("bootstrap intervals"));
    }
    let n = agg.models().len();
    let (sums, summary) = pair_sums(agg, pairs);
    let raw = arena_rank::pair_weights(pairs, opts.reweight);
    let fit_weights = normalized(&sums, &raw, pairs);
    let (coef, reg) = if n < 2 {
        (vec![0.0; n], bradley_terry::Regularization::None)
    } else {
        fit_for(agg, opts, |reg| {
            bradley_terry::fit_won(
                n,
                pairs,
                |k, _| {
                    let (v, s) = (fit_weights[k], &sums[k]);
                    (
                        v * (2.0 * s.sum[0] + s.sum[2]),
                        v * (2.0 * s.sum[1] + s.sum[2]),
                    )
                },
                reg,
                None,
            )
        })?
    };
    let mut bt = coef.clone();
    bt.iter_mut().for_each(|x| *x = SCALE * *x + INIT_RATING);
    shift_to_anchor(&mut bt, anchor);
    let reweighted = opts.reweight.is_some();
    let (low, high) = if n > 1 {
        let half = arena_rank::half_widths(n, pairs, reweighted, |k, p| {
            let (w, s) = (raw[k], &sums[k]);
            let prob = arena_rank::win_probability(p, &coef);
            let residuals = s.sum_sq[0] * (1.0 - prob).powi(2)
                + s.sum_sq[1] * prob.powi(2)
                + s.sum_sq[2] * (0.5 - prob).powi(2);
            (w * s.total() * (prob * (1.0 - prob)), w * w * residuals)
        });
        around(&bt, &half)
    } else {
        (bt.clone(), bt.clone())
    };
    let floor = (opts.interval_floor && n > 1).then(|| {
        arena_rank::half_widths(n, pairs, reweighted, |k, _| {
            let (w, s) = (raw[k], &sums[k]);
            (w * s.total() * 0.25, w * w * (0.25 * s.total_sq()))
        })
    });
    Ok(finish(
        agg,
        &bt,
        (low, high),
        floor,
        Meta {
            fallback_l2: reg != bradley_terry::Regularization::None
                && opts.method == super::Method::ArenaRank,
            ipw: Some(summary),
            ..Meta::of(opts, 0)
        },
    ))
}

/// The per-pair weights scaled so that all battles' weights sum to the number of battles,
/// as `arena_rank::normalized` does for counts.
fn normalized(sums: &[PairSums], weights: &[f64], pairs: &[PairCounts]) -> Vec<f64> {
    let (battles, total) = pairs
        .iter()
        .zip(sums.iter().zip(weights))
        .fold((0.0f64, 0.0f64), |(b, t), (p, (s, w))| {
            (b + p.total() as f64, t + w * s.total())
        });
    let scale = if total > 0.0 { battles / total } else { 1.0 };
    weights.iter().map(|w| w * scale).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn battle(a: &str, b: &str, winner: Winner) -> Battle {
        Battle {
            model_a: a.into(),
            model_b: b.into(),
            winner,
            tstamp: None,
            anony: Some(true),
            turn: None,
        }
    }

    #[test]
    fn sums_put_each_outcome_on_its_side_and_scale_to_a_mean_of_one() {
        let mut agg = Aggregate::new();
        // x beats y with π = 1/2 (weight ∝ 2), y beats x (as model_a) with π = 1/4 (∝ 4),
        // a tie with no probability (weight 1).
        agg.add_with_probability(&battle("x", "y", Winner::ModelA), Some(0.5))
            .unwrap();
        agg.add_with_probability(&battle("y", "x", Winner::ModelA), Some(0.25))
            .unwrap();
        agg.add_with_probability(&battle("x", "y", Winner::Tie), None)
            .unwrap();
        let pairs = agg.pair_counts();
        let (sums, summary) = pair_sums(&agg, &pairs);
        // Mean 1 over the two known: 2·s + 4·s = 2, s = 1/3.
        let s = 1.0 / 3.0;
        assert!((sums[0].sum[0] - 2.0 * s).abs() < 1e-12, "{sums:?}");
        assert!((sums[0].sum[1] - 4.0 * s).abs() < 1e-12, "{sums:?}");
        assert_eq!(sums[0].sum[2], 1.0);
        assert!((sums[0].sum_sq[1] - 16.0 * s * s).abs() < 1e-12);
        assert_eq!(
            (summary.with_probability, summary.without_probability),
            (2, 1)
        );
        assert!((summary.max_weight - 4.0 * s).abs() < 1e-12, "{summary:?}");
    }

    #[test]
    fn probabilities_outside_zero_to_one_are_refused_before_adding() {
        let mut agg = Aggregate::new();
        for p in [0.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
            let e = agg
                .add_with_probability(&battle("x", "y", Winner::ModelA), Some(p))
                .unwrap_err();
            assert!(matches!(e, RatingsError::BadProbability { .. }), "{e:?}");
        }
        assert_eq!(agg.battles(), 0);
        agg.add_with_probability(&battle("x", "y", Winner::ModelA), Some(1.0))
            .unwrap();
        assert_eq!(agg.battles(), 1);
    }
}
