//! The generation engine: one thread owns the model and steps all running sequences together.
//!
//! Requests arrive through a channel and wait in a FIFO queue until one of the
//! `max_concurrency` running slots frees up. Each step feeds every running sequence at once
//! (a prompt chunk or its last sampled token) through one batched forward pass, then samples,
//! decodes and streams each sequence's next token. A sequence whose receiver is gone (the
//! client disconnected) is dropped at the next step.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};

use tokio::sync::mpsc;

use crate::error::{Result, WorkerError};
use crate::generate::logprobs::{Alternative, Report, TokenBytes};
use crate::generate::params::GenerationParams;
use crate::generate::prefix_cache::PrefixCache;
use crate::generate::sampling::Sampler;
use crate::model::kv_cache::KvCache;
use crate::model::llama::{BatchItem, Llama};
use crate::text::stop::{StopMatcher, StopOutcome};
use crate::text::tokenizer::{StreamDecoder, Tokenizer};

/// Prompt tokens one sequence feeds per step, so a long prompt cannot stall the others.
const PREFILL_CHUNK: usize = 512;

/// Why a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// EOS, a stop token id or a stop string.
    Stop,
    /// `max_new_tokens` reached.
    Length,
}

/// What the engine streams back for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// New text (possibly empty while a character or stop string is incomplete).
    Token {
        /// Text to append.
        text: String,
        /// Sampled ids, when requested.
        token_ids: Vec<u32>,
        /// Their log-probabilities, when requested.
        logprobs: Vec<f32>,
        /// Their bytes, when requested.
        token_bytes: Vec<Vec<u8>>,
        /// The most likely tokens at each of their steps, when alternatives were requested.
        top_logprobs: Vec<Vec<Alternative>>,
    },
    /// The last event of a successful generation.
    Done {
        /// Why it ended.
        finish: Finish,
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// Tokens generated.
        completion_tokens: usize,
        /// Prompt tokens whose KV came from the prefix cache instead of being prefilled.
        cached_tokens: usize,
    },
    /// The last event of a failed generation.
    Error(String),
}

/// Load counters shared with the server (heartbeats, `Info`).
#[derive(Debug, Default)]
pub struct EngineStats {
    waiting: AtomicUsize,
    running: AtomicUsize,
    prefix_hits: AtomicUsize,
    prefix_tokens: AtomicUsize,
}

impl EngineStats {
    /// Requests waiting for a running slot.
    pub fn queue_length(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Requests generating now.
    pub fn in_flight(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Requests that started from the prefix cache, and the prompt tokens it saved them.
    pub fn prefix_cache(&self) -> (usize, usize) {
        (
            self.prefix_hits.load(Ordering::Relaxed),
            self.prefix_tokens.load(Ordering::Relaxed),
        )
    }
}

/// How the engine runs.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Sequences generated at once; more wait in a queue.
    pub max_concurrency: usize,
    /// Bytes of finished sequences' KV kept for the next turn (0: no prefix cache).
    pub prefix_cache_bytes: usize,
}

impl Default for EngineOptions {
    /// Eight sequences, no prefix cache.
    fn default() -> Self {
        Self {
            max_concurrency: 8,
            prefix_cache_bytes: 0,
        }
    }
}

struct Submission {
    prompt: Vec<u32>,
    params: GenerationParams,
    events: mpsc::UnboundedSender<Event>,
}

/// A cheap, cloneable handle to submit work to the engine thread.
#[derive(Clone)]
pub struct EngineHandle {
    tx: std_mpsc::Sender<Submission>,
    stats: Arc<EngineStats>,
    max_concurrency: usize,
}

impl EngineHandle {
    /// Queues a generation; events arrive on the returned receiver. Dropping the receiver
    /// cancels the generation.
    pub fn submit(
        &self,
        prompt: Vec<u32>,
        params: GenerationParams,
    ) -> Result<mpsc::UnboundedReceiver<Event>> {
        let (events, rx) = mpsc::unbounded_channel();
        self.stats.waiting.fetch_add(1, Ordering::Relaxed);
        if self
            .tx
            .send(Submission {
                prompt,
                params,
                events,
            })
            .is_err()
        {
            self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(WorkerError::EngineStopped);
        }
        Ok(rx)
    }

    /// Load counters.
    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.stats
    }

    /// The bound on running sequences.
    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency
    }
}

/// Fixes the compute thread count in `RAYON_NUM_THREADS`, which candle, gemm and our pool read.
///
/// Call it before any other thread starts (`std::env::set_var` is not thread-safe). Without
/// the variable candle works the count out again on every f32 matmul by parsing
/// `/proc/cpuinfo`, which took most of a busy worker's time.
pub fn fix_thread_count(threads: Option<usize>) {
    let n = threads.map_or_else(candle_core::utils::get_num_threads, |n| n.max(1));
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
}

/// The thread pool model code runs in.
///
/// The step loop itself runs on one of its workers, so the parallel kernels it calls share
/// the cores with it instead of waking a second set of threads (on two cores, the spinning
/// of idle pool threads against the engine thread cost a third of decode time).
pub fn compute_pool() -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(candle_core::utils::get_num_threads())
        .thread_name(|i| format!("arena-compute-{i}"))
        .build()
        .map_err(|e| WorkerError::Server(format!("starting the compute threads: {e}")))
}

/// Starts the engine thread; it stops when every handle is dropped.
pub fn spawn(model: Llama, tokenizer: Arc<Tokenizer>, opts: EngineOptions) -> Result<EngineHandle> {
    let (tx, rx) = std_mpsc::channel();
    let stats = Arc::new(EngineStats::default());
    let max_concurrency = opts.max_concurrency.max(1);
    let engine = Engine {
        model,
        pieces: TokenBytes::new(&tokenizer),
        tokenizer,
        rx,
        stats: stats.clone(),
        max_concurrency,
        waiting: VecDeque::new(),
        running: Vec::new(),
        prefix: (opts.prefix_cache_bytes > 0).then(|| PrefixCache::new(opts.prefix_cache_bytes)),
    };
    let pool = compute_pool()?;
    std::thread::Builder::new()
        .name("arena-engine".into())
        .spawn(move || pool.install(|| engine.run()))?;
    Ok(EngineHandle {
        tx,
        stats,
        max_concurrency,
    })
}

struct Sequence {
    prompt: Vec<u32>,
    fed: usize,
    cached: usize,
    next_input: Option<u32>,
    generated: Vec<u32>,
    cache: KvCache,
    sampler: Sampler,
    decoder: StreamDecoder,
    stop: StopMatcher,
    params: GenerationParams,
    events: mpsc::UnboundedSender<Event>,
}

struct Engine {
    model: Llama,
    tokenizer: Arc<Tokenizer>,
    pieces: TokenBytes,
    rx: std_mpsc::Receiver<Submission>,
    stats: Arc<EngineStats>,
    max_concurrency: usize,
    waiting: VecDeque<Submission>,
    running: Vec<Sequence>,
    prefix: Option<PrefixCache>,
}

impl Engine {
    fn run(mut self) {
        loop {
            if self.running.is_empty() && self.waiting.is_empty() {
                match self.rx.recv() {
                    Ok(s) => self.waiting.push_back(s),
                    Err(_) => return,
                }
            }
            while let Ok(s) = self.rx.try_recv() {
                self.waiting.push_back(s);
            }
            self.admit();
            if !self.running.is_empty() {
                self.step();
            }
        }
    }

    fn admit(&mut self) {
        let before = self.waiting.len();
        self.waiting.retain(|s| !s.events.is_closed());
        let mut left = before - self.waiting.len();
        let before_running = self.running.len();
        self.running.retain(|s| !s.events.is_closed());
        let cancelled = before_running - self.running.len();
        while self.running.len() < self.max_concurrency {
            let Some(s) = self.waiting.pop_front() else {
                break;
            };
            left += 1;
            self.stats.running.fetch_add(1, Ordering::Relaxed);
            let scope = &s.params.cache_scope;
            let reused = self.prefix.as_mut().and_then(|p| p.take(&s.prompt, scope));
            if let Some((_, n)) = &reused {
                self.stats.prefix_hits.fetch_add(1, Ordering::Relaxed);
                self.stats.prefix_tokens.fetch_add(*n, Ordering::Relaxed);
            }
            let (cache, cached) = reused.unwrap_or_else(|| (self.model.new_cache(), 0));
            self.running.push(Sequence {
                cache,
                sampler: Sampler::new(s.params.sampling.clone()),
                decoder: StreamDecoder::default(),
                stop: StopMatcher::new(s.params.stop.iter().cloned()),
                prompt: s.prompt,
                fed: cached,
                cached,
                next_input: None,
                generated: Vec::new(),
                params: s.params,
                events: s.events,
            });
        }
        self.stats.waiting.fetch_sub(left, Ordering::Relaxed);
        self.stats.running.fetch_sub(cancelled, Ordering::Relaxed);
        if cancelled > 0 {
            tracing::debug!(cancelled, "dropped sequences whose client disconnected");
        }
    }

    fn step(&mut self) {
        let mut fed = Vec::with_capacity(self.running.len());
        let result = {
            let mut items: Vec<BatchItem<'_>> = self
                .running
                .iter_mut()
                .map(|s| {
                    let tokens: &[u32] = match s.next_input {
                        Some(ref t) => std::slice::from_ref(t),
                        None => &s.prompt[s.fed..(s.fed + PREFILL_CHUNK).min(s.prompt.len())],
                    };
                    BatchItem {
                        tokens,
                        cache: &mut s.cache,
                    }
                })
                .collect();
            fed.extend(items.iter().map(|i| i.tokens.len()));
            self.model.forward(&mut items)
        };
        let logits = match result {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "forward pass failed; ending the batch's sequences");
                for s in self.running.drain(..) {
                    let _ = s
                        .events
                        .send(Event::Error(format!("inference failed: {e}")));
                }
                self.stats.running.store(0, Ordering::Relaxed);
                return;
            }
        };
        let mut finished = Vec::new();
        for (i, (seq, mut logits)) in self.running.iter_mut().zip(logits).enumerate() {
            if seq.next_input.is_none() {
                seq.fed += fed[i];
                if seq.fed < seq.prompt.len() {
                    continue;
                }
            }
            if let Some(done) = advance(seq, &self.tokenizer, &self.pieces, &mut logits) {
                let _ = seq.events.send(done);
                finished.push(i);
            }
        }
        for i in finished.into_iter().rev() {
            let seq = self.running.swap_remove(i);
            self.stats.running.fetch_sub(1, Ordering::Relaxed);
            if let Some(prefix) = &mut self.prefix {
                // Its KV holds the prompt and every generated token but the last (never fed).
                let mut tokens = seq.prompt;
                tokens.extend(seq.generated);
                prefix.put(tokens, seq.cache, seq.params.cache_scope);
            }
        }
    }
}

/// Samples one token for `seq`, streams its text, and returns the final event if it ended.
fn advance(
    seq: &mut Sequence,
    tok: &Tokenizer,
    pieces: &TokenBytes,
    logits: &mut [f32],
) -> Option<Event> {
    let history: Vec<u32> = if seq.params.sampling.repetition_penalty != 1.0 {
        seq.prompt.iter().chain(&seq.generated).copied().collect()
    } else {
        Vec::new()
    };
    // The sampler changes the logits in place (penalty, temperature): keep the model's own
    // for the report, only when one was asked for.
    let raw = seq.params.return_tokens.then(|| logits.to_vec());
    let id = seq.sampler.sample(logits, &history);
    seq.generated.push(id);
    seq.next_input = Some(id);
    let is_stop_token = tok.eos_ids().contains(&id) || seq.params.stop_token_ids.contains(&id);
    // A stop token is not part of the text, so it is not reported either.
    let reported = match raw {
        Some(raw) if !is_stop_token => Report::of(&raw, id, seq.params.top_logprobs, tok, pieces),
        _ => Report::default(),
    };
    let mut text = String::new();
    let mut finish = None;
    let mut stopped_by_string = false;
    if is_stop_token {
        finish = Some(Finish::Stop);
    } else {
        match seq.decoder.push(tok, id) {
            Ok(Some(delta)) => match seq.stop.push(&delta) {
                StopOutcome::Continue(t) => text = t,
                StopOutcome::Stopped(t) => {
                    text = t;
                    finish = Some(Finish::Stop);
                    stopped_by_string = true;
                }
            },
            Ok(None) => {}
            Err(e) => return Some(Event::Error(e.to_string())),
        }
        if finish.is_none() && seq.generated.len() >= seq.params.max_new_tokens {
            finish = Some(Finish::Length);
        }
    }
    if finish.is_some() && !stopped_by_string {
        // Ending without a stop string: release held-back bytes and partial stop prefixes.
        match seq.decoder.flush(tok) {
            Ok(rest) => match seq.stop.push(&rest) {
                StopOutcome::Continue(t) => {
                    text.push_str(&t);
                    text.push_str(&seq.stop.finish());
                }
                StopOutcome::Stopped(t) => text.push_str(&t),
            },
            Err(e) => return Some(Event::Error(e.to_string())),
        }
    }
    if !text.is_empty() || !reported.token_ids.is_empty() {
        let _ = seq.events.send(Event::Token {
            text,
            token_ids: reported.token_ids,
            logprobs: reported.logprobs,
            token_bytes: reported.token_bytes,
            top_logprobs: reported.top_logprobs,
        });
    }
    finish.map(|finish| Event::Done {
        finish,
        prompt_tokens: seq.prompt.len(),
        completion_tokens: seq.generated.len(),
        cached_tokens: seq.cached,
    })
}
