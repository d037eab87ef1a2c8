//! `arena eval gen`: every model answers every question of a set, turn after turn, through an
//! OpenAI-compatible endpoint. Each answered turn is stored as soon as it arrives, and a run
//! asks only for what the store lacks, so a killed run resumes where it stopped.

use std::collections::{BTreeMap, HashMap};

use arena_store::{EvalAnswer, EvalLedger};
use serde_json::json;

use crate::client::{ChatClient, ChatRequest, Message};
use crate::progress::{until_first_error, Progress};
use crate::questions::{Question, QuestionSet};
use crate::EvalError;

/// Categories answered greedily (temperature 0): one right answer, as in MT-bench.
pub const GREEDY_CATEGORIES: [&str; 4] = ["math", "coding", "reasoning", "extraction"];

/// The temperature of the other categories.
pub const DEFAULT_TEMPERATURE: f64 = 0.7;

/// Sampling temperature per category.
#[derive(Debug, Clone, PartialEq)]
pub struct Temperatures {
    /// Every category not listed in `by_category`.
    pub default: f64,
    /// Per category.
    pub by_category: BTreeMap<String, f64>,
}

impl Default for Temperatures {
    /// 0 for math, coding, reasoning and extraction; 0.7 otherwise.
    fn default() -> Self {
        Self {
            default: DEFAULT_TEMPERATURE,
            by_category: GREEDY_CATEGORIES
                .iter()
                .map(|c| (c.to_string(), 0.0))
                .collect(),
        }
    }
}

impl Temperatures {
    /// The temperature of `category`.
    pub fn of(&self, category: &str) -> f64 {
        self.by_category
            .get(category)
            .copied()
            .unwrap_or(self.default)
    }

    /// Applies one override: `T` (every category) or `CATEGORY=T`.
    pub fn set(&mut self, spec: &str) -> Result<(), EvalError> {
        let (category, value) = match spec.split_once('=') {
            Some((c, v)) => (Some(c.trim()), v),
            None => (None, spec),
        };
        let t: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|t: &f64| (0.0..=2.0).contains(t))
            .ok_or_else(|| {
                EvalError::Invalid(format!(
                    "temperature '{spec}': expected T or CATEGORY=T with T from 0 to 2"
                ))
            })?;
        match category {
            Some(c) if !c.is_empty() => {
                self.by_category.insert(c.to_string(), t);
            }
            Some(_) => {
                return Err(EvalError::Invalid(format!(
                    "temperature '{spec}': the category before '=' is empty"
                )))
            }
            None => {
                self.default = t;
                self.by_category.clear();
            }
        }
        Ok(())
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// The models, as the endpoint names them.
    pub models: Vec<String>,
    /// Temperature per category.
    pub temperatures: Temperatures,
    /// The longest answer per turn, in tokens (None: the endpoint's default).
    pub max_tokens: Option<u32>,
    /// Questions answered at the same time.
    pub parallel: usize,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenReport {
    /// Turns answered by this run.
    pub answered: usize,
    /// Turns found in the store already.
    pub skipped: usize,
}

/// One (model, question) with the turns the store already has.
struct Job<'a> {
    model: &'a str,
    question: &'a Question,
    done: Vec<String>,
}

/// Answers every question of `set` with every model, skipping stored turns. The first
/// failure stops the run (what was stored stays) and is the error.
pub async fn generate(
    store: &dyn EvalLedger,
    client: &ChatClient,
    set: &QuestionSet,
    opts: &GenOptions,
    progress_label: Option<&str>,
) -> Result<GenReport, EvalError> {
    if opts.models.is_empty() {
        return Err(EvalError::Invalid(
            "no model to answer: give --model".into(),
        ));
    }
    let stored = store.eval_answers(&set.name, None).await?;
    let mut have: HashMap<(&str, &str), BTreeMap<i64, String>> = HashMap::new();
    for a in &stored {
        have.entry((a.model.as_str(), a.question_id.as_str()))
            .or_default()
            .insert(a.turn, a.content.clone());
    }
    let mut jobs = Vec::new();
    let mut report = GenReport::default();
    for model in &opts.models {
        for q in &set.questions {
            let turns = have.get(&(model.as_str(), q.id.as_str()));
            // Only an unbroken run of turns from the first is context for the next.
            let done: Vec<String> = (1..=q.turns.len() as i64)
                .map_while(|t| turns.and_then(|m| m.get(&t)).cloned())
                .collect();
            report.skipped += done.len();
            if done.len() < q.turns.len() {
                jobs.push(Job {
                    model,
                    question: q,
                    done,
                });
            }
        }
    }
    let progress = Progress::labelled(progress_label, jobs.len() as u64);
    let work = jobs
        .into_iter()
        .map(|job| answer(store, client, &set.name, opts, job, &progress));
    let answered = until_first_error(work, opts.parallel).await;
    progress.finish();
    report.answered = answered?.into_iter().sum();
    Ok(report)
}

/// Answers the missing turns of one question, storing each as it comes.
async fn answer(
    store: &dyn EvalLedger,
    client: &ChatClient,
    question_set: &str,
    opts: &GenOptions,
    job: Job<'_>,
    progress: &Progress,
) -> Result<usize, EvalError> {
    let q = job.question;
    let temperature = opts.temperatures.of(&q.category);
    let mut messages = Vec::new();
    for (user, answer) in q.turns.iter().zip(&job.done) {
        messages.push(Message::new("user", user.clone()));
        messages.push(Message::new("assistant", answer.clone()));
    }
    // One conversation per question and model: turn 2 starts from turn 1's keys and values.
    let conversation = format!("arena-eval/{question_set}/{}/{}", q.id, job.model);
    let mut answered = 0;
    for (i, user) in q.turns.iter().enumerate().skip(job.done.len()) {
        messages.push(Message::new("user", user.clone()));
        let reply = client
            .chat(&ChatRequest {
                model: job.model,
                messages: &messages,
                temperature,
                max_tokens: opts.max_tokens,
                logprobs: false,
                top_logprobs: None,
                user: Some(&conversation),
            })
            .await?;
        store
            .add_eval_answer(&EvalAnswer {
                question_set: question_set.to_string(),
                question_id: q.id.clone(),
                model: job.model.to_string(),
                turn: i as i64 + 1,
                category: q.category.clone(),
                content: reply.content.clone(),
                temperature,
                prompt_tokens: reply.prompt_tokens,
                completion_tokens: reply.completion_tokens,
                latency_ms: Some(reply.latency_ms),
                finish_reason: reply.finish_reason,
            })
            .await?;
        messages.push(Message::new("assistant", reply.content));
        answered += 1;
    }
    progress.inc();
    Ok(answered)
}

/// The answers as MT-bench's answer JSONL (`{question_id, answer_id, model_id, choices:
/// [{index, turns}], tstamp}`), one line per (model, question) with every turn answered,
/// questions in set order.
pub fn mt_bench_jsonl(set: &QuestionSet, answers: &[EvalAnswer], models: &[String]) -> String {
    let mut by_key: HashMap<(&str, &str), BTreeMap<i64, &str>> = HashMap::new();
    for a in answers {
        by_key
            .entry((a.model.as_str(), a.question_id.as_str()))
            .or_default()
            .insert(a.turn, &a.content);
    }
    let mut out = String::new();
    for model in models {
        for q in &set.questions {
            let Some(turns) = by_key.get(&(model.as_str(), q.id.as_str())) else {
                continue;
            };
            if turns.len() < q.turns.len() {
                continue;
            }
            // MT-bench's ids are numbers; keep them numbers when they were.
            let id =
                q.id.parse::<u64>()
                    .map(|n| json!(n))
                    .unwrap_or_else(|_| json!(q.id));
            let line = json!({
                "question_id": id,
                "answer_id": format!("{}/{}/{model}", set.name, q.id),
                "model_id": model,
                "choices": [{"index": 0, "turns": turns.values().collect::<Vec<_>>()}],
                "tstamp": 0,
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperatures_by_category_and_overrides() {
        let mut t = Temperatures::default();
        assert_eq!(t.of("math"), 0.0);
        assert_eq!(t.of("extraction"), 0.0);
        assert_eq!(t.of("writing"), 0.7);
        t.set("writing=1.0").unwrap();
        assert_eq!(t.of("writing"), 1.0);
        assert_eq!(t.of("math"), 0.0);
        t.set("0.2").unwrap();
        assert_eq!((t.of("math"), t.of("writing")), (0.2, 0.2));
        for bad in ["hot", "math=", "=0.3", "3", "-1", "math=NaN"] {
            let e = t.set(bad).unwrap_err().to_string();
            assert!(e.contains("temperature"), "{bad}: {e}");
        }
    }

    #[test]
    fn answers_read_back_as_mt_bench_jsonl() {
        let set = QuestionSet {
            name: "s".into(),
            questions: vec![
                Question {
                    id: "81".into(),
                    category: "writing".into(),
                    turns: vec!["a".into(), "b".into()],
                    reference: None,
                },
                Question {
                    id: "x2".into(),
                    category: "math".into(),
                    turns: vec!["c".into()],
                    reference: None,
                },
            ],
        };
        let a = |q: &str, turn: i64, content: &str| EvalAnswer {
            question_set: "s".into(),
            question_id: q.into(),
            model: "m".into(),
            turn,
            content: content.into(),
            ..EvalAnswer::default()
        };
        // The second question is complete, the first is missing its second turn.
        let text = mt_bench_jsonl(&set, &[a("81", 1, "one"), a("x2", 1, "two")], &["m".into()]);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["question_id"], "x2");
        assert_eq!(lines[0]["choices"][0]["turns"], json!(["two"]));
        let text = mt_bench_jsonl(&set, &[a("81", 2, "deux"), a("81", 1, "un")], &["m".into()]);
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["question_id"], 81);
        assert_eq!(line["model_id"], "m");
        assert_eq!(line["choices"][0]["turns"], json!(["un", "deux"]));
    }
}
