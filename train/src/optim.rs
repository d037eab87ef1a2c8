//! The optimizer side of the recipe: AdamW (candle's), the learning rate's linear warmup and
//! cosine decay, gradients summed over micro-batches, and clipping by their global norm.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

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
    /// The last backward's store, reused to hand the summed gradients to the optimizer.
    store: Option<GradStore>,
}

impl Accumulator {
    /// Nothing summed yet, for `n` weights.
    pub fn new(n: usize) -> Self {
        Self {
            sums: vec![None; n],
            store: None,
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
        self.store = Some(grads);
        Ok(())
    }

    /// Scales the sums by `scale`, clips their global norm to `max_norm` (0: no clipping),
    /// takes one optimizer step and starts over; returns the norm before clipping.
    pub fn step(
        &mut self,
        vars: &[(String, Var)],
        optimizer: &mut AdamW,
        scale: f64,
        max_norm: f64,
    ) -> Result<f64> {
        let Some(mut store) = self.store.take() else {
            return Ok(0.0);
        };
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
                    .to_dtype(candle_core::DType::F64)?
                    .to_scalar::<f64>()?;
            }
            scaled.push(g);
        }
        let norm = sq.sqrt();
        let clip = if max_norm > 0.0 && norm > max_norm {
            max_norm / (norm + 1e-6)
        } else {
            1.0
        };
        for ((_, var), g) in vars.iter().zip(scaled) {
            match g {
                Some(g) => {
                    let g = if clip < 1.0 { (g * clip)? } else { g };
                    store.insert(var.as_tensor(), g);
                }
                None => {
                    store.remove(var.as_tensor());
                }
            }
        }
        optimizer.step(&store)?;
        Ok(norm)
    }
}

/// AdamW over `vars` with the recipe's betas and `weight_decay`.
pub fn adamw(vars: &[(String, Var)], lr: f64, weight_decay: f64) -> Result<AdamW> {
    let params = ParamsAdamW {
        lr,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay,
    };
    Ok(AdamW::new(
        vars.iter().map(|(_, v)| v.clone()).collect(),
        params,
    )?)
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
}
