//! `arena eval agree`: the judge sees the arena's voted battles (the question and both
//! answers, first turn or whole conversation, in both orders) and its verdicts are set beside
//! the human votes. Its judgments go to the same ledger as the benchmarks' (question set
//! `arena-battles`, question id = battle id), so a resumed run judges only new battles.

use std::collections::HashMap;

use arena_ratings::Winner;
use arena_store::ratings::counted_aggregate;
use arena_store::{ArenaStore, ExportBattle, ExportFilter, JudgmentFilter};

use crate::agreement::{self, Agreement, JudgedBattle, RankComparison};
use crate::client::ChatClient;
use crate::judge::{run_calls, Call, Item, JudgeOptions};
use crate::likelihood::VerdictFrom;
use crate::progress::Progress;
use crate::prompts::{JudgePrompts, Mode, PairTurn};
use crate::questions::QuestionSet;
use crate::swap::Game;
use crate::EvalError;

/// The question set name of judged arena battles.
pub const ARENA_BATTLES: &str = "arena-battles";

/// The category of a battle whose first prompt is in no question set given.
pub const UNCATEGORIZED: &str = "uncategorized";

/// How to judge the battles.
#[derive(Debug, Clone)]
pub struct AgreeOptions {
    /// The judge model's name at its endpoint.
    pub judge: String,
    /// Show the judge the whole conversation up to the voted turn, not only the first turn.
    pub full_conversation: bool,
    /// Judge calls at the same time.
    pub parallel: usize,
    /// The longest judge output, in tokens.
    pub max_tokens: Option<u32>,
    /// Read verdicts from the judge's text or from its likelihoods.
    pub verdict_from: VerdictFrom,
    /// Only the newest N voted battles.
    pub limit: Option<usize>,
    /// Also votes that do not count for the leaderboard.
    pub all_votes: bool,
}

/// What a run did and found.
#[derive(Debug, Clone)]
pub struct AgreeReport {
    /// Judgments made by this run.
    pub judged: usize,
    /// Judgments found in the store already.
    pub skipped: usize,
    /// Battles left out: the same model on both sides, or an answer missing.
    pub left_out: usize,
    /// Agreement between the judge and the votes.
    pub agreement: Agreement,
    /// The arena's ranking against the judge's (None when fewer than two models are in both).
    pub ranks: Option<RankComparison>,
}

/// A voted battle as the judge will see it.
struct Shown {
    battle: ExportBattle,
    human: Winner,
    turns: Vec<(String, String, String)>,
    category: String,
}

/// The (user, answer A, answer B) turns of a battle, up to its voted turn.
fn turns_of(b: &ExportBattle) -> Vec<(String, String, String)> {
    let split = |messages: &[(String, String)]| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (role, content) in messages {
            match role.as_str() {
                "user" => out.push((content.clone(), String::new())),
                "assistant" => {
                    if let Some(last) = out.last_mut() {
                        last.1 = content.clone();
                    }
                }
                _ => {}
            }
        }
        out
    };
    let voted = b.turn.max(1) as usize;
    let (a, b) = (split(&b.conversation_a), split(&b.conversation_b));
    a.into_iter()
        .zip(b)
        .take(voted)
        .map(|((q, x), (_, y))| (q, x, y))
        .collect()
}

/// The battles to judge, oldest first, and how many were left out.
async fn voted_battles(
    store: &dyn ArenaStore,
    categories: Option<&QuestionSet>,
    opts: &AgreeOptions,
) -> Result<(Vec<Shown>, usize), EvalError> {
    let mut all = Vec::new();
    let filter = ExportFilter {
        all_votes: opts.all_votes,
        accepted_terms_only: false,
    };
    store
        .export_battles(filter, &mut |b| {
            all.push(b);
            Ok(())
        })
        .await?;
    if let Some(n) = opts.limit {
        all.drain(..all.len().saturating_sub(n));
    }
    let by_prompt: HashMap<&str, &str> = categories
        .map(|set| {
            set.questions
                .iter()
                .map(|q| (q.turns[0].trim(), q.category.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let mut shown = Vec::new();
    let mut left_out = 0;
    for battle in all {
        let human = Winner::parse(&battle.winner);
        let mut turns = turns_of(&battle);
        if !opts.full_conversation {
            turns.truncate(1);
        }
        let complete =
            !turns.is_empty() && turns.iter().all(|t| !t.1.is_empty() && !t.2.is_empty());
        match human {
            Some(human) if complete && battle.model_a != battle.model_b => {
                let category = by_prompt
                    .get(turns[0].0.trim())
                    .map_or(UNCATEGORIZED, |c| *c)
                    .to_string();
                shown.push(Shown {
                    battle,
                    human,
                    turns,
                    category,
                });
            }
            _ => left_out += 1,
        }
    }
    Ok((shown, left_out))
}

/// Judges the voted battles the store has not seen judged by `opts.judge`, then reports the
/// agreement over every judged one. `categories` names the category of a battle whose first
/// prompt is one of its questions.
pub async fn agree(
    store: &dyn ArenaStore,
    client: &ChatClient,
    prompts: &JudgePrompts,
    categories: Option<&QuestionSet>,
    opts: &AgreeOptions,
    progress_label: Option<&str>,
) -> Result<AgreeReport, EvalError> {
    let (battles, left_out) = voted_battles(store, categories, opts).await?;
    let filter = JudgmentFilter {
        question_set: Some(ARENA_BATTLES.to_string()),
        judge: Some(opts.verdict_from.stored_judge(&opts.judge)),
        mode: Some("pairwise".to_string()),
        with_text: false,
    };
    let stored = store.eval_judgments(&filter).await?;
    let verdicts: HashMap<(String, i64, String), Option<String>> = stored
        .into_iter()
        .map(|j| ((j.question_id, j.turn, j.model_a), j.verdict))
        .collect();
    let mut calls = Vec::new();
    let mut skipped = 0;
    for s in &battles {
        let b = &s.battle;
        let turn = s.turns.len() as i64;
        for (first, second, a_first) in [
            (&b.model_a, &b.model_b, true),
            (&b.model_b, &b.model_a, false),
        ] {
            if verdicts.contains_key(&(b.battle_id.clone(), turn, first.clone())) {
                skipped += 1;
                continue;
            }
            let pair: Vec<PairTurn<'_>> = s
                .turns
                .iter()
                .map(|(q, x, y)| PairTurn {
                    question: q,
                    answer_a: if a_first { x } else { y },
                    answer_b: if a_first { y } else { x },
                    reference: None,
                })
                .collect();
            calls.push(Call {
                question_set: ARENA_BATTLES.to_string(),
                mode: "pairwise",
                item: Item {
                    question_id: b.battle_id.clone(),
                    category: s.category.clone(),
                    turn: turn as usize,
                    model_a: first.clone(),
                    model_b: second.clone(),
                    prompt: prompts.pair(Mode::Pairwise, &pair)?,
                },
            });
        }
    }
    let progress = Progress::labelled(progress_label, calls.len() as u64);
    let judge_opts = JudgeOptions {
        judge: opts.judge.clone(),
        mode: Mode::Pairwise,
        models: Vec::new(),
        baseline: None,
        parallel: opts.parallel,
        max_tokens: opts.max_tokens,
        verdict_from: opts.verdict_from,
    };
    let outcome = run_calls(store, client, &judge_opts, calls.into_iter(), &progress).await;
    progress.finish();
    let (judged, _) = outcome?;
    // Every judged battle counts, this run's and earlier runs'.
    let stored = store.eval_judgments(&filter).await?;
    let verdicts: HashMap<(String, i64, String), Game> = stored
        .into_iter()
        .map(|j| {
            let game = Game::stored(j.verdict.as_deref(), j.score);
            ((j.question_id, j.turn, j.model_a), game)
        })
        .collect();
    let judged_battles: Vec<JudgedBattle> = battles
        .iter()
        .filter_map(|s| {
            let b = &s.battle;
            let turn = s.turns.len() as i64;
            let a_first = verdicts.get(&(b.battle_id.clone(), turn, b.model_a.clone()))?;
            let b_first = verdicts.get(&(b.battle_id.clone(), turn, b.model_b.clone()))?;
            Some(JudgedBattle {
                battle_id: b.battle_id.clone(),
                model_a: b.model_a.clone(),
                model_b: b.model_b.clone(),
                category: s.category.clone(),
                prompt: s.turns[0].0.clone(),
                human: s.human,
                a_first: *a_first,
                b_first: *b_first,
            })
        })
        .collect();
    let agreement = agreement::agreement(&judged_battles);
    let ranks = Some(agreement::rank_comparison(
        &counted_aggregate(store, None)
            .await?
            .map_err(|e| EvalError::Ratings(e.to_string()))?,
        &judged_battles,
    )?)
    .filter(|r| r.models >= 2);
    Ok(AgreeReport {
        judged,
        skipped,
        left_out,
        agreement,
        ranks,
    })
}
