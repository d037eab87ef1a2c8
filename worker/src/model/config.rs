//! Hyper-parameters of a LLaMA-family model, whatever file format it came from.

/// How rotary embeddings pair the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs (GGUF: llama.cpp permutes Q/K weights at conversion).
    Interleaved,
    /// First half with second half (Hugging Face checkpoints).
    HalfSplit,
}

/// Shapes and constants of the transformer.
#[derive(Debug, Clone)]
pub struct LlamaConfig {
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Transformer blocks.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than query heads).
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RMS norm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary embedding base.
    pub rope_theta: f32,
    /// Pairing used by the rotary embedding.
    pub rope_style: RopeStyle,
    /// Maximum sequence length the model was trained for.
    pub context_length: usize,
}

impl LlamaConfig {
    /// Checks the shapes are consistent, so later tensor ops cannot fail on them.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_heads == 0 || self.num_kv_heads == 0 || self.num_layers == 0 {
            return Err("heads, key/value heads and layers must be positive".into());
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Err(format!(
                "{} heads is not a multiple of {} key/value heads",
                self.num_heads, self.num_kv_heads
            ));
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return Err(format!("head dimension {} must be even", self.head_dim));
        }
        if self.context_length == 0 || self.vocab_size == 0 || self.hidden_size == 0 {
            return Err("context length, vocabulary and hidden size must be positive".into());
        }
        Ok(())
    }
}
