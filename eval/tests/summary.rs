//! Summaries of stored judgments on small fixtures whose numbers are worked out by hand in
//! the comments: single grades per turn and relative totals, pairwise verdicts combined from
//! both orders, Arena-Hard's weighted verdicts, and the baseline a pairwise run implies.

use arena_eval::summary::build;
use arena_store::EvalJudgment;

fn j(
    mode: &str,
    q: &str,
    category: &str,
    turn: i64,
    a: &str,
    b: &str,
    v: Option<&str>,
) -> EvalJudgment {
    EvalJudgment {
        question_set: "set".into(),
        question_id: q.into(),
        mode: mode.into(),
        judge: "gpt-4".into(),
        turn,
        model_a: a.into(),
        model_b: b.into(),
        category: category.into(),
        verdict: v.map(str::to_string),
        score: if mode == "single" {
            v.and_then(|v| v.parse().ok())
        } else {
            None
        },
        ..EvalJudgment::default()
    }
}

fn close(x: f64, y: f64) -> bool {
    (x - y).abs() < 1e-9
}

#[test]
fn single_grades_per_turn_and_relative_to_the_best() {
    let rows = [
        j("single", "q1", "writing", 1, "vicuna", "", Some("8")),
        j("single", "q1", "writing", 2, "vicuna", "", Some("6")),
        j("single", "q2", "math", 1, "vicuna", "", None),
        j("single", "q1", "writing", 1, "chatgpt", "", Some("10")),
        j("single", "q1", "writing", 2, "chatgpt", "", Some("8")),
        j("single", "q2", "math", 1, "chatgpt", "", Some("9")),
    ];
    let s = build(&rows, None, 0);
    assert_eq!((s.judgments, s.unreadable), (6, 1));
    assert_eq!(s.categories, ["math", "writing"]);
    // chatgpt: mean of 10, 8, 9 = 9, the best, so the baseline.
    assert_eq!(s.baseline.as_deref(), Some("chatgpt"));
    let names: Vec<&str> = s.models.iter().map(|m| m.model.as_str()).collect();
    assert_eq!(names, ["chatgpt", "vicuna"]);
    let c = s.models[0].single.as_ref().unwrap();
    assert!(close(c.overall, 9.0));
    assert_eq!(c.turns, [Some(9.5), Some(8.0)]);
    assert_eq!(c.relative, Some(100.0));
    let v = s.models[1].single.as_ref().unwrap();
    assert!(close(v.overall, 7.0));
    assert_eq!(v.turns, [Some(8.0), Some(6.0)]);
    assert_eq!((v.graded, v.unreadable), (2, 1));
    // Over the (question, turn)s both were graded on: (8 + 6) / (10 + 8).
    assert!(close(v.relative.unwrap(), 100.0 * 14.0 / 18.0));
    assert_eq!(v.by_category.get("math"), None);
    // A baseline named by the user is kept, whoever scores best.
    let s = build(&rows, Some("vicuna"), 0);
    let c = s.models[0].single.as_ref().unwrap();
    assert!(close(c.relative.unwrap(), 100.0 * 18.0 / 14.0));
}

#[test]
fn pairwise_verdicts_from_both_orders_against_the_implied_baseline() {
    let p = |q, cat, a, b, v| j("pairwise", q, cat, 1, a, b, v);
    let rows = [
        // q1: vicuna preferred in both orders: a win.
        p("q1", "writing", "vicuna", "chatgpt", Some("A")),
        p("q1", "writing", "chatgpt", "vicuna", Some("B")),
        // q1: always the first answer: position bias, a tie, and inconsistent.
        p("q1", "writing", "alpaca", "chatgpt", Some("A")),
        p("q1", "writing", "chatgpt", "alpaca", Some("A")),
        // q2: a tie twice for vicuna; alpaca loses in both orders.
        p("q2", "math", "vicuna", "chatgpt", Some("C")),
        p("q2", "math", "chatgpt", "vicuna", Some("C")),
        p("q2", "math", "alpaca", "chatgpt", Some("B")),
        p("q2", "math", "chatgpt", "alpaca", Some("A")),
        // q3: one order unreadable: an error, never a result.
        p("q3", "coding", "vicuna", "chatgpt", None),
        p("q3", "coding", "chatgpt", "vicuna", Some("B")),
        // q3: judged in one order only so far: not counted yet.
        p("q3", "coding", "alpaca", "chatgpt", Some("A")),
    ];
    let s = build(&rows, None, 0);
    assert_eq!((s.judgments, s.unreadable), (11, 1));
    // chatgpt is in every pair of three models: the baseline.
    assert_eq!(s.baseline.as_deref(), Some("chatgpt"));
    let names: Vec<&str> = s.models.iter().map(|m| m.model.as_str()).collect();
    assert_eq!(names, ["vicuna", "alpaca"]);
    let v = s.models[0].pairs.as_ref().unwrap();
    // 1 win, 1 tie: (1 + 0.5) / 2.
    assert_eq!(
        (v.rate.wins, v.rate.ties, v.rate.losses, v.rate.errors),
        (1, 1, 0, 1)
    );
    assert!(close(v.rate.win_rate, 0.75));
    assert!(v.rate.ci_low <= 0.75 && 0.75 <= v.rate.ci_high);
    assert_eq!(v.consistency, Some(1.0));
    assert_eq!(v.by_category["writing"], 1.0);
    assert_eq!(v.by_category["math"], 0.5);
    assert_eq!(v.by_category.get("coding"), None);
    let a = s.models[1].pairs.as_ref().unwrap();
    assert_eq!(
        (a.rate.wins, a.rate.ties, a.rate.losses, a.rate.errors),
        (0, 1, 1, 0)
    );
    assert!(close(a.rate.win_rate, 0.25));
    // q1 inconsistent, q2 consistent.
    assert_eq!(a.consistency, Some(0.5));
}

#[test]
fn arena_hard_weighs_strong_verdicts_three_times() {
    let h = |q, a, b, v| j("arena-hard", q, "hard", 1, a, b, Some(v));
    let rows = [
        // q1: vicuna much better as A (3 wins); chatgpt better as A (1 loss).
        h("q1", "vicuna", "chatgpt", "A>>B"),
        h("q1", "chatgpt", "vicuna", "A>B"),
        // q2: the same (1 tie); vicuna much better as B (3 wins).
        h("q2", "vicuna", "chatgpt", "A=B"),
        h("q2", "chatgpt", "vicuna", "B>>A"),
    ];
    // Two models: no implied baseline, so one is named.
    let s = build(&rows, Some("chatgpt"), 0);
    assert_eq!(s.models.len(), 1);
    let v = s.models[0].pairs.as_ref().unwrap();
    assert_eq!((v.rate.wins, v.rate.ties, v.rate.losses), (6, 1, 1));
    // (6 + 0.5) / 8.
    assert!(close(v.rate.win_rate, 0.8125));
    // Neither question got the same verdict in both orders.
    assert_eq!(v.consistency, Some(0.0));
    // Without a baseline, two models are pooled: each sees the other.
    let s = build(&rows, None, 0);
    assert_eq!(s.baseline, None);
    let c = s.models.iter().find(|m| m.model == "chatgpt").unwrap();
    let c = c.pairs.as_ref().unwrap();
    assert_eq!((c.rate.wins, c.rate.ties, c.rate.losses), (1, 1, 6));
}

#[test]
fn nothing_judged_is_an_empty_summary() {
    let s = build(&[], None, 0);
    assert!(s.models.is_empty());
    assert_eq!((s.judgments, s.unreadable), (0, 0));
}

#[test]
fn a_benchmark_ranking_beside_the_arenas() {
    use arena_eval::agreement::benchmark_vs_arena;
    use arena_ratings::{Aggregate, Battle, Winner};
    // The arena: p beats q, q beats r, p beats r, each 3 times of 4.
    let mut arena = Aggregate::new();
    for (a, b) in [("p", "q"), ("q", "r"), ("p", "r")] {
        for i in 0..4 {
            let winner = if i < 3 {
                Winner::ModelA
            } else {
                Winner::ModelB
            };
            let battle = Battle {
                model_a: a.into(),
                model_b: b.into(),
                winner,
                tstamp: None,
                anony: None,
                turn: None,
            };
            arena.add(&battle).unwrap();
        }
    }
    let graded = |scores: [(&str, &str); 4]| {
        let rows: Vec<EvalJudgment> = scores
            .iter()
            .map(|(m, g)| j("single", "q1", "math", 1, m, "", Some(g)))
            .collect();
        build(&rows, None, 0)
    };
    // The same order as the arena; `z` is not in the arena and is left out.
    let same = benchmark_vs_arena(
        &arena,
        &graded([("p", "9"), ("q", "7"), ("r", "5"), ("z", "10")]),
    )
    .unwrap();
    assert_eq!(same.models, 3);
    assert_eq!(same.spearman, Some(1.0));
    let names: Vec<&str> = same.rows.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(names, ["p", "q", "r"]);
    assert_eq!(same.rows[2].judge_rating, 5.0);
    let reversed = benchmark_vs_arena(
        &arena,
        &graded([("p", "2"), ("q", "6"), ("r", "8"), ("z", "1")]),
    )
    .unwrap();
    assert_eq!(reversed.spearman, Some(-1.0));
    assert_eq!(reversed.rows[0].judge_rank, 3);
}
