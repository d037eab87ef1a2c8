//! Serving: the served model, the gRPC server, who may call it, and registration with the
//! controller.

pub mod auth;
pub mod registration;
pub mod served;
pub mod server;
