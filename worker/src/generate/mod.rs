//! Generation: the engine (batched step loop, queue), sampling, and checked generation
//! parameters.

pub mod engine;
pub mod params;
pub mod sampling;
