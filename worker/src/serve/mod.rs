//! Serving: the served model, the gRPC server, and registration with the controller.

pub mod registration;
pub mod served;
pub mod server;
