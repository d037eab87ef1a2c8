//! `arena eval judge`: the judge grades stored answers. Single mode grades each answer turn
//! (turn 2 with the whole conversation shown); pairwise and Arena-Hard modes compare two
//! models' answers in both orders. Every call's prompt, raw output and verdict is stored as
//! it comes, and a run makes only the judgments the store lacks.

use std::collections::{BTreeMap, HashSet};

use arena_store::{EvalJudgment, EvalLedger, JudgmentFilter};

use crate::client::{ChatClient, ChatRequest, Message};
use crate::likelihood::{self, VerdictFrom};
use crate::progress::{until_first_error, Progress};
use crate::prompts::{JudgePrompts, Mode, PairTurn, SingleTurn};
use crate::questions::{Question, QuestionSet, REFERENCE_CATEGORIES};
use crate::verdict;
use crate::EvalError;

/// How to judge.
#[derive(Debug, Clone)]
pub struct JudgeOptions {
    /// The judge model's name at its endpoint.
    pub judge: String,
    /// Single grades, pairwise or Arena-Hard verdicts.
    pub mode: Mode,
    /// The models judged (empty: every model with answers in the set).
    pub models: Vec<String>,
    /// Pairwise modes: every model against this one; None: all pairs.
    pub baseline: Option<String>,
    /// Judge calls at the same time.
    pub parallel: usize,
    /// The longest judge output, in tokens (None: the endpoint's default).
    pub max_tokens: Option<u32>,
    /// Read verdicts from the judge's text or from its likelihoods.
    pub verdict_from: VerdictFrom,
}

impl JudgeOptions {
    /// The judge's name in the store.
    pub fn stored_judge(&self) -> String {
        self.verdict_from.stored_judge(&self.judge)
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JudgeReport {
    /// Judgments made by this run.
    pub judged: usize,
    /// Of those, outputs with no readable verdict (stored, counted, never guessed).
    pub unreadable: usize,
    /// Judgments found in the store already.
    pub skipped: usize,
}

/// One judge call to make.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) question_id: String,
    pub(crate) category: String,
    pub(crate) turn: usize,
    pub(crate) model_a: String,
    pub(crate) model_b: String,
    pub(crate) prompt: String,
}

/// The reference answer of a turn, for the categories that show one.
fn reference(q: &Question, turn: usize) -> Option<&str> {
    if !REFERENCE_CATEGORIES.contains(&q.category.as_str()) {
        return None;
    }
    q.reference.as_ref()?.get(turn).map(String::as_str)
}

/// Every model's complete answers: (model, question id) → turns.
type Answers = BTreeMap<(String, String), Vec<String>>;

async fn complete_answers(store: &dyn EvalLedger, set: &QuestionSet) -> Result<Answers, EvalError> {
    let mut turns: BTreeMap<(String, String), BTreeMap<i64, String>> = BTreeMap::new();
    for a in store.eval_answers(&set.name, None).await? {
        turns
            .entry((a.model, a.question_id))
            .or_default()
            .insert(a.turn, a.content);
    }
    Ok(turns
        .into_iter()
        .filter(|((_, q), t)| set.get(q).is_some_and(|q| t.len() == q.turns.len()))
        .map(|(k, t)| (k, t.into_values().collect()))
        .collect())
}

/// The judge calls `opts` asks for, prompts rendered, in a stable order.
fn items(
    set: &QuestionSet,
    answers: &Answers,
    prompts: &JudgePrompts,
    opts: &JudgeOptions,
) -> Result<Vec<Item>, EvalError> {
    let mut models: Vec<String> = if opts.models.is_empty() {
        let all: std::collections::BTreeSet<&String> = answers.keys().map(|(m, _)| m).collect();
        all.into_iter().cloned().collect()
    } else {
        opts.models.clone()
    };
    if let Some(b) = &opts.baseline {
        if !models.contains(b) {
            models.push(b.clone());
        }
    }
    for m in &models {
        if !answers.keys().any(|(model, _)| model == m) {
            return Err(EvalError::Invalid(format!(
                "model '{m}' has no complete answers in question set '{}': run `arena eval gen` for it first",
                set.name
            )));
        }
    }
    let pairs: Vec<(String, String)> = match (opts.mode, &opts.baseline) {
        (Mode::Single, _) => models.iter().map(|m| (m.clone(), String::new())).collect(),
        (_, Some(b)) => models
            .iter()
            .filter(|m| *m != b)
            .flat_map(|m| [(m.clone(), b.clone()), (b.clone(), m.clone())])
            .collect(),
        (_, None) => {
            let mut out = Vec::new();
            for (i, x) in models.iter().enumerate() {
                for y in &models[i + 1..] {
                    out.push((x.clone(), y.clone()));
                    out.push((y.clone(), x.clone()));
                }
            }
            out
        }
    };
    if pairs.is_empty() {
        return Err(EvalError::Invalid(
            "nothing to compare: pairwise judging needs two models with answers".into(),
        ));
    }
    let mut out = Vec::new();
    for q in &set.questions {
        for (a, b) in &pairs {
            let Some(ans_a) = answers.get(&(a.clone(), q.id.clone())) else {
                continue;
            };
            let ans_b = if b.is_empty() {
                None
            } else {
                match answers.get(&(b.clone(), q.id.clone())) {
                    Some(x) => Some(x),
                    None => continue,
                }
            };
            for turn in 1..=q.turns.len() {
                let prompt = match ans_b {
                    None => {
                        let turns: Vec<SingleTurn<'_>> = (0..turn)
                            .map(|i| SingleTurn {
                                question: &q.turns[i],
                                answer: &ans_a[i],
                                reference: reference(q, i),
                            })
                            .collect();
                        prompts.single(&turns)?
                    }
                    Some(ans_b) => {
                        let turns: Vec<PairTurn<'_>> = (0..turn)
                            .map(|i| PairTurn {
                                question: &q.turns[i],
                                answer_a: &ans_a[i],
                                answer_b: &ans_b[i],
                                reference: reference(q, i),
                            })
                            .collect();
                        prompts.pair(opts.mode, &turns)?
                    }
                };
                out.push(Item {
                    question_id: q.id.clone(),
                    category: q.category.clone(),
                    turn,
                    model_a: a.clone(),
                    model_b: b.clone(),
                    prompt,
                });
            }
        }
    }
    Ok(out)
}

/// Judges what `opts` asks for in `set`, skipping stored judgments. The first failed call
/// (after its retries) stops the run; what was stored stays.
pub async fn judge(
    store: &dyn EvalLedger,
    client: &ChatClient,
    prompts: &JudgePrompts,
    set: &QuestionSet,
    opts: &JudgeOptions,
    progress_label: Option<&str>,
) -> Result<JudgeReport, EvalError> {
    opts.verdict_from.check(opts.mode)?;
    let answers = complete_answers(store, set).await?;
    let all = items(set, &answers, prompts, opts)?;
    let mode = opts.mode.name();
    let done: HashSet<(String, i64, String, String)> = store
        .eval_judgments(&JudgmentFilter {
            question_set: Some(set.name.clone()),
            judge: Some(opts.stored_judge()),
            mode: Some(mode.to_string()),
            with_text: false,
        })
        .await?
        .into_iter()
        .map(|j| (j.question_id, j.turn, j.model_a, j.model_b))
        .collect();
    let (todo, skipped): (Vec<Item>, Vec<Item>) = all.into_iter().partition(|i| {
        !done.contains(&(
            i.question_id.clone(),
            i.turn as i64,
            i.model_a.clone(),
            i.model_b.clone(),
        ))
    });
    let progress = Progress::labelled(progress_label, todo.len() as u64);
    let calls = todo.into_iter().map(|item| Call {
        question_set: set.name.clone(),
        mode,
        item,
    });
    let outcome = run_calls(store, client, opts, calls, &progress).await;
    progress.finish();
    let (judged, unreadable) = outcome?;
    Ok(JudgeReport {
        judged,
        unreadable,
        skipped: skipped.len(),
    })
}

/// A judge call with where its judgment goes.
pub(crate) struct Call {
    pub(crate) question_set: String,
    pub(crate) mode: &'static str,
    pub(crate) item: Item,
}

/// Makes the calls `parallel` at a time, storing each judgment; returns (judged, unreadable).
pub(crate) async fn run_calls(
    store: &dyn EvalLedger,
    client: &ChatClient,
    opts: &JudgeOptions,
    calls: impl Iterator<Item = Call>,
    progress: &Progress,
) -> Result<(usize, usize), EvalError> {
    let work = calls.map(|call| async move {
        let (reading, output) = ask(client, opts, &call.item.prompt).await?;
        let readable = reading.verdict.is_some();
        store
            .add_eval_judgment(&EvalJudgment {
                question_set: call.question_set,
                question_id: call.item.question_id,
                mode: call.mode.to_string(),
                judge: opts.stored_judge(),
                turn: call.item.turn as i64,
                model_a: call.item.model_a,
                model_b: call.item.model_b,
                category: call.item.category,
                prompt: call.item.prompt,
                output,
                verdict: reading.verdict,
                score: reading.score,
                error: reading.error,
            })
            .await?;
        progress.inc();
        Ok(readable)
    });
    let readable = until_first_error(work, opts.parallel).await?;
    let unreadable = readable.iter().filter(|r| !**r).count();
    Ok((readable.len(), unreadable))
}

/// One judge call: the verdict read and the output to store.
async fn ask(
    client: &ChatClient,
    opts: &JudgeOptions,
    prompt: &str,
) -> Result<(verdict::Reading, String), EvalError> {
    let mut messages = vec![Message::new("user", prompt)];
    let likely = opts.verdict_from == VerdictFrom::Likelihood;
    if likely {
        messages.push(Message::new("assistant", likelihood::PREFILL));
    }
    let reply = client
        .chat(&ChatRequest {
            model: &opts.judge,
            messages: &messages,
            temperature: 0.0,
            max_tokens: if likely { Some(1) } else { opts.max_tokens },
            logprobs: likely,
            top_logprobs: likely.then_some(likelihood::ALTERNATIVES),
            // Every verdict's prompt opens with the same instructions.
            user: Some("arena-judge"),
        })
        .await?;
    Ok(if likely {
        likelihood::read_pairwise(&reply.first_alternatives)
    } else {
        (verdict::read(opts.mode, &reply.content), reply.content)
    })
}
