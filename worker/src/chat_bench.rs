//! `arena bench chat`: time to first token along one multi-turn conversation, with and
//! without the prefix cache. Every turn re-sends the whole conversation, as chat clients and
//! the arena do; without the cache each turn prefills all of it again.

use std::path::Path;
use std::time::Instant;

use candle_core::Device;
use serde::Serialize;

use crate::error::{Result, WorkerError};
use crate::generate::engine::{EngineOptions, Event};
use crate::generate::params::{GenerationParams, RawParams};
use crate::model::loader;
use crate::serve::served::{Input, ServedModel};
use crate::text::template::{Message, Role, Template};

/// The user's turns, each asking for a long answer, in order.
const QUESTIONS: [&str; 12] = [
    "Explain how a bicycle stays upright while it moves.",
    "Now explain it again for a ten-year-old, with an example.",
    "What are the main parts of a bicycle and what does each do?",
    "Describe how to fix a flat tire, step by step.",
    "Compare road bikes, mountain bikes and city bikes.",
    "Write a short story about a long bicycle trip across a country.",
    "Summarize everything we discussed so far in a few paragraphs.",
    "List ten safety tips for cycling in a city, with a reason for each.",
    "How did the bicycle change society in the nineteenth century?",
    "Write a poem about riding a bicycle at dawn.",
    "What should someone pack for a week-long bicycle tour?",
    "Give a final summary of the whole conversation.",
];

/// What to measure.
#[derive(Debug, Clone)]
pub struct ChatBenchOptions {
    /// Turns of the conversation (at most 12).
    pub turns: usize,
    /// Tokens per answer at most (greedy; an answer may stop sooner).
    pub answer_tokens: u32,
    /// The prefix cache's size for the run with it, bytes.
    pub prefix_cache_bytes: usize,
    /// Times the conversation is played, each on fresh workers; a turn's times are the
    /// median over them (at least 1).
    pub repeats: usize,
}

/// One turn, with and without the cache.
#[derive(Debug, Clone, Serialize)]
pub struct TurnTiming {
    /// The turn, from 1.
    pub turn: usize,
    /// Prompt tokens (the whole conversation so far).
    pub prompt_tokens: usize,
    /// Of those, served by the cache.
    pub cached_tokens: usize,
    /// Time to first token with the cache, ms (the median over the repeats).
    pub ttft_ms_cached: f64,
    /// Time to first token without it, ms (the median over the repeats).
    pub ttft_ms_uncached: f64,
    /// Tokens of the answer (the conversation goes on with the cached run's answer).
    pub answer_tokens: usize,
}

/// A run's figures.
#[derive(Debug, Serialize)]
pub struct ChatBenchReport {
    /// The model file.
    pub model: String,
    /// Threads used by the kernels.
    pub threads: usize,
    /// Times the conversation was played.
    pub repeats: usize,
    /// Per turn.
    pub turns: Vec<TurnTiming>,
}

impl ChatBenchReport {
    /// TTFT of the last turn over the first's, with the cache (the target is at most 1.2).
    pub fn last_over_first_cached(&self) -> Option<f64> {
        let (first, last) = (self.turns.first()?, self.turns.last()?);
        Some(last.ttft_ms_cached / first.ttft_ms_cached)
    }

    /// The table for people.
    pub fn table(&self) -> String {
        let mut out = format!(
            "model: {}  threads: {}  repeats: {} (median TTFT)\n",
            self.model, self.threads, self.repeats
        );
        out.push_str("turn  prompt  cached  answer  TTFT cached ms  TTFT uncached ms  speed-up\n");
        for t in &self.turns {
            out.push_str(&format!(
                "{:>4}  {:>6}  {:>6}  {:>6}  {:>14.1}  {:>16.1}  {:>7.2}x\n",
                t.turn,
                t.prompt_tokens,
                t.cached_tokens,
                t.answer_tokens,
                t.ttft_ms_cached,
                t.ttft_ms_uncached,
                t.ttft_ms_uncached / t.ttft_ms_cached
            ));
        }
        if let Some(r) = self.last_over_first_cached() {
            out.push_str(&format!(
                "last turn's TTFT over the first's, with the cache: {r:.2}x\n"
            ));
        }
        out
    }
}

/// One greedy turn: (time to first token in ms, prompt tokens, cached tokens, answer text,
/// answer tokens).
async fn turn(
    model: &ServedModel,
    messages: &[Message],
    answer_tokens: u32,
) -> Result<(f64, usize, usize, String, usize)> {
    let (ids, params) = greedy(model, messages, answer_tokens)?;
    timed(model, ids, params).await
}

/// The prompt ids and parameters of a greedy answer of up to `answer_tokens` to `messages`.
fn greedy(
    model: &ServedModel,
    messages: &[Message],
    answer_tokens: u32,
) -> Result<(Vec<u32>, GenerationParams)> {
    let raw = RawParams {
        temperature: Some(0.0),
        max_new_tokens: Some(answer_tokens),
        ..Default::default()
    };
    model.prepare(&Input::Chat(messages.to_vec()), None, &raw, true)
}

/// Generates from `ids`: what [`turn`] returns.
async fn timed(
    model: &ServedModel,
    ids: Vec<u32>,
    params: GenerationParams,
) -> Result<(f64, usize, usize, String, usize)> {
    let started = Instant::now();
    let mut rx = model.engine().submit(ids, params)?;
    let (mut ttft, mut text, mut n) = (None, String::new(), 0);
    while let Some(event) = rx.recv().await {
        match event {
            Event::Token {
                text: t, token_ids, ..
            } => {
                ttft.get_or_insert_with(|| started.elapsed().as_secs_f64() * 1000.0);
                text.push_str(&t);
                n += token_ids.len();
            }
            Event::Done {
                prompt_tokens,
                cached_tokens,
                ..
            } => {
                let ttft = ttft.unwrap_or_else(|| started.elapsed().as_secs_f64() * 1000.0);
                return Ok((ttft, prompt_tokens, cached_tokens, text, n));
            }
            Event::Error(e) => return Err(WorkerError::Server(e)),
        }
    }
    Err(WorkerError::EngineStopped)
}

fn serve(path: &Path, prefix_cache_bytes: usize) -> Result<std::sync::Arc<ServedModel>> {
    let loaded = loader::load(path, &Device::Cpu)?;
    let name = path.display().to_string();
    let template = Template::select(None, loaded.own_template.clone(), &name)?;
    let engine = EngineOptions {
        max_concurrency: 1,
        prefix_cache_bytes,
    };
    ServedModel::start(loaded, name, template, engine, false)
}

/// Plays the conversation `opts.repeats` times, each on a fresh worker with the cache (so
/// that no repeat starts from another's entries); every turn's prompt is also answered by a
/// worker without it, for the comparison. Both are warmed up first ([`warm_up`]). Greedy
/// answers make every repeat the same conversation; a turn's times are the medians.
pub async fn run(path: &Path, opts: &ChatBenchOptions) -> Result<ChatBenchReport> {
    let turns = opts.turns.clamp(1, QUESTIONS.len());
    let repeats = opts.repeats.max(1);
    let fresh = serve(path, 0)?;
    warm_up(&fresh).await?;
    let mut plays: Vec<Vec<TurnTiming>> = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let cached = serve(path, opts.prefix_cache_bytes)?;
        warm_up(&cached).await?;
        plays.push(play(&cached, &fresh, turns, opts.answer_tokens).await?);
    }
    let mut report = ChatBenchReport {
        model: path.display().to_string(),
        threads: candle_core::utils::get_num_threads(),
        repeats,
        turns: plays[0].clone(),
    };
    for (i, t) in report.turns.iter_mut().enumerate() {
        t.ttft_ms_cached = median(plays.iter().map(|p| p[i].ttft_ms_cached).collect());
        t.ttft_ms_uncached = median(plays.iter().map(|p| p[i].ttft_ms_uncached).collect());
    }
    Ok(report)
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Serves one request as long as the first turn's prompt, so that the first turn is timed on
/// a warm worker as every later one is (a fresh worker's first request also pays for first
/// touches of its memory). Every prompt of the conversation begins with the chat template's
/// first token and this one's differs, so what it leaves in the prefix cache serves none.
async fn warm_up(model: &ServedModel) -> Result<()> {
    let (mut ids, params) = greedy(model, &[Message::new(Role::User, QUESTIONS[0])], 1)?;
    if let Some(id) = ids.first_mut() {
        *id = if *id == 0 { 1 } else { 0 };
    }
    timed(model, ids, params).await.map(|_| ())
}

/// One play of the conversation's first `turns` turns.
async fn play(
    cached: &ServedModel,
    fresh: &ServedModel,
    turns: usize,
    answer_tokens: u32,
) -> Result<Vec<TurnTiming>> {
    let mut messages: Vec<Message> = Vec::new();
    let mut out = Vec::with_capacity(turns);
    for (i, question) in QUESTIONS.iter().take(turns).enumerate() {
        messages.push(Message::new(Role::User, *question));
        let (ttft_cached, prompt, hit, answer, n) = turn(cached, &messages, answer_tokens).await?;
        // The uncached worker only needs its first token: one step is enough.
        let (ttft_uncached, ..) = turn(fresh, &messages, 1).await?;
        out.push(TurnTiming {
            turn: i + 1,
            prompt_tokens: prompt,
            cached_tokens: hit,
            ttft_ms_cached: ttft_cached,
            ttft_ms_uncached: ttft_uncached,
            answer_tokens: n,
        });
        messages.push(Message::new(Role::Assistant, answer));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_is_the_middle_value() {
        assert_eq!(median(vec![5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![7.0]), 7.0);
        assert!(median(Vec::new()).is_nan());
    }
}
