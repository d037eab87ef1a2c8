//! Loading a model and its tokenizer from a GGUF file or a Hugging Face folder.

pub mod dense;
mod gguf;
mod hf;

use std::path::Path;

use candle_core::Device;

use crate::error::{Result, WorkerError};
use crate::model::config::LlamaConfig;
use crate::model::llama::Llama;
use crate::text::template::Template;
use crate::text::tokenizer::Tokenizer;

/// A model ready to serve: weights, tokenizer and what the files say about templates.
pub struct LoadedModel {
    /// The network.
    pub model: Llama,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// The chat template carried by the files, if any.
    pub own_template: Option<Template>,
    /// "gguf" or "safetensors".
    pub format: &'static str,
    /// The architecture as named in the files.
    pub architecture: String,
}

/// Loads a `.gguf` file or a Hugging Face folder.
pub fn load(path: &Path, device: &Device) -> Result<LoadedModel> {
    if !path.exists() {
        return Err(WorkerError::NotFound(path.to_path_buf()));
    }
    if device.is_cpu() {
        crate::model::alloc::keep_freed_buffers();
    }
    let loaded = if path.is_dir() {
        hf::load(path, device)?
    } else {
        gguf::load(path, device)?
    };
    let (head, blocks) = loaded.model.held_as();
    tracing::info!(path = %path.display(), format = loaded.format, head, blocks, "model loaded");
    Ok(loaded)
}

/// Loads only the tokenizer of a model (for `arena tokenize`).
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    if !path.exists() {
        return Err(WorkerError::NotFound(path.to_path_buf()));
    }
    if path.is_dir() {
        hf::load_tokenizer(path).map(|(t, _)| t)
    } else {
        gguf::load_tokenizer(path)
    }
}

/// The default served name of a model: the file name without `.gguf`, or the folder name.
pub fn default_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    name.strip_suffix(".gguf")
        .map(str::to_string)
        .unwrap_or(name)
}

/// Parses `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(s: &str) -> Result<Device> {
    match s {
        "cpu" => Ok(Device::Cpu),
        _ => {
            let ordinal = match s.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => rest
                    .strip_prefix(':')
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| {
                        WorkerError::Device(format!(
                            "cannot parse device '{s}' (use cpu, cuda or cuda:N)"
                        ))
                    })?,
                None => {
                    return Err(WorkerError::Device(format!(
                        "unknown device '{s}' (use cpu, cuda or cuda:N)"
                    )))
                }
            };
            if !candle_core::utils::cuda_is_available() {
                return Err(WorkerError::Device(
                    "this build has no CUDA support: rebuild with `--features cuda`".into(),
                ));
            }
            Device::new_cuda(ordinal).map_err(|e| {
                WorkerError::Device(format!(
                    "no usable NVIDIA GPU cuda:{ordinal} ({e}); `nvidia-smi -L` lists the GPUs \
                     the driver sees, or run with --device cpu"
                ))
            })
        }
    }
}

/// Checks a weight has the shape the configuration implies.
fn expect_shape(name: &str, actual: &[usize], expected: &[usize], path: &Path) -> Result<()> {
    if actual != expected {
        return Err(WorkerError::invalid(
            path,
            format!("tensor '{name}' has shape {actual:?}, expected {expected:?}"),
        ));
    }
    Ok(())
}

/// Where each weight of block `i` is found, by role.
struct BlockNames {
    attn_norm: String,
    wq: String,
    wk: String,
    wv: String,
    wo: String,
    ffn_norm: String,
    gate: String,
    up: String,
    down: String,
}

/// Expected `[rows, cols]` of each projection of a block.
fn block_shapes(cfg: &LlamaConfig) -> [(usize, usize); 7] {
    let (h, hd) = (cfg.hidden_size, cfg.head_dim);
    [
        (cfg.num_heads * hd, h),
        (cfg.num_kv_heads * hd, h),
        (cfg.num_kv_heads * hd, h),
        (h, cfg.num_heads * hd),
        (cfg.intermediate_size, h),
        (cfg.intermediate_size, h),
        (h, cfg.intermediate_size),
    ]
}
