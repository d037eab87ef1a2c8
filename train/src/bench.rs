//! `arena bench train`: training throughput, one sequence of a fixed length per step
//! (forward, loss on every position, backward, AdamW), measured the way
//! `scripts/bench-train-torch.py` measures PyTorch so the two can stand side by side.

use std::path::Path;
use std::time::Instant;

use arena_worker::model::loader::dense::load_dense;
use candle_core::{DType, Device};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::error::{Result, TrainError};
use crate::mask::Example;
use crate::model::{TrainModel, Tuning};
use crate::optim::{Accumulator, AdamW};

/// What to measure.
#[derive(Debug, Clone)]
pub struct TrainBenchOptions {
    /// Tokens per sequence (one sequence per step).
    pub len: usize,
    /// Full fine-tuning or LoRA.
    pub tuning: Tuning,
    /// Untimed steps first.
    pub warmup: usize,
    /// Timed steps.
    pub steps: usize,
    /// Seed of the token ids.
    pub seed: u64,
}

/// What one configuration measured.
#[derive(Debug, Clone, Serialize)]
pub struct TrainBenchReport {
    /// "arena".
    pub implementation: &'static str,
    /// How the weights were trained.
    pub tuning: Tuning,
    /// Tokens per step.
    pub len: usize,
    /// Timed steps.
    pub steps: usize,
    /// Mean seconds per step.
    pub seconds_per_step: f64,
    /// Tokens per second.
    pub tokens_per_s: f64,
    /// Trainable parameters.
    pub parameters: usize,
}

/// Loads the model at `path` (f32) and times `opts.steps` training steps.
pub fn run(path: &Path, opts: &TrainBenchOptions) -> Result<TrainBenchReport> {
    if opts.len < 2 || opts.steps == 0 {
        return Err(TrainError::Options(
            "--len must be at least 2 and --steps at least 1".into(),
        ));
    }
    let dense = load_dense(path, &Device::Cpu)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let vocab = dense.cfg.vocab_size as u32;
    let ids: Vec<u32> = (0..=opts.len).map(|_| rng.random_range(0..vocab)).collect();
    // len + 1 ids: the forward sees `len` tokens and every one of them predicts the next.
    let example = Example {
        supervised: vec![true; ids.len()],
        ids,
    };
    let model = TrainModel::new(&dense, DType::F32, opts.tuning, opts.seed)?;
    drop(dense);
    let mut adam = AdamW::new(model.vars(), 0.0)?;
    let mut acc = Accumulator::new(model.vars().len());
    let mut step = || -> Result<()> {
        let (loss, n) = model.loss_sum(&example)?;
        acc.add(model.vars(), loss.backward()?)?;
        let grads = acc.take(1.0 / n as f64, 1.0);
        adam.step(model.vars(), &grads, 2e-5)
    };
    for _ in 0..opts.warmup {
        step()?;
    }
    let started = Instant::now();
    for _ in 0..opts.steps {
        step()?;
    }
    let seconds_per_step = started.elapsed().as_secs_f64() / opts.steps as f64;
    Ok(TrainBenchReport {
        implementation: "arena",
        tuning: opts.tuning,
        len: opts.len,
        steps: opts.steps,
        seconds_per_step,
        tokens_per_s: opts.len as f64 / seconds_per_step,
        parameters: model.parameters(),
    })
}
