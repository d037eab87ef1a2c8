//! Generated gRPC types and clients/servers for package `arena.v1`.
#![forbid(unsafe_code)]

/// The `arena.v1` package.
pub mod v1 {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("arena.v1");
}
