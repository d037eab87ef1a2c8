//! The launcher: starts `arena` child processes and waits for their ready lines, and builds
//! on that for `arena demo` (the whole arena on one machine) and `arena bench controller`
//! (what the controller adds to a request's latency).
//!
//! It sits above the controller and the worker: it starts them as processes and reads the
//! lines they print ([`arena_controller::READY_LINE`], [`arena_worker::READY_LINE`]); only
//! the benchmark's dispatch-rate figure calls into the controller's registry directly.
#![forbid(unsafe_code)]

pub mod bench;
pub mod demo;
pub mod error;
pub mod process;
pub mod trained;

pub use error::LaunchError;
