//! The ledger of `arena eval`: answers and judgments are written once (a repeat changes
//! nothing and says so), read back whole or filtered, and listed per run. On SQLite and
//! Postgres.

use std::sync::Arc;

use arena_store::{ArenaStore, EvalAnswer, EvalJudgment, JudgmentFilter};
use arena_testkit::on_both_backends;

mod common;

use common::with_fresh_store as fresh;

fn answer(question: &str, model: &str, turn: i64, content: &str) -> EvalAnswer {
    EvalAnswer {
        question_set: "arena-80".into(),
        question_id: question.into(),
        model: model.into(),
        turn,
        category: "math".into(),
        content: content.into(),
        temperature: 0.0,
        prompt_tokens: Some(12),
        completion_tokens: Some(3),
        latency_ms: Some(40),
        finish_reason: Some("stop".into()),
    }
}

fn judgment(question: &str, mode: &str, a: &str, b: &str, verdict: Option<&str>) -> EvalJudgment {
    EvalJudgment {
        question_set: "arena-80".into(),
        question_id: question.into(),
        mode: mode.into(),
        judge: "gpt-4".into(),
        turn: 1,
        model_a: a.into(),
        model_b: b.into(),
        category: "math".into(),
        prompt: format!("compare {a} and {b}"),
        output: "raw output, 'quoted' and \"double\"".into(),
        verdict: verdict.map(str::to_string),
        score: None,
        error: verdict.is_none().then(|| "no readable verdict".into()),
    }
}

async fn answers_are_written_once(s: Arc<dyn ArenaStore>, _url: String) {
    assert!(s
        .add_eval_answer(&answer("1", "vicuna", 1, "4"))
        .await
        .unwrap());
    assert!(s
        .add_eval_answer(&answer("1", "vicuna", 2, "9"))
        .await
        .unwrap());
    assert!(s
        .add_eval_answer(&answer("1", "alpaca", 1, "five"))
        .await
        .unwrap());
    // A second answer to the same turn (a concurrent or resumed run) keeps the first.
    assert!(!s
        .add_eval_answer(&answer("1", "vicuna", 1, "other"))
        .await
        .unwrap());
    let all = s.eval_answers("arena-80", None).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0], answer("1", "alpaca", 1, "five"));
    let vicuna = s.eval_answers("arena-80", Some("vicuna")).await.unwrap();
    let texts: Vec<&str> = vicuna.iter().map(|a| a.content.as_str()).collect();
    assert_eq!(texts, ["4", "9"]);
    assert!(s.eval_answers("mt_bench", None).await.unwrap().is_empty());
}

async fn judgments_are_written_once_and_filtered(s: Arc<dyn ArenaStore>, _url: String) {
    let both_orders = [
        judgment("1", "pairwise", "vicuna", "alpaca", Some("A")),
        judgment("1", "pairwise", "alpaca", "vicuna", None),
    ];
    for j in &both_orders {
        assert!(s.add_eval_judgment(j).await.unwrap());
    }
    assert!(!s
        .add_eval_judgment(&judgment("1", "pairwise", "vicuna", "alpaca", Some("B")))
        .await
        .unwrap());
    let mut single = judgment("1", "single", "vicuna", "", Some("7.5"));
    single.score = Some(7.5);
    assert!(s.add_eval_judgment(&single).await.unwrap());

    let with_text = JudgmentFilter {
        mode: Some("pairwise".into()),
        with_text: true,
        ..Default::default()
    };
    let read = s.eval_judgments(&with_text).await.unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[0], both_orders[1]);
    assert_eq!(read[1], both_orders[0]);
    let lean = s
        .eval_judgments(&JudgmentFilter {
            judge: Some("gpt-4".into()),
            mode: Some("single".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(lean.len(), 1);
    assert_eq!((lean[0].score, lean[0].prompt.as_str()), (Some(7.5), ""));
    let other_judge = JudgmentFilter {
        judge: Some("claude".into()),
        ..Default::default()
    };
    assert!(s.eval_judgments(&other_judge).await.unwrap().is_empty());

    let runs = s.eval_runs().await.unwrap();
    let summary: Vec<(&str, i64, i64)> = runs
        .iter()
        .map(|r| (r.mode.as_str(), r.judgments, r.unreadable))
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(summary.contains(&("pairwise", 2, 1)), "{summary:?}");
    assert!(summary.contains(&("single", 1, 0)), "{summary:?}");
    assert!(runs
        .iter()
        .all(|r| r.last_ms > 0 && r.question_set == "arena-80"));
}

async fn the_analyst_view_averages_single_grades(s: Arc<dyn ArenaStore>, url: String) {
    for (q, score) in [("1", Some(6.0)), ("2", Some(9.0)), ("3", None)] {
        let mut j = judgment(q, "single", "vicuna", "", score.map(|_| "x"));
        j.score = score;
        s.add_eval_judgment(&j).await.unwrap();
    }
    let rows = arena_testkit::db::rows(
        &url,
        "SELECT model, category, mean_score, graded, unreadable FROM eval_single_scores",
    )
    .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], "vicuna");
    assert_eq!(rows[0][2].parse::<f64>().unwrap(), 7.5);
    assert_eq!(&rows[0][3..], ["2", "1"]);
}

on_both_backends!(answers_once, fresh, answers_are_written_once);
on_both_backends!(
    judgments_once,
    fresh,
    judgments_are_written_once_and_filtered
);
on_both_backends!(single_view, fresh, the_analyst_view_averages_single_grades);
