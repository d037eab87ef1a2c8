//! Attacks on a public arena, each run against real processes: the worker and controller
//! binaries with the real SmolLM2 model (SECURITY.md has the threat model).

#[path = "../common/mod.rs"]
mod common;

mod abuse;
mod anonymity;
mod forgery;
mod stuck_battles;
mod timeouts;
mod workers;
