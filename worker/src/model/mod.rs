//! The model: configuration, the LLaMA forward pass, token embeddings, linear layers, the KV
//! cache, quantized and 16-bit float kernels, and the loaders that build it from GGUF files and Hugging Face folders.

pub mod aligned;
pub mod alloc;
#[cfg(target_arch = "x86_64")]
pub mod amx;
pub mod attention;
pub mod config;
pub mod elementwise;
pub mod embedding;
pub mod half;
pub mod hot_threads;
pub mod kv_cache;
pub mod layout;
pub mod linear;
pub mod llama;
pub mod loader;
pub mod quant;
pub mod tiny_gguf;
