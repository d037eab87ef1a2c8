//! Generation: the engine (batched step loop, queue), sampling, checked generation
//! parameters, and the per-token log-probabilities callers may ask for.

pub mod engine;
pub mod logprobs;
pub mod params;
pub mod sampling;
