//! Bootstrap confidence intervals: each round resamples the battles with replacement and
//! refits Bradley-Terry, in parallel over rounds.
//!
//! Resampling N battles with replacement and counting them per (pair, outcome) cell is a
//! multinomial draw over the cells with the observed frequencies, so each round draws the
//! cell counts directly (one binomial per cell, conditioned on those before): O(cells), not
//! O(battles), with the same distribution as FastChat's `battles.sample(frac=1.0,
//! replace=True)`.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Binomial, Distribution};
use rayon::prelude::*;

use super::aggregate::PairCounts;
use super::bradley_terry::{fit_weighted, Regularization};

/// Per model, the 2.5% and 97.5% quantiles of its bootstrap ratings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Intervals {
    /// Lower bounds (NaN: the model was absent from every round).
    pub low: Vec<f64>,
    /// Upper bounds.
    pub high: Vec<f64>,
    /// Rounds that produced ratings (a plain-MLE round can have none).
    pub rounds_used: usize,
}

/// Runs `rounds` bootstrap rounds; `to_rating` turns one round's coefficients into ratings
/// (scale, offset, anchor), NaN for models absent from that round. Each pair keeps its
/// weight (`weights`, per pair) in every round, as arena-rank's bootstrap does.
#[allow(clippy::too_many_arguments)]
pub(crate) fn intervals(
    n: usize,
    pairs: &[PairCounts],
    weights: &[f64],
    reg: Regularization,
    rounds: usize,
    seed: u64,
    start: &[f64],
    to_rating: &(dyn Fn(&mut [f64]) + Sync),
) -> Intervals {
    intervals_of(n, pairs, rounds, seed, &|resampled| {
        let mut w = fit_weighted(n, resampled, Some(weights), reg, Some(start)).ok()?;
        to_rating(&mut w);
        Some(w)
    })
}

/// Runs `rounds` bootstrap rounds of any fit: `refit` rates one resample (NaN for models
/// absent from it; `None` when it has no ratings).
pub(crate) fn intervals_of(
    n: usize,
    pairs: &[PairCounts],
    rounds: usize,
    seed: u64,
    refit: &(dyn Fn(&[PairCounts]) -> Option<Vec<f64>> + Sync),
) -> Intervals {
    let samples: Vec<Vec<f64>> = (0..rounds as u64)
        .into_par_iter()
        .filter_map(|round| {
            let mut rng = StdRng::seed_from_u64(splitmix64(seed ^ splitmix64(round)));
            refit(&resample(pairs, &mut rng))
        })
        .collect();
    let mut low = vec![f64::NAN; n];
    let mut high = vec![f64::NAN; n];
    let mut column = Vec::with_capacity(samples.len());
    for m in 0..n {
        column.clear();
        column.extend(samples.iter().map(|s| s[m]).filter(|x| !x.is_nan()));
        column.sort_unstable_by(f64::total_cmp);
        low[m] = quantile(&column, 0.025);
        high[m] = quantile(&column, 0.975);
    }
    Intervals {
        low,
        high,
        rounds_used: samples.len(),
    }
}

/// One multinomial draw of as many battles as observed over the (pair, outcome) cells.
fn resample(pairs: &[PairCounts], rng: &mut StdRng) -> Vec<PairCounts> {
    let mut left_total: u64 = pairs.iter().map(|p| p.total()).sum();
    let mut left_draws = left_total;
    let mut draw = |count: u64| -> u64 {
        if count == 0 || left_draws == 0 {
            left_total -= count;
            return 0;
        }
        let p = (count as f64 / left_total as f64).min(1.0);
        left_total -= count;
        let x = if p >= 1.0 {
            left_draws
        } else {
            Binomial::new(left_draws, p).map_or(0, |b| b.sample(rng))
        };
        left_draws -= x;
        x
    };
    pairs
        .iter()
        .map(|p| PairCounts {
            i: p.i,
            j: p.j,
            wins_i: draw(p.wins_i),
            wins_j: draw(p.wins_j),
            ties: draw(p.ties),
        })
        .collect()
}

/// Quantile of sorted values with linear interpolation (numpy's and pandas' default).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        len => {
            let pos = q * (len - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(len - 1);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

/// A well-mixed 64-bit hash, to give each round its own independent seed.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v: Vec<f64> = (0..100).map(f64::from).collect();
        // numpy.quantile(range(100), 0.025) = 2.475, 0.975 -> 96.525
        assert!((quantile(&v, 0.025) - 2.475).abs() < 1e-12);
        assert!((quantile(&v, 0.975) - 96.525).abs() < 1e-12);
        assert_eq!(quantile(&[5.0], 0.025), 5.0);
    }

    #[test]
    fn resampling_keeps_the_number_of_battles_and_the_mean() {
        let pairs = [
            PairCounts {
                i: 0,
                j: 1,
                wins_i: 600,
                wins_j: 300,
                ties: 100,
            },
            PairCounts {
                i: 0,
                j: 2,
                wins_i: 0,
                wins_j: 50,
                ties: 0,
            },
        ];
        let mut rng = StdRng::seed_from_u64(1);
        let mut sum = [0u64; 6];
        for _ in 0..2000 {
            let r = resample(&pairs, &mut rng);
            let cells = [
                r[0].wins_i,
                r[0].wins_j,
                r[0].ties,
                r[1].wins_i,
                r[1].wins_j,
                r[1].ties,
            ];
            assert_eq!(cells.iter().sum::<u64>(), 1050);
            assert_eq!(cells[3], 0);
            sum.iter_mut().zip(cells).for_each(|(s, c)| *s += c);
        }
        let mean_first = sum[0] as f64 / 2000.0;
        // Binomial(1050, 600/1050): sd 16, so the mean of 2000 draws is within 1.5 of 600.
        assert!((mean_first - 600.0).abs() < 1.5, "{mean_first}");
    }
}
