//! The ratings against LMArena's `arena-rank` 0.1.1 on generated battles with style
//! metadata (`scripts/make-arena-rank-fixture.py` ran arena-rank itself to make the
//! fixture): Bradley-Terry with and without reweighting, and the style-controlled
//! contextual model, each with sandwich intervals. Ratings within 0.1 points, interval
//! half-widths within 2%.

use std::collections::HashMap;
use std::path::Path;

use arena_ratings::{
    compute, compute_style_controlled, read_styled_battles, Aggregate, Battle, Ci, Leaderboard,
    Method, RatingOptions, StyleCounts, StyledBattle, Winner, MIN_PAIR_COUNT,
};
use serde_json::Value;

fn fixture() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arena_rank/expected.json");
    let text = std::fs::read_to_string(path).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

/// The fixture's battles, with the style of both answers.
fn battles(fx: &Value) -> Vec<StyledBattle> {
    let models: Vec<&str> = fx["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| m.as_str().expect("a name"))
        .collect();
    let columns: Vec<&str> = fx["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c.as_str().expect("a column"))
        .collect();
    let col = |name: &str| columns.iter().position(|c| *c == name).expect(name);
    let winners = fx["winners"].as_array().expect("winners");
    fx["battles"]
        .as_array()
        .expect("battles")
        .iter()
        .map(|row| {
            let row: Vec<u64> = row
                .as_array()
                .expect("a row")
                .iter()
                .map(|x| x.as_u64().expect("a count"))
                .collect();
            let style = |side: &str| StyleCounts {
                tokens: row[col(&format!("tokens_{side}"))],
                headers: row[col(&format!("header_{side}"))],
                lists: row[col(&format!("list_{side}"))],
                bold: row[col(&format!("bold_{side}"))],
            };
            let winner = winners[row[col("winner")] as usize]
                .as_str()
                .expect("winner");
            StyledBattle {
                battle: Battle {
                    model_a: models[row[col("model_a")] as usize].to_string(),
                    model_b: models[row[col("model_b")] as usize].to_string(),
                    winner: Winner::parse(winner).expect("a known winner"),
                    tstamp: None,
                    anony: None,
                    turn: None,
                },
                style_a: style("a"),
                style_b: style("b"),
            }
        })
        .collect()
}

/// arena-rank's options: its fit and sandwich intervals, our floor off.
fn arena_rank(reweight: Option<u64>) -> RatingOptions {
    RatingOptions {
        method: Method::ArenaRank,
        ci: Ci::Sandwich,
        reweight,
        interval_floor: false,
        ..RatingOptions::default()
    }
}

/// Checks `board` against arena-rank's `{competitors, ratings, rating_lower, rating_upper}`.
fn assert_agrees(board: &Leaderboard, expected: &Value) {
    let rows: HashMap<&str, _> = board.rows.iter().map(|r| (r.model.as_str(), r)).collect();
    let names = expected["competitors"].as_array().expect("competitors");
    let (ratings, lower, upper) = (
        numbers(&expected["ratings"]),
        numbers(&expected["rating_lower"]),
        numbers(&expected["rating_upper"]),
    );
    assert_eq!(names.len(), rows.len());
    for (k, name) in names.iter().enumerate() {
        let row = rows[name.as_str().expect("a name")];
        assert!(
            (row.bt - ratings[k]).abs() < 0.1,
            "{name}: rating {} against arena-rank's {}",
            row.bt,
            ratings[k]
        );
        let (ours, theirs) = (
            (row.ci_high - row.ci_low) / 2.0,
            (upper[k] - lower[k]) / 2.0,
        );
        assert!(
            (ours / theirs - 1.0).abs() < 0.02,
            "{name}: half-width {ours} against arena-rank's {theirs}"
        );
    }
}

fn aggregate(battles: &[StyledBattle]) -> Aggregate {
    let mut agg = Aggregate::new();
    battles
        .iter()
        .for_each(|b| agg.add(&b.battle).expect("distinct models"));
    agg
}

#[test]
fn bradley_terry_equals_arena_rank() {
    let fx = fixture();
    let agg = aggregate(&battles(&fx));
    let board = compute(&agg, &arena_rank(None)).expect("compute");
    assert!(!board.fallback_l2);
    assert_agrees(&board, &fx["bt"]);
}

#[test]
fn reweighted_bradley_terry_equals_arena_rank() {
    let fx = fixture();
    let agg = aggregate(&battles(&fx));
    let board = compute(&agg, &arena_rank(Some(MIN_PAIR_COUNT))).expect("compute");
    assert_agrees(&board, &fx["bt_reweighted"]);
    // The over-sampled pair (a third of the battles) is what reweighting moves.
    let plain = compute(&agg, &arena_rank(None)).expect("compute");
    assert!((board.rows[0].bt - plain.rows[0].bt).abs() > 5.0);
}

#[test]
fn style_control_equals_arena_ranks_contextual_model() {
    let fx = fixture();
    let battles = battles(&fx);
    for (key, reweight) in [
        ("contextual", Some(MIN_PAIR_COUNT)),
        ("contextual_unweighted", None),
    ] {
        let board = compute_style_controlled(&battles, &arena_rank(reweight)).expect("compute");
        assert_agrees(&board, &fx[key]);
        // arena-rank's features: tokens, headers, bold, lists; ours name them.
        let theirs = numbers(&fx[key]["coeffs"]);
        let names = [
            "sum_assistant_tokens",
            "header_count",
            "bold_count",
            "list_count",
        ];
        for (name, want) in names.iter().zip(theirs) {
            let got = board
                .style_coefficients
                .iter()
                .find(|c| c.feature == *name)
                .expect("every feature")
                .coefficient;
            assert!(
                (got - want).abs() < 1e-4,
                "{key} {name}: {got} against {want}"
            );
        }
    }
}

#[test]
fn the_public_datasets_conv_metadata_is_read_as_styles() {
    let fx = fixture();
    let battles = battles(&fx);
    // The fixture's battles written as the public dataset writes them: counts as objects
    // of parts, the newer "both_bad" spelling, and a row without metadata.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("battles.jsonl");
    let mut text = String::new();
    for b in &battles {
        let winner = match b.battle.winner {
            Winner::TieBothBad => "both_bad",
            w => w.as_str(),
        };
        let row = serde_json::json!({
            "model_a": b.battle.model_a, "model_b": b.battle.model_b, "winner": winner,
            "conv_metadata": {
                "sum_assistant_a_tokens": b.style_a.tokens, "sum_assistant_b_tokens": b.style_b.tokens,
                "header_count_a": {"h1": b.style_a.headers, "h2": 0},
                "header_count_b": {"h1": 0, "h2": b.style_b.headers},
                "list_count_a": {"ordered": b.style_a.lists, "unordered": 0},
                "list_count_b": {"ordered": 0, "unordered": b.style_b.lists},
                "bold_count_a": {"**": b.style_a.bold, "__": 0},
                "bold_count_b": {"**": 0, "__": b.style_b.bold},
            },
        });
        text.push_str(&format!("{row}\n"));
    }
    text.push_str("{\"model_a\":\"x\",\"model_b\":\"y\",\"winner\":\"tie\"}\n");
    text.push_str("{\"model_a\":\"x\",\"model_b\":\"y\",\"winner\":\"tie\",\"conv_metadata\":{\"sum_assistant_a_tokens\":-3}}\n");
    std::fs::write(&path, text).expect("write");
    let mut read = Vec::new();
    let report = read_styled_battles(&path, false, |b| read.push(b)).expect("read");
    assert_eq!((report.rows, report.bad_total), (3000, 2));
    assert!(
        report.bad[0].reason.contains("no conv_metadata"),
        "{:?}",
        report.bad
    );
    assert!(
        report.bad[1].reason.contains("not a count"),
        "{:?}",
        report.bad
    );
    assert_eq!(read, battles);
    let board =
        compute_style_controlled(&read, &arena_rank(Some(MIN_PAIR_COUNT))).expect("compute");
    assert_agrees(&board, &fx["contextual"]);
    // CSV carries no metadata: refused before reading.
    let csv = dir.path().join("battles.csv");
    std::fs::write(&csv, "model_a,model_b,winner\nx,y,tie\n").expect("write");
    let err = read_styled_battles(&csv, false, |_| {}).expect_err("csv");
    assert!(err.to_string().contains("JSON"), "{err}");
}
