//! `arena train sft`: supervised fine-tuning on conversations, end to end: load the model,
//! render and mask the data, hold some out, train with the recipe's optimizer and schedule,
//! report the held-out loss before and after, and write the folder.

use std::path::PathBuf;
use std::time::Instant;

use arena_worker::model::loader::dense::load_dense;
use arena_worker::text::template::Template;
use candle_core::{DType, Device};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use crate::checkpoint;
use crate::data;
use crate::error::{Result, TrainError};
use crate::mask::{self, Example};
use crate::model::{TrainModel, Tuning};
use crate::optim::{learning_rate, Accumulator, AdamW};
use crate::progress::Progress;
use crate::save::{write_folder, FolderParts};

/// What to train and how (defaults: FastChat's recipe where it has one).
#[derive(Debug, Clone, Serialize)]
pub struct SftOptions {
    /// The model to start from: a `.gguf` file (dequantized) or a Hugging Face folder.
    pub model: PathBuf,
    /// Conversations, ShareGPT JSON lines.
    pub data: PathBuf,
    /// The folder to write.
    pub out: PathBuf,
    /// Passes over the training conversations.
    pub epochs: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW's weight decay.
    pub weight_decay: f64,
    /// Share of the optimizer steps spent warming up.
    pub warmup_ratio: f64,
    /// Sequences per optimizer step (gradient accumulation; one sequence per pass).
    pub grad_accum: usize,
    /// Longest sequence in tokens; longer conversations are cut into pieces.
    pub max_len: usize,
    /// Clip the gradients' global norm to this (0: no clipping).
    pub clip: f64,
    /// Share of the conversations held out to measure the loss on (at least one when there
    /// are two or more).
    pub eval_fraction: f64,
    /// Seed of the split and the shuffles.
    pub seed: u64,
    /// Stop after this many optimizer steps (a short run); None: all epochs.
    pub max_steps: Option<usize>,
    /// A built-in template instead of the model's own (`vicuna_v1.1`, `chatml`, ...).
    pub template: Option<String>,
    /// LoRA's rank (0: train every weight).
    pub lora_rank: usize,
    /// LoRA's alpha (the update is scaled by alpha / rank); None: twice the rank.
    pub lora_alpha: Option<f64>,
    /// Save a checkpoint every this many optimizer steps (0: only when stopping early).
    pub checkpoint_every: usize,
    /// Stop after this many steps of this run, leaving a checkpoint to resume from.
    pub stop_after: Option<usize>,
    /// Discard a checkpoint in the output folder instead of resuming from it.
    pub fresh: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl SftOptions {
    /// The recipe's defaults for `model`, `data` and `out`.
    pub fn new(model: PathBuf, data: PathBuf, out: PathBuf) -> Self {
        Self {
            model,
            data,
            out,
            epochs: 3,
            lr: 2e-5,
            weight_decay: 0.0,
            warmup_ratio: 0.03,
            grad_accum: 8,
            max_len: 512,
            clip: 1.0,
            eval_fraction: 0.05,
            seed: 0,
            max_steps: None,
            template: None,
            lora_rank: 0,
            lora_alpha: None,
            checkpoint_every: 20,
            stop_after: None,
            fresh: false,
            progress: false,
        }
    }

    /// How the weights are trained.
    pub fn tuning(&self) -> Tuning {
        Tuning::from_rank(self.lora_rank, self.lora_alpha)
    }

    /// The settings a checkpoint must share to be resumed, with the data's hash.
    fn fingerprint(&self, data_sha256: &str) -> Result<serde_json::Value> {
        let mut v =
            serde_json::to_value(self).map_err(|e| TrainError::Options(format!("options: {e}")))?;
        if let Some(map) = v.as_object_mut() {
            for transient in ["out", "progress", "stop_after", "fresh", "checkpoint_every"] {
                map.remove(transient);
            }
            map.insert("data_sha256".into(), data_sha256.into());
            map.insert(
                "tuning".into(),
                serde_json::to_value(self.tuning()).unwrap_or_default(),
            );
        }
        Ok(v)
    }

    fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(TrainError::Options(what.to_string()));
        if self.epochs == 0 {
            return bad("--epochs must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr < 1.0) {
            return bad("--lr must be a number between 0 and 1");
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) || !(0.0..0.5).contains(&self.eval_fraction) {
            return bad("--warmup-ratio must be in [0, 1) and --eval-fraction in [0, 0.5)");
        }
        if self.grad_accum == 0 || self.max_len < 8 {
            return bad("--grad-accum must be at least 1 and --max-len at least 8");
        }
        if !(self.weight_decay >= 0.0 && self.clip >= 0.0) {
            return bad("--weight-decay and --clip cannot be negative");
        }
        if self.lora_rank > 1024 || self.lora_alpha.is_some_and(|a| !(a.is_finite() && a > 0.0)) {
            return bad("--lora-rank must be at most 1024 and --lora-alpha a positive number");
        }
        if self.stop_after == Some(0) {
            return bad("--stop-after must be at least 1");
        }
        Ok(())
    }
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct SftReport {
    /// Conversations trained on and held out.
    pub train_conversations: usize,
    /// Conversations held out.
    pub eval_conversations: usize,
    /// Unusable lines of the data file (listed on stderr).
    pub bad_lines: usize,
    /// Training sequences (after cutting at --max-len).
    pub train_sequences: usize,
    /// Optimizer steps done (including those before a resume).
    pub steps: usize,
    /// Optimizer steps the whole run takes.
    pub total_steps: usize,
    /// The step a checkpoint resumed from.
    pub resumed_from: Option<usize>,
    /// Whether training finished and the folder was written (false: stopped by
    /// --stop-after, with a checkpoint to resume from).
    pub finished: bool,
    /// How the weights were trained.
    pub tuning: Tuning,
    /// Tokens fed through the model in training.
    pub train_tokens: usize,
    /// Mean loss per supervised held-out token before and after training (None: nothing held
    /// out).
    pub eval_loss_before: Option<f64>,
    /// After.
    pub eval_loss_after: Option<f64>,
    /// Mean training loss over the last optimizer step.
    pub last_train_loss: f64,
    /// Seconds spent training (not loading, evaluating or saving).
    pub train_seconds: f64,
    /// Trainable parameters.
    pub parameters: usize,
}

/// Mean loss per supervised token over `examples`.
fn mean_loss(model: &TrainModel, examples: &[Example]) -> Result<Option<f64>> {
    let (mut sum, mut n) = (0.0, 0);
    for ex in examples {
        let (loss, count) = model.loss_sum(ex)?;
        sum += loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        n += count;
    }
    Ok((n > 0).then(|| sum / n as f64))
}

/// Runs supervised fine-tuning with `opts`.
pub fn sft(opts: &SftOptions) -> Result<SftReport> {
    opts.check()?;
    let device = Device::Cpu;
    let mut dense = load_dense(&opts.model, &device)?;
    let template = match &opts.template {
        Some(name) => Template::by_name(name)?,
        None => Template::select(
            None,
            dense.own_template.clone(),
            &opts.model.to_string_lossy(),
        )?,
    };
    let dataset = data::read(&opts.data)?;
    for bad in &dataset.bad {
        eprintln!("{}: skipped {bad}", opts.data.display());
    }
    let data_sha256 = dataset.sha256;
    let mut conversations = dataset.conversations;
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    conversations.shuffle(&mut rng);
    let held = if conversations.len() >= 2 {
        ((conversations.len() as f64 * opts.eval_fraction).round() as usize).max(1)
    } else {
        0
    };
    let (eval_convs, train_convs) = conversations.split_at(held);
    let to_examples = |convs: &[data::Conversation]| -> Result<Vec<Example>> {
        let mut out = Vec::new();
        for c in convs {
            out.extend(mask::encode(c, &template, &dense.tokenizer)?.split(opts.max_len));
        }
        Ok(out)
    };
    let eval = to_examples(eval_convs)?;
    let mut train = to_examples(train_convs)?;
    // Sequences with nothing to learn would make empty steps, and steps must map one to one
    // onto batches for a resume to find its place.
    train.retain(|ex| ex.supervised.iter().skip(1).any(|&s| s));
    if train.is_empty() {
        return Err(TrainError::Data(
            "no training sequence has an assistant token to learn".into(),
        ));
    }
    let model = TrainModel::new(&dense, DType::F32, opts.tuning(), opts.seed)?;
    // The model holds its own copy of the weights now.
    dense.tensors.clear();
    let mut adam = AdamW::new(model.vars(), opts.weight_decay)?;
    let fingerprint = opts.fingerprint(&data_sha256)?;
    if opts.fresh {
        checkpoint::remove(&opts.out)?;
    }
    let resumed = checkpoint::load(&opts.out, &fingerprint, model.vars(), &mut adam)?;
    let eval_loss_before = match &resumed {
        Some(state) => state.eval_loss_before,
        None => mean_loss(&model, &eval)?,
    };
    let per_epoch = train.len().div_ceil(opts.grad_accum);
    let total = opts
        .max_steps
        .unwrap_or(usize::MAX)
        .min(per_epoch * opts.epochs);
    let warmup = (total as f64 * opts.warmup_ratio).ceil() as usize;
    let start = resumed.as_ref().map_or(0, |s| s.step.min(total));
    let end = opts
        .stop_after
        .map_or(total, |n| start.saturating_add(n).min(total));
    let (mut tokens, earlier_seconds) = resumed
        .as_ref()
        .map_or((0, 0.0), |s| (s.tokens, s.train_seconds));
    let mut acc = Accumulator::new(model.vars().len());
    let mut progress = Progress::new(opts.progress, start, end);
    let started = Instant::now();
    let mut last_loss = f64::NAN;
    let mut order: Vec<usize> = Vec::new();
    let mut order_epoch = usize::MAX;
    let save = |step: usize, tokens: usize, adam: &AdamW, seconds: f64| {
        let state = checkpoint::State {
            format: checkpoint::FORMAT,
            step,
            tokens,
            train_seconds: seconds,
            eval_loss_before,
            tensors: checkpoint::tensors_file(step),
            fingerprint: fingerprint.clone(),
        };
        checkpoint::save(&opts.out, &state, model.vars(), adam)
    };
    for step in start..end {
        let epoch = step / per_epoch;
        if epoch != order_epoch {
            order = epoch_order(train.len(), opts.seed, epoch);
            order_epoch = epoch;
        }
        let first = (step % per_epoch) * opts.grad_accum;
        let batch = &order[first..(first + opts.grad_accum).min(order.len())];
        let (mut loss_sum, mut count) = (0.0, 0);
        for &i in batch {
            let ex = &train[i];
            let (loss, n) = model.loss_sum(ex)?;
            loss_sum += loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            count += n;
            tokens += ex.ids.len();
            acc.add(model.vars(), loss.backward()?)?;
        }
        last_loss = loss_sum / count.max(1) as f64;
        if !last_loss.is_finite() {
            return Err(TrainError::Diverged {
                step,
                loss: last_loss as f32,
            });
        }
        // Summed losses, averaged per supervised token of the whole step.
        let grads = acc.take(1.0 / count.max(1) as f64, opts.clip);
        adam.step(
            model.vars(),
            &grads,
            learning_rate(opts.lr, step, warmup, total),
        )?;
        let done = step + 1;
        let seconds = earlier_seconds + started.elapsed().as_secs_f64();
        if done < total
            && (done == end || (opts.checkpoint_every > 0 && done % opts.checkpoint_every == 0))
        {
            save(done, tokens, &adam, seconds)?;
        }
        progress.step(done, last_loss, tokens as f64 / seconds.max(1e-9));
    }
    let train_seconds = earlier_seconds + started.elapsed().as_secs_f64();
    progress.finish();
    let finished = end == total;
    let eval_loss_after = if finished {
        write_folder(
            &opts.out,
            &model.tensors()?,
            &FolderParts {
                cfg: model.config(),
                tied: model.tied(),
                tokenizer: &dense.tokenizer,
                template: dense.own_template.as_ref(),
            },
        )?;
        checkpoint::remove(&opts.out)?;
        mean_loss(&model, &eval)?
    } else {
        None
    };
    Ok(SftReport {
        train_conversations: train_convs.len(),
        eval_conversations: eval_convs.len(),
        bad_lines: dataset.bad_total,
        train_sequences: train.len(),
        steps: end,
        total_steps: total,
        resumed_from: resumed.map(|s| s.step),
        finished,
        tuning: opts.tuning(),
        train_tokens: tokens,
        eval_loss_before,
        eval_loss_after,
        last_train_loss: last_loss,
        train_seconds,
        parameters: model.parameters(),
    })
}

/// The order of the training sequences in `epoch`: a shuffle of its own seed, so a resumed
/// run takes them in the order the first one would have.
fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(epoch as u64 + 1),
    );
    order.shuffle(&mut rng);
    order
}
