//! `arena bench worker`: prefill and decode throughput of the forward pass, and peak memory.
//!
//! It drives the model directly (no gRPC, no sampling beyond argmax) so the numbers compare
//! with llama.cpp's `llama_decode` on the same token ids; see `scripts/bench-worker.sh`.

use std::path::Path;
use std::time::Instant;

use candle_core::Device;
use serde::Serialize;

use crate::error::Result;
use crate::generate::sampling::argmax;
use crate::model::llama::{BatchItem, Llama};
use crate::model::loader;

/// Text the benchmark prompts are cut from (the same as scripts/bench-llamacpp.py), so every
/// run feeds the same ids.
const PARAGRAPH: &str = "The history of computing is a story of people finding ways to make machines do more of the tedious work of calculation. Early mechanical calculators could add and subtract, and later designs could multiply and divide. In the twentieth century, electronic computers replaced gears with vacuum tubes and then transistors, and programs moved from plugboards into memory. Today a small language model can run on an ordinary laptop, answering questions, summarizing documents and writing code, one token at a time. ";

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Prompt lengths for prefill.
    pub prompt_lens: Vec<usize>,
    /// New tokens per decode measurement.
    pub decode_tokens: usize,
    /// Concurrent sequences for aggregate decode.
    pub concurrency: Vec<usize>,
    /// Repetitions; the best is kept.
    pub repeats: usize,
}

/// One measured figure.
#[derive(Debug, Serialize)]
pub struct Measure {
    /// What was measured.
    pub name: String,
    /// Tokens per second.
    pub tokens_per_s: f64,
}

/// All figures of a run.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// The model file.
    pub model: String,
    /// Threads used by the kernels.
    pub threads: usize,
    /// Throughputs.
    pub measures: Vec<Measure>,
    /// Peak resident memory, MiB (0 where it cannot be read).
    pub peak_rss_mib: f64,
}

/// Token ids of exactly `n` tokens of the fixed paragraph.
pub fn prompt_ids(tok: &crate::text::tokenizer::Tokenizer, n: usize) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    while ids.len() < n {
        ids.extend(tok.encode(PARAGRAPH, false)?);
    }
    ids.truncate(n);
    Ok(ids)
}

fn prefill(model: &Llama, ids: &[u32]) -> Result<(Vec<f32>, crate::model::kv_cache::KvCache)> {
    let mut cache = model.new_cache();
    let mut logits = Vec::new();
    for chunk in ids.chunks(512) {
        logits = model
            .forward(&mut [BatchItem {
                tokens: chunk,
                cache: &mut cache,
            }])?
            .remove(0);
    }
    Ok((logits, cache))
}

/// Greedy decode of `steps` tokens for `n` sequences stepped together; returns tokens/s.
fn decode(model: &Llama, prompts: &[Vec<u32>], steps: usize) -> Result<f64> {
    let mut states = Vec::with_capacity(prompts.len());
    for p in prompts {
        let (logits, cache) = prefill(model, p)?;
        states.push((argmax(&logits), cache));
    }
    let start = Instant::now();
    for _ in 0..steps {
        let next: Vec<u32> = states.iter().map(|(t, _)| *t).collect();
        let mut items: Vec<BatchItem<'_>> = states
            .iter_mut()
            .zip(&next)
            .map(|((_, cache), t)| BatchItem {
                tokens: std::slice::from_ref(t),
                cache,
            })
            .collect();
        let logits = model.forward(&mut items)?;
        for ((t, _), l) in states.iter_mut().zip(logits) {
            *t = argmax(&l);
        }
    }
    Ok((prompts.len() * steps) as f64 / start.elapsed().as_secs_f64())
}

/// The highest of the rates `run` measures in `times` runs (at least one): the best of
/// repeats, as scripts/bench-llamacpp.py keeps for llama.cpp.
fn best_of(times: usize, mut run: impl FnMut() -> Result<f64>) -> Result<f64> {
    let mut best = 0.0f64;
    for _ in 0..times.max(1) {
        best = best.max(run()?);
    }
    Ok(best)
}

/// Runs of a batch of `sequences` kept the best of: `repeats`, but at most two past four
/// sequences, the counts scripts/bench-llamacpp.py uses for llama.cpp's batches.
fn batch_repeats(repeats: usize, sequences: usize) -> usize {
    if sequences > 4 {
        repeats.min(2)
    } else {
        repeats
    }
}

/// Peak resident set size of this process in MiB (VmHWM from /proc/self/status), `None`
/// where there is no such file (outside Linux). The one reader of it: `arena bench worker`
/// reports it here, and the binary adds it to `arena bench leaderboard`'s report.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Loads the model and measures prefill, single-stream and batched decode, on the same
/// thread pool arrangement as the engine.
pub fn run(path: &Path, opts: &BenchOptions) -> Result<BenchReport> {
    crate::generate::engine::compute_pool()?.install(|| measure(path, opts))
}

fn measure(path: &Path, opts: &BenchOptions) -> Result<BenchReport> {
    let loaded = loader::load(path, &Device::Cpu)?;
    let model = &loaded.model;
    let tok = &loaded.tokenizer;
    let mut measures = Vec::new();
    // One untimed pass warms allocators and caches.
    prefill(model, &prompt_ids(tok, 16)?)?;
    for &n in &opts.prompt_lens {
        let ids = prompt_ids(tok, n)?;
        let tokens_per_s = best_of(opts.repeats, || {
            let start = Instant::now();
            prefill(model, &ids)?;
            Ok(n as f64 / start.elapsed().as_secs_f64())
        })?;
        measures.push(Measure {
            name: format!("prefill {n} tokens"),
            tokens_per_s,
        });
    }
    let short = prompt_ids(tok, 16)?;
    let tokens_per_s = best_of(opts.repeats, || {
        decode(model, std::slice::from_ref(&short), opts.decode_tokens)
    })?;
    measures.push(Measure {
        name: format!("decode {} tokens, 1 sequence", opts.decode_tokens),
        tokens_per_s,
    });
    for &c in &opts.concurrency {
        // Distinct prompts so the sequences really differ.
        let prompts: Vec<Vec<u32>> = (0..c)
            .map(|i| prompt_ids(tok, 16 + i).map(|p| p[i..].to_vec()))
            .collect::<Result<_>>()?;
        measures.push(Measure {
            name: format!(
                "decode {} tokens, {c} sequences (aggregate)",
                opts.decode_tokens
            ),
            tokens_per_s: best_of(batch_repeats(opts.repeats, c), || {
                decode(model, &prompts, opts.decode_tokens)
            })?,
        });
    }
    Ok(BenchReport {
        model: path.display().to_string(),
        threads: candle_core::utils::get_num_threads(),
        measures,
        peak_rss_mib: peak_rss_mib().unwrap_or(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WorkerError;

    #[test]
    fn best_of_keeps_the_highest_rate_of_every_run() {
        let rates = [3.0, 7.5, 5.0];
        let mut runs = 0;
        let best = best_of(3, || {
            runs += 1;
            Ok(rates[runs - 1])
        })
        .expect("no run fails");
        assert_eq!((best, runs), (7.5, 3));
        let mut runs = 0;
        best_of(0, || {
            runs += 1;
            Ok(1.0)
        })
        .expect("no run fails");
        assert_eq!(runs, 1, "zero repeats still measures once");
    }

    #[test]
    fn best_of_stops_at_a_failed_run() {
        let mut runs = 0;
        let err = best_of(3, || {
            runs += 1;
            Err(WorkerError::Tokenizer("broken".into()))
        });
        assert!(err.is_err());
        assert_eq!(runs, 1);
    }

    #[test]
    fn batches_repeat_as_the_llamacpp_side_does() {
        // scripts/bench-llamacpp.py: best of 3 for 1 and 4 sequences, best of 2 for 8.
        assert_eq!(batch_repeats(3, 4), 3);
        assert_eq!(batch_repeats(3, 8), 2);
        assert_eq!(batch_repeats(1, 8), 1);
    }
}
