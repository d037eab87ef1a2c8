//! One evaluation's results from its stored judgments: what `arena eval show` prints and the
//! page's Evaluation section shows. Single grades become mean scores per turn and category and
//! totals relative to a baseline; pairwise and Arena-Hard verdicts become win rates from both
//! orders of every pair, with bootstrap intervals over questions.

use std::collections::{BTreeMap, BTreeSet};

use arena_store::{ArenaStore, EvalJudgment, EvalLedger, JudgmentFilter};

use crate::agreement::{benchmark_vs_arena, RankComparison};
use serde::Serialize;

use crate::report::{self, Tally, WinRate};
use crate::swap;
use crate::verdict;
use crate::EvalError;

/// The results of one (question set, judge, mode).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The question set.
    pub question_set: String,
    /// The judge.
    pub judge: String,
    /// `single`, `pairwise` or `arena-hard`.
    pub mode: String,
    /// Single: the model totals are relative to (None without graded models). Pairwise: the
    /// opponent every model was judged against (None: all pairs, pooled).
    pub baseline: Option<String>,
    /// Every category seen, sorted.
    pub categories: Vec<String>,
    /// Judge calls counted.
    pub judgments: usize,
    /// Calls whose verdict could not be read.
    pub unreadable: usize,
    /// One entry per model, best first.
    pub models: Vec<ModelSummary>,
    /// The models' scores beside the arena's Bradley-Terry ratings, when asked for
    /// ([`compare_with_arena`]) and two models or more are in both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arena: Option<RankComparison>,
}

/// One model's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// The model.
    pub model: String,
    /// Single mode's grades.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub single: Option<SingleScores>,
    /// Pairwise and Arena-Hard results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairs: Option<PairScores>,
}

/// Mean 1–10 grades.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SingleScores {
    /// Mean of every readable grade.
    pub overall: f64,
    /// Mean per turn: index 0 is turn 1 (None: no readable grade on that turn).
    pub turns: Vec<Option<f64>>,
    /// Mean per category.
    pub by_category: BTreeMap<String, f64>,
    /// Total grade as a percentage of the baseline's over the (question, turn)s both were
    /// graded on: the Vicuna article's "92% of ChatGPT".
    pub relative: Option<f64>,
    /// Readable grades.
    pub graded: usize,
    /// Unreadable ones.
    pub unreadable: usize,
}

/// Pairwise results against the baseline (or every opponent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairScores {
    /// Wins, ties, losses (Arena-Hard: votes, strong verdicts ×3), unreadable pairs, and the
    /// win rate with its bootstrap 95% interval.
    #[serde(flatten)]
    pub rate: WinRate,
    /// Win rate per category.
    pub by_category: BTreeMap<String, f64>,
    /// Share of pairs with both verdicts readable where the judge said the same in both
    /// orders (None: no such pair).
    pub consistency: Option<f64>,
}

/// Bootstrap rounds for the win-rate intervals.
pub const BOOTSTRAP_ROUNDS: usize = 1000;

/// Summarises `judgments` (all of one question set, judge and mode). `baseline` names the
/// reference model; without one, single mode takes the best-scoring model and pairwise
/// modes take the model that appears in every pair (when there are three models or more),
/// else pool all pairs. `seed` fixes the bootstrap.
pub fn build(judgments: &[EvalJudgment], baseline: Option<&str>, seed: u64) -> Summary {
    let first = judgments.first();
    let mode = first.map(|j| j.mode.clone()).unwrap_or_default();
    let categories: BTreeSet<String> = judgments.iter().map(|j| j.category.clone()).collect();
    let mut summary = Summary {
        question_set: first.map(|j| j.question_set.clone()).unwrap_or_default(),
        judge: first.map(|j| j.judge.clone()).unwrap_or_default(),
        mode: mode.clone(),
        baseline: None,
        categories: categories.into_iter().collect(),
        judgments: judgments.len(),
        unreadable: judgments.iter().filter(|j| j.verdict.is_none()).count(),
        models: Vec::new(),
        arena: None,
    };
    if mode == "single" {
        single(&mut summary, judgments, baseline);
    } else {
        pairs(&mut summary, judgments, baseline, seed);
    }
    summary
}

/// The summary of the stored judgments of `question_set` by `judge` in `mode`; either left
/// out means the newest run's. An error lists the stored runs when none matches.
pub async fn load(
    store: &dyn EvalLedger,
    question_set: &str,
    judge: Option<&str>,
    mode: Option<&str>,
    baseline: Option<&str>,
    seed: u64,
) -> Result<Summary, EvalError> {
    let runs = store.eval_runs().await?;
    let run = runs.iter().find(|r| {
        r.question_set == question_set
            && judge.is_none_or(|j| r.judge == j)
            && mode.is_none_or(|m| r.mode == m)
    });
    let Some(run) = run else {
        let listed: Vec<String> = runs
            .iter()
            .map(|r| format!("{} / {} / {}", r.question_set, r.judge, r.mode))
            .collect();
        return Err(EvalError::Invalid(format!(
            "no judgments of question set '{question_set}'{}{}; stored (set / judge / mode): {}",
            judge
                .map(|j| format!(" by judge '{j}'"))
                .unwrap_or_default(),
            mode.map(|m| format!(" in mode '{m}'")).unwrap_or_default(),
            if listed.is_empty() {
                "none yet".to_string()
            } else {
                listed.join(", ")
            }
        )));
    };
    let judgments = store
        .eval_judgments(&JudgmentFilter {
            question_set: Some(run.question_set.clone()),
            judge: Some(run.judge.clone()),
            mode: Some(run.mode.clone()),
            with_text: false,
        })
        .await?;
    Ok(build(&judgments, baseline, seed))
}

/// Sets `s.arena`: the models' scores beside the Bradley-Terry ratings of the arena's counted
/// votes in `store`, when two models or more are in both.
pub async fn compare_with_arena(store: &dyn ArenaStore, s: &mut Summary) -> Result<(), EvalError> {
    let arena = arena_store::ratings::counted_aggregate(store, None)
        .await?
        .map_err(|e| EvalError::Ratings(e.to_string()))?;
    s.arena = Some(benchmark_vs_arena(&arena, s)?).filter(|r| r.models >= 2);
    Ok(())
}

fn single(summary: &mut Summary, judgments: &[EvalJudgment], baseline: Option<&str>) {
    let grades: Vec<report::Grade> = judgments
        .iter()
        .map(|j| report::Grade {
            model: j.model_a.clone(),
            category: j.category.clone(),
            score: j.score,
        })
        .collect();
    let scores = report::scores(&grades);
    let turns = judgments.iter().map(|j| j.turn).max().unwrap_or(0).max(0) as usize;
    let per_item: Vec<(String, String, f64)> = judgments
        .iter()
        .filter_map(|j| {
            Some((
                format!("{}\n{}", j.question_id, j.turn),
                j.model_a.clone(),
                j.score?,
            ))
        })
        .collect();
    let best = scores
        .iter()
        .filter(|(_, s)| s.graded > 0)
        .max_by(|a, b| a.1.overall.total_cmp(&b.1.overall).then(b.0.cmp(a.0)))
        .map(|(m, _)| m.clone());
    let base = baseline.map(str::to_string).or(best);
    let relative = base
        .as_deref()
        .map(|b| report::relative_to(&per_item, b))
        .unwrap_or_default();
    summary.baseline = base;
    let mut models: Vec<ModelSummary> = scores
        .into_iter()
        .map(|(model, s)| {
            let turn_means = (1..=turns as i64)
                .map(|t| {
                    let g: Vec<f64> = judgments
                        .iter()
                        .filter(|j| j.model_a == model && j.turn == t)
                        .filter_map(|j| j.score)
                        .collect();
                    (!g.is_empty()).then(|| g.iter().sum::<f64>() / g.len() as f64)
                })
                .collect();
            ModelSummary {
                single: Some(SingleScores {
                    overall: s.overall,
                    turns: turn_means,
                    by_category: s.by_category,
                    relative: relative.get(&model).copied(),
                    graded: s.graded,
                    unreadable: s.errors,
                }),
                pairs: None,
                model,
            }
        })
        .collect();
    models.sort_by(|a, b| {
        let score = |m: &ModelSummary| {
            m.single
                .as_ref()
                .filter(|s| s.graded > 0)
                .map(|s| s.overall)
        };
        score(b)
            .partial_cmp(&score(a))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.model.cmp(&b.model))
    });
    summary.models = models;
}

/// The two games of one pair on one (question, turn): the verdicts with `first` shown
/// first, then with `second` shown first.
struct Games<'a> {
    category: &'a str,
    question: &'a str,
    first_as_a: Option<&'a EvalJudgment>,
    second_as_a: Option<&'a EvalJudgment>,
}

/// The model the pairs were judged against: the one in every pair, with three models or more.
fn implied_baseline(pairs: &BTreeMap<(&str, i64, &str, &str), Games<'_>>) -> Option<String> {
    let models: BTreeSet<&str> = pairs.keys().flat_map(|k| [k.2, k.3]).collect();
    if models.len() < 3 {
        return None;
    }
    models
        .into_iter()
        .find(|m| pairs.keys().all(|k| k.2 == *m || k.3 == *m))
        .map(str::to_string)
}

/// One Arena-Hard game's votes from the model's side, or None when its verdict is unreadable.
fn hard_votes(j: &EvalJudgment, model_is_a: bool) -> Option<Tally> {
    let level = verdict::five_level(&format!("[[{}]]", j.verdict.as_deref()?))?;
    let (w, t, l) = swap::arena_hard_votes(level, model_is_a);
    Some(Tally::new(w, t, l, 0))
}

/// A stored pairwise judgment as one game of its pair.
fn game_of(j: &EvalJudgment) -> swap::Game {
    swap::Game::stored(j.verdict.as_deref(), j.score)
}

fn pairs(summary: &mut Summary, judgments: &[EvalJudgment], baseline: Option<&str>, seed: u64) {
    let hard = summary.mode == "arena-hard";
    // Each unordered pair once, its models in name order.
    let mut games: BTreeMap<(&str, i64, &str, &str), Games<'_>> = BTreeMap::new();
    for j in judgments
        .iter()
        .filter(|j| !j.model_b.is_empty() && j.model_a != j.model_b)
    {
        let (lo, hi) = if j.model_a < j.model_b {
            (j.model_a.as_str(), j.model_b.as_str())
        } else {
            (j.model_b.as_str(), j.model_a.as_str())
        };
        let g = games
            .entry((&j.question_id, j.turn, lo, hi))
            .or_insert(Games {
                category: &j.category,
                question: &j.question_id,
                first_as_a: None,
                second_as_a: None,
            });
        if j.model_a == lo {
            g.first_as_a = Some(j);
        } else {
            g.second_as_a = Some(j);
        }
    }
    let base = baseline
        .map(str::to_string)
        .or_else(|| implied_baseline(&games));
    // Per model: per question tallies, per category tallies, consistency counts.
    #[derive(Default)]
    struct Acc<'a> {
        per_question: BTreeMap<&'a str, Tally>,
        per_category: BTreeMap<&'a str, Tally>,
        consistent: (usize, usize),
    }
    let mut acc: BTreeMap<&str, Acc<'_>> = BTreeMap::new();
    for ((_, _, lo, hi), g) in &games {
        // Both games are needed: a pair judged in one order only is not finished yet.
        let (Some(first), Some(second)) = (g.first_as_a, g.second_as_a) else {
            continue;
        };
        let sides: Vec<(&str, bool)> = match base.as_deref() {
            Some(b) if b == *lo => vec![(*hi, false)],
            Some(b) if b == *hi => vec![(*lo, true)],
            Some(_) => continue,
            None => vec![(*lo, true), (*hi, false)],
        };
        for (model, model_is_lo) in sides {
            // The model's two games: as A, then as B.
            let (as_a, as_b) = if model_is_lo {
                (first, second)
            } else {
                (second, first)
            };
            let (tally, same) = if hard {
                match (hard_votes(as_a, true), hard_votes(as_b, false)) {
                    (Some(x), Some(y)) => (x.plus(y), Some(x == y)),
                    _ => (Tally::new(0, 0, 0, 1), None),
                }
            } else {
                let (ga, gb) = (game_of(as_a), game_of(as_b));
                (
                    Tally::from(swap::combine_games(ga, gb)),
                    swap::consistent(ga.verdict, gb.verdict),
                )
            };
            let a = acc.entry(model).or_default();
            let q = a.per_question.entry(g.question).or_default();
            *q = q.plus(tally);
            let c = a.per_category.entry(g.category).or_default();
            *c = c.plus(tally);
            if let Some(same) = same {
                a.consistent.1 += 1;
                a.consistent.0 += usize::from(same);
            }
        }
    }
    summary.baseline = base;
    let mut models: Vec<ModelSummary> = acc
        .into_iter()
        .map(|(model, a)| {
            let per_question: Vec<Tally> = a.per_question.into_values().collect();
            ModelSummary {
                model: model.to_string(),
                single: None,
                pairs: Some(PairScores {
                    rate: report::win_rate_of(&per_question, BOOTSTRAP_ROUNDS, seed),
                    by_category: a
                        .per_category
                        .into_iter()
                        .filter(|(_, t)| t.decided() > 0)
                        .map(|(c, t)| (c.to_string(), t.rate()))
                        .collect(),
                    consistency: (a.consistent.1 > 0)
                        .then(|| a.consistent.0 as f64 / a.consistent.1 as f64),
                }),
            }
        })
        .collect();
    models.sort_by(|a, b| {
        let r = |m: &ModelSummary| m.pairs.as_ref().map_or(0.0, |p| p.rate.win_rate);
        r(b).total_cmp(&r(a)).then(a.model.cmp(&b.model))
    });
    summary.models = models;
}
