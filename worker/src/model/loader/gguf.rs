//! GGUF files (llama.cpp's format): quantized weights plus tokenizer metadata.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::QTensor;
use candle_core::Device;

use super::{block_shapes, expect_shape, BlockNames, LoadedModel};
use crate::error::{Result, WorkerError};
use crate::model::aligned::AlignedVec;
use crate::model::config::{LlamaConfig, RopeStyle};
use crate::model::embedding::Embedding;
use crate::model::half::HalfMatrix;
use crate::model::linear::{half_kind, host_matrix, host_type, HostMatrix, Linear};
use crate::model::llama::{Block, Llama, LlamaWeights};
use crate::text::template::Template;
use crate::text::tokenizer::{GgufVocab, Tokenizer};

/// Architectures whose GGUF tensors follow llama.cpp's `llama` layout.
const LLAMA_ARCHS: [&str; 2] = ["llama", "mistral"];

fn as_u64(v: &Value) -> Option<u64> {
    match *v {
        Value::U8(x) => Some(x.into()),
        Value::U16(x) => Some(x.into()),
        Value::U32(x) => Some(x.into()),
        Value::U64(x) => Some(x),
        Value::I8(x) => u64::try_from(x).ok(),
        Value::I16(x) => u64::try_from(x).ok(),
        Value::I32(x) => u64::try_from(x).ok(),
        Value::I64(x) => u64::try_from(x).ok(),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match *v {
        Value::F32(x) => Some(x.into()),
        Value::F64(x) => Some(x),
        _ => as_u64(v).map(|x| x as f64),
    }
}

struct Meta<'a> {
    md: &'a HashMap<String, Value>,
    path: &'a Path,
}

impl Meta<'_> {
    fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?.ok_or_else(|| {
            WorkerError::invalid(self.path, format!("metadata key '{key}' is missing"))
        })
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.md.get(key) {
            None => Ok(None),
            Some(v) => as_u64(v).map(|x| Some(x as usize)).ok_or_else(|| {
                WorkerError::invalid(self.path, format!("metadata key '{key}' is not an integer"))
            }),
        }
    }

    fn opt_f64(&self, key: &str) -> Option<f64> {
        self.md.get(key).and_then(as_f64)
    }

    fn opt_str(&self, key: &str) -> Option<String> {
        self.md.get(key).and_then(|v| v.to_string().ok().cloned())
    }

    fn opt_u32(&self, key: &str) -> Option<u32> {
        self.md.get(key).and_then(as_u64).map(|x| x as u32)
    }

    fn array(&self, key: &str) -> Option<&Vec<Value>> {
        self.md.get(key).and_then(|v| v.to_vec().ok())
    }
}

fn read_error(path: &Path, e: candle_core::Error) -> WorkerError {
    let msg = e.to_string();
    if let Some(ty) = msg.strip_prefix("unknown dtype for tensor ") {
        return WorkerError::UnsupportedDType {
            name: "(tensor table)".into(),
            dtype: format!("ggml type id {ty}, unknown to this build"),
        };
    }
    if msg.contains("unknown magic") {
        return WorkerError::invalid(path, "not a GGUF file (bad magic number)");
    }
    if msg.contains("failed to fill whole buffer") || msg.contains("UnexpectedEof") {
        return WorkerError::invalid(path, "the file is truncated (unexpected end of file)");
    }
    WorkerError::invalid(path, format!("corrupt GGUF file: {msg}"))
}

/// What a GGUF file says before its weights: the open file, its tensor table, the model's
/// hyper-parameters and its tokenizer.
pub(super) struct Header {
    /// The file, for reading tensors.
    pub file: File,
    /// Metadata and tensor table.
    pub content: Content,
    /// Hyper-parameters (Q and K permuted for llama.cpp: `RopeStyle::Interleaved`).
    pub cfg: LlamaConfig,
    /// The tokenizer from the metadata.
    pub tokenizer: Tokenizer,
    /// The chat template in the metadata, if any.
    pub own_template: Option<Template>,
    /// `general.architecture`.
    pub arch: String,
}

/// Reads and checks everything but the weights of the GGUF file at `path`.
pub(super) fn read_header(path: &Path) -> Result<Header> {
    let mut file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let content = Content::read(&mut file).map_err(|e| read_error(path, e))?;
    let meta = Meta {
        md: &content.metadata,
        path,
    };
    let arch = meta.opt_str("general.architecture").ok_or_else(|| {
        WorkerError::invalid(path, "metadata key 'general.architecture' is missing")
    })?;
    if !LLAMA_ARCHS.contains(&arch.as_str()) {
        return Err(WorkerError::UnsupportedArchitecture(arch));
    }
    for (name, info) in &content.tensor_infos {
        let elems = info.shape.elem_count() as u64;
        let block = info.ggml_dtype.block_size() as u64;
        let bytes = elems / block * info.ggml_dtype.type_size() as u64;
        let end = content.tensor_data_offset + info.offset + bytes;
        if end > file_len {
            return Err(WorkerError::invalid(
                path,
                format!("the file is truncated: tensor '{name}' ends at byte {end} but the file has {file_len} bytes"),
            ));
        }
    }

    let k = |s: &str| format!("{arch}.{s}");
    let hidden = meta.usize(&k("embedding_length"))?;
    let heads = meta.usize(&k("attention.head_count"))?;
    let head_dim = match meta.opt_usize(&k("rope.dimension_count"))? {
        Some(d) => d,
        None => hidden.checked_div(heads).unwrap_or(0),
    };
    let embd_info = content
        .tensor_infos
        .get("token_embd.weight")
        .ok_or_else(|| WorkerError::MissingTensor("token_embd.weight".into()))?;
    let vocab_size = embd_info.shape.dims()[0];
    let cfg = LlamaConfig {
        vocab_size,
        hidden_size: hidden,
        intermediate_size: meta.usize(&k("feed_forward_length"))?,
        num_layers: meta.usize(&k("block_count"))?,
        num_heads: heads,
        num_kv_heads: meta
            .opt_usize(&k("attention.head_count_kv"))?
            .unwrap_or(heads),
        head_dim,
        rms_norm_eps: meta
            .opt_f64(&k("attention.layer_norm_rms_epsilon"))
            .unwrap_or(1e-5),
        rope_theta: meta.opt_f64(&k("rope.freq_base")).unwrap_or(10_000.0) as f32,
        rope_style: RopeStyle::Interleaved,
        context_length: meta.opt_usize(&k("context_length"))?.unwrap_or(2048),
    };
    cfg.validate().map_err(|r| WorkerError::invalid(path, r))?;

    let vocab = read_vocab(&meta);
    let tokenizer = Tokenizer::from_gguf(&vocab)?;
    let own_template = meta
        .opt_str("tokenizer.chat_template")
        .map(|source| Template::Jinja {
            source,
            bos_token: vocab
                .bos
                .and_then(|b| vocab.tokens.get(b as usize))
                .cloned()
                .unwrap_or_default(),
            eos_token: vocab
                .eos
                .and_then(|e| vocab.tokens.get(e as usize))
                .cloned()
                .unwrap_or_default(),
        });

    Ok(Header {
        file,
        content,
        cfg,
        tokenizer,
        own_template,
        arch,
    })
}

pub(super) fn load(path: &Path, device: &Device) -> Result<LoadedModel> {
    let Header {
        mut file,
        content,
        cfg,
        tokenizer,
        own_template,
        arch,
    } = read_header(path)?;
    let (vocab_size, hidden) = (cfg.vocab_size, cfg.hidden_size);
    let mut reader = Reader {
        content: &content,
        file: &mut file,
        device,
        path,
    };
    let embed = reader.embedding("token_embd.weight", vocab_size, hidden)?;
    let mut blocks = Vec::with_capacity(cfg.num_layers);
    let shapes = block_shapes(&cfg);
    for i in 0..cfg.num_layers {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        let names = BlockNames {
            attn_norm: n("attn_norm"),
            wq: n("attn_q"),
            wk: n("attn_k"),
            wv: n("attn_v"),
            wo: n("attn_output"),
            ffn_norm: n("ffn_norm"),
            gate: n("ffn_gate"),
            up: n("ffn_up"),
            down: n("ffn_down"),
        };
        let mut lin =
            |name: &str, (r, c): (usize, usize)| -> Result<Linear> { reader.linear(name, r, c) };
        let block = Block {
            wq: lin(&names.wq, shapes[0])?,
            wk: lin(&names.wk, shapes[1])?,
            wv: lin(&names.wv, shapes[2])?,
            wo: lin(&names.wo, shapes[3])?,
            gate: lin(&names.gate, shapes[4])?,
            up: lin(&names.up, shapes[5])?,
            down: lin(&names.down, shapes[6])?,
            attn_norm: reader.norm(&names.attn_norm, &cfg)?,
            ffn_norm: reader.norm(&names.ffn_norm, &cfg)?,
        };
        blocks.push(block);
    }
    let norm = reader.norm("output_norm.weight", &cfg)?;
    let lm_head = if content.tensor_infos.contains_key("output.weight") {
        reader.linear("output.weight", vocab_size, hidden)?
    } else {
        // Tied: the output layer shares the embedding's matrix where our kernels multiply its
        // format; otherwise it gets its own copy of the quantized bytes (still far less than
        // one f32 table).
        match embed.tied_head() {
            Some(head) => head,
            None => reader.linear("token_embd.weight", vocab_size, hidden)?,
        }
    };
    let weights = LlamaWeights {
        embed,
        blocks,
        norm,
        lm_head,
    };
    Ok(LoadedModel {
        model: Llama::new(cfg, weights, device.clone())?,
        tokenizer,
        own_template,
        format: "gguf",
        architecture: arch,
    })
}

fn read_vocab(meta: &Meta<'_>) -> GgufVocab {
    GgufVocab {
        model: meta.opt_str("tokenizer.ggml.model").unwrap_or_default(),
        pre: meta.opt_str("tokenizer.ggml.pre"),
        tokens: meta
            .array("tokenizer.ggml.tokens")
            .map(|a| {
                a.iter()
                    .map(|v| v.to_string().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default(),
        token_types: meta
            .array("tokenizer.ggml.token_type")
            .map(|a| {
                a.iter()
                    .map(|v| as_u64(v).map_or(1, |x| x as i64))
                    .collect()
            })
            .unwrap_or_default(),
        scores: meta
            .array("tokenizer.ggml.scores")
            .map(|a| a.iter().map(|v| as_f64(v).unwrap_or(0.0) as f32).collect())
            .unwrap_or_default(),
        merges: meta
            .array("tokenizer.ggml.merges")
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.to_string().ok().cloned())
                    .collect()
            })
            .unwrap_or_default(),
        bos: meta.opt_u32("tokenizer.ggml.bos_token_id"),
        eos: meta.opt_u32("tokenizer.ggml.eos_token_id"),
        unk: meta.opt_u32("tokenizer.ggml.unknown_token_id"),
        add_bos: meta
            .md
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok()),
    }
}

/// Reads only the tokenizer of a GGUF file (no weights).
pub(super) fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    let mut file = File::open(path)?;
    let content = Content::read(&mut file).map_err(|e| read_error(path, e))?;
    let meta = Meta {
        md: &content.metadata,
        path,
    };
    Tokenizer::from_gguf(&read_vocab(&meta))
}

struct Reader<'a> {
    content: &'a Content,
    file: &'a mut File,
    device: &'a Device,
    path: &'a Path,
}

impl Reader<'_> {
    fn qtensor(&mut self, name: &str, shape: &[usize]) -> Result<QTensor> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| WorkerError::MissingTensor(name.into()))?;
        expect_shape(name, info.shape.dims(), shape, self.path)?;
        self.content
            .tensor(self.file, name, self.device)
            .map_err(|e| read_error(self.path, e))
    }

    /// A `[rows, cols]` tensor our own kernels multiply, read from the file straight into the
    /// matrix's buffer (no intermediate copy: peak memory stays the file's size); `None` for
    /// other types or devices.
    fn host(&mut self, name: &str, rows: usize, cols: usize) -> Result<Option<HostMatrix>> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| WorkerError::MissingTensor(name.into()))?;
        expect_shape(name, info.shape.dims(), &[rows, cols], self.path)?;
        let dtype = info.ggml_dtype;
        if !self.device.is_cpu() || !host_type(dtype) || !cols.is_multiple_of(dtype.block_size()) {
            return Ok(None);
        }
        let len = rows * cols / dtype.block_size() * dtype.type_size();
        let start = self.content.tensor_data_offset + info.offset;
        self.file.seek(SeekFrom::Start(start))?;
        let path = self.path;
        let mut read = |bytes: &mut [u8]| {
            self.file
                .read_exact(bytes)
                .map_err(|e| WorkerError::invalid(path, format!("tensor '{name}': {e}")))
        };
        if let Some(kind) = half_kind(dtype) {
            // Read into rows that start on cache lines, which the 16-bit kernels load whole.
            let mut bytes = AlignedVec::try_zeroed(len).ok_or_else(|| {
                WorkerError::invalid(
                    path,
                    format!("tensor '{name}': {len} bytes do not fit in memory"),
                )
            })?;
            crate::model::alloc::advise_huge_pages(&mut bytes);
            read(&mut bytes)?;
            let m = HalfMatrix::from_aligned(kind, bytes, rows, cols);
            return Ok(m.map(|m| HostMatrix::Half(Arc::new(m))));
        }
        let mut bytes = vec![0u8; len];
        crate::model::alloc::advise_huge_pages(&mut bytes);
        read(&mut bytes)?;
        Ok(host_matrix(dtype, bytes, rows, cols))
    }

    /// A linear layer's weight `[rows, cols]`.
    fn linear(&mut self, name: &str, rows: usize, cols: usize) -> Result<Linear> {
        match self.host(name, rows, cols)? {
            Some(m) => Ok(Linear::from_host(m)),
            None => Ok(Linear::from_qtensor(self.qtensor(name, &[rows, cols])?)?),
        }
    }

    /// The token embeddings `[vocab, hidden]`.
    fn embedding(&mut self, name: &str, vocab: usize, hidden: usize) -> Result<Embedding> {
        match self.host(name, vocab, hidden)? {
            Some(m) => Ok(Embedding::from_host(m)),
            None => Ok(Embedding::from_qtensor(
                self.qtensor(name, &[vocab, hidden])?,
                self.device,
            )?),
        }
    }

    fn norm(&mut self, name: &str, cfg: &LlamaConfig) -> Result<candle_core::Tensor> {
        Ok(self
            .qtensor(name, &[cfg.hidden_size])?
            .dequantize(self.device)?)
    }
}
