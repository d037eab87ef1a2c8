//! Fused training ops with their backward passes, row-parallel on every core: the causal
//! attention softmax and the cross-entropy over the vocabulary. Built from candle's ops these
//! take five to seven passes each way over the largest tensors of a step (heads × T × T
//! scores, T × 49,152 logits), each on one core and each allocating a new tensor.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, WithDType};
use num_traits::Float;
use rayon::prelude::*;

use crate::error::Result;

fn msg(text: &str) -> candle_core::Error {
    candle_core::Error::Msg(text.to_string())
}

/// The values of a contiguous CPU tensor as a slice of `T`.
fn values<T: WithDType>(
    t: &Tensor,
    f: impl FnOnce(&[T]) -> candle_core::Result<Tensor>,
) -> candle_core::Result<Tensor> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| msg("not contiguous"))?;
    match &*storage {
        candle_core::Storage::Cpu(cpu) => f(&cpu.as_slice::<T>()?[start..end]),
        _ => Err(msg("CPU tensors only")),
    }
}

/// Runs `$body` with `$v` bound to the storage's f32 or f64 slice.
macro_rules! float_storage {
    ($storage:expr, $layout:expr, |$v:ident| $body:expr) => {{
        let (start, end) = $layout
            .contiguous_offsets()
            .ok_or_else(|| msg("not contiguous"))?;
        match $storage {
            CpuStorage::F32(all) => {
                let $v = &all[start..end];
                $body
            }
            CpuStorage::F64(all) => {
                let $v = &all[start..end];
                $body
            }
            _ => Err(msg("f32 or f64 only")),
        }
    }};
}

/// `softmax(scale · x)` over the last dimension of `[.., T, T]` scores, where row `i` sees
/// only columns `0..=i` (the rest are 0): attention's scale, causal mask and softmax in one.
pub fn causal_softmax(scores: &Tensor, scale: f64) -> Result<Tensor> {
    Ok(scores.contiguous()?.apply_op1(CausalSoftmax { scale })?)
}

struct CausalSoftmax {
    scale: f64,
}

fn causal_rows<T: Float + Send + Sync>(x: &[T], t: usize, scale: f64) -> Vec<T> {
    let scale = T::from(scale).unwrap_or_else(T::one);
    let mut y = vec![T::zero(); x.len()];
    y.par_chunks_mut(t)
        .zip(x.par_chunks(t))
        .enumerate()
        .for_each(|(r, (y, x))| {
            let seen = r % t + 1;
            let max = x[..seen]
                .iter()
                .fold(T::neg_infinity(), |m, &v| m.max(v * scale));
            let mut sum = T::zero();
            for j in 0..seen {
                y[j] = (x[j] * scale - max).exp();
                sum = sum + y[j];
            }
            for v in &mut y[..seen] {
                *v = *v / sum;
            }
        });
    y
}

fn causal_grad<T: Float + Send + Sync>(y: &[T], g: &[T], t: usize, scale: f64) -> Vec<T> {
    let scale = T::from(scale).unwrap_or_else(T::one);
    let mut dx = vec![T::zero(); y.len()];
    dx.par_chunks_mut(t)
        .zip(y.par_chunks(t).zip(g.par_chunks(t)))
        .enumerate()
        .for_each(|(r, (dx, (y, g)))| {
            let seen = r % t + 1;
            let dot = (0..seen).fold(T::zero(), |s, j| s + g[j] * y[j]);
            for j in 0..seen {
                dx[j] = scale * y[j] * (g[j] - dot);
            }
        });
    dx
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = l.dims();
        let t = *dims.last().ok_or_else(|| msg("causal-softmax: a scalar"))?;
        if dims.len() < 2 || dims[dims.len() - 2] != t {
            return Err(msg("causal-softmax: square scores [.., T, T]"));
        }
        let out = float_storage!(s, l, |x| Ok(storage(causal_rows(x, t, self.scale))))?;
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let t = y.dim(candle_core::D::Minus1)?;
        let shape = y.shape().clone();
        let dx = match y.dtype() {
            candle_core::DType::F64 => values::<f64>(y, |y| {
                values::<f64>(g, |g| {
                    Tensor::from_vec(causal_grad(y, g, t, self.scale), shape.clone(), cpu())
                })
            })?,
            _ => values::<f32>(y, |y| {
                values::<f32>(g, |g| {
                    Tensor::from_vec(causal_grad(y, g, t, self.scale), shape.clone(), cpu())
                })
            })?,
        };
        Ok(Some(dx))
    }
}

fn storage<T: WithDType>(v: Vec<T>) -> CpuStorage {
    T::to_cpu_storage_owned(v)
}

fn cpu() -> &'static candle_core::Device {
    &candle_core::Device::Cpu
}

/// The cross-entropy of each row of `logits` `[T, V]` against its target (None: the row
/// counts 0 and gets no gradient): `[T]` losses, `logsumexp(row) - row[target]`.
pub fn cross_entropy(logits: &Tensor, targets: Vec<Option<u32>>) -> Result<Tensor> {
    Ok(logits.contiguous()?.apply_op1(CrossEntropy { targets })?)
}

struct CrossEntropy {
    targets: Vec<Option<u32>>,
}

fn log_sum_exp<T: Float>(row: &[T]) -> T {
    let max = row.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
    max + row.iter().fold(T::zero(), |s, &v| s + (v - max).exp()).ln()
}

impl CrossEntropy {
    fn losses<T: Float + Send + Sync>(&self, x: &[T], v: usize) -> Vec<T> {
        x.par_chunks(v)
            .zip(self.targets.par_iter())
            .map(|(row, target)| match target {
                Some(t) => log_sum_exp(row) - row[*t as usize],
                None => T::zero(),
            })
            .collect()
    }

    fn grads<T: Float + Send + Sync>(&self, x: &[T], g: &[T], v: usize) -> Vec<T> {
        let mut dx = vec![T::zero(); x.len()];
        dx.par_chunks_mut(v)
            .zip(x.par_chunks(v))
            .zip(self.targets.par_iter().zip(g.par_iter()))
            .for_each(|((dx, row), (target, &g))| {
                let Some(t) = target else { return };
                let lse = log_sum_exp(row);
                for (d, &x) in dx.iter_mut().zip(row) {
                    *d = g * (x - lse).exp();
                }
                dx[*t as usize] = dx[*t as usize] - g;
            });
        dx
    }
}

impl CustomOp1 for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross-entropy"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, v) = l.shape().dims2()?;
        if rows != self.targets.len() || self.targets.iter().flatten().any(|&t| t as usize >= v) {
            return Err(msg(
                "cross-entropy: one target per row, inside the vocabulary",
            ));
        }
        let out = float_storage!(s, l, |x| Ok(storage(self.losses(x, v))))?;
        Ok((out, Shape::from(rows)))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (_, v) = x.dims2()?;
        let shape = x.shape().clone();
        let dx = match x.dtype() {
            candle_core::DType::F64 => values::<f64>(x, |x| {
                values::<f64>(g, |g| {
                    Tensor::from_vec(self.grads(x, g, v), shape.clone(), cpu())
                })
            })?,
            _ => values::<f32>(x, |x| {
                values::<f32>(g, |g| {
                    Tensor::from_vec(self.grads(x, g, v), shape.clone(), cpu())
                })
            })?,
        };
        Ok(Some(dx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var, D};

    fn close(a: &Tensor, b: &Tensor) -> f64 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    #[test]
    fn causal_softmax_and_its_gradient_are_candles_masked_softmax() {
        let (h, t) = (3, 5);
        let x = Var::from_tensor(
            &Tensor::randn(0.0, 2.0, (h, t, t), &Device::Cpu)
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap(),
        )
        .unwrap();
        let w = Tensor::randn(0.0, 1.0, (h, t, t), &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap();
        let scale = 0.125;
        let ours = causal_softmax(x.as_tensor(), scale).unwrap();
        let mask: Vec<f64> = (0..t * t)
            .map(|k| {
                if k % t > k / t {
                    f64::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), &Device::Cpu).unwrap();
        let reference = candle_nn::ops::softmax(
            &(x.as_tensor() * scale)
                .unwrap()
                .broadcast_add(&mask)
                .unwrap(),
            D::Minus1,
        )
        .unwrap();
        assert!(close(&ours, &reference) < 1e-12);
        let g1 = (&ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (&reference * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (a, b) = (g1.get(&x).unwrap(), g2.get(&x).unwrap());
        assert!(close(a, b) < 1e-12, "{a} vs {b}");
        assert!(
            close(a, &a.zeros_like().unwrap()) > 1e-3,
            "a gradient at all"
        );
    }

    #[test]
    fn cross_entropy_and_its_gradient_are_candles_log_softmax_and_gather() {
        let logits = Var::from_tensor(
            &Tensor::randn(0.0, 3.0, (4, 7), &Device::Cpu)
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap(),
        )
        .unwrap();
        let targets = vec![Some(2), None, Some(6), Some(0)];
        let ours = cross_entropy(logits.as_tensor(), targets)
            .unwrap()
            .sum_all()
            .unwrap();
        let rows = Tensor::new(&[0u32, 2, 3], &Device::Cpu).unwrap();
        let wanted = Tensor::new(&[[2u32], [6], [0]], &Device::Cpu).unwrap();
        let picked = logits.as_tensor().index_select(&rows, 0).unwrap();
        let reference = candle_nn::ops::log_softmax(&picked, D::Minus1)
            .unwrap()
            .gather(&wanted, 1)
            .unwrap()
            .sum_all()
            .unwrap()
            .neg()
            .unwrap();
        assert!(close(&ours, &reference) < 1e-12);
        let (g1, g2) = (ours.backward().unwrap(), reference.backward().unwrap());
        let (a, b) = (g1.get(&logits).unwrap(), g2.get(&logits).unwrap());
        assert!(close(a, b) < 1e-12, "{a} vs {b}");
        // The row without a target gets nothing.
        assert_eq!(
            a.get(1)
                .unwrap()
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap(),
            0.0
        );
    }
}
