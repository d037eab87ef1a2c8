//! Style control: arena-rank 0.1.1's contextual Bradley-Terry. Each battle's log-odds are
//! the rating difference plus `x·c`, `x` its style features (`super::style`) and `c` one
//! coefficient per feature, fitted together; the ratings are then what each model would
//! score with the style of its answers held equal.
//!
//! The loss is arena-rank's: the weighted mean log-loss (weights `1/max(n_pair, 50)` scaled
//! to a mean of 1 when reweighted, its default) plus `reg/2·|c|²` (reg 1), minimised here
//! with Newton's method from the same start; its sandwich intervals add `1e-5` to the
//! Hessian's diagonal, take `G` from the squared weighted residuals, correct `G` for the
//! penalty, and divide the diagonal of `H⁻¹ G H⁻¹` by the number of battles.

use super::arena_rank::ALPHA;
use super::bradley_terry::FitError;
use super::math::{add_pair, newton, sandwich_diagonal, sigmoid, softplus, Stop, Z95};

const HESSIAN_REG: f64 = 1e-5;
const GRAD_TOL: f64 = 1e-12;
const STEP_TOL: f64 = 1e-11;
const MAX_ITER: usize = 100;

/// Battles as the contextual fit reads them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rows {
    /// Model indices `(a, b)` of each battle.
    pub pairs: Vec<(u32, u32)>,
    /// 1 when `a` won, 0 when `b` won, ½ for a tie.
    pub outcomes: Vec<f64>,
    /// Style features, `k` per battle.
    pub features: Vec<f64>,
    /// Each battle's weight (mean 1).
    pub weights: Vec<f64>,
}

/// What the fit found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fit {
    /// Ratings (1000 + 400·log10 odds, mean 1000 over the models that played).
    pub ratings: Vec<f64>,
    /// Half-widths of their 95% sandwich intervals, rating points.
    pub half_widths: Vec<f64>,
    /// The style coefficients (log-odds per standard deviation of each feature).
    pub coefficients: Vec<f64>,
    /// The ridge the ratings needed (0: none; see `fit`).
    pub ridge: f64,
}

/// Fits `n` models and `k` features. `ridge` > 0 adds `ridge/2·|r|²` to the loss, for data
/// where some ratings have no finite optimum (the caller decides; see `super::compute`).
pub(crate) fn fit(n: usize, k: usize, rows: &Rows, reg: f64, ridge: f64) -> Result<Fit, FitError> {
    let total = rows.outcomes.len() as f64;
    let mut theta = vec![0.0; n + k];
    let stop = Stop {
        grad_tol: GRAD_TOL,
        step_tol: STEP_TOL,
        max_iter: MAX_ITER,
    };
    // Without a ridge a common shift of the ratings is free.
    let free = if ridge == 0.0 { n } else { 0 };
    newton(&mut theta, free, &stop, |t, g, h| {
        evaluate(n, k, rows, reg, ridge, t, g, h)
    })
    .map_err(FitError::NoConvergence)?;
    let half_widths = sandwich(n, k, rows, reg, &theta, total);
    Ok(Fit {
        ratings: theta[..n].iter().map(|r| ALPHA * r + 1000.0).collect(),
        half_widths,
        coefficients: theta[n..].to_vec(),
        ridge,
    })
}

/// The loss at `theta` (ratings then coefficients); fills the gradient, and the Hessian
/// (row-major, `n + k` square) when asked.
#[allow(clippy::too_many_arguments)]
fn evaluate(
    n: usize,
    k: usize,
    rows: &Rows,
    reg: f64,
    ridge: f64,
    theta: &[f64],
    g: &mut [f64],
    mut h: Option<&mut [f64]>,
) -> f64 {
    let m = n + k;
    let total = rows.outcomes.len() as f64;
    let (r, c) = theta.split_at(n);
    let mut f = 0.5 * reg * c.iter().map(|x| x * x).sum::<f64>()
        + 0.5 * ridge * r.iter().map(|x| x * x).sum::<f64>();
    g.iter_mut().zip(theta).enumerate().for_each(|(i, (g, t))| {
        *g = if i < n { ridge * t } else { reg * t };
    });
    if let Some(h) = h.as_deref_mut() {
        h.iter_mut().for_each(|x| *x = 0.0);
        (0..m).for_each(|i| h[i * m + i] = if i < n { ridge } else { reg });
    }
    for (t, &(a, b)) in rows.pairs.iter().enumerate() {
        let (a, b) = (a as usize, b as usize);
        let x = &rows.features[t * k..(t + 1) * k];
        let z = r[a] - r[b] + x.iter().zip(c).map(|(x, c)| x * c).sum::<f64>();
        let (o, w) = (rows.outcomes[t], rows.weights[t] / total);
        f -= w * (o * z - softplus(z));
        let p = sigmoid(z);
        let dz = -w * (o - p);
        g[a] += dz;
        g[b] -= dz;
        x.iter().enumerate().for_each(|(j, x)| g[n + j] += dz * x);
        if let Some(h) = h.as_deref_mut() {
            let v = w * p * (1.0 - p);
            add_pair(h, m, a, b, v);
            cross(h, m, n, a, b, x, v);
        }
    }
    f
}

/// Adds a battle's rating-feature and feature-feature entries, `v·∂z⊗∂z`, to `h`.
fn cross(h: &mut [f64], m: usize, n: usize, a: usize, b: usize, x: &[f64], v: f64) {
    for (j, xj) in x.iter().enumerate() {
        let col = n + j;
        for (row, sign) in [(a, 1.0), (b, -1.0)] {
            h[row * m + col] += sign * v * xj;
            h[col * m + row] += sign * v * xj;
        }
        for (l, xl) in x.iter().enumerate() {
            h[col * m + n + l] += v * xj * xl;
        }
    }
}

/// arena-rank's sandwich half-widths of the ratings, rating points.
fn sandwich(n: usize, k: usize, rows: &Rows, reg: f64, theta: &[f64], total: f64) -> Vec<f64> {
    let m = n + k;
    let (r, c) = theta.split_at(n);
    let mut h = vec![0.0; m * m];
    let mut g = vec![0.0; m * m];
    for (t, &(a, b)) in rows.pairs.iter().enumerate() {
        let (a, b) = (a as usize, b as usize);
        let x = &rows.features[t * k..(t + 1) * k];
        let z = r[a] - r[b] + x.iter().zip(c).map(|(x, c)| x * c).sum::<f64>();
        let (o, w) = (rows.outcomes[t], rows.weights[t]);
        let p = sigmoid(z);
        let hv = p * (1.0 - p) * w / total;
        let gv = ((o - p) * w).powi(2) / total;
        add_pair(&mut h, m, a, b, hv);
        cross(&mut h, m, n, a, b, x, hv);
        add_pair(&mut g, m, a, b, gv);
        cross(&mut g, m, n, a, b, x, gv);
    }
    (0..m).for_each(|i| h[i * m + i] += HESSIAN_REG);
    for (i, ci) in c.iter().enumerate() {
        for (j, cj) in c.iter().enumerate() {
            g[(n + i) * m + n + j] -= reg * reg / total * ci * cj;
        }
    }
    match sandwich_diagonal(h, &g, m) {
        Some(var) => var[..n]
            .iter()
            .map(|v| Z95 * (v / total).max(0.0).sqrt() * ALPHA)
            .collect(),
        None => vec![f64::NAN; n],
    }
}
