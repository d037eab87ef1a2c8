//! Bradley-Terry ratings: the exact optimum of the objective FastChat 0.2.36 hands to
//! scikit-learn, computed from pair counts with Newton's method.
//!
//! FastChat's table has two rows per battle with features +ln 10 (model_a) and -ln 10
//! (model_b): a win is two wins, a tie of either kind one win each way. Per unordered pair
//! `i < j` that is `2·wins_i + ties` rows won by `i` and `2·wins_j + ties` won by `j`, and
//! the objective (sklearn's L2 with C, no intercept) is
//! `|w|²/(2C) + Σ n_i·softplus(-z) + n_j·softplus(z)`, `z = ln 10·(w_i - w_j)`.
//! Ratings are `400·w + 1000` (w in log10 odds).

use serde::{Deserialize, Serialize};

use super::aggregate::{Active, PairCounts};
use super::math::{self, sigmoid, softplus, Stop};

const LN10: f64 = std::f64::consts::LN_10;
/// Newton steps this small (log10 odds; 4e-8 rating points) mean we are at the optimum.
const STEP_TOL: f64 = 1e-10;
const GRAD_TOL: f64 = 1e-10;
const MAX_ITER: usize = 200;

/// What keeps the ratings finite.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regularization {
    /// scikit-learn's L2 penalty with inverse strength `c` (FastChat: `c = 1.0`).
    L2 {
        /// Inverse penalty strength; larger is weaker.
        c: f64,
    },
    /// Plain maximum likelihood; the mean coefficient is fixed at 0 (mean rating 1000).
    None,
}

/// Why there is no rating vector.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FitError {
    /// Without regularisation the optimum is at infinity: this model cannot be compared
    /// both ways with all the others (some group never lost to the rest).
    NotConnected(usize),
    /// Newton did not settle (should not happen on a strictly convex problem).
    NoConvergence(f64),
}

/// A pair's rows won by each side, in the doubled-table units of FastChat's fit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Weighted {
    i: usize,
    j: usize,
    won_i: f64,
    won_j: f64,
}

impl Weighted {
    /// The doubled-table weights of one pair's counts (`i`, `j` already compact indices),
    /// each battle counted `weight` times.
    pub(crate) fn new(
        i: usize,
        j: usize,
        wins_i: u64,
        wins_j: u64,
        ties: u64,
        weight: f64,
    ) -> Self {
        Self {
            i,
            j,
            won_i: weight * (2 * wins_i + ties) as f64,
            won_j: weight * (2 * wins_j + ties) as f64,
        }
    }
}

/// Fits the coefficients (log10 odds) of `n` models from pair counts.
///
/// Models without battles get NaN (absent, like a model missing from a pandas bootstrap
/// sample). `start` (same indexing) warm-starts Newton, e.g. from the full-data fit.
pub(crate) fn fit(
    n: usize,
    pairs: &[PairCounts],
    reg: Regularization,
    start: Option<&[f64]>,
) -> Result<Vec<f64>, FitError> {
    fit_weighted(n, pairs, None, reg, start)
}

/// `fit` with each pair's battles counted `weights[k]` times (`None`: once), as arena-rank's
/// reweighting does.
pub(crate) fn fit_weighted(
    n: usize,
    pairs: &[PairCounts],
    weights: Option<&[f64]>,
    reg: Regularization,
    start: Option<&[f64]>,
) -> Result<Vec<f64>, FitError> {
    fit_won(
        n,
        pairs,
        |k, p| won(p, weights.map_or(1.0, |w| w[k])),
        reg,
        start,
    )
}

/// `fit` from each pair's weighted rows won by either side, in doubled-table units
/// (`won(k, pair)` = `(won_i, won_j)`): how per-battle weights enter, for inverse-propensity
/// weighting.
pub(crate) fn fit_won(
    n: usize,
    pairs: &[PairCounts],
    won: impl Fn(usize, &PairCounts) -> (f64, f64),
    reg: Regularization,
    start: Option<&[f64]>,
) -> Result<Vec<f64>, FitError> {
    let (active, weighted) = weighted_pairs(n, pairs, won);
    let mut w: Vec<f64> = active
        .models
        .iter()
        .map(|&m| start.map_or(0.0, |s| s[m]))
        .map(|x| if x.is_finite() { x } else { 0.0 })
        .collect();
    if reg == Regularization::None {
        if let Some(stranded) = not_strongly_connected(active.models.len(), &weighted) {
            return Err(FitError::NotConnected(active.models[stranded]));
        }
    }
    newton(&mut w, &weighted, reg)?;
    let mut out = vec![f64::NAN; n];
    for (k, &m) in active.models.iter().enumerate() {
        out[m] = w[k];
    }
    Ok(out)
}

/// A pair's doubled-table rows won by each side, each battle counted `weight` times.
fn won(p: &PairCounts, weight: f64) -> (f64, f64) {
    let w = Weighted::new(0, 0, p.wins_i, p.wins_j, p.ties, weight);
    (w.won_i, w.won_j)
}

/// The active models of `pairs` and each pair's doubled-table weights over them.
fn weighted_pairs(
    n: usize,
    pairs: &[PairCounts],
    won: impl Fn(usize, &PairCounts) -> (f64, f64),
) -> (Active, Vec<Weighted>) {
    let active = Active::of(n, pairs);
    let weighted = pairs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.total() > 0)
        .map(|(k, p)| {
            let (i, j) = active.pair(p);
            let (won_i, won_j) = won(k, p);
            Weighted { i, j, won_i, won_j }
        })
        .collect();
    (active, weighted)
}

/// Whether plain maximum likelihood has a finite optimum for these pairs: every model that
/// played can be reached from every other along "won at least once against" edges (a tie
/// counts both ways). The check alone, without fitting.
pub(crate) fn plain_mle_exists(n: usize, pairs: &[PairCounts]) -> bool {
    let (active, weighted) = weighted_pairs(n, pairs, |_, p| won(p, 1.0));
    active.models.is_empty() || not_strongly_connected(active.models.len(), &weighted).is_none()
}

/// Minimises the objective from `w` in place.
pub(crate) fn newton(
    w: &mut [f64],
    pairs: &[Weighted],
    reg: Regularization,
) -> Result<(), FitError> {
    let n = w.len();
    if n == 0 {
        return Ok(());
    }
    let l2 = match reg {
        Regularization::L2 { c } => 1.0 / c,
        Regularization::None => 0.0,
    };
    let free = if l2 == 0.0 {
        recentre(w);
        n
    } else {
        0
    };
    let stop = Stop {
        grad_tol: GRAD_TOL,
        step_tol: STEP_TOL,
        max_iter: MAX_ITER,
    };
    math::newton(w, free, &stop, |w, g, h| evaluate(w, pairs, l2, g, h))
        .map_err(FitError::NoConvergence)
}

fn recentre(w: &mut [f64]) {
    let mean = w.iter().sum::<f64>() / w.len() as f64;
    w.iter_mut().for_each(|x| *x -= mean);
}

/// The objective at `w`; fills the gradient, and the Hessian when asked.
fn evaluate(w: &[f64], pairs: &[Weighted], l2: f64, g: &mut [f64], h: Option<&mut [f64]>) -> f64 {
    let n = w.len();
    let mut f = 0.5 * l2 * w.iter().map(|x| x * x).sum::<f64>();
    g.iter_mut().zip(w).for_each(|(g, w)| *g = l2 * w);
    let mut hess = h;
    if let Some(h) = hess.as_deref_mut() {
        h.iter_mut().for_each(|x| *x = 0.0);
        (0..n).for_each(|k| h[k * n + k] = l2);
    }
    for p in pairs {
        let z = LN10 * (w[p.i] - w[p.j]);
        let (s, sm) = (sigmoid(z), sigmoid(-z));
        f += p.won_i * softplus(-z) + p.won_j * softplus(z);
        let dz = LN10 * (p.won_j * s - p.won_i * sm);
        g[p.i] += dz;
        g[p.j] -= dz;
        if let Some(h) = hess.as_deref_mut() {
            math::add_pair(h, n, p.i, p.j, (p.won_i + p.won_j) * s * sm * LN10 * LN10);
        }
    }
    f
}

/// A model that some other model cannot reach along "won at least once against" edges (or
/// that cannot reach it), if there is one: then no finite plain MLE exists.
fn not_strongly_connected(n: usize, pairs: &[Weighted]) -> Option<usize> {
    let mut beat = vec![Vec::new(); n];
    let mut lost = vec![Vec::new(); n];
    for p in pairs {
        if p.won_i > 0.0 {
            beat[p.i].push(p.j);
            lost[p.j].push(p.i);
        }
        if p.won_j > 0.0 {
            beat[p.j].push(p.i);
            lost[p.i].push(p.j);
        }
    }
    for edges in [&beat, &lost] {
        let mut seen = vec![false; n];
        let mut stack = vec![0];
        seen[0] = true;
        while let Some(v) = stack.pop() {
            for &u in &edges[v] {
                if !seen[u] {
                    seen[u] = true;
                    stack.push(u);
                }
            }
        }
        if let Some(m) = seen.iter().position(|s| !s) {
            return Some(m);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(i: u32, j: u32, wins_i: u64, wins_j: u64, ties: u64) -> PairCounts {
        PairCounts {
            i,
            j,
            wins_i,
            wins_j,
            ties,
        }
    }

    #[test]
    fn two_models_unregularised_is_the_log_odds() {
        // 30 wins to 10 (plus 4 ties, half each way): odds 2·30+4 : 2·10+4 = 64 : 24.
        let w = fit(2, &[pair(0, 1, 30, 10, 4)], Regularization::None, None).expect("fit");
        let diff = w[0] - w[1];
        assert!((diff - (64.0f64 / 24.0).log10()).abs() < 1e-12, "{diff}");
        assert!((w[0] + w[1]).abs() < 1e-12);
    }

    #[test]
    fn two_models_l2_satisfies_the_stationarity_condition() {
        // Symmetric by construction: w1 = -w0 = -x, and x = C·ln10·(n0·σ(-z) - n1·σ(z)).
        let c = 0.01;
        let w = fit(2, &[pair(0, 1, 30, 10, 4)], Regularization::L2 { c }, None).expect("fit");
        let x = w[0];
        let z = LN10 * 2.0 * x;
        let rhs = c * LN10 * (64.0 * sigmoid(-z) - 24.0 * sigmoid(z));
        assert!(
            (x - rhs).abs() < 1e-12 && (w[0] + w[1]).abs() < 1e-12,
            "{x} {rhs}"
        );
    }

    #[test]
    fn a_model_that_never_lost_has_no_plain_mle() {
        let pairs = [pair(0, 1, 5, 5, 0), pair(1, 2, 3, 0, 0)];
        assert_eq!(
            fit(3, &pairs, Regularization::None, None),
            Err(FitError::NotConnected(2))
        );
        let w = fit(3, &pairs, Regularization::L2 { c: 1.0 }, None).expect("L2 is finite");
        assert!(w.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn models_without_battles_are_absent() {
        let w = fit(
            3,
            &[pair(0, 2, 1, 1, 0)],
            Regularization::L2 { c: 1.0 },
            None,
        )
        .expect("fit");
        assert!(w[1].is_nan() && w[0].abs() < 1e-12 && w[2].abs() < 1e-12);
    }
}
