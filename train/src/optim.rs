//! The optimizer side of the recipe: AdamW, the learning rate's linear warmup and
//! cosine decay, gradients summed over micro-batches, and clipping by their global norm.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

use crate::error::Result;

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

/// Gradients summed over the micro-batches of one optimizer step.
pub struct Accumulator {
    sums: Vec<Option<Tensor>>,
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
            if let Some(g) = grads.get(var.as_tensor()) {
                *sum = Some(match sum.take() {
                    Some(s) => (s + g)?,
                    None => g.clone(),
                });
            }
        }
        Ok(())
    }

    /// The sums scaled by `scale` and clipped to the global norm `max_norm` (0: no
    /// clipping), and the norm before clipping; starts over.
    pub fn take(&mut self, scale: f64, max_norm: f64) -> Result<(Vec<Option<Tensor>>, f64)> {
        let mut sq = 0.0;
        let mut scaled = Vec::with_capacity(self.sums.len());
        for sum in self.sums.iter_mut() {
            let g = match sum.take() {
                Some(g) => Some((g * scale)?),
                None => None,
            };
            if let Some(g) = &g {
                sq += g
                    .sqr()?
                    .sum_all()?
                    .to_dtype(DType::F64)?
                    .to_scalar::<f64>()?;
            }
            scaled.push(g);
        }
        let norm = sq.sqrt();
        if max_norm > 0.0 && norm > max_norm {
            let clip = max_norm / (norm + 1e-6);
            for g in scaled.iter_mut().flatten() {
                *g = (&*g * clip)?;
            }
        }
        Ok((scaled, norm))
    }
}

/// AdamW with decoupled weight decay (PyTorch's `AdamW`, betas 0.9 / 0.999, eps 1e-8), its
/// moments kept where a checkpoint can save and restore them (candle's `AdamW` hides them).
pub struct AdamW {
    weight_decay: f64,
    /// Steps taken (for the bias correction).
    pub t: usize,
    /// First moments, one per weight.
    pub m: Vec<Tensor>,
    /// Second moments.
    pub v: Vec<Tensor>,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl AdamW {
    /// Zero moments for `vars`.
    pub fn new(vars: &[(String, Var)], weight_decay: f64) -> Result<Self> {
        let zeros = || -> Result<Vec<Tensor>> {
            vars.iter()
                .map(|(_, v)| Ok(v.as_tensor().zeros_like()?))
                .collect()
        };
        Ok(Self {
            weight_decay,
            t: 0,
            m: zeros()?,
            v: zeros()?,
        })
    }

    /// One update of `vars` with `grads` (None: that weight got no gradient and stays) at the
    /// learning rate `lr`.
    pub fn step(
        &mut self,
        vars: &[(String, Var)],
        grads: &[Option<Tensor>],
        lr: f64,
    ) -> Result<()> {
        self.t += 1;
        let c1 = 1.0 - BETA1.powi(self.t as i32);
        let c2 = 1.0 - BETA2.powi(self.t as i32);
        for (i, ((_, var), g)) in vars.iter().zip(grads).enumerate() {
            let Some(g) = g else { continue };
            let m = ((&self.m[i] * BETA1)? + (g * (1.0 - BETA1))?)?;
            let v = ((&self.v[i] * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + EPS)?)?;
            let w = var.as_tensor();
            let decayed = (w * (1.0 - lr * self.weight_decay))?;
            var.set(&(decayed - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
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
            let g = grads.get(ours[0].1.as_tensor()).unwrap().clone();
            adam.step(&ours, &[Some(g)], 0.1).unwrap();
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
