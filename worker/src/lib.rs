//! The arena model worker: loads LLaMA-family models with candle, applies conversation
//! templates, and streams generated tokens over gRPC.

pub mod config;
pub mod engine;
pub mod error;
pub mod kv_cache;
pub mod linear;
pub mod llama;
pub mod loader;
pub mod params;
pub mod qmatrix;
pub mod sampling;
pub mod stop;
pub mod template;
pub mod tokenizer;

pub use error::{Result, WorkerError};
pub mod bench;
pub mod registration;
pub mod run;
pub mod served;
pub mod server;
pub mod testing;
