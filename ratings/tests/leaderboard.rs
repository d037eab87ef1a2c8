//! The ratings engine against FastChat 0.2.36 on a fixed set of battles
//! (`scripts/make-elo-fixture.py` made the fixture), plus hand-checked cases and the
//! battles-file readers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arena_ratings::{
    compute, to_csv, to_table, Aggregate, Battle, Leaderboard, RatingOptions, Regularization,
    Winner,
};
use serde_json::Value;

#[path = "leaderboard/files.rs"]
mod files;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/leaderboard")
        .join(name)
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

fn fixture_aggregate() -> Aggregate {
    let (agg, report) = Aggregate::from_file(&fixture("battles.jsonl"), true).expect("fixture");
    assert_eq!(
        (report.rows, report.bad_total, report.out_of_order),
        (3000, 0, 0)
    );
    agg
}

fn by_model(board: &Leaderboard) -> HashMap<&str, &arena_ratings::LeaderboardRow> {
    board.rows.iter().map(|r| (r.model.as_str(), r)).collect()
}

/// Largest |ours - theirs| over the models of an expected {model: rating} map.
fn max_diff(expected: &Value, ours: impl Fn(&str) -> f64) -> f64 {
    let map = expected.as_object().expect("a map of ratings");
    assert_eq!(map.len(), 8);
    map.iter()
        .map(|(m, v)| (ours(m) - v.as_f64().expect("a number")).abs())
        .fold(0.0, f64::max)
}

/// FastChat's fit and bootstrap without its anchor.
fn fastchat_defaults() -> RatingOptions {
    RatingOptions {
        anchor: None,
        ..RatingOptions::fastchat(&Aggregate::new())
    }
}

fn fastchat_options(agg: &Aggregate, rounds: usize) -> RatingOptions {
    RatingOptions {
        bootstrap_rounds: rounds,
        ..RatingOptions::fastchat(agg)
    }
}

#[test]
fn online_elo_equals_fastchat() {
    let agg = fixture_aggregate();
    let board = compute(&agg, &fastchat_options(&agg, 0)).expect("compute");
    let rows = by_model(&board);
    let diff = max_diff(&expected()["elo_online"], |m| rows[m].elo);
    println!("online Elo vs FastChat: {diff:.2e}");
    assert!(diff < 1e-6, "online Elo differs from FastChat by {diff}");
}

#[test]
fn bradley_terry_is_the_sklearn_optimum() {
    let agg = fixture_aggregate();
    let opts = fastchat_options(&agg, 0);
    assert_eq!(opts.anchor, Some(("llama-13b".to_string(), 800.0)));
    let board = compute(&agg, &opts).expect("compute");
    let rows = by_model(&board);
    let exp = expected();
    let optimum = max_diff(&exp["bt_optimum"], |m| rows[m].bt);
    let fastchat = max_diff(&exp["bt_fastchat"], |m| rows[m].bt);
    println!("BT vs sklearn tol 1e-8: {optimum:.2e}; vs FastChat's lbfgs: {fastchat:.3}");
    assert!(optimum < 0.5, "BT is {optimum} points off the L2 optimum");
    assert!(
        optimum < 1e-3,
        "an exact optimum should agree far better: {optimum}"
    );
    assert_eq!(rows["llama-13b"].bt, 800.0);
}

#[test]
fn unregularised_bradley_terry_is_the_plain_mle() {
    let agg = fixture_aggregate();
    let opts = RatingOptions {
        regularization: Regularization::None,
        ..fastchat_options(&agg, 0)
    };
    let board = compute(&agg, &opts).expect("compute");
    let rows = by_model(&board);
    let diff = max_diff(&expected()["bt_unregularized"], |m| rows[m].bt);
    println!("plain MLE vs sklearn penalty=None: {diff:.2e}");
    assert!(diff < 0.01, "{diff}");
}

#[test]
fn bootstrap_intervals_match_fastchat_at_1000_rounds() {
    let agg = fixture_aggregate();
    let started = std::time::Instant::now();
    let board = compute(&agg, &fastchat_options(&agg, 1000)).expect("compute");
    println!("1000 rounds in {:.3} s", started.elapsed().as_secs_f64());
    assert_eq!(board.bootstrap_rounds, 1000);
    let exp = expected();
    let mut ratios = Vec::new();
    for row in &board.rows {
        let theirs = exp["bootstrap_fastchat"][&row.model]
            .as_array()
            .expect("[low, high]");
        let (lo, hi) = (
            theirs[0].as_f64().expect("low"),
            theirs[1].as_f64().expect("high"),
        );
        if row.model == "llama-13b" {
            // Anchored in every round on both sides: no spread at all.
            assert_eq!((row.ci_low, row.ci_high), (800.0, 800.0));
            assert_eq!((lo, hi), (800.0, 800.0));
            continue;
        }
        assert!(row.ci_low < row.bt && row.bt < row.ci_high, "{row:?}");
        let ratio = (row.ci_high - row.ci_low) / (hi - lo);
        println!(
            "{:>14}: ours {:.1}..{:.1}, FastChat {lo:.1}..{hi:.1}, width ratio {ratio:.3}",
            row.model, row.ci_low, row.ci_high
        );
        ratios.push(ratio);
    }
    assert!(ratios.iter().all(|r| (r - 1.0).abs() <= 0.15), "{ratios:?}");
}

#[test]
fn matrices_and_counts_equal_fastchat() {
    let agg = fixture_aggregate();
    let board = compute(&agg, &fastchat_options(&agg, 0)).expect("compute");
    let exp = expected();
    for (i, a) in board.models.iter().enumerate() {
        assert_eq!(board.rows[i].model, *a);
        let battles = exp["num_battles"][a].as_u64().expect("count");
        assert_eq!(board.rows[i].battles, battles);
        assert_eq!(board.battle_counts[i].iter().sum::<u64>(), battles);
        for (j, b) in board.models.iter().enumerate() {
            let theirs = exp["win_fraction"][a][b].as_f64();
            match (board.win_fraction[i][j], theirs) {
                (None, None) => assert_eq!(i, j),
                (Some(x), Some(y)) => assert!((x - y).abs() < 1e-12, "{a} vs {b}: {x} {y}"),
                other => panic!("{a} vs {b}: {other:?}"),
            }
        }
    }
}

fn battle(a: &str, b: &str, winner: Winner) -> Battle {
    Battle::new(a, b, winner)
}

fn aggregate(battles: &[(&str, &str, Winner, usize)]) -> Aggregate {
    let mut agg = Aggregate::new();
    for &(a, b, w, times) in battles {
        for _ in 0..times {
            agg.add(&battle(a, b, w)).expect("distinct models");
        }
    }
    agg
}

#[test]
fn two_models_have_the_closed_form_rating_gap() {
    // Plain MLE with ties as half wins: 10^(gap/400) = (2·30 + 6) / (2·10 + 6).
    let agg = aggregate(&[
        ("x", "y", Winner::ModelA, 20),
        ("y", "x", Winner::ModelB, 10),
        ("x", "y", Winner::ModelB, 10),
        ("y", "x", Winner::TieBothBad, 6),
    ]);
    let opts = RatingOptions {
        regularization: Regularization::None,
        bootstrap_rounds: 200,
        ..RatingOptions::default()
    };
    let board = compute(&agg, &opts).expect("compute");
    let gap = board.rows[0].bt - board.rows[1].bt;
    assert!(
        (gap - 400.0 * (66.0f64 / 26.0).log10()).abs() < 1e-9,
        "{gap}"
    );
    assert!((board.rows[0].bt + board.rows[1].bt - 2000.0).abs() < 1e-9);
    assert_eq!(board.rows[0].model, "x");
    assert_eq!(
        (board.rows[0].battles, board.rows[0].few_battles),
        (46, false)
    );
    assert_eq!(board.win_fraction[0][1], Some(30.0 / 40.0));
}

#[test]
fn symmetric_battles_give_equal_ratings_and_shared_rank() {
    let agg = aggregate(&[
        ("a", "b", Winner::ModelA, 10),
        ("a", "b", Winner::ModelB, 10),
        ("b", "c", Winner::ModelA, 10),
        ("c", "b", Winner::ModelA, 10),
        ("c", "a", Winner::Tie, 20),
    ]);
    for regularization in [Regularization::None, Regularization::L2 { c: 1.0 }] {
        let opts = RatingOptions {
            regularization,
            ..RatingOptions::default()
        };
        let board = compute(&agg, &opts).expect("compute");
        for row in &board.rows {
            assert!((row.bt - 1000.0).abs() < 1e-9, "{row:?}");
            assert_eq!(row.rank, 1);
            assert!(!row.few_battles, "40 battles each is not below 30: {row:?}");
        }
    }
}

#[test]
fn clearly_separated_models_get_distinct_ranks_and_the_anchor_holds() {
    let mut battles = Vec::new();
    for (strong, weak) in [("top", "mid"), ("mid", "low"), ("top", "low")] {
        battles.push((strong, weak, Winner::ModelA, 300));
        battles.push((weak, strong, Winner::ModelA, 30));
        battles.push((strong, weak, Winner::Tie, 30));
    }
    let agg = aggregate(&battles);
    let opts = RatingOptions {
        anchor: Some(("mid".into(), 1100.0)),
        ..fastchat_defaults()
    };
    let board = compute(&agg, &opts).expect("compute");
    let names: Vec<&str> = board.rows.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(names, ["top", "mid", "low"]);
    assert_eq!(
        board.rows.iter().map(|r| r.rank).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(board.rows[1].bt, 1100.0);
    assert_eq!(
        (board.rows[1].ci_low, board.rows[1].ci_high),
        (1100.0, 1100.0)
    );
    // Same seed, same intervals; another seed, other intervals.
    assert_eq!(compute(&agg, &opts).expect("again"), board);
    let other = compute(
        &agg,
        &RatingOptions {
            seed: 9,
            ..opts.clone()
        },
    )
    .expect("seed 9");
    assert_ne!(other.rows[0].ci_low, board.rows[0].ci_low);

    let missing = RatingOptions {
        anchor: Some(("gone".into(), 800.0)),
        ..opts
    };
    let err = compute(&agg, &missing).expect_err("anchor without battles");
    assert!(err.to_string().contains("'gone' has no battles"), "{err}");
}

#[test]
fn unregularised_ratings_without_a_finite_optimum_are_an_error() {
    let agg = aggregate(&[
        ("a", "b", Winner::ModelA, 5),
        ("b", "a", Winner::ModelA, 5),
        ("a", "c", Winner::ModelA, 3),
    ]);
    let opts = RatingOptions {
        regularization: Regularization::None,
        ..fastchat_defaults()
    };
    let err = compute(&agg, &opts).expect_err("c never won");
    assert!(err.to_string().contains("use L2 regularisation"), "{err}");
    compute(&agg, &fastchat_defaults()).expect("L2 always has an optimum");
    // arena-rank's plain fit falls back to that penalty, and says so.
    let board = compute(&agg, &RatingOptions::default()).expect("the fallback");
    assert!(board.fallback_l2 && board.rows.iter().all(|r| r.bt.is_finite()));
}

#[test]
fn no_battles_give_an_empty_leaderboard() {
    let board = compute(&Aggregate::new(), &RatingOptions::default()).expect("empty");
    assert!(board.rows.is_empty() && board.models.is_empty() && board.win_fraction.is_empty());
    assert!(to_table(&board).contains("0 battles, 0 models"));
    assert_eq!(to_csv(&board).lines().count(), 1);
}

#[test]
fn a_battle_against_itself_is_refused_so_one_model_alone_never_rates() {
    // Every battle names two distinct models: a file whose only model plays itself has no
    // battles, and so an empty leaderboard.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("self.csv");
    std::fs::write(&path, "model_a,model_b,winner\nsolo,solo,model_a\n").expect("write");
    let (agg, report) = Aggregate::from_file(&path, false).expect("read");
    assert_eq!((report.rows, report.bad_total), (0, 1));
    assert!(report.bad[0].reason.contains("same model 'solo'"));
    assert!(compute(&agg, &RatingOptions::default())
        .expect("compute")
        .rows
        .is_empty());
    assert!(Aggregate::new()
        .add(&battle("solo", "solo", Winner::Tie))
        .is_err());
}

#[test]
fn renderings_name_every_field() {
    let agg = aggregate(&[
        ("x", "y", Winner::ModelA, 40),
        ("y", "x", Winner::ModelA, 20),
        ("x", "z, the \"new\" one", Winner::Tie, 5),
    ]);
    let board = compute(&agg, &RatingOptions::default()).expect("compute");
    let json = serde_json::to_value(&board).expect("json");
    let row = json["rows"][0].as_object().expect("row");
    for key in [
        "model",
        "elo",
        "bt",
        "ci_low",
        "ci_high",
        "rank",
        "battles",
        "few_battles",
        "both_bad",
    ] {
        assert!(row.contains_key(key), "{key} missing from {row:?}");
    }
    assert!(json["win_fraction"][0][0].is_null());
    let table = to_table(&board);
    assert!(
        table.contains("z, the \"new\" one *") && table.contains("fewer than 30 battles"),
        "{table}"
    );
    let csv = to_csv(&board);
    assert!(csv.starts_with("rank,model,bt,ci_low,ci_high,elo,battles,few_battles,both_bad\n"));
    assert!(csv.contains(",\"z, the \"\"new\"\" one\","), "{csv}");
}

#[test]
fn text_columns_are_added_on_the_right_only_when_asked() {
    use arena_ratings::{to_csv_with, to_table_with, TextColumn};
    let agg = aggregate(&[
        ("x", "y", Winner::ModelA, 40),
        ("y", "x", Winner::ModelA, 20),
    ]);
    let board = compute(&agg, &RatingOptions::default()).expect("compute");
    assert_eq!(to_table_with(&board, &[]), to_table(&board));
    assert_eq!(to_csv_with(&board, &[]), to_csv(&board));
    let extra = [
        TextColumn {
            header: "organization".into(),
            cells: vec!["Org, Inc.".into(), String::new()],
        },
        TextColumn {
            header: "license".into(),
            cells: vec!["MIT".into()],
        },
    ];
    let table = to_table_with(&board, &extra);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].ends_with("both bad  organization  license"),
        "{table}"
    );
    assert!(lines[1].ends_with("%  Org, Inc.     MIT"), "{table}");
    // A row without cells has no trailing blanks.
    assert!(lines[2].ends_with('%'), "{table}");
    let csv = to_csv_with(&board, &extra);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].ends_with(",both_bad,organization,license"),
        "{csv}"
    );
    assert!(lines[1].ends_with(",\"Org, Inc.\",MIT"), "{csv}");
    assert!(lines[2].ends_with(",,"), "{csv}");
}

#[test]
fn the_benchmark_runs_and_writes_the_battles_it_rates() {
    use arena_ratings::bench;
    let opts = bench::BenchOptions {
        battles: 20_000,
        models: 10,
        bootstrap_rounds: 10,
        seed: 3,
    };
    let report = bench::run(&opts).expect("bench");
    assert!(
        report.total_s > 0.0 && report.max_rating_error < 40.0,
        "{report:?}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["b.csv", "b.jsonl"] {
        let path = dir.path().join(name);
        bench::write_battles(&path, 20_000, 10, 3).expect("write");
        let (agg, report) = Aggregate::from_file(&path, true).expect("read back");
        assert_eq!((report.rows, agg.models().len()), (20_000, 10));
    }
}

/// A category's board keeps only models with enough battles in it; the rest of the board
/// (the others' ratings, matrices in the same order, ranks among those kept) stays coherent.
#[test]
fn a_board_can_drop_models_with_too_few_battles() {
    let mut agg = Aggregate::new();
    let mut add = |a: &str, b: &str, winner, times| {
        for _ in 0..times {
            agg.add(&Battle::new(a, b, winner)).unwrap();
        }
    };
    add("strong", "weak", Winner::ModelA, 30);
    add("weak", "strong", Winner::ModelA, 10);
    add("rare", "strong", Winner::ModelA, 2);
    let mut board = compute(&agg, &RatingOptions::default()).unwrap();
    let full = board.clone();
    assert_eq!(board.only_models_with(5), 1);
    let names: Vec<&str> = board.rows.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(names, ["strong", "weak"]);
    assert_eq!(board.models, ["strong", "weak"]);
    let kept = |m: &str| full.models.iter().position(|x| x == m).unwrap();
    let (s, w) = (kept("strong"), kept("weak"));
    assert_eq!(
        board.battle_counts,
        [
            [full.battle_counts[s][s], full.battle_counts[s][w]],
            [full.battle_counts[w][s], full.battle_counts[w][w]]
        ]
    );
    assert_eq!(board.win_fraction[0][1], full.win_fraction[s][w]);
    let strong = &board.rows[0];
    assert_eq!(strong.bt, by_model(&full)["strong"].bt);
    assert_eq!(strong.rank, 1);
    assert_eq!(
        board.rows[1].rank,
        if board.rows[0].ci_low > board.rows[1].ci_high {
            2
        } else {
            1
        }
    );
    assert_eq!(board.only_models_with(5), 0);
}
