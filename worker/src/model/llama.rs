//! The LLaMA forward pass over a ragged batch of sequences.
//!
//! One step takes any mix of prompt chunks and single decode tokens from several sequences:
//! their rows are stacked so every weight matrix is read once per step, and only attention,
//! which depends on each sequence's own cache, runs per sequence.

use candle_core::{DType, Device, Result, Tensor};

use crate::model::attention;
use crate::model::config::{LlamaConfig, RopeStyle};
use crate::model::elementwise;
use crate::model::embedding::Embedding;
use crate::model::kv_cache::KvCache;
use crate::model::linear::{Linear, GEMM_ROWS};

/// Weights of one transformer block.
#[derive(Debug, Clone)]
pub struct Block {
    /// RMS norm before attention.
    pub attn_norm: Tensor,
    /// Query projection.
    pub wq: Linear,
    /// Key projection.
    pub wk: Linear,
    /// Value projection.
    pub wv: Linear,
    /// Attention output projection.
    pub wo: Linear,
    /// RMS norm before the MLP.
    pub ffn_norm: Tensor,
    /// MLP gate projection.
    pub gate: Linear,
    /// MLP up projection.
    pub up: Linear,
    /// MLP down projection.
    pub down: Linear,
}

/// All weights of a model, in the layout the forward pass uses.
#[derive(Debug, Clone)]
pub struct LlamaWeights {
    /// Token embeddings `[vocab, hidden]`.
    pub embed: Embedding,
    /// Transformer blocks.
    pub blocks: Vec<Block>,
    /// Final RMS norm.
    pub norm: Tensor,
    /// Output projection to logits (the embedding when tied).
    pub lm_head: Linear,
}

/// One sequence's part of a step: the tokens to feed and its cache.
pub struct BatchItem<'a> {
    /// Tokens at positions `cache.len() ..`.
    pub tokens: &'a [u32],
    /// The sequence's cache, extended by this step.
    pub cache: &'a mut KvCache,
}

/// A loaded model ready to run.
#[derive(Debug)]
pub struct Llama {
    cfg: LlamaConfig,
    weights: LlamaWeights,
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

/// The rotary embedding's cos and sin tables, `[context_length, head_dim / 2]` in f32 (the
/// training forward uses the same).
pub fn rotary_tables(cfg: &LlamaConfig, device: &Device) -> Result<(Tensor, Tensor)> {
    let half = cfg.head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / cfg.rope_theta.powf(2.0 * i as f32 / cfg.head_dim as f32))
        .collect();
    let inv_freq = Tensor::from_vec(inv_freq, (1, half), device)?;
    let positions = Tensor::arange(0u32, cfg.context_length as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((cfg.context_length, 1))?;
    let freqs = positions.broadcast_mul(&inv_freq)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

impl Llama {
    /// Builds the model and its rotary tables.
    pub fn new(cfg: LlamaConfig, weights: LlamaWeights, device: Device) -> Result<Self> {
        let (cos, sin) = rotary_tables(&cfg, &device)?;
        Ok(Self {
            cos,
            sin,
            cfg,
            weights,
            device,
        })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// How the weights are held, per layer kind: the output layer's and the first block's
    /// attention query (`"f16"`, `"q4_k (int8 kernels)"`, ...), for logs and tests.
    pub fn held_as(&self) -> (&'static str, &'static str) {
        let wq = self
            .weights
            .blocks
            .first()
            .map_or("none", |b| b.wq.held_as());
        (self.weights.lm_head.held_as(), wq)
    }

    /// Whether the output layer multiplies the embedding's own matrix (tied weights held
    /// once), for tests and logs.
    pub fn head_shares_embedding(&self) -> bool {
        let w = &self.weights;
        w.embed
            .tied_head()
            .is_some_and(|h| h.shares_matrix_with(&w.lm_head))
    }

    /// A fresh cache for one sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.cfg.num_layers, self.cfg.context_length, &self.device)
    }

    /// Runs one step and returns, per item, the logits after its last token.
    pub fn forward(&self, items: &mut [BatchItem<'_>]) -> Result<Vec<Vec<f32>>> {
        // Decode steps are many short, memory-bound products, where waking the pool for each
        // costs most; prefill's long ones lose a little to a core spinning beside them.
        let rows: usize = items.iter().map(|i| i.tokens.len()).sum();
        if rows < GEMM_ROWS {
            super::hot_threads::with_hot_threads(|| self.step(items))
        } else {
            self.step(items)
        }
    }

    /// [`Llama::forward`] with the pool's threads however they are.
    fn step(&self, items: &mut [BatchItem<'_>]) -> Result<Vec<Vec<f32>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // Short segments (decode steps, small chunks) first: their rows take the quantized
        // kernels, the long prompt chunks after them take GEMM (see `Linear::forward`).
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by_key(|&i| items[i].tokens.len() >= GEMM_ROWS);
        let gemm_from: usize = order
            .iter()
            .map(|&i| items[i].tokens.len())
            .filter(|&t| t < GEMM_ROWS)
            .sum();
        let mut all_tokens = Vec::new();
        let mut last_rows = Vec::with_capacity(items.len());
        for item in order.iter().map(|&i| &items[i]) {
            if item.tokens.is_empty() {
                candle_core::bail!("a batch item has no tokens")
            }
            let end = item.cache.len() + item.tokens.len();
            if end > self.cfg.context_length {
                candle_core::bail!(
                    "sequence of {end} tokens exceeds the context length {}",
                    self.cfg.context_length
                )
            }
            all_tokens.extend_from_slice(item.tokens);
            last_rows.push((all_tokens.len() - 1) as u32);
        }
        let last = Tensor::new(last_rows.as_slice(), &self.device)?;
        let mut x = self.weights.embed.lookup(&all_tokens, &self.device)?;
        let eps = self.cfg.rms_norm_eps as f32;
        let layers = self.weights.blocks.len();
        for (layer, block) in self.weights.blocks.iter().enumerate() {
            let h = candle_nn::ops::rms_norm(&x, &block.attn_norm, eps)?;
            let k = block.wk.forward(&h, gemm_from)?;
            let v = block.wv.forward(&h, gemm_from)?;
            // Past the last layer's keys and values only each item's last row is read (its
            // logits), so that layer's queries, attention and feed-forward skip the others:
            // a fifth of a 4-layer 7B-shaped prefill, 4% of a 22-layer one.
            let only_last = layer + 1 == layers && all_tokens.len() > items.len();
            let (q, gemm_from) = if only_last {
                x = x.index_select(&last, 0)?;
                let q = block.wq.forward(&h.index_select(&last, 0)?, usize::MAX)?;
                (q, usize::MAX)
            } else {
                (block.wq.forward(&h, gemm_from)?, gemm_from)
            };
            let mut outs = Vec::with_capacity(items.len());
            let mut row = 0;
            for (n, &i) in order.iter().enumerate() {
                let item = &mut items[i];
                let t = item.tokens.len();
                let q = if only_last {
                    q.narrow(0, n, 1)?
                } else {
                    q.narrow(0, row, t)?
                };
                outs.push(self.attention(
                    layer,
                    &q,
                    &k.narrow(0, row, t)?,
                    &v.narrow(0, row, t)?,
                    item.cache,
                )?);
                row += t;
            }
            let attn = if outs.len() == 1 {
                outs.pop().expect("one output")
            } else {
                Tensor::cat(&outs, 0)?
            };
            x = (x + block.wo.forward(&attn, gemm_from)?)?;
            let h = candle_nn::ops::rms_norm(&x, &block.ffn_norm, eps)?;
            let mlp = elementwise::swiglu(
                &block.gate.forward(&h, gemm_from)?,
                &block.up.forward(&h, gemm_from)?,
            )?;
            x = (x + block.down.forward(&mlp, gemm_from)?)?;
        }
        for item in items.iter_mut() {
            item.cache.commit(item.tokens.len());
        }
        if x.dim(0)? > items.len() {
            x = x.index_select(&last, 0)?;
        }
        let x = candle_nn::ops::rms_norm(&x, &self.weights.norm, eps)?;
        let logits = self.weights.lm_head.forward(&x, usize::MAX)?;
        let rows: Vec<Vec<f32>> = logits.to_dtype(DType::F32)?.to_vec2()?;
        let mut by_item = vec![Vec::new(); items.len()];
        for (&i, row) in order.iter().zip(rows) {
            by_item[i] = row;
        }
        Ok(by_item)
    }

    /// Causal grouped-query attention of `t` new rows of one sequence (keys and values `k`,
    /// `v`), for the queries `q` of the last of them (all `t`, or fewer).
    fn attention(
        &self,
        layer: usize,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (h, kvh, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let n_rep = h / kvh;
        let (t, tq) = (k.dim(0)?, q.dim(0)?);
        if tq > t {
            candle_core::bail!("{tq} queries for {t} new positions")
        }
        let offset = cache.len();
        let rope = |x: &Tensor, heads: usize, from: usize, rows: usize| -> Result<Tensor> {
            let (cos, sin) = (
                self.cos.narrow(0, from, rows)?,
                self.sin.narrow(0, from, rows)?,
            );
            let x = x
                .reshape((1, rows, heads, hd))?
                .transpose(1, 2)?
                .contiguous()?;
            let x = match cfg.rope_style {
                RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(&x, &cos, &sin)?,
                RopeStyle::HalfSplit => candle_nn::rotary_emb::rope(&x, &cos, &sin)?,
            };
            x.reshape((heads, rows, hd))
        };
        let q_from = offset + t - tq;
        let q = rope(q, h, q_from, tq)?;
        let k = rope(k, kvh, offset, t)?;
        let v = v.reshape((t, kvh, hd))?.transpose(0, 1)?.contiguous()?;
        let q = q.reshape((kvh, n_rep, tq, hd))?;
        let out = attention::causal(&q, cache.append(layer, &k, &v)?, q_from)?;
        out.reshape((h, tq, hd))?
            .transpose(0, 1)?
            .reshape((tq, h * hd))
    }
}
