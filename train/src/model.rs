//! The LLaMA forward pass for training: the worker's architecture built only from ops that
//! record a backward pass (`rms_norm_slow`, `rope_slow`, `ops::softmax`, plain matmuls), over
//! one sequence at a time; every weight trainable, or LoRA adapters on frozen projections.

use std::collections::HashMap;

use arena_worker::model::config::LlamaConfig;
use arena_worker::model::llama::rotary_tables;
use arena_worker::model::loader::dense::{hf_weights, DenseModel};
use candle_core::{DType, Device, Tensor, Var};

use crate::error::{Result, TrainError};
use crate::lora::{self, Adapter, FrozenLinear};
use crate::mask::Example;
use crate::ops;

/// How a model is trained.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum Tuning {
    /// Every weight.
    Full,
    /// Low-rank adapters on the projections; everything else frozen.
    Lora {
        /// The adapters' rank.
        rank: usize,
        /// Their scale numerator (scale = alpha / rank).
        alpha: f64,
    },
}

impl Tuning {
    /// LoRA of `rank` (alpha: twice the rank unless given), or every weight for rank 0.
    pub fn from_rank(rank: usize, alpha: Option<f64>) -> Self {
        match rank {
            0 => Self::Full,
            rank => Self::Lora {
                rank,
                alpha: alpha.unwrap_or(2.0 * rank as f64),
            },
        }
    }
}

/// A model whose weights are being trained.
pub struct TrainModel {
    cfg: LlamaConfig,
    /// Every base weight by Hugging Face name; in full fine-tuning these are the `Var`s.
    weights: HashMap<String, Tensor>,
    /// What the optimizer updates, in a fixed order.
    vars: Vec<(String, Var)>,
    /// LoRA's adapters by the name of the weight they adapt.
    adapters: HashMap<String, Adapter>,
    tied: bool,
    cos: Tensor,
    sin: Tensor,
}

impl TrainModel {
    /// The dense model's weights in `dtype` (f32 to train; f64 to check gradients), trained
    /// as `tuning` says; LoRA's `A` matrices are drawn from `seed`.
    pub fn new(dense: &DenseModel, dtype: DType, tuning: Tuning, seed: u64) -> Result<Self> {
        let mut weights = HashMap::new();
        let mut vars = Vec::new();
        let mut adapters = HashMap::new();
        for (i, (name, _)) in hf_weights(&dense.cfg, dense.tied).into_iter().enumerate() {
            let t = dense
                .tensors
                .get(&name)
                .ok_or_else(|| TrainError::Data(format!("the model has no weight '{name}'")))?
                .to_dtype(dtype)?;
            match tuning {
                Tuning::Full => {
                    let var = Var::from_tensor(&t)?;
                    weights.insert(name.clone(), var.as_tensor().clone());
                    vars.push((name, var));
                }
                Tuning::Lora { rank, alpha } => {
                    if lora::TARGETS
                        .iter()
                        .any(|p| name.ends_with(&format!("{p}.weight")))
                    {
                        let (out, inp) = t.dims2()?;
                        let seed = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
                        let adapter = Adapter::new(out, inp, rank, alpha, dtype, seed)?;
                        vars.push((format!("{name}.lora_a"), adapter.a.clone()));
                        vars.push((format!("{name}.lora_b"), adapter.b.clone()));
                        adapters.insert(name.clone(), adapter);
                    }
                    weights.insert(name, t);
                }
            }
        }
        let cfg = dense.cfg.clone();
        let (cos, sin) = rotary_tables(&cfg, &Device::Cpu)?;
        Ok(Self {
            cos: cos.to_dtype(dtype)?,
            sin: sin.to_dtype(dtype)?,
            cfg,
            weights,
            vars,
            adapters,
            tied: dense.tied,
        })
    }

    /// Every weight of the dense model trainable.
    pub fn from_dense(dense: &DenseModel, dtype: DType) -> Result<Self> {
        Self::new(dense, dtype, Tuning::Full, 0)
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    /// Whether the output layer is the embedding.
    pub fn tied(&self) -> bool {
        self.tied
    }

    /// The trainable weights with their names.
    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// Parameters in all.
    pub fn parameters(&self) -> usize {
        self.vars.iter().map(|(_, v)| v.elem_count()).sum()
    }

    fn w(&self, name: &str) -> Result<&Tensor> {
        self.weights
            .get(name)
            .ok_or_else(|| TrainError::Data(format!("no weight '{name}'")))
    }

    /// `x · Wᵀ` for the weight `name`, plus its adapter's update.
    fn linear(&self, x: &Tensor, name: &str) -> Result<Tensor> {
        let w = self.w(name)?;
        let base = if w.is_variable() {
            x.matmul(&w.t()?)?
        } else {
            FrozenLinear::new(w.clone()).forward(x)?
        };
        match self.adapters.get(name) {
            Some(adapter) => Ok((base + adapter.apply(x)?)?),
            None => Ok(base),
        }
    }

    /// Logits `[tokens, vocab]` after each token of `ids`.
    pub fn forward(&self, ids: &[u32]) -> Result<Tensor> {
        let cfg = &self.cfg;
        let t = ids.len();
        if t == 0 || t > cfg.context_length {
            return Err(TrainError::Options(format!(
                "a sequence of {t} tokens (the model takes 1 to {})",
                cfg.context_length
            )));
        }
        let device = self.cos.device();
        let embed = self.w("model.embed_tokens.weight")?;
        let ids_t = Tensor::new(ids, device)?;
        let mut x = embed.index_select(&ids_t, 0)?;
        let eps = cfg.rms_norm_eps as f32;
        let (h, kvh, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let cos = self.cos.narrow(0, 0, t)?;
        let sin = self.sin.narrow(0, 0, t)?;
        for i in 0..cfg.num_layers {
            let n = |s: &str| format!("model.layers.{i}.{s}.weight");
            let a = candle_nn::ops::rms_norm_slow(&x, self.w(&n("input_layernorm"))?, eps)?;
            let heads = |y: Tensor, count: usize| -> Result<Tensor> {
                Ok(y.reshape((t, count, hd))?.transpose(0, 1)?.contiguous()?)
            };
            let rope = |y: Tensor| -> Result<Tensor> {
                Ok(candle_nn::rotary_emb::rope_slow(&y.unsqueeze(0)?, &cos, &sin)?.squeeze(0)?)
            };
            let q = rope(heads(self.linear(&a, &n("self_attn.q_proj"))?, h)?)?;
            let k = rope(heads(self.linear(&a, &n("self_attn.k_proj"))?, kvh)?)?;
            let v = heads(self.linear(&a, &n("self_attn.v_proj"))?, kvh)?;
            // Grouped-query attention: each key/value head serves h / kvh query heads.
            let repeat = |y: Tensor| -> Result<Tensor> {
                Ok(y.unsqueeze(1)?
                    .broadcast_as((kvh, h / kvh, t, hd))?
                    .contiguous()?
                    .reshape((h, t, hd))?)
            };
            let (k, v) = (repeat(k)?, repeat(v)?);
            let probs = ops::causal_softmax(&q.matmul(&k.t()?)?, 1.0 / (hd as f64).sqrt())?;
            let out = probs
                .matmul(&v)?
                .transpose(0, 1)?
                .contiguous()?
                .reshape((t, h * hd))?;
            x = (x + self.linear(&out, &n("self_attn.o_proj"))?)?;
            let a =
                candle_nn::ops::rms_norm_slow(&x, self.w(&n("post_attention_layernorm"))?, eps)?;
            let gate = self.linear(&a, &n("mlp.gate_proj"))?.silu()?;
            let up = self.linear(&a, &n("mlp.up_proj"))?;
            x = (x + self.linear(&(gate * up)?, &n("mlp.down_proj"))?)?;
        }
        let x = candle_nn::ops::rms_norm_slow(&x, self.w("model.norm.weight")?, eps)?;
        let head = if self.tied {
            "model.embed_tokens.weight"
        } else {
            "lm_head.weight"
        };
        self.linear(&x, head)
    }

    /// The summed cross-entropy of predicting each supervised token of `ex` from the tokens
    /// before it, and how many there were (0: nothing to learn from it).
    pub fn loss_sum(&self, ex: &Example) -> Result<(Tensor, usize)> {
        let inputs = &ex.ids[..ex.ids.len().saturating_sub(1).max(1)];
        // Row r of the logits predicts token r + 1.
        let targets: Vec<Option<u32>> = (0..inputs.len())
            .map(|r| {
                let next = r + 1;
                (next < ex.ids.len() && ex.supervised[next]).then(|| ex.ids[next])
            })
            .collect();
        let count = targets.iter().flatten().count();
        let logits = self.forward(inputs)?;
        if count == 0 {
            return Ok((Tensor::zeros((), logits.dtype(), logits.device())?, 0));
        }
        Ok((ops::cross_entropy(&logits, targets)?.sum_all()?, count))
    }

    /// The current weights by Hugging Face name, in f32, with LoRA's updates merged in.
    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        self.weights
            .iter()
            .map(|(n, w)| {
                let w = match self.adapters.get(n) {
                    Some(adapter) => adapter.merge(w)?,
                    None => w.clone(),
                };
                Ok((n.clone(), w.to_dtype(DType::F32)?))
            })
            .collect()
    }
}
