//! The numerics the fits share: logistic functions and dense symmetric solves (the systems
//! are one row per model, plus a few style features, so dense is right).

/// The 97.5% quantile of the standard normal (`scipy.stats.norm.ppf(0.975)`): 95% intervals.
pub(crate) const Z95: f64 = 1.959_963_984_540_054;

/// 1 / (1 + e^-z) without overflow.
pub(crate) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// ln(1 + e^z) without overflow.
pub(crate) fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// Overwrites symmetric positive definite `a` (row-major `n`×`n`) with its lower Cholesky
/// factor. `None` if `a` is not positive definite.
fn cholesky(a: &mut [f64], n: usize) -> Option<()> {
    for j in 0..n {
        let mut diag = a[j * n + j];
        for k in 0..j {
            diag -= a[j * n + k] * a[j * n + k];
        }
        if diag <= 0.0 || !diag.is_finite() {
            return None;
        }
        let diag = diag.sqrt();
        a[j * n + j] = diag;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / diag;
        }
    }
    Some(())
}

/// Solves `L Lᵀ x = b` in place for the factor `l` from `cholesky`.
fn solve_factored(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * b[k]).sum();
        b[i] = (b[i] - s) / l[i * n + i];
    }
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * b[k]).sum();
        b[i] = (b[i] - s) / l[i * n + i];
    }
}

/// Solves `A x = b` for symmetric positive definite `A` (row-major, overwritten by its
/// Cholesky factor); `b` becomes `x`. `None` if `A` is not positive definite.
pub(crate) fn cholesky_solve(a: &mut [f64], n: usize, b: &mut [f64]) -> Option<()> {
    cholesky(a, n)?;
    solve_factored(a, n, b);
    Some(())
}

/// The diagonal of the sandwich `H⁻¹ G H⁻¹` (row-major `n`×`n`, `h` positive definite,
/// consumed): the variances of an M-estimator whose loss has Hessian `H` and whose
/// per-observation gradients have covariance `G`. `None` if `h` is not positive definite.
pub(crate) fn sandwich_diagonal(mut h: Vec<f64>, g: &[f64], n: usize) -> Option<Vec<f64>> {
    cholesky(&mut h, n)?;
    // Column k of H⁻¹; H⁻¹ is symmetric, so it is row k too.
    let mut inv = vec![0.0; n * n];
    let mut col = vec![0.0; n];
    for k in 0..n {
        col.iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = f64::from(u8::from(i == k)));
        solve_factored(&h, n, &mut col);
        inv[k * n..(k + 1) * n].copy_from_slice(&col);
    }
    // (H⁻¹ G H⁻¹)_ii = Σ_j Σ_k H⁻¹_ij G_jk H⁻¹_ki.
    Some(
        (0..n)
            .map(|i| {
                let row = &inv[i * n..(i + 1) * n];
                (0..n)
                    .map(|j| {
                        let gj = &g[j * n..(j + 1) * n];
                        row[j] * gj.iter().zip(row).map(|(g, r)| g * r).sum::<f64>()
                    })
                    .sum()
            })
            .collect(),
    )
}

/// When Newton stops.
pub(crate) struct Stop {
    /// Largest |gradient| that counts as the optimum.
    pub grad_tol: f64,
    /// Largest step (max |Δθ|) that counts as the optimum.
    pub step_tol: f64,
    /// Steps before giving up.
    pub max_iter: usize,
}

/// Minimises a smooth convex objective from `theta` in place by Newton's method with a
/// backtracking line search. `evaluate(θ, g, h)` returns the objective and fills the gradient
/// `g`, and the Hessian `h` (row-major) when given. The first `free` parameters may shift
/// together without changing the objective (ratings without an anchor): that direction of
/// the Hessian is filled in, which leaves the step orthogonal to it (the gradient is), and
/// they are re-centred to mean 0 after each step. `Err` holds the last gradient's size.
pub(crate) fn newton(
    theta: &mut [f64],
    free: usize,
    stop: &Stop,
    mut evaluate: impl FnMut(&[f64], &mut [f64], Option<&mut [f64]>) -> f64,
) -> Result<(), f64> {
    let m = theta.len();
    let (mut g, mut h) = (vec![0.0; m], vec![0.0; m * m]);
    let (mut dir, mut trial) = (vec![0.0; m], vec![0.0; m]);
    let size = |g: &[f64]| g.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    for _ in 0..stop.max_iter {
        let f = evaluate(theta, &mut g, Some(h.as_mut_slice()));
        let grad = size(&g);
        if grad <= stop.grad_tol {
            return Ok(());
        }
        if free > 0 {
            let shift = (0..free).map(|i| h[i * m + i]).sum::<f64>() / free as f64;
            (0..free).for_each(|i| (0..free).for_each(|j| h[i * m + j] += shift));
        }
        dir.iter_mut().zip(&g).for_each(|(d, g)| *d = -g);
        cholesky_solve(&mut h, m, &mut dir).ok_or(grad)?;
        let slope: f64 = g.iter().zip(&dir).map(|(g, d)| g * d).sum();
        let step = size(&dir);
        let mut t = 1.0;
        loop {
            trial
                .iter_mut()
                .zip(theta.iter().zip(&dir))
                .for_each(|(x, (w, d))| *x = w + t * d);
            let ft = evaluate(&trial, &mut g, None);
            // A slack of a few ulps of f keeps rounding from refusing a step at the optimum.
            if ft <= f + 1e-4 * t * slope + 1e-12 * f.abs() || t < 1e-8 {
                break;
            }
            t *= 0.5;
        }
        theta.copy_from_slice(&trial);
        if free > 0 {
            let mean = theta[..free].iter().sum::<f64>() / free as f64;
            theta[..free].iter_mut().for_each(|x| *x -= mean);
        }
        if t * step <= stop.step_tol {
            return Ok(());
        }
    }
    evaluate(theta, &mut g, None);
    Err(size(&g))
}

/// Adds `v` to the Laplacian entries of the pair `i`, `j` (`+v` on both diagonals, `-v` off
/// them), as a battle between two models enters a Hessian or a gradient covariance.
pub(crate) fn add_pair(m: &mut [f64], n: usize, i: usize, j: usize, v: f64) {
    m[i * n + i] += v;
    m[j * n + j] += v;
    m[i * n + j] -= v;
    m[j * n + i] -= v;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandwich_of_a_diagonal_system_is_g_over_h_squared() {
        let h = vec![2.0, 0.0, 0.0, 4.0];
        let g = [3.0, 0.0, 0.0, 8.0];
        let d = sandwich_diagonal(h, &g, 2).expect("positive definite");
        assert!(
            (d[0] - 0.75).abs() < 1e-15 && (d[1] - 0.5).abs() < 1e-15,
            "{d:?}"
        );
    }

    #[test]
    fn the_sandwich_matches_an_explicit_product() {
        // H = [[4, 1], [1, 3]], H⁻¹ = [[3, -1], [-1, 4]] / 11; G = [[2, 1], [1, 5]].
        let d = sandwich_diagonal(vec![4.0, 1.0, 1.0, 3.0], &[2.0, 1.0, 1.0, 5.0], 2)
            .expect("positive definite");
        // Row 0 of H⁻¹ is r = (3, -1)/11, G·r = (5, -2)/11, r·(G·r) = (15 + 2)/121.
        assert!((d[0] - 17.0 / 121.0).abs() < 1e-15, "{}", d[0]);
        assert!(sandwich_diagonal(vec![1.0, 2.0, 2.0, 1.0], &[0.0; 4], 2).is_none());
    }
}
