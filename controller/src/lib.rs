//! The controller: registers workers over gRPC, routes every request to the least-loaded
//! worker serving its model, and serves the OpenAI-compatible API and ops endpoints.
#![forbid(unsafe_code)]

pub mod arena;
pub mod bench;
pub mod demo;
pub mod dispatch;
pub mod endpoints;
pub mod error;
pub mod grpc;
pub mod ids;
pub mod metrics;
pub mod openai;
pub mod ops;
pub mod process;
pub mod ratings;
pub mod registry;
pub mod run;
pub mod store;

pub use error::{ApiError, ControllerError};
