//! Ties done properly: `Ties::Davidson` fits a tie parameter instead of counting a tie as
//! half a win each way, and "both are bad" votes are reported per model.

use arena_ratings::{compute, to_table, Aggregate, Battle, RatingOptions, Ties, Winner};

fn aggregate(rows: &[(&str, &str, Winner, usize)]) -> Aggregate {
    let mut agg = Aggregate::new();
    for &(a, b, winner, times) in rows {
        for _ in 0..times {
            agg.add(&Battle::new(a, b, winner)).expect("add");
        }
    }
    agg
}

fn davidson() -> RatingOptions {
    RatingOptions {
        ties: Ties::Davidson,
        ..RatingOptions::default()
    }
}

#[test]
fn ties_keep_the_decisive_odds_under_davidson() {
    // x beat y 30 times, lost 10, tied 60 (20 of them "both bad"). Half-win counting gives
    // odds (30 + 30) : (10 + 30); Davidson keeps the decisive odds 30 : 10.
    let agg = aggregate(&[
        ("x", "y", Winner::ModelA, 30),
        ("x", "y", Winner::ModelB, 10),
        ("y", "x", Winner::Tie, 40),
        ("y", "x", Winner::TieBothBad, 20),
    ]);
    let half = compute(&agg, &RatingOptions::default()).expect("half-win");
    let dav = compute(&agg, &davidson()).expect("davidson");
    let gap = |b: &arena_ratings::Leaderboard| b.rows[0].bt - b.rows[1].bt;
    assert!(
        (gap(&half) - 400.0 * 1.5f64.log10()).abs() < 1e-6,
        "{}",
        gap(&half)
    );
    assert!(
        (gap(&dav) - 400.0 * 3f64.log10()).abs() < 1e-6,
        "{}",
        gap(&dav)
    );
    assert_eq!(dav.ties, Ties::Davidson);
    let nu = dav.tie_propensity.expect("ν");
    // Two models: ν = ties · (√3 + 1/√3) / decisive.
    let want = 60.0 * (3f64.sqrt() + 1.0 / 3f64.sqrt()) / 40.0;
    assert!((nu - want).abs() < 1e-6, "{nu} {want}");
    assert!(dav.rows.iter().all(|r| r.ci_high > r.bt && r.ci_low < r.bt));
    assert!((dav.rows[0].both_bad - 0.2).abs() < 1e-12);
    let table = to_table(&dav);
    assert!(
        table.contains("Davidson") && table.contains("20.0%"),
        "{table}"
    );
}

#[test]
fn davidson_without_a_tie_is_the_half_win_fit() {
    // No tie: ν has no estimate (its optimum is 0), so the plain fit stands.
    let agg = aggregate(&[
        ("x", "y", Winner::ModelA, 30),
        ("x", "y", Winner::ModelB, 10),
        ("y", "z", Winner::ModelA, 5),
        ("z", "y", Winner::ModelA, 5),
    ]);
    let dav = compute(&agg, &davidson()).expect("davidson");
    let half = compute(&agg, &RatingOptions::default()).expect("half-win");
    assert_eq!(dav.ties, Ties::HalfWin);
    assert_eq!(dav.rows, half.rows);
}

#[test]
fn davidson_recovers_the_strengths_it_was_drawn_from() {
    // Three models 0, 120 and 240 points apart; ν = 0.8; many battles drawn from the model
    // itself by their expected counts (rounded): the fit lands within a few points.
    let strengths = [("a", 240.0), ("b", 120.0), ("c", 0.0)];
    let nu: f64 = 0.8;
    let mut rows = Vec::new();
    for (i, &(x, sx)) in strengths.iter().enumerate() {
        for &(y, sy) in &strengths[i + 1..] {
            let d = (sx - sy) / (400.0 / std::f64::consts::LN_10);
            let den = (d / 2.0).exp() + (-d / 2.0).exp() + nu;
            let n = 10_000.0;
            rows.push((
                x,
                y,
                Winner::ModelA,
                (n * (d / 2.0).exp() / den).round() as usize,
            ));
            rows.push((
                x,
                y,
                Winner::ModelB,
                (n * (-d / 2.0).exp() / den).round() as usize,
            ));
            rows.push((x, y, Winner::Tie, (n * nu / den).round() as usize));
        }
    }
    let board = compute(&aggregate(&rows), &davidson()).expect("davidson");
    let bt = |m: &str| board.rows.iter().find(|r| r.model == m).expect(m).bt;
    assert!(
        ((bt("a") - bt("c")) - 240.0).abs() < 1.0,
        "{}",
        bt("a") - bt("c")
    );
    assert!(
        ((bt("b") - bt("c")) - 120.0).abs() < 1.0,
        "{}",
        bt("b") - bt("c")
    );
    assert!((board.tie_propensity.expect("ν") - nu).abs() < 0.01);
}
