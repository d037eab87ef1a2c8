//! Tiny random-weight models written to disk, for tests (cargo feature `tiny`, off by default).
//!
//! They are real models in both formats (GGUF with a byte-level BPE or SentencePiece
//! vocabulary in its metadata, and a Hugging Face folder), small enough to load in
//! milliseconds. Weights come from a seeded generator, so every run writes the same files.
//! The GGUF writer lives in [`crate::model::tiny_gguf`], because `arena bench controller`
//! serves one by default; it is re-exported here so tests find every writer in one place.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::error::{Result, WorkerError};
use crate::model::tiny_gguf::Weights;
pub use crate::model::tiny_gguf::{
    bytes_to_unicode, gpt2_special_ids, gpt2_vocab, spm_vocab, write_tiny_gguf, write_tiny_gguf_as,
    VocabKind, CHATML_TEMPLATE, CONTEXT, FFN, HEADS, HIDDEN, KV_HEADS, LAYERS,
};

/// Builds the tiny byte-level tokenizer as a Hugging Face `tokenizer.json` value.
fn hf_tokenizer_json() -> serde_json::Value {
    let (tokens, merges) = gpt2_vocab();
    let vocab: serde_json::Map<String, serde_json::Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), serde_json::Value::from(i)))
        .collect();
    let (start, end) = gpt2_special_ids();
    let added = |id: u32, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [added(start, "<|im_start|>"), added(end, "<|im_end|>")],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": merges}
    })
}

/// Writes a tiny Hugging Face LLaMA folder with weights stored as `dtype` (F32, F16 or BF16).
pub fn write_tiny_hf(dir: &Path, dtype: DType, seed: u64) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let (tokens, _) = gpt2_vocab();
    let vocab = tokens.len();
    let (_, end) = gpt2_special_ids();
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": FFN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "max_position_embeddings": CONTEXT,
        "vocab_size": vocab,
        "tie_word_embeddings": true,
        "eos_token_id": end,
    });
    let write_json = |name: &str, v: &serde_json::Value| -> Result<()> {
        let text =
            serde_json::to_string_pretty(v).map_err(|e| WorkerError::Server(e.to_string()))?;
        std::fs::write(dir.join(name), text)?;
        Ok(())
    };
    write_json("config.json", &config)?;
    write_json("tokenizer.json", &hf_tokenizer_json())?;
    write_json(
        "tokenizer_config.json",
        &serde_json::json!({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "chat_template": CHATML_TEMPLATE}),
    )?;
    write_json(
        "generation_config.json",
        &serde_json::json!({"eos_token_id": end}),
    )?;
    let mut w = Weights {
        rng: StdRng::seed_from_u64(seed),
    };
    let hd = HIDDEN / HEADS;
    let mut map: HashMap<String, Tensor> = HashMap::new();
    map.insert(
        "model.embed_tokens.weight".into(),
        w.tensor(&[vocab, HIDDEN], 1.0)?,
    );
    for i in 0..LAYERS {
        let n = |s: &str| format!("model.layers.{i}.{s}.weight");
        map.insert(n("input_layernorm"), w.norm_of(HIDDEN)?);
        map.insert(n("self_attn.q_proj"), w.tensor(&[HEADS * hd, HIDDEN], 0.3)?);
        map.insert(
            n("self_attn.k_proj"),
            w.tensor(&[KV_HEADS * hd, HIDDEN], 0.3)?,
        );
        map.insert(
            n("self_attn.v_proj"),
            w.tensor(&[KV_HEADS * hd, HIDDEN], 0.3)?,
        );
        map.insert(n("self_attn.o_proj"), w.tensor(&[HIDDEN, HEADS * hd], 0.3)?);
        map.insert(n("post_attention_layernorm"), w.norm_of(HIDDEN)?);
        map.insert(n("mlp.gate_proj"), w.tensor(&[FFN, HIDDEN], 0.3)?);
        map.insert(n("mlp.up_proj"), w.tensor(&[FFN, HIDDEN], 0.3)?);
        map.insert(n("mlp.down_proj"), w.tensor(&[HIDDEN, FFN], 0.3)?);
    }
    map.insert("model.norm.weight".into(), w.norm_of(HIDDEN)?);
    let map = map
        .into_iter()
        .map(|(k, v)| Ok((k, v.to_dtype(dtype)?)))
        .collect::<Result<HashMap<_, _>>>()?;
    candle_core::safetensors::save(&map, dir.join("model.safetensors"))?;
    Ok(())
}
