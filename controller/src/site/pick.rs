//! Drawing the two contestants of an anonymous battle.

use std::collections::HashMap;

use rand::Rng;

/// Two distinct models drawn without replacement, each with probability proportional to its
/// weight (1 when not listed; 0 excludes it), in random side order. None with fewer than two
/// models of positive weight.
pub fn draw_pair(
    models: &[String],
    weights: &HashMap<String, f64>,
    rng: &mut impl Rng,
) -> Option<(String, String)> {
    let mut pool: Vec<(&String, f64)> = models
        .iter()
        .map(|m| (m, weights.get(m).copied().unwrap_or(1.0)))
        .filter(|(_, w)| *w > 0.0 && w.is_finite())
        .collect();
    let mut drawn = Vec::with_capacity(2);
    while drawn.len() < 2 && !pool.is_empty() {
        let total: f64 = pool.iter().map(|(_, w)| w).sum();
        let mut x = rng.random::<f64>() * total;
        let mut at = pool.len() - 1;
        for (i, (_, w)) in pool.iter().enumerate() {
            if x < *w {
                at = i;
                break;
            }
            x -= w;
        }
        drawn.push(pool.swap_remove(at).0.clone());
    }
    // Drawing A first then B already gives both orders equal chances for equal weights;
    // a coin flip keeps the sides fair for unequal weights too.
    let (first, second) = (drawn.first()?.clone(), drawn.get(1)?.clone());
    Some(if rng.random::<bool>() {
        (first, second)
    } else {
        (second, first)
    })
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

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pairs_are_distinct_weighted_and_both_orders_occur() {
        let models = names(&["a", "b", "c"]);
        let weights = parse_weights("a=8, b=1, c=1").unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut with_a = 0;
        let mut a_left = 0;
        for _ in 0..2000 {
            let (x, y) = draw_pair(&models, &weights, &mut rng).unwrap();
            assert_ne!(x, y);
            if x == "a" || y == "a" {
                with_a += 1;
            }
            if x == "a" {
                a_left += 1;
            }
        }
        // P(a drawn) = 0.8 + 0.2 * (8/9) = 0.98.
        assert!(with_a > 1900, "{with_a}");
        assert!((800..1200).contains(&a_left), "{a_left}");
    }

    #[test]
    fn too_few_models_and_bad_weights() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert!(draw_pair(&names(&["a"]), &HashMap::new(), &mut rng).is_none());
        let zero = parse_weights("b=0").unwrap();
        assert!(draw_pair(&names(&["a", "b"]), &zero, &mut rng).is_none());
        assert!(parse_weights("a").is_err());
        assert!(parse_weights("a=x").is_err());
        assert!(parse_weights("a=-1").is_err());
    }
}
