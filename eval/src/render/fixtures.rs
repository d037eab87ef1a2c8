//! Single-grade and pairwise summaries shared by the render tests.

use std::collections::BTreeMap;

use crate::report::WinRate;
use crate::summary::{ModelSummary, PairScores, SingleScores, Summary};

pub(super) const ODD: &str = "a, \"quoted\" model";

fn cats(v: &[(&str, f64)]) -> BTreeMap<String, f64> {
    v.iter().map(|(c, x)| (c.to_string(), *x)).collect()
}

fn base(mode: &str, baseline: &str, models: Vec<ModelSummary>) -> Summary {
    Summary {
        question_set: "mt-bench".into(),
        judge: "gpt-4".into(),
        mode: mode.into(),
        baseline: Some(baseline.into()),
        categories: vec!["math".into(), "writing".into()],
        judgments: 21,
        unreadable: 3,
        models,
        arena: None,
    }
}

fn graded(
    model: &str,
    overall: f64,
    turns: Vec<Option<f64>>,
    rel: f64,
    n: (usize, usize),
) -> ModelSummary {
    ModelSummary {
        model: model.into(),
        single: Some(SingleScores {
            overall,
            turns,
            by_category: cats(&[("math", overall - 0.75), ("writing", overall + 0.75)]),
            relative: Some(rel),
            graded: n.0,
            unreadable: n.1,
        }),
        pairs: None,
    }
}

pub(super) fn single_summary() -> Summary {
    base(
        "single",
        "chatgpt",
        vec![
            graded("chatgpt", 8.0, vec![Some(8.0), None], 100.0, (8, 2)),
            graded(ODD, 7.25, vec![Some(7.5), Some(7.0)], 92.345, (10, 1)),
        ],
    )
}

fn paired(model: &str, w: (usize, usize, usize, usize), rate: f64, ci: (f64, f64)) -> ModelSummary {
    ModelSummary {
        model: model.into(),
        single: None,
        pairs: Some(PairScores {
            rate: WinRate {
                wins: w.0,
                ties: w.1,
                losses: w.2,
                errors: w.3,
                win_rate: rate,
                ci_low: ci.0,
                ci_high: ci.1,
            },
            by_category: cats(&[("math", 0.5)]),
            consistency: Some(0.8),
        }),
    }
}

pub(super) fn pair_summary() -> Summary {
    base(
        "pairwise",
        "gpt-3.5",
        vec![
            paired(ODD, (4, 2, 2, 1), 0.625, (0.5, 0.75)),
            paired("alpaca", (1, 0, 7, 0), 0.125, (0.0, 0.25)),
        ],
    )
}
