//! The controller: registers workers over gRPC, routes every request to the least-loaded
//! worker serving its model, and serves the OpenAI-compatible API and ops endpoints.

pub mod bench;
pub mod dispatch;
pub mod endpoints;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod openai;
pub mod ops;
pub mod registry;
pub mod run;
pub mod store;

pub use error::{ApiError, ControllerError};
