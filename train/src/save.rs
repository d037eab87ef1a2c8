//! Writes a trained model as a Hugging Face folder the worker serves: `config.json`,
//! `model.safetensors` (f32), `tokenizer.json`, `tokenizer_config.json` (with the chat
//! template the model came with) and `generation_config.json`.

use std::collections::HashMap;
use std::path::Path;

use arena_worker::model::config::LlamaConfig;
use arena_worker::text::template::Template;
use arena_worker::text::tokenizer::Tokenizer;
use candle_core::Tensor;
use serde_json::json;

use crate::error::{Result, TrainError};

/// What goes into the folder besides the weights.
pub struct FolderParts<'a> {
    /// Hyper-parameters (half-split rotary embedding, as Hugging Face stores LLaMA).
    pub cfg: &'a LlamaConfig,
    /// The output layer is the embedding.
    pub tied: bool,
    /// The tokenizer.
    pub tokenizer: &'a Tokenizer,
    /// The model's own chat template, if it had one.
    pub template: Option<&'a Template>,
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| TrainError::Data(format!("{}: {e}", path.display())))?;
    std::fs::write(path, text + "\n").map_err(|e| TrainError::io(path, e))
}

/// Writes `tensors` (Hugging Face names) and `parts` to the folder `dir`, creating it; the
/// weights go to a temporary file first, so a folder never holds half a model file.
pub fn write_folder(
    dir: &Path,
    tensors: &HashMap<String, Tensor>,
    parts: &FolderParts,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let c = parts.cfg;
    let tok = parts.tokenizer;
    let token_text = |id: Option<u32>| id.and_then(|i| tok.id_to_token(i));
    write_json(
        &dir.join("config.json"),
        &json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": c.hidden_size,
            "intermediate_size": c.intermediate_size,
            "num_hidden_layers": c.num_layers,
            "num_attention_heads": c.num_heads,
            "num_key_value_heads": c.num_kv_heads,
            "head_dim": c.head_dim,
            "rms_norm_eps": c.rms_norm_eps as f32,
            "rope_theta": c.rope_theta,
            "max_position_embeddings": c.context_length,
            "vocab_size": c.vocab_size,
            "tie_word_embeddings": parts.tied,
            "torch_dtype": "float32",
            "hidden_act": "silu",
            "bos_token_id": tok.bos_id(),
            "eos_token_id": tok.eos_ids().first(),
        }),
    )?;
    let mut tcfg = json!({
        "bos_token": token_text(tok.bos_id()),
        "eos_token": token_text(tok.eos_ids().first().copied()),
    });
    if let Some(Template::Jinja { source, .. }) = parts.template {
        tcfg["chat_template"] = json!(source);
    }
    write_json(&dir.join("tokenizer_config.json"), &tcfg)?;
    write_json(
        &dir.join("generation_config.json"),
        &json!({"eos_token_id": tok.eos_ids()}),
    )?;
    tok.save_hf(&dir.join("tokenizer.json"))?;
    let weights = dir.join("model.safetensors");
    let partial = dir.join("model.safetensors.partial");
    candle_core::safetensors::save(tensors, &partial)?;
    std::fs::rename(&partial, &weights).map_err(|e| TrainError::io(&weights, e))
}
