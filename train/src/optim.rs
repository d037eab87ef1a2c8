//! The optimizer side of the recipe: AdamW, the learning rate's linear warmup and
//! cosine decay, gradients summed over micro-batches, and clipping by their global norm.

use candle_core::backprop::GradStore;
use std::cell::RefCell;

use candle_core::{CpuStorage, InplaceOp1, Layout, Storage, Tensor, Var};
use rayon::prelude::*;

use crate::error::{Result, TrainError};

/// The learning rate at optimizer step `step` (from 0) of `total`: a linear rise over
/// `warmup` steps, then a half cosine down to 0 (Hugging Face's
/// `get_cosine_schedule_with_warmup`, which FastChat's recipe uses).
pub fn learning_rate(peak: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1);
    let progress = ((step - warmup) as f64 / span as f64).min(1.0);
    peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Runs `f` on the values of the f32 CPU tensor `t` (made contiguous first if it is not).
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = if t.is_contiguous() {
        t.clone()
    } else {
        t.contiguous()?
    };
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(v)), Some((start, end))) => Ok(f(&v[start..end])),
        _ => Err(TrainError::Options(
            "the optimizer takes f32 weights on the CPU".into(),
        )),
    }
}

/// Elements per parallel chunk: large enough that a chunk outweighs the scheduling.
const CHUNK: usize = 1 << 14;

/// Gradients summed over the micro-batches of one optimizer step, in place and on every
/// core (adding tensors would allocate a new one per weight and micro-batch, on one core).
pub struct Accumulator {
    sums: Vec<Option<Vec<f32>>>,
}

/// One step's gradients: the sums and the factor (scale, then clipping) to apply to them.
pub struct StepGrads {
    /// Summed gradients per weight (None: that weight got none).
    pub sums: Vec<Option<Vec<f32>>>,
    /// What to multiply them by.
    pub factor: f32,
    /// Their global norm after the scale, before clipping.
    pub norm: f64,
}

impl Accumulator {
    /// Nothing summed yet, for `n` weights.
    pub fn new(n: usize) -> Self {
        Self {
            sums: vec![None; n],
        }
    }

    /// Adds one backward pass's gradients of `vars`.
    pub fn add(&mut self, vars: &[(String, Var)], grads: GradStore) -> Result<()> {
        for (sum, (_, var)) in self.sums.iter_mut().zip(vars) {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            with_f32(g, |g| match sum {
                Some(s) => s
                    .par_chunks_mut(CHUNK)
                    .zip(g.par_chunks(CHUNK))
                    .for_each(|(s, g)| s.iter_mut().zip(g).for_each(|(s, g)| *s += g)),
                None => *sum = Some(g.to_vec()),
            })?;
        }
        Ok(())
    }

    /// The sums, to be scaled by `scale` and clipped to the global norm `max_norm` (0: no
    /// clipping); starts over.
    pub fn take(&mut self, scale: f64, max_norm: f64) -> StepGrads {
        let sums: Vec<Option<Vec<f32>>> = self.sums.iter_mut().map(Option::take).collect();
        let sq: f64 = sums
            .iter()
            .flatten()
            .map(|s| {
                s.par_chunks(CHUNK)
                    .map(|c| c.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>())
                    .sum::<f64>()
            })
            .sum();
        let norm = scale * sq.sqrt();
        let clip = if max_norm > 0.0 && norm > max_norm {
            max_norm / (norm + 1e-6)
        } else {
            1.0
        };
        StepGrads {
            sums,
            factor: (scale * clip) as f32,
            norm,
        }
    }
}

/// AdamW with decoupled weight decay (PyTorch's `AdamW`, betas 0.9 / 0.999, eps 1e-8), one
/// fused pass per weight on every core, its moments kept where a checkpoint can save and
/// restore them (candle's `AdamW` takes a dozen tensor passes per weight and hides them).
pub struct AdamW {
    weight_decay: f64,
    /// Steps taken (for the bias correction).
    pub t: usize,
    /// First moments, one per weight.
    pub m: Vec<Vec<f32>>,
    /// Second moments.
    pub v: Vec<Vec<f32>>,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

impl AdamW {
    /// Zero moments for `vars`.
    pub fn new(vars: &[(String, Var)], weight_decay: f64) -> Result<Self> {
        let zeros: Vec<Vec<f32>> = vars
            .iter()
            .map(|(_, v)| vec![0.0; v.elem_count()])
            .collect();
        Ok(Self {
            weight_decay,
            t: 0,
            m: zeros.clone(),
            v: zeros,
        })
    }

    /// One update of `vars` with `grads` at the learning rate `lr`.
    pub fn step(&mut self, vars: &[(String, Var)], grads: &StepGrads, lr: f64) -> Result<()> {
        self.t += 1;
        let c1 = 1.0 - BETA1.powi(self.t as i32);
        let c2 = 1.0 - BETA2.powi(self.t as i32);
        for (i, (_, var)) in vars.iter().enumerate() {
            let Some(g) = &grads.sums[i] else { continue };
            let update = Update {
                g,
                factor: grads.factor,
                lr: lr as f32,
                decay: (1.0 - lr * self.weight_decay) as f32,
                c1,
                c2,
                m: RefCell::new(&mut self.m[i]),
                v: RefCell::new(&mut self.v[i]),
            };
            var.as_tensor().inplace_op1(&update)?;
        }
        Ok(())
    }
}

/// AdamW's update of one weight, in place.
struct Update<'a> {
    g: &'a [f32],
    factor: f32,
    lr: f32,
    decay: f32,
    c1: f32,
    c2: f32,
    m: RefCell<&'a mut Vec<f32>>,
    v: RefCell<&'a mut Vec<f32>>,
}

impl InplaceOp1 for Update<'_> {
    fn name(&self) -> &'static str {
        "adamw"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let bad = || candle_core::Error::Msg("adamw: a contiguous f32 weight".into());
        let (start, end) = layout.contiguous_offsets().ok_or_else(bad)?;
        let CpuStorage::F32(w) = storage else {
            return Err(bad());
        };
        let w = &mut w[start..end];
        let (mut m, mut v) = (self.m.borrow_mut(), self.v.borrow_mut());
        if w.len() != self.g.len() || m.len() != w.len() {
            return Err(candle_core::Error::Msg("adamw: shapes differ".into()));
        }
        let (f, lr, decay, c1, c2) = (self.factor, self.lr, self.decay, self.c1, self.c2);
        w.par_chunks_mut(CHUNK)
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .zip(self.g.par_chunks(CHUNK))
            .for_each(|(((w, m), v), g)| {
                for i in 0..w.len() {
                    let g = g[i] * f;
                    m[i] = BETA1 * m[i] + (1.0 - BETA1) * g;
                    v[i] = BETA2 * v[i] + (1.0 - BETA2) * g * g;
                    let step = (m[i] / c1) / ((v[i] / c2).sqrt() + EPS);
                    w[i] = w[i] * decay - lr * step;
                }
            });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_rises_then_the_cosine_falls_to_zero() {
        let lr = |s| learning_rate(1.0, s, 10, 110);
        assert!((lr(0) - 0.1).abs() < 1e-12);
        assert!((lr(9) - 1.0).abs() < 1e-12);
        assert!((lr(10) - 1.0).abs() < 1e-12);
        assert!((lr(60) - 0.5).abs() < 1e-12);
        assert!(lr(109) < 0.001 && lr(109) > 0.0);
        assert_eq!(lr(500), 0.0);
        // No warmup: the cosine from the first step.
        assert_eq!(learning_rate(2.0, 0, 0, 4), 2.0);
    }

    #[test]
    fn adamw_takes_the_steps_candles_adamw_takes() {
        use candle_nn::Optimizer;
        let device = candle_core::Device::Cpu;
        let start = Tensor::new(&[[0.5f32, -1.0], [2.0, 0.25]], &device).unwrap();
        let ours = vec![("w".to_string(), Var::from_tensor(&start).unwrap())];
        let theirs = Var::from_tensor(&start).unwrap();
        let params = candle_nn::ParamsAdamW {
            lr: 0.1,
            weight_decay: 0.05,
            ..Default::default()
        };
        let mut reference = candle_nn::AdamW::new(vec![theirs.clone()], params).unwrap();
        let mut adam = AdamW::new(&ours, 0.05).unwrap();
        for _ in 0..5 {
            // A loss with a different gradient at every point: sum(w³).
            let grads = ours[0]
                .1
                .as_tensor()
                .powf(3.0)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let mut acc = Accumulator::new(1);
            acc.add(&ours, grads).unwrap();
            adam.step(&ours, &acc.take(1.0, 0.0), 0.1).unwrap();
            let loss = theirs.as_tensor().powf(3.0).unwrap().sum_all().unwrap();
            reference.backward_step(&loss).unwrap();
        }
        let a = ours[0]
            .1
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let b = theirs
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
        assert_ne!(a, start.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    }
}
