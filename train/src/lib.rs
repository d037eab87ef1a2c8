//! `arena train`: fine-tunes a LLaMA-family model on conversations the way Vicuna was made
//! (FastChat's recipe: loss on the assistant's tokens only, AdamW, warmup then cosine), on
//! the CPU with candle, and writes a Hugging Face folder the worker serves.
//!
//! candle's fused kernels (`rms_norm`, `softmax_last_dim`, `rope`, quantized matmul) record
//! no backward pass, so the training forward here is built from differentiable ops only and
//! is checked against the worker's own forward.
#![forbid(unsafe_code)]

pub mod bench;
pub mod checkpoint;
pub mod data;
mod error;
pub mod lora;
pub mod mask;
pub mod model;
pub mod ops;
pub mod optim;
pub mod progress;
pub mod run;
pub mod save;

pub use error::{Result, TrainError};
