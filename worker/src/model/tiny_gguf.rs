//! A tiny random-weight LLaMA written as GGUF: the model `arena bench controller` serves when
//! given none, and the base of the test models in `crate::tiny` (cargo feature `tiny`).
//!
//! It is a real model (Q8_0 matrices, a byte-level BPE or SentencePiece vocabulary in its
//! metadata), small enough to load in milliseconds. Weights come from a seeded generator, so
//! every run writes the same file.

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::Result;

/// Shape of the tiny model.
pub const HIDDEN: usize = 32;
/// Query heads.
pub const HEADS: usize = 4;
/// Key/value heads.
pub const KV_HEADS: usize = 2;
/// MLP width.
pub const FFN: usize = 64;
/// Blocks.
pub const LAYERS: usize = 2;
/// Context length.
pub const CONTEXT: usize = 256;

/// The ChatML template SmolLM2 carries, minus its default system prompt.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Merges of the tiny byte-level vocabulary (in the GPT-2 byte alphabet).
const GPT2_MERGES: [(&str, &str); 9] = [
    ("h", "e"),
    ("l", "l"),
    ("he", "ll"),
    ("hell", "o"),
    ("Ġ", "w"),
    ("o", "r"),
    ("Ġw", "or"),
    ("l", "d"),
    ("Ġwor", "ld"),
];

/// GPT-2's reversible map from bytes to printable characters.
pub fn bytes_to_unicode() -> Vec<char> {
    let mut printable: Vec<u32> = (u32::from('!')..=u32::from('~')).collect();
    printable.extend(u32::from('¡')..=u32::from('¬'));
    printable.extend(u32::from('®')..=u32::from('ÿ'));
    let mut extra = 0;
    (0u32..256)
        .map(|b| {
            if printable.contains(&b) {
                char::from_u32(b).unwrap_or('?')
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap_or('?')
            }
        })
        .collect()
}

/// The tiny byte-level vocabulary: 256 bytes, the merges' products, then two specials.
pub fn gpt2_vocab() -> (Vec<String>, Vec<String>) {
    let mut tokens: Vec<String> = bytes_to_unicode().into_iter().map(String::from).collect();
    for (a, b) in GPT2_MERGES {
        tokens.push(format!("{a}{b}"));
    }
    tokens.push("<|im_start|>".into());
    tokens.push("<|im_end|>".into());
    let merges = GPT2_MERGES
        .iter()
        .map(|(a, b)| format!("{a} {b}"))
        .collect();
    (tokens, merges)
}

/// Ids of the specials in [`gpt2_vocab`].
pub fn gpt2_special_ids() -> (u32, u32) {
    let n = (256 + GPT2_MERGES.len()) as u32;
    (n, n + 1)
}

/// A tiny SentencePiece vocabulary: `<unk> <s> </s>`, 256 byte tokens, then scored pieces.
pub fn spm_vocab() -> (Vec<String>, Vec<f32>, Vec<i64>) {
    let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let pieces = [
        "▁", "h", "e", "l", "o", "w", "r", "d", "he", "ll", "▁he", "llo", "▁hello", "▁w", "or",
        "▁wor", "ld", "▁world",
    ];
    let mut scores = vec![0.0; tokens.len()];
    for (i, p) in pieces.iter().enumerate() {
        tokens.push(p.to_string());
        types.push(1);
        // Longer pieces score higher so they merge first, as in trained SentencePiece models.
        scores.push(-(100.0 - p.chars().count() as f32 * 10.0) - i as f32 * 0.01);
    }
    (tokens, scores, types)
}

/// Seeded random weights, shared with the Hugging Face writer in `crate::tiny`.
pub(crate) struct Weights {
    pub(crate) rng: StdRng,
}

impl Weights {
    /// Values uniform in `±scale`, of `shape`.
    pub(crate) fn tensor(&mut self, shape: &[usize], scale: f32) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| self.rng.random_range(-scale..scale))
            .collect();
        Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
    }

    /// A norm's `width` weights, near 1.
    pub(crate) fn norm_of(&mut self, width: usize) -> Result<Tensor> {
        let v: Vec<f32> = (0..width)
            .map(|_| self.rng.random_range(0.8..1.2))
            .collect();
        Ok(Tensor::from_vec(v, width, &Device::Cpu)?)
    }
}

/// The vocabulary style of a tiny GGUF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabKind {
    /// Byte-level BPE with merges (`gpt2`, as SmolLM2).
    Gpt2,
    /// SentencePiece with scores (`llama`, as LLaMA 1/2).
    Spm,
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

/// Writes a tiny GGUF LLaMA with quantized (Q8_0) matrices and a vocabulary of `kind`.
pub fn write_tiny_gguf(path: &Path, kind: VocabKind, seed: u64) -> Result<()> {
    write_tiny_gguf_as(path, kind, seed, GgmlDType::Q8_0)
}

/// As [`write_tiny_gguf`], with the block matrices stored as `dtype`: 256 wide (MLP 512)
/// for types whose blocks hold 256 values (the K formats), so that rows are whole blocks.
pub fn write_tiny_gguf_as(path: &Path, kind: VocabKind, seed: u64, dtype: GgmlDType) -> Result<()> {
    let mut w = Weights {
        rng: StdRng::seed_from_u64(seed),
    };
    let (hidden, ffn) = if dtype.block_size() > HIDDEN {
        (8 * HIDDEN, 8 * FFN)
    } else {
        (HIDDEN, FFN)
    };
    let hd = hidden / HEADS;
    let mut md: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String("llama".into())),
        ("general.name".into(), Value::String("tiny".into())),
        ("llama.embedding_length".into(), Value::U32(hidden as u32)),
        ("llama.block_count".into(), Value::U32(LAYERS as u32)),
        ("llama.feed_forward_length".into(), Value::U32(ffn as u32)),
        (
            "llama.attention.head_count".into(),
            Value::U32(HEADS as u32),
        ),
        (
            "llama.attention.head_count_kv".into(),
            Value::U32(KV_HEADS as u32),
        ),
        ("llama.rope.dimension_count".into(), Value::U32(hd as u32)),
        ("llama.rope.freq_base".into(), Value::F32(10_000.0)),
        ("llama.context_length".into(), Value::U32(CONTEXT as u32)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(1e-5),
        ),
    ];
    let vocab_len = match kind {
        VocabKind::Gpt2 => {
            let (tokens, merges) = gpt2_vocab();
            let (start, end) = gpt2_special_ids();
            let mut types = vec![Value::I32(1); tokens.len()];
            types[start as usize] = Value::I32(3);
            types[end as usize] = Value::I32(3);
            md.extend([
                ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
                ("tokenizer.ggml.pre".into(), Value::String("smollm".into())),
                ("tokenizer.ggml.tokens".into(), strings(&tokens)),
                ("tokenizer.ggml.token_type".into(), Value::Array(types)),
                ("tokenizer.ggml.merges".into(), strings(&merges)),
                ("tokenizer.ggml.bos_token_id".into(), Value::U32(start)),
                ("tokenizer.ggml.eos_token_id".into(), Value::U32(end)),
                ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
                (
                    "tokenizer.chat_template".into(),
                    Value::String(CHATML_TEMPLATE.into()),
                ),
            ]);
            tokens.len()
        }
        VocabKind::Spm => {
            let (tokens, scores, types) = spm_vocab();
            md.extend([
                ("tokenizer.ggml.model".into(), Value::String("llama".into())),
                ("tokenizer.ggml.tokens".into(), strings(&tokens)),
                (
                    "tokenizer.ggml.scores".into(),
                    Value::Array(scores.into_iter().map(Value::F32).collect()),
                ),
                (
                    "tokenizer.ggml.token_type".into(),
                    Value::Array(types.into_iter().map(|t| Value::I32(t as i32)).collect()),
                ),
                ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
                ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
                ("tokenizer.ggml.unknown_token_id".into(), Value::U32(0)),
            ]);
            tokens.len()
        }
    };
    let q8 = |t: Tensor| -> Result<QTensor> { Ok(QTensor::quantize(&t, GgmlDType::Q8_0)?) };
    let typed = |t: Tensor| -> Result<QTensor> { Ok(QTensor::quantize(&t, dtype)?) };
    let f32q = |t: Tensor| -> Result<QTensor> { Ok(QTensor::quantize(&t, GgmlDType::F32)?) };
    let mut tensors: Vec<(String, QTensor)> = vec![(
        "token_embd.weight".into(),
        q8(w.tensor(&[vocab_len, hidden], 1.0)?)?,
    )];
    for i in 0..LAYERS {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        tensors.push((n("attn_norm"), f32q(w.norm_of(hidden)?)?));
        tensors.push((n("attn_q"), typed(w.tensor(&[HEADS * hd, hidden], 0.3)?)?));
        tensors.push((
            n("attn_k"),
            typed(w.tensor(&[KV_HEADS * hd, hidden], 0.3)?)?,
        ));
        tensors.push((
            n("attn_v"),
            typed(w.tensor(&[KV_HEADS * hd, hidden], 0.3)?)?,
        ));
        tensors.push((
            n("attn_output"),
            typed(w.tensor(&[hidden, HEADS * hd], 0.3)?)?,
        ));
        tensors.push((n("ffn_norm"), f32q(w.norm_of(hidden)?)?));
        tensors.push((n("ffn_gate"), typed(w.tensor(&[ffn, hidden], 0.3)?)?));
        tensors.push((n("ffn_up"), typed(w.tensor(&[ffn, hidden], 0.3)?)?));
        tensors.push((n("ffn_down"), typed(w.tensor(&[hidden, ffn], 0.3)?)?));
    }
    tensors.push(("output_norm.weight".into(), f32q(w.norm_of(hidden)?)?));
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path)?;
    gguf_file::write(&mut file, &md_refs, &t_refs)?;
    Ok(())
}
