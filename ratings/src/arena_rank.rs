//! LMArena's `arena-rank` 0.1.1 Bradley-Terry, on pair counts: battles optionally reweighted
//! by `1 / max(n_pair, 50)` so that over-sampled pairs do not dominate, ratings without an
//! anchor (their mean is 1000), and 95% intervals from the sandwich estimator. Plus what
//! arena-rank lacks: a floor under every interval.
//!
//! arena-rank's loss is the mean weighted log-loss of each battle, a tie (of either kind)
//! scoring one half: per pair that is half FastChat's doubled table, so the optimum is the
//! same plain maximum likelihood that `bradley_terry::fit` finds, with each pair's counts
//! multiplied by its weight. Its sandwich (`compute_hessian_and_covariance`) sums, per
//! battle of `i` and `j` with `p = σ(r_i - r_j)` (natural log-odds), `w·p(1-p)` into the
//! Hessian and `(w·(o - p))²` into the gradient covariance, each as a pair Laplacian, adds
//! `1e-5` (times the number of battles when unweighted) to the Hessian's diagonal, and takes
//! the diagonal of `H⁻¹ G H⁻¹`.

use super::aggregate::{Active, PairCounts};
use super::math::{add_pair, sandwich_diagonal, sigmoid, Z95};

/// arena-rank's `hessian_reg`.
const HESSIAN_REG: f64 = 1e-5;

/// Rating points per natural log-odds unit (arena-rank's `alpha`: 400 / ln 10).
pub(crate) const ALPHA: f64 = 400.0 / std::f64::consts::LN_10;

/// arena-rank's per-pair weights: `1 / max(n_pair, min_pair_count)` with reweighting, else 1.
pub(crate) fn pair_weights(pairs: &[PairCounts], reweight: Option<u64>) -> Vec<f64> {
    pairs
        .iter()
        .map(|p| match reweight {
            Some(min) => 1.0 / p.total().max(min).max(1) as f64,
            None => 1.0,
        })
        .collect()
}

/// The weights scaled so that they sum to the number of battles (a mean of one per battle),
/// which leaves the optimum alone and keeps a penalty comparable with or without reweighting.
pub(crate) fn normalized(pairs: &[PairCounts], weights: &[f64]) -> Vec<f64> {
    let (battles, total) = pairs
        .iter()
        .zip(weights)
        .fold((0.0f64, 0.0f64), |(b, t), (p, w)| {
            let n = p.total() as f64;
            (b + n, t + w * n)
        });
    let scale = if total > 0.0 { battles / total } else { 1.0 };
    weights.iter().map(|w| w * scale).collect()
}

/// Per model, the half-width in rating points of arena-rank's 95% sandwich interval around
/// the coefficients `coef` (log10 odds, as `bradley_terry::fit` returns them; NaN for models
/// without battles, whose half-width is NaN too). `weights` are `pair_weights`.
pub(crate) fn sandwich_half_widths(
    n: usize,
    pairs: &[PairCounts],
    weights: &[f64],
    reweighted: bool,
    coef: &[f64],
) -> Vec<f64> {
    half_widths(n, pairs, reweighted, |k, p| {
        let (w, count) = (weights[k], p.total() as f64);
        let prob = win_probability(p, coef);
        let residuals = p.wins_i as f64 * (1.0 - prob).powi(2)
            + p.wins_j as f64 * prob.powi(2)
            + p.ties as f64 * (0.5 - prob).powi(2);
        (w * count * (prob * (1.0 - prob)), w * w * residuals)
    })
}

/// The fitted chance that `p.i` beats `p.j` at coefficients `coef` (log10 odds).
pub(crate) fn win_probability(p: &PairCounts, coef: &[f64]) -> f64 {
    sigmoid(std::f64::consts::LN_10 * (coef[p.i as usize] - coef[p.j as usize]))
}

/// Per model, the half-width of the 95% interval the same estimator would have if every
/// battle had been a fair coin toss (`p = ½`, each outcome's squared residual ¼): the most
/// that wins and losses can tell about a rating. No interval shown is narrower: without
/// it, a model that won its only battle, or all of its few, has an interval of ±0
/// (every residual is 0 at the infinite optimum), claiming certainty the votes cannot give.
pub(crate) fn floor_half_widths(
    n: usize,
    pairs: &[PairCounts],
    weights: &[f64],
    reweighted: bool,
) -> Vec<f64> {
    half_widths(n, pairs, reweighted, |k, p| {
        let (w, battles) = (weights[k], p.total() as f64);
        (w * battles * 0.25, w * w * (0.25 * battles))
    })
}

/// The sandwich half-widths from each pair's weighted terms (`terms(k, pair)`): its
/// Hessian term `Σ w·p(1-p)` and its gradient-covariance term `Σ (w·residual)²`.
pub(crate) fn half_widths(
    n: usize,
    pairs: &[PairCounts],
    reweighted: bool,
    terms: impl Fn(usize, &PairCounts) -> (f64, f64),
) -> Vec<f64> {
    let active = Active::of(n, pairs);
    let k = active.models.len();
    let mut h = vec![0.0; k * k];
    let mut g = vec![0.0; k * k];
    let mut battles = 0.0;
    for (index, p) in pairs.iter().enumerate() {
        let count = p.total() as f64;
        if count == 0.0 {
            continue;
        }
        battles += count;
        let (curvature, residuals) = terms(index, p);
        let (i, j) = active.pair(p);
        add_pair(&mut h, k, i, j, curvature);
        add_pair(&mut g, k, i, j, residuals);
    }
    let reg = if reweighted {
        HESSIAN_REG
    } else {
        HESSIAN_REG * battles
    };
    (0..k).for_each(|m| h[m * k + m] += reg);
    let mut out = vec![f64::NAN; n];
    if let Some(var) = sandwich_diagonal(h, &g, k) {
        for (m, v) in active.models.iter().zip(var) {
            out[*m] = Z95 * v.max(0.0).sqrt() * ALPHA;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_even_pair_has_arena_ranks_interval() {
        // arena-rank 0.1.1 on x beat y, y beat x: ratings 1000 and 1000, 759.25 to 1240.75.
        let pairs = [PairCounts::two(1, 1, 0)];
        let hw = sandwich_half_widths(2, &pairs, &[1.0], false, &[0.0, 0.0]);
        assert!((hw[0] - 240.7513383).abs() < 1e-3, "{hw:?}");
        assert!((hw[1] - hw[0]).abs() < 1e-9);
    }

    #[test]
    fn a_single_win_has_no_certainty() {
        // arena-rank's optimum is at infinity; at any large rating gap the residual of the
        // one battle vanishes and so does its interval (it reports ±0.03 points). The
        // floor is that of a coin toss: ±1.96·√(1/1)·173.7 for two models and one battle.
        let pairs = [PairCounts::two(1, 0, 0)];
        let hw = sandwich_half_widths(2, &pairs, &[1.0], false, &[4.0, -4.0]);
        assert!(hw[0] < 1.0, "{hw:?}");
        let floor = floor_half_widths(2, &pairs, &[1.0], false);
        assert!((floor[0] - Z95 * ALPHA).abs() < 0.01, "{floor:?}");
    }

    #[test]
    fn reweighting_caps_a_pairs_weight() {
        let pairs = [PairCounts::two(300, 100, 0), PairCounts::two(3, 2, 1)];
        assert_eq!(
            pair_weights(&pairs, Some(50)),
            vec![1.0 / 400.0, 1.0 / 50.0]
        );
        assert_eq!(pair_weights(&pairs, None), vec![1.0, 1.0]);
        let norm = normalized(&pairs, &pair_weights(&pairs, Some(50)));
        assert!(
            (norm[0] * 400.0 + norm[1] * 6.0 - 406.0).abs() < 1e-9,
            "{norm:?}"
        );
    }
}
