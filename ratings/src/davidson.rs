//! Ties done properly: Davidson's (1970) extension of Bradley-Terry. A battle of `i` and
//! `j` with `d = θ_i - θ_j` ends
//! `i` won: `e^{d/2} / D`, `j` won: `e^{-d/2} / D`, tie: `ν / D`, `D = e^{d/2} + e^{-d/2} + ν`,
//! so that among decisive battles `P(i won) = σ(d)`, the Bradley-Terry scale (ratings
//! `400/ln 10 · θ + 1000`, mean 1000), while `ν` says how often models of equal strength tie
//! and ties cost the weaker side nothing extra. Counting a tie as half a win each way, as
//! FastChat and arena-rank do, instead treats a tie as evidence that the two are equal.
//!
//! Fitted by Newton's method on pair counts (`θ` with mean 0, and `η = ln ν`), with
//! sandwich intervals from per-battle scores, as for the other fits.

use super::aggregate::{Active, PairCounts};
use super::arena_rank::ALPHA;
use super::bradley_terry::FitError;
use super::math::{add_pair, newton, sandwich_diagonal, Stop, Z95};

const GRAD_TOL: f64 = 1e-11;
const STEP_TOL: f64 = 1e-11;
const MAX_ITER: usize = 200;

/// What the fit found, indexed like the models.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fit {
    /// Ratings (NaN: no battles).
    pub ratings: Vec<f64>,
    /// Half-widths of the sandwich 95% intervals, rating points.
    pub half_widths: Vec<f64>,
    /// `ν`: the tie propensity (ties per decisive battle between equals is `ν / 2`).
    pub nu: f64,
}

/// Per-battle quantities at `d` and `η`: `ln D`, `s = ∂ln D/∂d`, `q = ∂ln D/∂η`, and the
/// second derivatives `(∂²/∂d², ∂²/∂d∂η, ∂²/∂η²)` of `ln D`.
fn terms(d: f64, eta: f64) -> (f64, f64, f64, (f64, f64, f64)) {
    // Scaled by e^{-|d|/2} so that nothing overflows at large gaps.
    let m = d.abs() / 2.0;
    let (a, b, nu) = ((d / 2.0 - m).exp(), (-d / 2.0 - m).exp(), (eta - m).exp());
    let big_d = a + b + nu;
    let log_d = m + big_d.ln();
    let s = (a - b) / (2.0 * big_d);
    let q = nu / big_d;
    let hdd = (a + b) / (4.0 * big_d) - s * s;
    (log_d, s, q, (hdd, -s * q, q * (1.0 - q)))
}

/// Negative log-likelihood at `theta` (ratings then `η`); fills `g`, and `h` when asked.
fn evaluate(
    pairs: &[(usize, usize, f64, f64, f64)],
    theta: &[f64],
    g: &mut [f64],
    mut h: Option<&mut [f64]>,
) -> f64 {
    let m = theta.len();
    let n = m - 1;
    let eta = theta[n];
    g.iter_mut().for_each(|x| *x = 0.0);
    if let Some(h) = h.as_deref_mut() {
        h.iter_mut().for_each(|x| *x = 0.0);
    }
    let mut f = 0.0;
    for &(i, j, wi, wj, t) in pairs {
        let d = theta[i] - theta[j];
        let (log_d, s, q, (hdd, hde, hee)) = terms(d, eta);
        let total = wi + wj + t;
        f -= wi * (d / 2.0) - wj * (d / 2.0) + t * eta - total * log_d;
        // ∂(-ℓ)/∂d and ∂(-ℓ)/∂η.
        let gd = -(wi - wj) / 2.0 + total * s;
        let ge = -t + total * q;
        g[i] += gd;
        g[j] -= gd;
        g[n] += ge;
        if let Some(h) = h.as_deref_mut() {
            add_pair(h, m, i, j, total * hdd);
            h[i * m + n] += total * hde;
            h[n * m + i] += total * hde;
            h[j * m + n] -= total * hde;
            h[n * m + j] -= total * hde;
            h[n * m + n] += total * hee;
        }
    }
    f
}

/// Fits `n` models from pair counts (ties of either kind are ties). Models without battles
/// get NaN. The caller checks that a finite optimum exists (every model won and lost, and
/// some battle was a tie); otherwise Newton reports `NoConvergence`.
pub(crate) fn fit(n: usize, pairs: &[PairCounts]) -> Result<Fit, FitError> {
    let active = Active::of(n, pairs);
    let data: Vec<_> = pairs
        .iter()
        .filter(|p| p.total() > 0)
        .map(|p| {
            let (i, j) = active.pair(p);
            (i, j, p.wins_i as f64, p.wins_j as f64, p.ties as f64)
        })
        .collect();
    let k = active.models.len();
    let m = k + 1;
    let mut theta = vec![0.0; m];
    // Start ν at the observed ties per decisive pair of battles, a fair guess at d = 0.
    let (ties, all) = data
        .iter()
        .fold((0.0f64, 0.0f64), |(t, a), p| (t + p.4, a + p.2 + p.3 + p.4));
    theta[k] = (2.0 * ties.max(0.5) / (all - ties).max(1.0)).ln();
    let stop = Stop {
        grad_tol: GRAD_TOL * (1.0 + all),
        step_tol: STEP_TOL,
        max_iter: MAX_ITER,
    };
    newton(&mut theta, k, &stop, |t, g, h| evaluate(&data, t, g, h))
        .map_err(FitError::NoConvergence)?;
    let var = sandwich(&data, &theta);
    let mut ratings = vec![f64::NAN; n];
    let mut half_widths = vec![f64::NAN; n];
    for (x, &model) in active.models.iter().enumerate() {
        ratings[model] = ALPHA * theta[x] + 1000.0;
        half_widths[model] = Z95 * var[x].max(0.0).sqrt() * ALPHA;
    }
    Ok(Fit {
        ratings,
        half_widths,
        nu: theta[k].exp(),
    })
}

/// The diagonal of `H⁻¹ G H⁻¹` with `G` from each battle's score, `H` made definite along
/// the free shift as arena-rank does (`1e-5` per battle on the diagonal).
fn sandwich(data: &[(usize, usize, f64, f64, f64)], theta: &[f64]) -> Vec<f64> {
    let m = theta.len();
    let n = m - 1;
    let mut g = vec![0.0; m];
    let mut h = vec![0.0; m * m];
    evaluate(data, theta, &mut g, Some(&mut h[..]));
    let mut cov = vec![0.0; m * m];
    let mut battles = 0.0;
    for &(i, j, wi, wj, t) in data {
        let (_, s, q, _) = terms(theta[i] - theta[j], theta[n]);
        battles += wi + wj + t;
        // Each outcome's score (∂ℓ/∂d, ∂ℓ/∂η), weighted by how often it happened.
        for (count, sd, se) in [(wi, 0.5 - s, -q), (wj, -0.5 - s, -q), (t, -s, 1.0 - q)] {
            add_pair(&mut cov, m, i, j, count * sd * sd);
            cov[i * m + n] += count * sd * se;
            cov[n * m + i] += count * sd * se;
            cov[j * m + n] -= count * sd * se;
            cov[n * m + j] -= count * sd * se;
            cov[n * m + n] += count * se * se;
        }
    }
    (0..n).for_each(|x| h[x * m + x] += 1e-5 * battles);
    sandwich_diagonal(h, &cov, m).unwrap_or_else(|| vec![f64::NAN; m])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_models_have_the_closed_form() {
        // With two models the optimum is the empirical frequencies: e^{d} = w_i / w_j and
        // ν / (e^{d/2} + e^{-d/2} + ν) = ties / all, so ν = t·(e^{d/2} + e^{-d/2}) / (w_i + w_j).
        let f = fit(2, &[PairCounts::two(30, 10, 20)]).expect("fit");
        let d = (f.ratings[0] - f.ratings[1]) / ALPHA;
        assert!((d - 3f64.ln()).abs() < 1e-9, "{d}");
        let nu = 20.0 * ((d / 2.0).exp() + (-d / 2.0).exp()) / 40.0;
        assert!((f.nu - nu).abs() < 1e-9, "{} {nu}", f.nu);
        assert!((f.ratings[0] + f.ratings[1] - 2000.0).abs() < 1e-9);
        assert!(f.half_widths.iter().all(|h| h.is_finite() && *h > 0.0));
    }

    #[test]
    fn ties_do_not_pull_ratings_together_as_half_wins_do() {
        // 30 wins to 10 plus 60 ties: half-wins make the odds (30 + 30) : (10 + 30) = 1.5;
        // Davidson keeps the decisive odds, 3.
        let f = fit(2, &[PairCounts::two(30, 10, 60)]).expect("fit");
        let d = (f.ratings[0] - f.ratings[1]) / ALPHA;
        assert!((d - 3f64.ln()).abs() < 1e-9, "{d}");
    }
}
