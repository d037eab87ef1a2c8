//! Inverse-propensity weighting (`RatingOptions::ipw`): with every weight 1 it is the
//! unweighted computation bit for bit; on battles where one pair was drawn far more often
//! than the others and that pair's matchup departs from Bradley-Terry, it recovers the
//! ratings a uniform pairing gives, where the unweighted fit is pulled toward that matchup.

use arena_ratings::{
    compute, Aggregate, Battle, Ci, Leaderboard, Method, RatingOptions, RatingsError, Ties, Winner,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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

/// Seeded battles among five models of different strengths, ties included.
fn random_battles(n: usize, seed: u64) -> Vec<Battle> {
    let names = ["m0", "m1", "m2", "m3", "m4"];
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let a = rng.random_range(0..names.len());
            let b = (a + rng.random_range(1..names.len())) % names.len();
            let p_a = 1.0 / (1.0 + (-(a as f64 - b as f64) * 0.4).exp());
            let x: f64 = rng.random();
            let winner = if x < 0.1 {
                Winner::Tie
            } else if x < 0.15 {
                Winner::TieBothBad
            } else if rng.random::<f64>() < p_a {
                Winner::ModelA
            } else {
                Winner::ModelB
            };
            battle(names[a], names[b], winner)
        })
        .collect()
}

fn aggregate(battles: &[Battle], probability: impl Fn(usize) -> Option<f64>) -> Aggregate {
    let mut agg = Aggregate::new();
    for (k, b) in battles.iter().enumerate() {
        agg.add_with_probability(b, probability(k))
            .expect("a valid battle");
    }
    agg
}

/// Everything but the note on how the weighting went.
fn without_ipw_note(mut board: Leaderboard) -> Leaderboard {
    board.ipw = None;
    board
}

#[test]
fn weights_of_one_reproduce_the_unweighted_ratings_exactly() {
    let battles = random_battles(3000, 11);
    let plain = aggregate(&battles, |_| None);
    let ones = aggregate(&battles, |_| Some(1.0));
    let option_sets = [
        RatingOptions::default(),
        RatingOptions {
            reweight: Some(50),
            ..RatingOptions::default()
        },
        RatingOptions {
            method: Method::FastChat,
            anchor: Some(("m2".into(), 800.0)),
            ..RatingOptions::default()
        },
        RatingOptions {
            interval_floor: false,
            ..RatingOptions::default()
        },
    ];
    for opts in option_sets {
        let unweighted = compute(&plain, &opts).expect("unweighted");
        let ipw = RatingOptions {
            ipw: true,
            ..opts.clone()
        };
        for (agg, known) in [(&plain, 0), (&ones, 3000)] {
            let weighted = compute(agg, &ipw).expect("weighted");
            let note = weighted.ipw.expect("says how it weighted");
            assert_eq!(
                (note.with_probability, note.without_probability),
                (known, 3000 - known)
            );
            assert_eq!(note.max_weight, 1.0);
            // Exactly: the same floating-point numbers, not merely close ones.
            assert_eq!(without_ipw_note(weighted), unweighted, "{opts:?}");
        }
    }
}

/// A model's rating minus the mean rating, per model name, in a fixed order.
fn centred(board: &Leaderboard, names: &[&str]) -> Vec<f64> {
    let bt: Vec<f64> = names
        .iter()
        .map(|n| board.rows.iter().find(|r| r.model == *n).expect("rated").bt)
        .collect();
    let mean = bt.iter().sum::<f64>() / bt.len() as f64;
    bt.iter().map(|x| x - mean).collect()
}

fn rms(x: &[f64], y: &[f64]) -> f64 {
    (x.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

#[test]
fn over_sampling_one_pair_does_not_tilt_the_ipw_ratings() {
    let names = ["m0", "m1", "m2", "m3"];
    let strength: [f64; 4] = [0.0, 0.5, 1.0, 1.5];
    // The chance that i beats j: Bradley-Terry, except that m1 beats m2 95% of the time
    // (a matchup effect, say a style m2's answers lose to).
    let p_win = |i: usize, j: usize| match (i, j) {
        (1, 2) => 0.95,
        (2, 1) => 0.05,
        _ => 1.0 / (1.0 + (strength[j] - strength[i]).exp()),
    };
    let pairs: Vec<(usize, usize)> = (0..4)
        .flat_map(|i| (i + 1..4).map(move |j| (i, j)))
        .collect();
    // The estimand: the ratings of a uniform pairing, from the exact expected outcomes.
    let mut population = Aggregate::new();
    let per_pair = 100_000;
    for &(i, j) in &pairs {
        let wins = (p_win(i, j) * per_pair as f64).round() as usize;
        for k in 0..per_pair {
            let w = if k < wins {
                Winner::ModelA
            } else {
                Winner::ModelB
            };
            population.add(&battle(names[i], names[j], w)).unwrap();
        }
    }
    let truth = centred(
        &compute(&population, &RatingOptions::default()).unwrap(),
        &names,
    );
    // The arena's draw: m1-m2 with probability 0.70, the five other pairs 0.06 each.
    let probability = |i: usize, j: usize| if (i, j) == (1, 2) { 0.70 } else { 0.06 };
    let mut rng = StdRng::seed_from_u64(5);
    let mut drawn = Vec::new();
    let mut probabilities = Vec::new();
    for _ in 0..20_000 {
        let mut x: f64 = rng.random();
        let &(i, j) = pairs
            .iter()
            .find(|&&(i, j)| {
                x -= probability(i, j);
                x < 0.0
            })
            .unwrap_or(&pairs[pairs.len() - 1]);
        let (a, b) = if rng.random::<bool>() { (i, j) } else { (j, i) };
        let winner = if rng.random::<f64>() < p_win(a, b) {
            Winner::ModelA
        } else {
            Winner::ModelB
        };
        drawn.push(battle(names[a], names[b], winner));
        probabilities.push(probability(i, j));
    }
    let agg = aggregate(&drawn, |k| Some(probabilities[k]));
    let unweighted = centred(&compute(&agg, &RatingOptions::default()).unwrap(), &names);
    let ipw_opts = RatingOptions {
        ipw: true,
        ..RatingOptions::default()
    };
    let ipw_board = compute(&agg, &ipw_opts).unwrap();
    let ipw = centred(&ipw_board, &names);
    let (err_unweighted, err_ipw) = (rms(&unweighted, &truth), rms(&ipw, &truth));
    assert!(
        err_ipw < 0.25 * err_unweighted,
        "IPW error {err_ipw:.1} points, unweighted {err_unweighted:.1}: truth {truth:?}, \
         unweighted {unweighted:?}, IPW {ipw:?}"
    );
    eprintln!("RMS error: IPW {err_ipw:.2} points, unweighted {err_unweighted:.2}");
    // Weights 1/π scaled to a mean of 1: the largest is that of a rare pair.
    let note = ipw_board.ipw.expect("weighted");
    assert_eq!(
        (note.with_probability, note.without_probability),
        (20_000, 0)
    );
    let mean_inverse = probabilities.iter().map(|p| 1.0 / p).sum::<f64>() / 20_000.0;
    assert!(
        (note.max_weight - 1.0 / 0.06 / mean_inverse).abs() < 1e-9,
        "{note:?}"
    );
    assert!(arena_ratings::describe(&ipw_board).contains("inverse-propensity weighted"));
}

#[test]
fn ipw_refuses_what_it_does_not_support() {
    let agg = aggregate(&random_battles(200, 3), |_| Some(0.5));
    for (opts, what) in [
        (
            RatingOptions {
                ci: Ci::Bootstrap,
                ..RatingOptions::default()
            },
            "bootstrap intervals",
        ),
        (
            RatingOptions {
                ties: Ties::Davidson,
                ..RatingOptions::default()
            },
            "Davidson's ties",
        ),
    ] {
        let e = compute(&agg, &RatingOptions { ipw: true, ..opts }).unwrap_err();
        assert!(
            matches!(e, RatingsError::IpwUnsupported(w) if w == what),
            "{e:?}"
        );
    }
}
