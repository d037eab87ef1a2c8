//! Drawing the two contestants of an anonymous battle, and the exact probability of the draw.
//!
//! The scheme: among the served models whose weight `w` is positive (see `site::pairing`
//! for the weights), the unordered pair `{i, j}`, `i ≠ j`, is drawn with probability
//!
//! `P({i, j}) = w_i·w_j / Z`, `Z = Σ_{k<l} w_k·w_l` (over all pairs of distinct models),
//!
//! then a fair coin decides which of the two is side A. It is drawn in two steps with
//! exactly that distribution: `i` with probability `w_i·(W − w_i) / 2Z` (`W = Σ w`, and
//! `Σ_k w_k·(W − w_k) = 2Z`), then `j ≠ i` with probability `w_j / (W − w_i)`; so
//! `P(i, then j) = w_i·w_j / 2Z`, and the pair arises in either order. O(models) per draw.

use std::collections::HashMap;

use rand::Rng;

/// A drawn battle: side A, side B, and the probability of their unordered pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Draw {
    /// Model on side A.
    pub model_a: String,
    /// Model on side B.
    pub model_b: String,
    /// `P({model_a, model_b})` under the scheme, given the models and weights drawn from.
    pub pair_probability: f64,
}

/// The models that can be drawn, each with its positive, finite weight; `weight` gives each
/// model's weight, and the others (0, negative, NaN, infinite) are left out.
pub fn pool(models: &[String], weight: impl Fn(&str) -> f64) -> Vec<(String, f64)> {
    models
        .iter()
        .map(|m| (m.clone(), weight(m)))
        .filter(|(_, w)| *w > 0.0 && w.is_finite())
        .collect()
}

/// For each model, the total weight of the others, summed without subtracting (so a heavy
/// model does not wipe out its light neighbours' sums by cancellation).
fn others(pool: &[(String, f64)]) -> Vec<f64> {
    let mut suffix = vec![0.0; pool.len() + 1];
    for k in (0..pool.len()).rev() {
        suffix[k] = suffix[k + 1] + pool[k].1;
    }
    let mut prefix = 0.0;
    pool.iter()
        .enumerate()
        .map(|(k, (_, w))| {
            let o = prefix + suffix[k + 1];
            prefix += w;
            o
        })
        .collect()
}

/// `Z = Σ_{k<l} w_k·w_l`, as a sum of positive terms.
fn pair_total(pool: &[(String, f64)]) -> f64 {
    let mut suffix = 0.0;
    let mut z = 0.0;
    for (_, w) in pool.iter().rev() {
        z += w * suffix;
        suffix += w;
    }
    z
}

/// Index drawn with probability proportional to `weights` (`skip` has none); the last
/// eligible index when rounding leaves `x` past the end.
fn pick_index(weights: &[f64], skip: Option<usize>, rng: &mut impl Rng) -> usize {
    let eligible = |k: &usize| Some(*k) != skip;
    let total: f64 = (0..weights.len())
        .filter(eligible)
        .map(|k| weights[k])
        .sum();
    let mut x = rng.random::<f64>() * total;
    let mut last = 0;
    for k in (0..weights.len()).filter(eligible) {
        last = k;
        if x < weights[k] {
            return k;
        }
        x -= weights[k];
    }
    last
}

/// Draws a battle from `pool` (see the module's scheme); None with fewer than two models.
pub fn draw_pair(pool: &[(String, f64)], rng: &mut impl Rng) -> Option<Draw> {
    if pool.len() < 2 {
        return None;
    }
    let others = others(pool);
    let first: Vec<f64> = pool.iter().zip(&others).map(|((_, w), o)| w * o).collect();
    let i = pick_index(&first, None, rng);
    let weights: Vec<f64> = pool.iter().map(|(_, w)| *w).collect();
    let j = pick_index(&weights, Some(i), rng);
    let (a, b) = if rng.random::<bool>() { (i, j) } else { (j, i) };
    Some(Draw {
        model_a: pool[a].0.clone(),
        model_b: pool[b].0.clone(),
        pair_probability: pool[i].1 * pool[j].1 / pair_total(pool),
    })
}

/// `P({a, b})` under the scheme for `pool`; None when either is not in it, or `a == b`.
pub fn pair_probability(pool: &[(String, f64)], a: &str, b: &str) -> Option<f64> {
    if a == b {
        return None;
    }
    let weight = |m: &str| pool.iter().find(|(n, _)| n == m).map(|(_, w)| *w);
    Some(weight(a)? * weight(b)? / pair_total(pool))
}

/// Parses `name=weight,name=weight`.
pub fn parse_weights(spec: &str) -> Result<HashMap<String, f64>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, w) = arena_ratings::parse::name_value(pair, "battle weight", "NAME=WEIGHT")?;
            if !(w >= 0.0 && w.is_finite()) {
                return Err(format!("battle weight '{pair}' must be 0 or more"));
            }
            Ok((name, w))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn pool_of(weights: &[(&str, f64)]) -> Vec<(String, f64)> {
        weights.iter().map(|(m, w)| (m.to_string(), *w)).collect()
    }

    /// Every unordered pair of `pool`'s models.
    fn pairs(pool: &[(String, f64)]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (k, (a, _)) in pool.iter().enumerate() {
            for (b, _) in &pool[k + 1..] {
                out.push((a.clone(), b.clone()));
            }
        }
        out
    }

    /// The chi-square distribution's `q`-quantile for `k` degrees of freedom, by Wilson and
    /// Hilferty's cube-root normal approximation (within 1% for k ≥ 3 at these tails);
    /// `z` is the standard normal's `q`-quantile.
    fn chi_square_quantile(k: f64, z: f64) -> f64 {
        let c = 2.0 / (9.0 * k);
        k * (1.0 - c + z * c.sqrt()).powi(3)
    }

    #[test]
    fn the_probabilities_of_all_pairs_sum_to_one() {
        for weights in [
            vec![("a", 1.0), ("b", 1.0)],
            vec![("a", 1.0), ("b", 1.0), ("c", 1.0)],
            vec![("a", 5.0), ("b", 1.0), ("c", 1.0), ("d", 0.25), ("e", 5.0)],
            vec![("a", 1e9), ("b", 1e-3), ("c", 2.0), ("d", 7.5)],
        ] {
            let pool = pool_of(&weights);
            let total: f64 = pairs(&pool)
                .iter()
                .map(|(a, b)| pair_probability(&pool, a, b).unwrap())
                .sum();
            assert!((total - 1.0).abs() < 1e-12, "{weights:?}: {total}");
        }
        // Equal weights: every pair equally likely.
        let pool = pool_of(&[("a", 1.0), ("b", 1.0), ("c", 1.0)]);
        assert!((pair_probability(&pool, "b", "c").unwrap() - 1.0 / 3.0).abs() < 1e-15);
        // A boost ×4 on c: {a,b} 1/9, {a,c} and {b,c} 4/9 each.
        let pool = pool_of(&[("a", 1.0), ("b", 1.0), ("c", 4.0)]);
        assert!((pair_probability(&pool, "c", "a").unwrap() - 4.0 / 9.0).abs() < 1e-15);
        assert_eq!(pair_probability(&pool, "a", "a"), None);
        assert_eq!(pair_probability(&pool, "a", "zz"), None);
    }

    #[test]
    fn drawn_pairs_follow_their_probabilities_and_sides_are_fair() {
        let pool = pool_of(&[("a", 5.0), ("b", 1.0), ("c", 1.0), ("d", 0.5), ("e", 2.0)]);
        let all = pairs(&pool);
        let draws = 100_000;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut seen: HashMap<(String, String), u64> = HashMap::new();
        let mut first_on_a = 0u64;
        for _ in 0..draws {
            let d = draw_pair(&pool, &mut rng).unwrap();
            assert_ne!(d.model_a, d.model_b);
            let key = if d.model_a < d.model_b {
                first_on_a += 1;
                (d.model_a.clone(), d.model_b.clone())
            } else {
                (d.model_b.clone(), d.model_a.clone())
            };
            // The stored probability is the scheme's, whatever the order.
            assert_eq!(
                Some(d.pair_probability),
                pair_probability(&pool, &key.0, &key.1)
            );
            *seen.entry(key).or_default() += 1;
        }
        // Pearson's chi-square over the 10 pairs (9 degrees of freedom): with the scheme's
        // probabilities, exceeded once in a thousand seeds.
        let chi2: f64 = all
            .iter()
            .map(|(a, b)| {
                let expected = draws as f64 * pair_probability(&pool, a, b).unwrap();
                let observed = *seen.get(&(a.clone(), b.clone())).unwrap_or(&0) as f64;
                (observed - expected).powi(2) / expected
            })
            .sum();
        let critical = chi_square_quantile((all.len() - 1) as f64, 3.090_232);
        assert!(
            chi2 < critical,
            "chi-square {chi2:.1} ≥ {critical:.1}: {seen:?}"
        );
        // Sides: the alphabetically first model is on side A half the time, within four
        // standard deviations of a fair coin (√(n/4)).
        let off = (first_on_a as f64 - draws as f64 / 2.0).abs();
        assert!(off < 4.0 * (draws as f64 / 4.0).sqrt(), "{first_on_a}");
    }

    #[test]
    fn the_old_one_at_a_time_scheme_would_fail_the_same_check() {
        // The check has power: drawing A ∝ w, then B ∝ w among the rest (the scheme before
        // probabilities were stored) gives different pair frequencies, and chi-square sees it.
        let pool = pool_of(&[("a", 8.0), ("b", 1.0), ("c", 1.0)]);
        let all = pairs(&pool);
        let draws = 20_000;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let weights: Vec<f64> = pool.iter().map(|(_, w)| *w).collect();
        let mut seen: HashMap<(String, String), u64> = HashMap::new();
        for _ in 0..draws {
            let i = pick_index(&weights, None, &mut rng);
            let j = pick_index(&weights, Some(i), &mut rng);
            let (x, y) = (pool[i.min(j)].0.clone(), pool[i.max(j)].0.clone());
            *seen.entry((x, y)).or_default() += 1;
        }
        let chi2: f64 = all
            .iter()
            .map(|(a, b)| {
                let expected = draws as f64 * pair_probability(&pool, a, b).unwrap();
                let observed = *seen.get(&(a.clone(), b.clone())).unwrap_or(&0) as f64;
                (observed - expected).powi(2) / expected
            })
            .sum();
        assert!(chi2 > chi_square_quantile(2.0, 3.090_232), "{chi2}");
    }

    #[test]
    fn too_few_models_and_bad_weights() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert!(draw_pair(&pool_of(&[("a", 1.0)]), &mut rng).is_none());
        let models = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let zero = parse_weights("b=0").unwrap();
        let p = pool(&models, |m| zero.get(m).copied().unwrap_or(1.0));
        assert_eq!(p, pool_of(&[("a", 1.0), ("c", 1.0)]));
        let d = draw_pair(&p, &mut rng).unwrap();
        assert_eq!(d.pair_probability, 1.0);
        assert!(pool(&models, |_| f64::NAN).is_empty());
        assert!(parse_weights("a").is_err());
        assert!(parse_weights("a=x").is_err());
        assert!(parse_weights("a=-1").is_err());
    }
}
