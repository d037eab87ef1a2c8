//! LoRA: each adapted projection `W` (frozen) gains a trainable low-rank update `s·B·A`
//! (`A`: rank × in, `B`: out × rank, `s = alpha / rank`), merged into `W` on save.
//!
//! The frozen projections go through [`FrozenLinear`], a custom op whose backward returns only
//! the input's gradient `g·W`: candle's matmul backward also computes `xᵀ·g` for the weight
//! even when nothing asks for it, which is most of the cost LoRA is meant to save.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor, Var};
use rand::{Rng, SeedableRng};

use crate::error::Result;

/// The projections LoRA adapts in every layer (attention and MLP, as QLoRA does).
pub const TARGETS: [&str; 7] = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
];

/// One adapter: `x ↦ s · (x·Aᵀ)·Bᵀ`.
pub struct Adapter {
    /// rank × in, Kaiming-uniform at the start (as PEFT does).
    pub a: Var,
    /// out × rank, zero at the start, so training starts from the model as it was.
    pub b: Var,
    /// alpha / rank.
    pub scale: f64,
}

impl Adapter {
    /// A fresh adapter for a weight of shape out × in, its `A` drawn from `seed`.
    pub fn new(
        out: usize,
        inp: usize,
        rank: usize,
        alpha: f64,
        dtype: DType,
        seed: u64,
    ) -> Result<Self> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // kaiming_uniform_(a = √5) on an in-wide layer: bound 1/√in.
        let bound = 1.0 / (inp as f64).sqrt();
        let a: Vec<f64> = (0..rank * inp)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let a = Tensor::from_vec(a, (rank, inp), &candle_core::Device::Cpu)?.to_dtype(dtype)?;
        let b = Tensor::zeros((out, rank), dtype, &candle_core::Device::Cpu)?;
        Ok(Self {
            a: Var::from_tensor(&a)?,
            b: Var::from_tensor(&b)?,
            scale: alpha / rank as f64,
        })
    }

    /// The update's contribution for input rows `x` (tokens × in).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let low = x.matmul(&self.a.as_tensor().t()?)?;
        Ok((low.matmul(&self.b.as_tensor().t()?)? * self.scale)?)
    }

    /// `W + s·B·A`: the weight with the update merged in.
    pub fn merge(&self, w: &Tensor) -> Result<Tensor> {
        let delta = (self.b.as_tensor().matmul(self.a.as_tensor())? * self.scale)?;
        Ok((w + delta.to_dtype(w.dtype())?)?)
    }
}

/// `x·Wᵀ` for a frozen `W` (out × in), with a backward pass for `x` only.
pub struct FrozenLinear {
    w: Tensor,
}

impl FrozenLinear {
    /// The op for the weight `w`.
    pub fn new(w: Tensor) -> Self {
        Self { w }
    }

    /// Applies it to `x` (tokens × in).
    pub fn forward(self, x: &Tensor) -> Result<Tensor> {
        Ok(x.contiguous()?.apply_op1(self)?)
    }
}

impl CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = layout.shape().clone();
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("frozen-linear: input not contiguous".into()))?;
        let device = candle_core::Device::Cpu;
        // The custom-op API hands over raw storage: wrap it back into a tensor (one copy of
        // the input) to reuse candle's matmul.
        let x = match storage {
            CpuStorage::F32(v) => Tensor::from_slice(&v[start..end], dims, &device)?,
            CpuStorage::F64(v) => Tensor::from_slice(&v[start..end], dims, &device)?,
            _ => {
                return Err(candle_core::Error::Msg(
                    "frozen-linear: f32 or f64 only".into(),
                ))
            }
        };
        let y = x.matmul(&self.w.t()?)?;
        let shape = y.shape().clone();
        let flat = y.flatten_all()?;
        let out = match storage {
            CpuStorage::F64(_) => CpuStorage::F64(flat.to_vec1::<f64>()?),
            _ => CpuStorage::F32(flat.to_vec1::<f32>()?),
        };
        Ok((out, shape))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.matmul(&self.w)?))
    }
}
