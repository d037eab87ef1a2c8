//! The arena model worker: loads LLaMA-family models with candle, applies conversation
//! templates, and streams generated tokens over gRPC.
//!
//! Imports go one way: `model` and `text` never import `generate` or `serve`; `generate`
//! never imports `serve`. `run` (the `arena worker`, `generate` and `tokenize` commands) and
//! `bench` (`arena bench worker`) sit on top.
#![deny(unsafe_code)]

pub mod error;
pub mod generate;
pub mod model;
pub mod serve;
pub mod text;

pub mod bench;
pub mod chat_bench;
pub mod run;

#[cfg(feature = "tiny")]
pub mod tiny;

pub use error::{Result, WorkerError};

/// How the line `arena worker` prints on stderr once it listens begins (its gRPC address
/// follows); scripts, tests and the launcher wait for it.
pub const READY_LINE: &str = "arena worker listening on ";
