//! Hugging Face folders: `config.json`, `tokenizer.json`, `*.safetensors`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use super::{block_shapes, expect_shape, BlockNames, LoadedModel};
use crate::error::{Result, WorkerError};
use crate::model::config::{LlamaConfig, RopeStyle};
use crate::model::embedding::Embedding;
use crate::model::half::{Half, HalfMatrix};
use crate::model::linear::Linear;
use crate::model::llama::{Block, Llama, LlamaWeights};
use crate::text::template::Template;
use crate::text::tokenizer::Tokenizer;

#[derive(Deserialize)]
struct HfConfig {
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    model_type: Option<String>,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    rope_theta: f32,
    #[serde(default)]
    rope_scaling: Option<serde_json::Value>,
    max_position_embeddings: Option<usize>,
    vocab_size: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
}

fn default_eps() -> f64 {
    1e-6
}

fn default_theta() -> f32 {
    10_000.0
}

/// A token in `tokenizer_config.json`: a string or `{"content": ...}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum TokenSpec {
    Text(String),
    Object { content: String },
}

impl TokenSpec {
    fn text(self) -> String {
        match self {
            Self::Text(s) | Self::Object { content: s } => s,
        }
    }
}

/// `chat_template`: one string or a list of named templates.
#[derive(Deserialize)]
#[serde(untagged)]
enum ChatTemplateSpec {
    One(String),
    Named(Vec<NamedTemplate>),
}

#[derive(Deserialize)]
struct NamedTemplate {
    name: String,
    template: String,
}

#[derive(Deserialize, Default)]
struct TokenizerConfig {
    bos_token: Option<TokenSpec>,
    eos_token: Option<TokenSpec>,
    chat_template: Option<ChatTemplateSpec>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdList {
    One(u32),
    Many(Vec<u32>),
}

#[derive(Deserialize, Default)]
struct GenerationConfig {
    eos_token_id: Option<IdList>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| WorkerError::invalid(path, format!("malformed JSON: {e}")))
}

/// A folder's `config.json`: the hyper-parameters, whether the output layer is tied to the
/// embedding, and the architecture's name.
pub(super) fn read_config(dir: &Path) -> Result<(LlamaConfig, bool, String)> {
    let config_path = dir.join("config.json");
    let cfg: HfConfig = read_json(&config_path)?
        .ok_or_else(|| WorkerError::invalid(dir, "config.json is missing"))?;
    let arch = cfg
        .architectures
        .first()
        .cloned()
        .or(cfg.model_type.clone())
        .unwrap_or_else(|| "unknown".into());
    let is_llama = cfg
        .architectures
        .iter()
        .any(|a| a == "LlamaForCausalLM" || a == "MistralForCausalLM")
        || matches!(cfg.model_type.as_deref(), Some("llama" | "mistral"));
    if !is_llama {
        return Err(WorkerError::UnsupportedArchitecture(arch));
    }
    if let Some(scaling) = cfg.rope_scaling.as_ref().filter(|v| !v.is_null()) {
        return Err(WorkerError::invalid(
            &config_path,
            format!("rope_scaling {scaling} is not supported yet"),
        ));
    }
    let heads = cfg.num_attention_heads;
    let llama_cfg = LlamaConfig {
        vocab_size: cfg.vocab_size,
        hidden_size: cfg.hidden_size,
        intermediate_size: cfg.intermediate_size,
        num_layers: cfg.num_hidden_layers,
        num_heads: heads,
        num_kv_heads: cfg.num_key_value_heads.unwrap_or(heads),
        head_dim: cfg
            .head_dim
            .unwrap_or(cfg.hidden_size.checked_div(heads).unwrap_or(0)),
        rms_norm_eps: cfg.rms_norm_eps,
        rope_theta: cfg.rope_theta,
        rope_style: RopeStyle::HalfSplit,
        context_length: cfg.max_position_embeddings.unwrap_or(2048),
    };
    llama_cfg
        .validate()
        .map_err(|r| WorkerError::invalid(&config_path, r))?;
    Ok((llama_cfg, cfg.tie_word_embeddings, arch))
}

/// The folder's `*.safetensors` files, sorted; an error when there are none.
pub(super) fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(WorkerError::invalid(dir, "no *.safetensors weight files"));
    }
    Ok(files)
}

/// Every weight of the folder as f32 under its own name, and whether the output layer is the
/// embedding's (tied in the config and no `lm_head.weight` stored).
pub(super) fn load_f32(
    dir: &Path,
    device: &Device,
    cfg: &LlamaConfig,
    tied: bool,
) -> Result<(std::collections::HashMap<String, Tensor>, bool)> {
    let st = map_weights(dir)?;
    let loader = Weights {
        st: &st,
        device,
        dir,
    };
    let tied = tied && st.get("lm_head.weight").is_err();
    let mut out = std::collections::HashMap::new();
    for (name, shape) in super::dense::hf_weights(cfg, tied) {
        let t = loader.get(&name, &shape)?;
        out.insert(name, t);
    }
    Ok((out, tied))
}

/// The folder's safetensors files, memory-mapped.
// SAFETY: the one unsafe block memory-maps the weight files read-only; arena never writes
// model files while serving.
#[allow(unsafe_code)]
fn map_weights(dir: &Path) -> Result<MmapedSafetensors> {
    let files = weight_files(dir)?;
    // SAFETY: the files are memory-mapped read-only; arena never writes model files while serving.
    unsafe { MmapedSafetensors::multi(&files) }
        .map_err(|e| WorkerError::invalid(dir, format!("unreadable safetensors: {e}")))
}

pub(super) fn load(dir: &Path, device: &Device) -> Result<LoadedModel> {
    let (llama_cfg, tied, arch) = read_config(dir)?;
    let (tokenizer, own_template) = load_tokenizer(dir)?;

    let st = map_weights(dir)?;
    let loader = Weights {
        st: &st,
        device,
        dir,
    };
    let c = &llama_cfg;
    let embed = loader.embedding("model.embed_tokens.weight", &[c.vocab_size, c.hidden_size])?;
    let shapes = block_shapes(c);
    let mut blocks = Vec::with_capacity(c.num_layers);
    for i in 0..c.num_layers {
        let n = |s: &str| format!("model.layers.{i}.{s}.weight");
        let names = BlockNames {
            attn_norm: n("input_layernorm"),
            wq: n("self_attn.q_proj"),
            wk: n("self_attn.k_proj"),
            wv: n("self_attn.v_proj"),
            wo: n("self_attn.o_proj"),
            ffn_norm: n("post_attention_layernorm"),
            gate: n("mlp.gate_proj"),
            up: n("mlp.up_proj"),
            down: n("mlp.down_proj"),
        };
        let lin = |name: &str, (r, k): (usize, usize)| loader.linear(name, &[r, k]);
        blocks.push(Block {
            attn_norm: loader.norm(&names.attn_norm, c)?,
            wq: lin(&names.wq, shapes[0])?,
            wk: lin(&names.wk, shapes[1])?,
            wv: lin(&names.wv, shapes[2])?,
            wo: lin(&names.wo, shapes[3])?,
            ffn_norm: loader.norm(&names.ffn_norm, c)?,
            gate: lin(&names.gate, shapes[4])?,
            up: lin(&names.up, shapes[5])?,
            down: lin(&names.down, shapes[6])?,
        });
    }
    let norm = loader.norm("model.norm.weight", c)?;
    let lm_head = if tied && st.get("lm_head.weight").is_err() {
        match (&embed, embed.tied_head()) {
            (_, Some(head)) => head,
            (Embedding::Dense(t), None) => Linear::from_tensor(t.clone())?,
            (_, None) => {
                loader.linear("model.embed_tokens.weight", &[c.vocab_size, c.hidden_size])?
            }
        }
    } else {
        loader.linear("lm_head.weight", &[c.vocab_size, c.hidden_size])?
    };
    Ok(LoadedModel {
        model: Llama::new(
            llama_cfg,
            LlamaWeights {
                embed,
                blocks,
                norm,
                lm_head,
            },
            device.clone(),
        )?,
        tokenizer,
        own_template,
        format: "safetensors",
        architecture: arch,
    })
}

/// Reads the tokenizer and chat template of a folder (no weights).
pub(super) fn load_tokenizer(dir: &Path) -> Result<(Tokenizer, Option<Template>)> {
    let tok_path = dir.join("tokenizer.json");
    if !tok_path.exists() {
        return Err(WorkerError::MissingTokenizer(format!(
            "{} has no tokenizer.json",
            dir.display()
        )));
    }
    let tcfg: TokenizerConfig = read_json(&dir.join("tokenizer_config.json"))?.unwrap_or_default();
    let gcfg: GenerationConfig =
        read_json(&dir.join("generation_config.json"))?.unwrap_or_default();
    let bos = tcfg.bos_token.map(TokenSpec::text);
    let eos = tcfg.eos_token.map(TokenSpec::text);
    let eos_ids = match gcfg.eos_token_id {
        Some(IdList::One(i)) => vec![i],
        Some(IdList::Many(v)) => v,
        None => Vec::new(),
    };
    let tokenizer = Tokenizer::from_hf_file(&tok_path, bos.as_deref(), eos.as_slice(), &eos_ids)?;
    let own_template = tcfg.chat_template.and_then(|spec| match spec {
        ChatTemplateSpec::One(s) => Some(s),
        ChatTemplateSpec::Named(list) => list
            .into_iter()
            .find(|t| t.name == "default")
            .map(|t| t.template),
    });
    let own_template = own_template.map(|source| Template::Jinja {
        source,
        bos_token: bos.clone().unwrap_or_default(),
        eos_token: eos.clone().unwrap_or_default(),
    });
    Ok((tokenizer, own_template))
}

struct Weights<'a> {
    st: &'a MmapedSafetensors,
    device: &'a Device,
    dir: &'a Path,
}

impl Weights<'_> {
    /// A `[rows, cols]` matrix as 16-bit floats our kernels multiply, if it is stored so and
    /// runs on the CPU (at half the memory of the f32 copy candle would make).
    fn half(&self, name: &str, shape: &[usize]) -> Result<Option<HalfMatrix>> {
        let view = self
            .st
            .get(name)
            .map_err(|_| WorkerError::MissingTensor(name.into()))?;
        let kind = match view.dtype() {
            safetensors::Dtype::F16 => Half::F16,
            safetensors::Dtype::BF16 => Half::Bf16,
            _ => return Ok(None),
        };
        if !self.device.is_cpu() {
            return Ok(None);
        }
        expect_shape(name, view.shape(), shape, self.dir)?;
        HalfMatrix::from_le_bytes(kind, view.data(), shape[0], shape[1])
            .map(Some)
            .ok_or_else(|| {
                WorkerError::invalid(self.dir, format!("tensor '{name}': wrong byte count"))
            })
    }

    /// A linear layer's weight `[out, in]`.
    fn linear(&self, name: &str, shape: &[usize]) -> Result<Linear> {
        match self.half(name, shape)? {
            Some(m) => Ok(Linear::from_half(Arc::new(m))),
            None => Ok(Linear::from_tensor(self.get(name, shape)?)?),
        }
    }

    /// The token embeddings `[vocab, hidden]`.
    fn embedding(&self, name: &str, shape: &[usize]) -> Result<Embedding> {
        match self.half(name, shape)? {
            Some(m) => Ok(Embedding::Half(Arc::new(m))),
            None => Ok(Embedding::Dense(self.get(name, shape)?)),
        }
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let view = self
            .st
            .get(name)
            .map_err(|_| WorkerError::MissingTensor(name.into()))?;
        let dtype = view.dtype();
        use candle_core::safetensors::Load;
        if !matches!(
            dtype,
            safetensors::Dtype::F32 | safetensors::Dtype::F16 | safetensors::Dtype::BF16
        ) {
            return Err(WorkerError::UnsupportedDType {
                name: name.into(),
                dtype: format!("{dtype:?} (supported: F32, F16, BF16)"),
            });
        }
        expect_shape(name, view.shape(), shape, self.dir)?;
        let t = view
            .load(self.device)
            .map_err(|e| WorkerError::invalid(self.dir, format!("tensor '{name}': {e}")))?;
        Ok(t.to_dtype(DType::F32)?)
    }

    fn norm(&self, name: &str, cfg: &LlamaConfig) -> Result<Tensor> {
        self.get(name, &[cfg.hidden_size])
    }
}
