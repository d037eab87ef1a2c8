//! A model's weights as plain f32 tensors under Hugging Face's names, with its tokenizer and
//! template: what training starts from, whichever format the model came in. GGUF weights are
//! dequantized and their Q and K rows un-permuted (llama.cpp permutes them for its rotary
//! embedding), so every dense model uses Hugging Face's half-split rotary embedding.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::{gguf, hf};
use crate::error::{Result, WorkerError};
use crate::model::config::{LlamaConfig, RopeStyle};
use crate::text::template::Template;
use crate::text::tokenizer::Tokenizer;

/// Weights in f32 under Hugging Face names, and what goes with them.
pub struct DenseModel {
    /// Hyper-parameters (`RopeStyle::HalfSplit`).
    pub cfg: LlamaConfig,
    /// Every weight by Hugging Face name (`model.layers.0.self_attn.q_proj.weight`, ...);
    /// no `lm_head.weight` when `tied`.
    pub tensors: HashMap<String, Tensor>,
    /// The output layer is the embedding's matrix.
    pub tied: bool,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The chat template the files carry, if any.
    pub own_template: Option<Template>,
    /// The architecture as named in the files.
    pub architecture: String,
}

/// The Hugging Face name and shape of every weight of a model, embedding first, output
/// layer last (left out when tied).
pub fn hf_weights(cfg: &LlamaConfig, tied: bool) -> Vec<(String, Vec<usize>)> {
    let (h, hd, ffn) = (cfg.hidden_size, cfg.head_dim, cfg.intermediate_size);
    let mut out = vec![(
        "model.embed_tokens.weight".to_string(),
        vec![cfg.vocab_size, h],
    )];
    for i in 0..cfg.num_layers {
        let n = |s: &str| format!("model.layers.{i}.{s}.weight");
        out.extend([
            (n("input_layernorm"), vec![h]),
            (n("self_attn.q_proj"), vec![cfg.num_heads * hd, h]),
            (n("self_attn.k_proj"), vec![cfg.num_kv_heads * hd, h]),
            (n("self_attn.v_proj"), vec![cfg.num_kv_heads * hd, h]),
            (n("self_attn.o_proj"), vec![h, cfg.num_heads * hd]),
            (n("post_attention_layernorm"), vec![h]),
            (n("mlp.gate_proj"), vec![ffn, h]),
            (n("mlp.up_proj"), vec![ffn, h]),
            (n("mlp.down_proj"), vec![h, ffn]),
        ]);
    }
    out.push(("model.norm.weight".to_string(), vec![h]));
    if !tied {
        out.push(("lm_head.weight".to_string(), vec![cfg.vocab_size, h]));
    }
    out
}

/// llama.cpp's name of a Hugging Face weight.
fn gguf_name(hf: &str) -> String {
    let renamed = [
        ("model.embed_tokens", "token_embd"),
        ("model.norm", "output_norm"),
        ("lm_head", "output"),
        ("model.layers.", "blk."),
        ("input_layernorm", "attn_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("post_attention_layernorm", "ffn_norm"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
    ];
    renamed
        .iter()
        .fold(hf.to_string(), |name, (from, to)| name.replace(from, to))
}

/// Undoes llama.cpp's permutation of a Q or K projection `[heads * head_dim, in]`: it
/// interleaves each head's two halves, `reshape(heads, 2, hd/2, in).swap(1, 2)`.
pub fn unpermute(w: &Tensor, heads: usize, head_dim: usize) -> Result<Tensor> {
    let cols = w.dim(1)?;
    Ok(w.reshape((heads, head_dim / 2, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((heads * head_dim, cols))?)
}

/// Loads a `.gguf` file or a Hugging Face folder as dense f32 weights.
pub fn load_dense(path: &Path, device: &Device) -> Result<DenseModel> {
    if !path.exists() {
        return Err(WorkerError::NotFound(path.to_path_buf()));
    }
    if path.is_dir() {
        let (cfg, tied_flag, architecture) = hf::read_config(path)?;
        let (tokenizer, own_template) = hf::load_tokenizer(path)?;
        let (tensors, tied) = hf::load_f32(path, device, &cfg, tied_flag)?;
        return Ok(DenseModel {
            cfg,
            tensors,
            tied,
            tokenizer,
            own_template,
            architecture,
        });
    }
    let gguf::Header {
        mut file,
        content,
        mut cfg,
        tokenizer,
        own_template,
        arch,
    } = gguf::read_header(path)?;
    let tied = !content.tensor_infos.contains_key("output.weight");
    let mut tensors = HashMap::new();
    for (name, shape) in hf_weights(&cfg, tied) {
        let from = gguf_name(&name);
        let info = content
            .tensor_infos
            .get(&from)
            .ok_or_else(|| WorkerError::MissingTensor(from.clone()))?;
        super::expect_shape(&from, info.shape.dims(), &shape, path)?;
        let mut t = content
            .tensor(&mut file, &from, device)
            .map_err(|e| WorkerError::invalid(path, format!("tensor '{from}': {e}")))?
            .dequantize(device)?
            .to_dtype(DType::F32)?;
        if name.ends_with("q_proj.weight") {
            t = unpermute(&t, cfg.num_heads, cfg.head_dim)?;
        } else if name.ends_with("k_proj.weight") {
            t = unpermute(&t, cfg.num_kv_heads, cfg.head_dim)?;
        }
        tensors.insert(name, t);
    }
    cfg.rope_style = RopeStyle::HalfSplit;
    Ok(DenseModel {
        cfg,
        tensors,
        tied,
        tokenizer,
        own_template,
        architecture: arch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_names_follow_llama_cpp() {
        assert_eq!(gguf_name("model.embed_tokens.weight"), "token_embd.weight");
        assert_eq!(
            gguf_name("model.layers.3.self_attn.q_proj.weight"),
            "blk.3.attn_q.weight"
        );
        assert_eq!(
            gguf_name("model.layers.0.post_attention_layernorm.weight"),
            "blk.0.ffn_norm.weight"
        );
        assert_eq!(gguf_name("model.norm.weight"), "output_norm.weight");
        assert_eq!(gguf_name("lm_head.weight"), "output.weight");
    }

    #[test]
    fn unpermute_inverts_llama_cpps_permutation() -> Result<()> {
        let (heads, hd, cols) = (2, 4, 3);
        let w = Tensor::arange(0f32, (heads * hd * cols) as f32, &Device::Cpu)?
            .reshape((heads * hd, cols))?;
        // convert_hf_to_gguf.py: reshape(heads, 2, hd/2, cols).swapaxes(1, 2).
        let permuted = w
            .reshape((heads, 2, hd / 2, cols))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((heads * hd, cols))?;
        let back = unpermute(&permuted, heads, hd)?;
        assert_eq!(back.to_vec2::<f32>()?, w.to_vec2::<f32>()?);
        Ok(())
    }
}
