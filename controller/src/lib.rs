//! The controller: registers workers over gRPC, routes every request to the least-loaded
//! worker serving its model, and serves the OpenAI-compatible API, the web arena and the ops
//! endpoints.
//!
//! Modules by job, imports one way: `gateway` (reaching the models) imports none of `openai`,
//! `site`, `http` or the store; `openai` and `site` never import each other; only `app` wires
//! everything together.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod error;
pub mod gateway;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod openai;
pub mod site;

pub use app::{App, READY_LINE};
pub use config::ControllerOptions;
pub use error::{ApiError, ControllerError};
