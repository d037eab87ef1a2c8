//! Generation: the engine (batched step loop, queue), sampling, checked generation
//! parameters, the per-token log-probabilities callers may ask for, and the prefix cache of
//! finished sequences' KV.

pub mod engine;
pub mod logprobs;
pub mod params;
pub mod prefix_cache;
pub mod sampling;
